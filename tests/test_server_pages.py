"""The pages the server renders from web/templates: the contract, settings validation, oEmbed,
security headers, a preview or broken bundle, the measured accuracy, and a path prefix behind a proxy."""

import hashlib
import json
import re
import shutil

from fastapi.testclient import TestClient
from server_helpers import assert_error, fast, make_web_dir, post, task

from server.app import create_app
from server.config import DEFAULT_MODEL, Settings

BUNDLE = DEFAULT_MODEL  # the bundle the server serves by default
PREVIEW_WARNING = json.loads((BUNDLE / "model.json").read_text()).get("warning")


# ---------------------------------------------------------------------------- pages and templates
def test_pages_render_the_web_templates(client):
    for path, marker in (("/", "Reptile few-shot demo"), ("/embed", "embedded")):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert marker in r.text
        if PREVIEW_WARNING:
            assert PREVIEW_WARNING in r.text  # the warning is shown
        # oEmbed discovery: the Link header on both pages, and a <link> in the full page's head
        assert "application/json+oembed" in r.headers["link"] and 'rel="alternate"' in r.headers["link"]
        assert "<script>" not in r.text and "private template source" not in r.text
    assert "application/json+oembed" in client.get("/").text


def test_pages_use_web_templates_with_the_contract(tmp_path):
    web = make_web_dir(tmp_path, contract_templates=True)
    app = create_app(Settings(web_dir=web, workers=1))
    with TestClient(app) as c:
        r = c.get("/?classes=4&shots=2&mode=server&theme=dark&utm_source=x")
        assert r.status_code == 200, r.text
        t = r.text
        assert t.startswith("WEB-INDEX") and f"model={BUNDLE.name}" in t and f"warning={PREVIEW_WARNING}" in t
        assert "classes=4 shots=2 mode=server theme=dark embed=False base=http://testserver" in t
        digest = hashlib.sha256((web / "js" / "app.js").read_bytes()).hexdigest()[:12]
        assert f"app=/web/js/app.js?v={digest}" in t
        assert "ort=/vendor/onnxruntime-web/ort.wasm.min.mjs?v=" in t
        assert "oembed=http://testserver/oembed?url=" in t
        r = c.get("/embed?theme=dark")
        assert r.text == "WEB-EMBED embed=True theme=dark"
        # defaults
        assert "classes=3 shots=1 mode=browser theme=light" in c.get("/").text


def test_page_settings_validation(client):
    for query, word in (
        ("classes=1", "classes"),
        ("classes=11", "classes"),
        ("classes=x", "classes"),
        ("shots=0", "shots"),
        ("shots=6", "shots"),
        ("mode=gpu", "mode"),
        ("theme=blue", "theme"),
    ):
        for path in ("/", "/embed"):
            r = client.get(f"{path}?{query}")
            assert_error(r, 422, word)


def test_oembed(client):
    r = client.get("/oembed", params={"url": "http://testserver/?classes=5&theme=dark", "maxwidth": 300})
    assert r.status_code == 200
    o = r.json()
    assert o["version"] == "1.0" and o["type"] == "rich" and o["width"] == 300 and o["height"] == 640
    assert 'src="http://testserver/embed?classes=5&amp;shots=1&amp;mode=browser&amp;theme=dark"' in o["html"]
    assert r.headers["access-control-allow-origin"] == "*"
    assert client.get("/oembed", params={"url": "http://testserver/embed"}).status_code == 200
    assert_error(client.get("/oembed", params={"url": "http://evil.example/"}), 404, "not a URL of this demo")
    assert_error(client.get("/oembed", params={"url": "http://testserver/api/model"}), 404, "not a URL")
    assert_error(client.get("/oembed", params={"url": "http://testserver/", "format": "xml"}), 501, "json")
    assert_error(client.get("/oembed", params={"url": "http://testserver/", "format": "yaml"}), 422, "format")
    assert_error(client.get("/oembed", params={"url": "http://testserver/?classes=99"}), 422, "classes")
    assert_error(client.get("/oembed"), 422, "url")


