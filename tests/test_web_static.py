"""The web demo without a browser: the preset drawings are held-out characters and reproducible,
the pages rendered by the server keep the CSP (no inline script or style, nothing from another
origin) and carry the stable names, and the static export is complete and relative."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from server.config import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "web" / "examples" / "heldout.json"
BUNDLE = DEFAULT_MODEL  # the bundle the server serves by default


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list:
    parser = Tags()
    parser.feed(html)
    return parser.tags


def test_examples_are_held_out_and_reproducible(omniglot_dir):
    from tools.examples import build, held_out_names

    committed = json.loads(EXAMPLES.read_text())
    assert EXAMPLES.stat().st_size < 80_000  # committed example files stay small
    seed = json.loads((BUNDLE / "model.json").read_text())["provenance"]["training_config"]["seed"]
    assert committed["source"]["split"]["seed"] == seed
    _, held_out = held_out_names(omniglot_dir, seed)
    characters = committed["characters"]
    assert len(characters) == 10 and all(len(c["drawings"]) == 6 for c in characters)
    for character in characters:
        key = f"images_background/{character['alphabet']}/{character['character']}"
        assert key in held_out, f"{key} was seen in meta-training"
        for drawing in character["drawings"]:
            assert drawing["file"].startswith(key + "/")
            for stroke in drawing["strokes"]:
                assert len(stroke) % 3 == 0 and all(isinstance(v, int) for v in stroke)
    assert committed["fidelity"]["mean"] < 0.03
    assert build(omniglot_dir, BUNDLE) == committed  # the committed file is what the script writes


@pytest.fixture(scope="module")
def pages():
    from fastapi.testclient import TestClient

    from server.app import create_app
    from server.config import Settings

    with TestClient(create_app(Settings(workers=1))) as client:
        yield {path: client.get(path) for path in ("/", "/embed", "/embed?classes=5&shots=2&mode=server&theme=dark")}


def test_pages_keep_the_csp_and_the_contract(pages):
    for path, response in pages.items():
        assert response.status_code == 200, path
        html = response.text
        for tag, attrs in tags(html):
            if tag == "script":
                assert attrs.get("src"), f"{path}: inline script"
                assert attrs.get("type") == "module"
            assert "style" not in attrs, f"{path}: style attribute on <{tag}>"
            assert not [a for a in attrs if a.startswith("on")], f"{path}: inline handler on <{tag}>"
            for key in ("src", "href"):
                url = attrs.get(key) or ""
                assert not re.match(r"(https?:)?//", url) or url.startswith("http://testserver"), f"{path}: {url}"
        assert "<style" not in html
        config = json.loads(re.search(r"data-config='([^']*)'", html).group(1).replace("&#34;", '"'))
        for key in ("worker", "ort", "ortWasm", "ortMjs", "modelBase", "examples", "api", "sw"):
            assert config["urls"][key], key
        assert "/vendor/onnxruntime-web/ort.wasm.min.mjs?v=" in config["urls"]["ort"]  # the wasm-only build, versioned
        assert set(config["urls"]["modelFiles"]) >= {"model.json", "weights.safetensors", "predict.onnx"}
        warning = json.loads((BUNDLE / "model.json").read_text())["warning"]
        if warning:
            assert warning in html
        for name in ("Add class", "In your browser", "On the server", "Stop", "Add test drawing", "Clear all"):
            assert f">{name}<" in html or f"> {name}<" in html or f"> {name}\n" in html, name
    assert 'id="save"' in pages["/"].text and 'id="save"' not in pages["/embed"].text
    assert 'rel="alternate" type="application/json+oembed"' in pages["/"].text
    dark = pages["/embed?classes=5&shots=2&mode=server&theme=dark"].text
    assert 'data-theme="dark"' in dark and '"mode": "server"' in dark.replace("&#34;", '"')


def test_static_export(tmp_path):
    from server.export_static import ExportError, export_static, main

    site = tmp_path / "site"
    written = export_static(site, BUNDLE, classes=4, shots=2)
    for name in (
        "index.html",
        "embed.html",
        "sw.js",
        "web/js/app.js",
        "web/js/worker.js",
        "web/js/engine.js",
        "web/js/preprocess.js",
        "web/css/demo.css",
        "web/examples/heldout.json",
        "vendor/onnxruntime-web/ort.wasm.min.mjs",
        "vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm",
        f"models/{BUNDLE.name}/model.json",
        f"models/{BUNDLE.name}/weights.safetensors",
    ):
        assert name in written and (site / name).is_file(), name
    assert not any(name.startswith("web/templates") or "node_modules" in name for name in written)
    index = (site / "index.html").read_text()
    for _tag, attrs in tags(index):
        for key in ("src", "href"):
            url = attrs.get(key)
            if url and not url.startswith("#"):
                assert not url.startswith("/") and "//" not in url, url  # relative: works in any folder
                assert (site / url.split("?")[0].lstrip("./")).is_file(), url
    config = json.loads(re.search(r"data-config='([^']*)'", index).group(1).replace("&#34;", '"'))
    assert config["static"] is True and config["settings"] == {
        "classes": 4,
        "shots": 2,
        "mode": "browser",
        "theme": "light",
    }
    assert 'value="server"' not in index
    for file, url in config["urls"]["modelFiles"].items():
        assert (site / url.split("?")[0]).is_file(), file
    # an export replaces an earlier one, but never empties a folder it did not write
    export_static(site, BUNDLE)
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty"):
        export_static(other, BUNDLE)
    assert main([str(tmp_path / "cli")]) == 0 and (tmp_path / "cli" / "index.html").is_file()
    assert main([str(tmp_path / "bad"), "--classes", "11"]) == 2


def test_export_static_is_a_reptile_demo_command(tmp_path):
    """The issue's spelling: `reptile-demo export-static DIR` (server/cli.py hands it over)."""
    from server.cli import main

    assert main(["export-static", str(tmp_path / "site")]) == 0
    assert (tmp_path / "site" / "index.html").is_file() and (
        tmp_path / "site" / f"models/{BUNDLE.name}/model.json"
    ).is_file()
    with pytest.raises(SystemExit) as missing:
        main(["export-static"])
    assert missing.value.code == 2
