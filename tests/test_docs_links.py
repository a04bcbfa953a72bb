"""Every relative link and image in the project's Markdown points at a file that exists."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted(
    [ROOT / "README.md", ROOT / "checkpoints" / "README.md"]
    + [p for p in (ROOT / "docs").rglob("*.md") if "measurements" not in p.parts]
    + sorted((ROOT / "static" / "models").glob("*/MODEL_CARD.md"))
)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def relative_targets(text: str) -> list:
    """Link targets that name a file of the checkout (no scheme, no bare anchor), without their anchor."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # commands in code blocks are not links
    targets = (m.group(1).split("#")[0] for m in LINK.finditer(text))
    return [t for t in targets if t and not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    missing = [t for t in relative_targets(doc.read_text()) if not (doc.parent / t).exists()]
    assert not missing, f"{doc.relative_to(ROOT)} links to missing files: {missing}"


def test_the_link_reader_finds_links_and_skips_urls_anchors_and_code():
    text = "![a](img/a.png) [b](../b.md#part) [c](https://x.org) [d](#top)\n```\n[e](e.md)\n```\n"
    assert relative_targets(text) == ["img/a.png", "../b.md"]
    assert sum(len(relative_targets(doc.read_text())) for doc in DOCS) > 30