# ---------------------------------------------------------------------------- headers
def test_security_headers(client):
    index = client.get("/")
    csp = index.headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'self'" in csp and "connect-src 'self'" in csp and "style-src 'self'" in csp
    assert index.headers["x-content-type-options"] == "nosniff"
    assert index.headers["referrer-policy"] in ("strict-origin-when-cross-origin", "no-referrer", "same-origin")
    assert index.headers["cross-origin-opener-policy"] == "same-origin"
    assert index.headers["cross-origin-embedder-policy"] == "require-corp"
    assert index.headers["cross-origin-resource-policy"] == "same-origin"
    embed = client.get("/embed")
    assert "frame-ancestors *" in embed.headers["content-security-policy"]
    assert "unsafe-inline" not in embed.headers["content-security-policy"]
    assert "cross-origin-opener-policy" not in embed.headers and "cross-origin-embedder-policy" not in embed.headers
    assert "x-frame-options" not in embed.headers
    assert embed.headers["cross-origin-resource-policy"] == "cross-origin"
    for path in (
        "/api/model",
        "/healthz",
        "/web/js/app.js",
        "/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm",
        f"/models/{BUNDLE.name}/predict.onnx",
        "/sw.js",
        "/nope",
    ):
        r = client.get(path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert "frame-ancestors 'self'" in r.headers["content-security-policy"], path
        assert r.headers["cross-origin-embedder-policy"] == "require-corp", path
        assert r.headers["cross-origin-resource-policy"] == "same-origin", path


def test_frame_ancestors_configurable(web_dir):
    app = create_app(Settings(web_dir=web_dir, workers=1, frame_ancestors="https://a.example https://b.example"))
    with TestClient(app) as c:
        assert (
            "frame-ancestors https://a.example https://b.example" in c.get("/embed").headers["content-security-policy"]
        )
        assert "frame-ancestors 'self'" in c.get("/").headers["content-security-policy"]


# ---------------------------------------------------------------------------- a broken bundle
def test_broken_bundle_is_not_ready(tmp_path, web_dir):
    broken = tmp_path / "broken"
    shutil.copytree(BUNDLE, broken)
    (broken / "predict.onnx").write_bytes(b"tampered")
    app = create_app(Settings(model=broken, web_dir=web_dir, workers=1))
    with TestClient(app) as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
        assert_error(r, 503, "predict.onnx", "sha256")
        assert c.get("/api/model").status_code == 503
        assert post(c, fast(task(classes=2))).status_code == 503
        assert c.get("/").status_code == 503


def test_other_bundles_are_served_by_name(tmp_path, web_dir):
    models = tmp_path / "models"
    shutil.copytree(BUNDLE, models / "other")
    app = create_app(Settings(models_dir=models, web_dir=web_dir, workers=1))
    with TestClient(app) as c:
        assert c.get("/models/other/model.json").status_code == 200
        assert c.get(f"/models/{BUNDLE.name}/model.json").status_code == 200  # the served bundle, wherever it is


def test_a_preview_bundle_is_labelled_everywhere(tmp_path):
    bundle = tmp_path / "preview"
    shutil.copytree(BUNDLE, bundle)
    manifest = json.loads((bundle / "model.json").read_text())
    manifest.update(
        warning="trained for only 2000 of 100000 meta-iterations: not the real model", training_complete=False
    )
    (bundle / "model.json").write_text(json.dumps(manifest))  # model.json is not in its own sha256 list
    with TestClient(create_app(Settings(model=bundle, workers=1))) as c:
        assert "<strong>Preview model:</strong> trained for only 2000 of 100000" in c.get("/").text
        assert "trained for only 2000" in c.get("/embed").text
        assert c.get("/api/model").json()["warning"] == manifest["warning"]
        assert c.get("/readyz").json()["warning"] == manifest["warning"]
        out = post(c, fast(task(classes=2), steps=1)).json()
        assert out["warning"] == manifest["warning"]


def test_page_states_the_measured_accuracy(tmp_path):
    bundle = tmp_path / "measured"
    shutil.copytree(BUNDLE, bundle)
    manifest = json.loads((bundle / "model.json").read_text())
    manifest["accuracy"] = {
        "results": [
            {
                "ways": 5,
                "shots": 5,
                "tasks": 10000,
                "non_transductive": {"accuracy": 0.991, "ci95": 0.001},
                "transductive": {"accuracy": 0.995, "ci95": 0.001},
            },
            {
                "ways": 5,
                "shots": 1,
                "tasks": 10000,
                "non_transductive": {"accuracy": 0.98123, "ci95": 0.00271},
                "transductive": {"accuracy": 0.987, "ci95": 0.002},
            },
            {
                "ways": 10,
                "shots": 1,
                "tasks": 1000,
                "non_transductive": {"accuracy": 0.9721, "ci95": 0.0032},
                "transductive": {"accuracy": 0.981, "ci95": 0.003},
            },
        ]
    }
    (bundle / "model.json").write_text(json.dumps(manifest))  # model.json is not in its own sha256 list
    with TestClient(create_app(Settings(model=bundle, workers=1))) as c:
        page = re.sub(r"\s+", " ", c.get("/").text)
        assert (
            "Measured on 10,000 tasks of 5 characters it never saw, one example drawing each, it named the right "
            "character 98.1&nbsp;% of the time (95&nbsp;% interval &plusmn;&nbsp;0.3), with the same adaptation this "
            "page runs. With 10 characters: 97.2&nbsp;% (&plusmn;&nbsp;0.3)." in page
        )
        card = re.search(r'<a href="([^"]+)">Model card</a>', page).group(1)
        assert c.get(card).status_code == 200
    manifest["accuracy"] = None
    (bundle / "model.json").write_text(json.dumps(manifest))
    with TestClient(create_app(Settings(model=bundle, workers=1))) as c:
        assert "Measured on" not in c.get("/").text


def test_behind_a_proxy_path_prefix(web_dir):
    app = create_app(Settings(web_dir=web_dir, workers=1, root_path="/demo"))
    with TestClient(app, root_path="/demo") as c:
        m = c.get("/api/model").json()
        assert m["manifest_url"].startswith(f"/demo/models/{BUNDLE.name}/model.json?v=")
        assert c.get(m["files"]["predict.onnx"]["url"].removeprefix("/demo")).status_code == 200
        page = c.get("/")
        assert 'href="/demo/api/model"' in page.text and "/demo/oembed?" in page.headers["link"]
        embed = c.get("/embed")
        assert "cross-origin-embedder-policy" not in embed.headers
