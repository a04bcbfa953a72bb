"""/learn and /embed?view= through FastAPI's test client: the page and each part alone, the `view` and
`theme` parameters (bad values answered 422 naming the field), /embed without `view` unchanged, the
headers (CSP, isolation; the embed's framing), the page's configuration (versioned URLs of the sine
bundle and onnxruntime-web, nothing from another origin), the sine bundle's files served with the
hashes of its model.json, the model card's figures on the page, a missing sine bundle (503 naming the
file), and a page that needs no classification bundle."""

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SINE = ROOT / "static" / "models" / "sine"
MANIFEST = json.loads((SINE / "model.json").read_text())
PARTS = ("sine", "landscape", "taylor")


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(workers=1))) as c:
        yield c


def error(r, status: int, *words) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    detail = r.json()["detail"]
    for word in words:
        assert word.lower() in detail.lower(), (word, detail)
    return detail


def config_of(html: str) -> dict:
    return json.loads(re.search(r"data-config='([^']*)'", html).group(1).replace("&#34;", '"'))


def sections(html: str) -> set:
    return set(re.findall(r'<section class="panel learn-part" id="(\w+)"', html))


def test_learn_page(client):
    r = client.get("/learn")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert sections(html) == set(PARTS)
    for name in ("New wave", "Clear points", "Adaptation steps", "Algorithm", "Inner steps k", "Inner step size",
                 "Meta step size", "Run Reptile", "Sample new waves", "Projector mode"):  # fmt: skip
        assert f">{name}<" in html, name
    assert re.search(r'href="http://testserver/"', html)  # back to the demo
    # same CSP as the demo, no inline script or style, nothing from another origin
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and "<style" not in html and " style=" not in html
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not re.match(r"(https?:)?//", url) or url.startswith("http://testserver"), url
    assert r.headers["content-security-policy"] == client.get("/").headers["content-security-policy"]
    assert r.headers["cross-origin-embedder-policy"] == "require-corp"
    config = config_of(html)
    assert config["view"] is None and config["embed"] is False
    assert "/vendor/onnxruntime-web/ort.wasm.min.mjs?v=" in config["urls"]["ort"]
    assert config["urls"]["sineBase"] == "/models/sine/"
    files = config["urls"]["sineFiles"]
    assert set(files) == {"model.json", *MANIFEST["files"]}
    for name, entry in MANIFEST["files"].items():
        assert files[name] == f"/models/sine/{name}?v={entry['sha256'][:12]}"


def test_learn_shows_the_model_card_figures(client):
    html = client.get("/learn").text
    rows = {(r["start"], r["shots"], r["steps"]): r["mse"] for r in MANIFEST["evaluation"]["results"]}
    for key in (("meta-learned", 10, 32), ("joint", 10, 32), ("random", 10, 32), ("joint", 5, 1)):
        assert f"{rows[key]:.2f}" in html, key
    assert MANIFEST["evaluation"]["command"] in html


def test_one_part_alone(client):
    for view in PARTS:
        page = client.get(f"/learn?view={view}&theme=dark")
        assert page.status_code == 200 and sections(page.text) == {view}
        assert 'data-theme="dark"' in page.text
        embed = client.get(f"/embed?view={view}")
        assert embed.status_code == 200 and sections(embed.text) == {view}
        assert config_of(embed.text)["embed"] is True and config_of(embed.text)["view"] == view
        assert 'id="projector"' not in embed.text and 'class="embed"' in embed.text
        # framed by other sites: the embed's headers, not the page's
        assert "frame-ancestors *" in embed.headers["content-security-policy"]
        assert "cross-origin-embedder-policy" not in embed.headers and "x-frame-options" not in embed.headers


def test_embed_without_view_is_the_demo(client):
    r = client.get("/embed?classes=4&theme=dark")
    assert r.status_code == 200 and 'id="demo"' in r.text and 'id="learn"' not in r.text
    assert '"classes": 4' in r.text.replace("&#34;", '"')


def test_bad_view_and_theme_name_the_field(client):
    for path in ("/embed", "/learn"):
        detail = error(client.get(f"{path}?view=sines"), 422, "view", "sine", "landscape")
        assert "taylor" in detail
        error(client.get(f"{path}?view=sine&theme=blue"), 422, "theme")
    # the page's own fields are the page's: the server ignores them, the page ignores bad values
    assert client.get("/learn?K=7&steps=99&algorithm=sgd&phi=x").status_code == 200


def test_the_sine_bundle_is_served(client):
    for name, entry in MANIFEST["files"].items():
        r = client.get(f"/models/sine/{name}?v={entry['sha256'][:12]}")
        assert r.status_code == 200, name
        assert hashlib.sha256(r.content).hexdigest() == entry["sha256"], name
    assert client.get("/models/sine/model.json").json()["task"] == "regression"


def test_openapi_documents_learn_and_view(client):
    schema = client.get("/openapi.json").json()
    assert "/learn" in schema["paths"]
    for path in ("/learn", "/embed"):
        parameters = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}
        assert "view" in parameters and "landscape" in json.dumps(parameters["view"]["schema"]), path


def test_without_the_sine_bundle(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    with TestClient(create_app(Settings(workers=1, models_dir=models))) as c:
        error(c.get("/learn"), 503, "/models/sine/model.json", "python -m training sine")
        error(c.get("/embed?view=sine"), 503, "model.json")
        assert c.get("/").status_code == 200 and c.get("/embed").status_code == 200  # the demo does not need it
    shutil.copytree(SINE, models / "sine")
    (models / "sine" / "model.json").write_text("{not json")
    with TestClient(create_app(Settings(workers=1, models_dir=models))) as c:
        error(c.get("/learn"), 503, "not a manifest")


def test_learn_needs_no_classification_bundle(tmp_path):
    with TestClient(create_app(Settings(workers=1, model=tmp_path / "missing"))) as c:
        assert c.get("/").status_code == 503
        r = c.get("/learn")
        assert r.status_code == 200 and sections(r.text) == set(PARTS)
