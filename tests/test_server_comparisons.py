"""The server's part of the demo's new controls: POST /api/adapt's `optimizer` (SGD or Adam, with its
own lr), and the comparison starts ("Compare with", server/comparisons.py) that /api/model, the
pages and the static export offer beside the served bundle."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from server_helpers import array_image

from server.app import create_app
from server.comparisons import STARTS
from server.config import DEFAULT_MODEL, Settings

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = DEFAULT_MODEL
COMPARISON = BUNDLE.parent / f"{BUNDLE.name}-random"  # any bundle with the served graphs


def body(**options) -> dict:
    images = [array_image(s) for s in range(5)]
    return {
        "support": [{"image": images[i], "label": i % 2} for i in range(4)],
        "query": [{"image": images[4]}],
        "steps": 3,
        **options,
    }


@pytest.fixture(scope="module")
def client(web_dir):
    with TestClient(create_app(Settings(web_dir=web_dir, workers=1))) as c:
        yield c


def test_adapt_with_sgd_is_the_bundles_sgd(client):
    from bundle import load_bundle

    request = body(optimizer="sgd", lr=0.01)
    r = client.post("/api/adapt", json=request)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["optimizer"] == "sgd" and out["lr"] == 0.01
    support = np.array([s["image"] for s in request["support"]], dtype=np.float32)
    labels = np.array([s["label"] for s in request["support"]])
    query = np.array([q["image"] for q in request["query"]], dtype=np.float32)
    direct = load_bundle(BUNDLE).adapt(support, labels, query, steps=3, lr=0.01, optimizer="sgd")
    np.testing.assert_allclose(out["probabilities"], direct.probabilities, atol=1e-4)
    np.testing.assert_allclose(out["losses"], direct.losses, rtol=1e-4)
    adam = client.post("/api/adapt", json=body(optimizer="adam")).json()
    assert adam["optimizer"] == "adam" and adam["probabilities"] != out["probabilities"]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"optimizer": "rmsprop", "lr": 0.01}, ["optimizer", "'adam' or 'sgd'"]),
        ({"optimizer": 1, "lr": 0.01}, ["optimizer"]),
        ({"optimizer": "sgd"}, ["lr: required with optimizer 'sgd'"]),
    ],
)
def test_bad_optimizer_is_a_422_naming_the_field(client, options, words):
    r = client.post("/api/adapt", json=body(**options))
    assert r.status_code == 422, r.text
    for word in words:
        assert word in r.json()["detail"], r.json()["detail"]


def models_with(tmp_path, **starts) -> tuple:
    """A models folder holding a copy of the served bundle and, per start, the given bundle under the
    comparison name -> (models folder, served bundle folder)."""
    models = tmp_path / "models"
    served = models / "served"
    shutil.copytree(BUNDLE, served)
    for start, source in starts.items():
        shutil.copytree(source, models / f"served-{start}")
    return models, served


@pytest.mark.skipif(not (COMPARISON / "model.json").is_file(), reason="no comparison bundle beside the served one")
def test_comparison_starts_are_offered_and_served(tmp_path, web_dir, caplog):
    models, served = models_with(tmp_path, joint=COMPARISON, random=BUNDLE.parent / "sine")
    with TestClient(create_app(Settings(model=served, models_dir=models, web_dir=web_dir, workers=1))) as c:
        offered = c.get("/api/model").json()["comparisons"]
        # the sine bundle has other graphs: left out, with a warning naming it
        assert list(offered) == ["joint"] and "served-random" in caplog.text
        entry = offered["joint"]
        assert entry["name"] == json.loads((COMPARISON / "model.json").read_text())["name"]
        for url in (entry["manifest"], entry["weights"]):
            assert url.startswith("/models/served-joint/") and "?v=" in url
            r = c.get(url)
            assert r.status_code == 200 and "immutable" in r.headers["cache-control"]
        config = c.get("/").text
        assert "/models/served-joint/weights.safetensors?v=" in config
    with TestClient(create_app(Settings(model=served, models_dir=tmp_path, web_dir=web_dir, workers=1))) as c:
        assert c.get("/api/model").json()["comparisons"] == {}


@pytest.mark.skipif(not (COMPARISON / "model.json").is_file(), reason="no comparison bundle beside the served one")
def test_the_static_export_carries_the_comparisons_weights(tmp_path):
    pytest.importorskip("jinja2")
    from server.export_static import ORT_DIST, ORT_FILES, export_static

    if not all((ORT_DIST / f).is_file() for f in ORT_FILES):
        pytest.skip("onnxruntime-web is not installed")
    models, served = models_with(tmp_path, random=COMPARISON)
    written = export_static(tmp_path / "site", served)
    assert {"models/served-random/model.json", "models/served-random/weights.safetensors"} <= set(written)
    assert not any(w.startswith("models/served-random/") and w.endswith(".onnx") for w in written)
    assert "models/served-random/weights.safetensors?v=" in (tmp_path / "site" / "index.html").read_text()


def test_the_starts_are_the_pages_choices():
    """The page's "Compare with" offers nothing or one of the starts the server looks for."""
    template = (ROOT / "web" / "templates" / "_demo.html").read_text()
    start = template.index('<select id="compare"')
    select = template[start : template.index("</select>", start)]
    assert re.findall(r'<option value="(\w+)"', select) == ["none", *STARTS]
