"""The bundle format has one definition (bundle/format.py): the browser's engine spells the same values,
the Python reader enforces its rules, and each committed model card is what bundle/card.py renders."""

import json
import re
import shutil
from pathlib import Path

import pytest

from bundle import BundleError, load_bundle
from bundle.card import render_model_card
from bundle.format import (
    ADAM_V_PREFIX,
    CARD_FILE,
    CLASSIFICATION,
    FORMAT,
    FORMAT_VERSION,
    GRAPH_FILES,
    HEAD_RULE,
    MANIFEST_FILE,
    UPDATED_PREFIX,
    WEIGHTS_FILE,
    task_kind,
)

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "web" / "js" / "engine.js"
# the served bundle (static/models) and those kept for measurement (models/)
BUNDLES = [
    p.parent for folder in ("static/models", "models") for p in sorted((ROOT / folder).glob(f"*/{MANIFEST_FILE}"))
]
# those of the drawing demo's CNN (the regression bundle of the sine-wave toy is tested in tests/test_sine.py)
CLASSIFICATION_BUNDLES = [
    p for p in BUNDLES if task_kind(json.loads((p / MANIFEST_FILE).read_text())) == CLASSIFICATION
]


def js_constant(name: str) -> str:
    """The value of `const <name> = <literal>;` in engine.js, as its source text."""
    found = re.findall(rf"\bconst {name} = (\"[^\"]*\"|\d+);", ENGINE.read_text())
    assert len(found) == 1, f"engine.js defines {name} {len(found)} times, expected once"
    return json.loads(found[0])


def js_strings() -> set:
    """Every double-quoted string literal in engine.js."""
    return set(re.findall(r'"([^"\n]*)"', ENGINE.read_text()))


def test_engine_js_spells_the_format_constants():
    assert js_constant("FORMAT") == FORMAT
    assert js_constant("FORMAT_VERSION") == FORMAT_VERSION
    assert js_constant("ADAM_V") == ADAM_V_PREFIX
    assert js_constant("UPDATED") == UPDATED_PREFIX
    assert js_constant("HEAD_RULE") == HEAD_RULE


def test_engine_js_uses_the_format_file_names():
    text = ENGINE.read_text()
    assert re.findall(r'new URL\("([^"]+)"', text) == [MANIFEST_FILE]  # the one file it names: the rest come from it
    assert "manifest.weights.file" in text and "manifest.graphs[name].file" in text
    assert {s for s in js_strings() if re.fullmatch(r"predict|train_step_\w+", s)} == set(GRAPH_FILES)  # graphs it runs
    named_files = {s for s in js_strings() if re.search(r"\.(onnx|safetensors|json|md)$", s)}
    assert named_files <= {MANIFEST_FILE, WEIGHTS_FILE, CARD_FILE, *GRAPH_FILES.values()}


@pytest.fixture
def bundle_copy(tmp_path):
    """A copy of the smallest committed bundle, safe to edit."""
    source = min(CLASSIFICATION_BUNDLES, key=lambda p: sum(f.stat().st_size for f in p.iterdir()))
    return Path(shutil.copytree(source, tmp_path / source.name))


def edit_manifest(directory: Path, change) -> None:
    """Apply change(manifest) to the bundle's model.json."""
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    change(manifest)
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")


def test_reader_loads_the_committed_bundles():
    for path in CLASSIFICATION_BUNDLES:
        assert load_bundle(path).manifest["head_extension"]["rule"] == HEAD_RULE


def test_reader_refuses_an_unknown_head_rule(bundle_copy):
    edit_manifest(bundle_copy, lambda m: m["head_extension"].update(rule="trained-rows-averaged"))
    with pytest.raises(BundleError, match=r"unknown head rule 'trained-rows-averaged', this reader understands"):
        load_bundle(bundle_copy)


def test_reader_refuses_another_format_version(bundle_copy):
    edit_manifest(bundle_copy, lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(BundleError, match=rf"format version {FORMAT_VERSION + 1}, this reader understands"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("directory", BUNDLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_model_card_is_rendered_from_the_manifest(directory):
    """Byte for byte. write_card_and_manifest renders the card before it hashes it, so the card's own
    row in its file table (present when the card was rewritten, e.g. by evaluate-bundle --record)
    holds the previous card's sha256: render with that row."""
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    card = (directory / CARD_FILE).read_bytes()
    row = re.search(rf"^\| {re.escape(CARD_FILE)} \| (\d+) \| `([0-9a-f]{{64}})` \|$", card.decode(), re.M)
    if row:
        manifest["files"][CARD_FILE] = {"sha256": row[2], "bytes": int(row[1])}
    else:
        del manifest["files"][CARD_FILE]
    assert render_model_card(manifest, directory).encode() == card
