"""Static files: MIME types, caching by content hash, compression and ETags, HEAD, what must never
be served, and onnxruntime-web from web/node_modules."""

import hashlib
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from server_helpers import assert_error

from server.app import create_app
from server.config import DEFAULT_MODEL, Settings

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = DEFAULT_MODEL  # the bundle the server serves by default


def test_static_mime_types(client):
    expected = {
        "/web/js/app.js": "text/javascript",
        "/web/js/worker.mjs": "text/javascript",
        "/web/css/app.css": "text/css",
        "/web/icon.svg": "image/svg+xml",
        "/web/icon.png": "image/png",
        "/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm": "application/wasm",
        "/vendor/onnxruntime-web/ort.wasm.min.mjs": "text/javascript",
        f"/models/{BUNDLE.name}/predict.onnx": "application/octet-stream",
        f"/models/{BUNDLE.name}/model.json": "application/json",
        "/sw.js": "text/javascript",
    }
    for path, mime in expected.items():
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].split(";")[0] == mime, path


def test_static_cache_control(client, web_dir):
    digest = hashlib.sha256((web_dir / "js" / "app.js").read_bytes()).hexdigest()
    assert (
        client.get(f"/web/js/app.js?v={digest[:12]}").headers["cache-control"] == "public, max-age=31536000, immutable"
    )
    assert client.get(f"/web/js/app.js?v={digest}").headers["cache-control"].endswith("immutable")
    for stale in ("", "?v=000000000000", "?v=abc", f"?v={digest[:6]}"):
        assert "immutable" not in client.get(f"/web/js/app.js{stale}").headers["cache-control"]
    model = client.get("/api/model").json()
    for name, entry in model["files"].items():
        r = client.get(entry["url"])
        assert r.status_code == 200 and r.headers["cache-control"].endswith("immutable"), name
        assert hashlib.sha256(r.content).hexdigest() == entry["sha256"]
    assert client.get(f"/models/{BUNDLE.name}/predict.onnx").headers["cache-control"] == "no-cache"
    assert client.get(f"/models/{BUNDLE.name}/model.json").headers["cache-control"] == "no-cache"
    assert client.get(model["manifest_url"]).headers["cache-control"].endswith("immutable")
    sw = client.get("/sw.js")
    assert sw.headers["cache-control"] == "no-cache" and sw.headers["service-worker-allowed"] == "/"


def test_static_compression_and_etag(client):
    for path in (
        "/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm",
        f"/models/{BUNDLE.name}/train_step_adam.onnx",
        "/web/js/app.js",
        "/web/css/app.css",
        f"/models/{BUNDLE.name}/model.json",
    ):
        plain = client.get(path, headers={"accept-encoding": "identity"})
        assert "content-encoding" not in plain.headers, path
        gz = client.get(path, headers={"accept-encoding": "gzip"})
        assert gz.headers["content-encoding"] == "gzip" and gz.headers["vary"] == "Accept-Encoding", path
        assert gz.content == plain.content  # httpx decodes it
        assert int(gz.headers["content-length"]) < len(plain.content)
        br = client.get(path, headers={"accept-encoding": "gzip, br"})
        assert br.headers["content-encoding"] == "br", path
        assert br.content == plain.content
        etag = plain.headers["etag"]
        r = client.get(path, headers={"accept-encoding": "identity", "if-none-match": etag})
        assert r.status_code == 304 and r.content == b"", path
        assert client.get(path, headers={"accept-encoding": "br", "if-none-match": etag}).status_code == 200
    raw = client.get("/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm", headers={"accept-encoding": "br"})
    assert int(raw.headers["content-length"]) < 1000  # 5 kB of zeros compress well
    assert "content-encoding" not in client.get("/web/icon.png", headers={"accept-encoding": "gzip, br"}).headers


def test_static_head(client):
    get = client.get("/web/js/app.js", headers={"accept-encoding": "identity"})
    head = client.head("/web/js/app.js", headers={"accept-encoding": "identity"})
    assert head.status_code == 200 and head.content == b""
    assert (
        head.headers["content-length"] == get.headers["content-length"] and head.headers["etag"] == get.headers["etag"]
    )


def test_static_refuses_what_it_must_not_serve(client):
    for path in (
        "/web/templates/partial.html",
        "/web/templates/index.html",
        "/web/node_modules/onnxruntime-web/package.json",
        "/web/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs",
        "/web/secret.py",
        "/web/.hidden.js",
        "/web/../server/app.py",
        "/web/%2e%2e/server/app.py",
        "/web/js/..%2f..%2fserver/app.py",
        "/web/js",
        "/web/",
        "/web/missing.js",
        f"/models/{BUNDLE.name}/../../../pyproject.toml",
        f"/models/{BUNDLE.name}/nope.onnx",
        "/models/..%2f..%2fserver/app.py",
        f"/models/{BUNDLE.name}/%2e%2e%2fmodel.json",
    ):
        r = client.get(path)
        assert r.status_code == 404, (path, r.status_code)
    r = client.get("/vendor/onnxruntime-web/ort.webgl.min.js")
    assert_error(r, 404, "wasm build")
    assert_error(client.get("/vendor/onnxruntime-web/ort.wasm.min.js"), 404, "does not ship")


def test_vendor_missing_runtime_says_so(tmp_path):
    web = tmp_path / "web"
    shutil.copytree(ROOT / "web" / "templates", web / "templates")
    app = create_app(Settings(web_dir=web, workers=1))
    with TestClient(app) as c:
        assert_error(c.get("/vendor/onnxruntime-web/ort.wasm.min.mjs"), 404, "not installed", "npm ci")
        assert_error(c.get("/sw.js"), 404, "service worker")
        assert c.get("/").status_code == 200  # the page itself renders without the runtime


def test_real_onnxruntime_web_if_installed():
    dist = ROOT / "web" / "node_modules" / "onnxruntime-web" / "dist"
    if not dist.is_dir():
        pytest.skip("web/node_modules/onnxruntime-web is not installed")
    from server.state import ORT_FILES

    shipped = [f for f in ORT_FILES if (dist / f).is_file()]
    assert "ort-wasm-simd-threaded.wasm" in shipped and "ort.wasm.min.mjs" in shipped
    app = create_app(Settings(workers=1))
    with TestClient(app) as c:
        r = c.get("/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm", headers={"accept-encoding": "gzip"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/wasm"
        assert r.content[:4] == b"\0asm"
