"""The FastAPI server through FastAPI's test client: every route, every bad-input class, the pool's
503 and time limit, headers, static files, templates, and parity with the bundle."""

import asyncio
import base64
import concurrent.futures
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw
from server_helpers import drawing, make_web_dir, png_bytes

from server.app import create_app
from server.config import DEFAULT_MODEL, Settings

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = DEFAULT_MODEL  # the bundle the server serves by default
PREVIEW_WARNING = json.loads((BUNDLE / "model.json").read_text()).get("warning")


# ---------------------------------------------------------------------------- drawings
def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + b64(data)


def task(classes=5, shots=1, queries=2, seed=0, as_url=False):
    encode = data_url if as_url else b64
    support = [{"image": encode(drawing(seed + 100 * c + s)), "label": c} for c in range(classes) for s in range(shots)]
    query = [{"image": encode(drawing(seed + 100 * (q % classes) + 50))} for q in range(queries)]
    return {"support": support, "query": query}


def array_image(seed: int) -> list:
    from preprocessing import decode_png_ink, to_model_input

    return to_model_input(decode_png_ink(drawing(seed))).astype(float).tolist()


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def web_dir(tmp_path_factory):
    return make_web_dir(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def client(web_dir):
    app = create_app(Settings(web_dir=web_dir, workers=2, queue=16))
    with TestClient(app) as c:
        yield c


def post(client, body, **kwargs):
    return client.post("/api/adapt", json=body, **kwargs)


def fast(body, steps=2):
    return {**body, "steps": steps}


# ---------------------------------------------------------------------------- health, model, docs
def test_healthz_readyz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready" and body["sha256_verified"] is True and body["model"] == BUNDLE.name
    assert body["workers"] == 2 and body["warning"] == PREVIEW_WARNING


def test_api_model_passes_the_warning_through(client):
    r = client.get("/api/model")
    assert r.status_code == 200
    m = r.json()
    manifest = json.loads((BUNDLE / "model.json").read_text())
    assert m["name"] == manifest["name"]
    assert m["warning"] == manifest["warning"]  # the preview bundle's warning is shown, never hidden
    assert m["training_complete"] == manifest["training_complete"]
    assert m["classes"] == {"min": 2, "max": 10} and m["shots"] == {"min": 1, "max": 5}
    assert m["adaptation"]["steps"] == manifest["adaptation"]["steps"]
    assert m["adaptation"]["lr"] == manifest["adaptation"]["lr"]
    assert "accuracy" in m and m["input"]["preprocessing_spec"] == 1
    for name, entry in manifest["files"].items():
        assert m["files"][name]["sha256"] == entry["sha256"]
        assert m["files"][name]["url"] == f"/models/{BUNDLE.name}/{name}?v={entry['sha256'][:12]}"
    assert m["manifest_url"].startswith(f"/models/{BUNDLE.name}/model.json?v=")


def test_docs_and_openapi(client):
    r = client.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()
    schema = client.get("/openapi.json").json()
    assert {"/api/adapt", "/api/model", "/healthz", "/readyz", "/oembed", "/", "/embed"} <= set(schema["paths"])
    body = schema["paths"]["/api/adapt"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/AdaptRequest"}
    request = schema["components"]["schemas"]["AdaptRequest"]
    assert set(request["properties"]) == {"support", "query", "steps", "lr", "transductive", "optimizer"}
    assert "SupportExample" in schema["components"]["schemas"]
    assert not any(p.startswith(("/web", "/vendor", "/models")) for p in schema["paths"])


# ---------------------------------------------------------------------------- adaptation
def test_adapt_png_base64_and_data_url(client):
    for as_url in (False, True):
        r = post(client, fast(task(classes=3, shots=2, queries=3, as_url=as_url), steps=3))
        assert r.status_code == 200, r.text
        out = r.json()
        assert len(out["probabilities"]) == 3 and all(len(p) == 3 for p in out["probabilities"])
        assert all(abs(sum(p) - 1) < 1e-4 for p in out["probabilities"])
        assert out["predictions"] == [int(np.argmax(p)) for p in out["probabilities"]]
        assert len(out["losses"]) == 3 and out["elapsed_ms"] > 0
        assert out["model"] == BUNDLE.name and out["warning"] == PREVIEW_WARNING
        assert out["steps"] == 3 and out["classes"] == 3 and out["optimizer"] == "adam"
        assert r.headers["cache-control"] == "no-store"


def test_adapt_arrays_and_options(client):
    body = {
        "support": [{"image": array_image(c), "label": c} for c in range(2)] * 2,
        "query": [{"image": array_image(0)}, {"image": array_image(1)}],
        "steps": 4,
        "lr": 0.001,
        "transductive": True,
    }
    r = post(client, body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["transductive"] is True and out["lr"] == 0.001 and len(out["losses"]) == 4


def test_adapt_zero_steps(client):
    r = post(client, fast(task(classes=2), steps=0))
    assert r.status_code == 200 and r.json()["losses"] == []


def test_parity_with_the_bundle_at_default_steps(client):
    """Server probabilities == Bundle.adapt on the same preprocessed drawings (manifest defaults)."""
    from bundle import load_bundle
    from preprocessing import decode_png_ink, to_model_input

    body = task(classes=5, shots=1, queries=4, seed=7)
    r = post(client, body)
    assert r.status_code == 200, r.text
    out = r.json()
    bundle = load_bundle(BUNDLE)
    assert out["steps"] == bundle.defaults["steps"]

    def prep(item):
        return to_model_input(decode_png_ink(base64.b64decode(item["image"])))

    support = np.stack([prep(s) for s in body["support"]])
    labels = np.array([s["label"] for s in body["support"]])
    queries = np.stack([prep(q) for q in body["query"]])
    direct = bundle.adapt(support, labels, queries)
    np.testing.assert_allclose(np.array(out["probabilities"]), direct.probabilities, atol=1e-3)
    np.testing.assert_allclose(np.array(out["losses"]), direct.losses, rtol=1e-4)
    assert out["predictions"] == direct.predictions.tolist()


def test_parity_arrays_other_class_count_and_transductive(client):
    from bundle import load_bundle

    images = [array_image(s) for s in range(9)]
    labels = [0, 1, 2, 0, 1, 2]
    body = {
        "support": [{"image": images[i], "label": labels[i]} for i in range(6)],
        "query": [{"image": images[i]} for i in range(6, 9)],
        "steps": 5,
        "lr": 0.002,
        "transductive": True,
    }
    out = post(client, body).json()
    direct = load_bundle(BUNDLE).adapt(
        np.array(images[:6], dtype=np.float32),
        np.array(labels),
        np.array(images[6:], dtype=np.float32),
        steps=5,
        lr=0.002,
        transductive=True,
    )
    np.testing.assert_allclose(np.array(out["probabilities"]), direct.probabilities, atol=1e-3)


# ---------------------------------------------------------------------------- bad input, one test per class
def assert_error(r, status, *words):
    assert r.status_code == status, (r.status_code, r.text)
    detail = r.json()["detail"]
    for word in words:
        assert word.lower() in detail.lower(), (word, detail)
    return detail


def test_malformed_json(client):
    r = client.post("/api/adapt", content=b'{"support": [', headers={"content-type": "application/json"})
    assert_error(r, 400, "malformed JSON")
    r = client.post("/api/adapt", content=b"\xff\xfe", headers={"content-type": "application/json"})
    assert_error(r, 400, "UTF-8")
    r = client.post("/api/adapt", content=b"[1, 2]", headers={"content-type": "application/json"})
    assert_error(r, 422, "JSON object")
    r = client.post("/api/adapt", content=b"", headers={"content-type": "application/json"})
    assert_error(r, 400, "malformed JSON")
    r = client.post("/api/adapt", content=b"[" * 100000, headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_wrong_content_type(client):
    r = client.post("/api/adapt", content=json.dumps(task()).encode(), headers={"content-type": "text/plain"})
    assert_error(r, 415, "application/json")


def test_not_a_png(client):
    body = task(classes=2)
    body["support"][1]["image"] = b64(b"\xff\xd8\xff\xe0" + bytes(100))
    assert_error(post(client, body), 422, "support[1].image", "JPEG")
    body["support"][1]["image"] = b64(b"hello, not an image at all")
    assert_error(post(client, body), 422, "support[1].image", "not a PNG")
    body["support"][1]["image"] = "!!!not base64!!!"
    assert_error(post(client, body), 422, "support[1].image", "base64")
    body["support"][1]["image"] = "data:image/jpeg;base64," + b64(drawing(1))
    assert_error(post(client, body), 422, "support[1].image", "data:image/png;base64")
    body["support"][1]["image"] = b64(drawing(1)[:60])  # truncated
    assert_error(post(client, body), 422, "support[1].image")
    body["support"][1]["image"] = ""
    assert_error(post(client, body), 422, "support[1].image", "empty")
    for value, word in ((None, "null"), (3, "number"), ({"png": "x"}, "object"), (True, "boolean")):
        body["support"][1]["image"] = value
        assert_error(post(client, body), 422, "support[1].image", word)


def test_image_over_the_size_limit(client):
    body = task(classes=2)
    big = Image.new("L", (1100, 1000), "white")
    ImageDraw.Draw(big).line([(100, 100), (900, 900)], fill="black", width=30)
    body["query"][0]["image"] = b64(png_bytes(big))  # small file, too many pixels
    assert_error(post(client, body), 422, "query[0].image", "1100x1000", "pixels")
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 256, (600, 600), dtype=np.uint8))
    body["query"][0]["image"] = b64(png_bytes(noisy))  # ~360 kB file with few pixels is fine; make it bigger:
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 256, (800, 800), dtype=np.uint8))
    data = png_bytes(noisy)
    assert len(data) > 512 * 1024
    body["query"][0]["image"] = b64(data)
    assert_error(post(client, body), 422, "query[0].image", "too large", "bytes")


def test_body_over_the_limit(client):
    huge = b'{"support": [], "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    r = client.post("/api/adapt", content=huge, headers={"content-type": "application/json"})
    assert_error(r, 413, "limit")

    def chunks():  # no Content-Length: the limit is enforced while reading
        yield b'{"pad": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    r = client.post("/api/adapt", content=chunks(), headers={"content-type": "application/json"})
    assert_error(r, 413, "limit")


def test_nan_and_infinity(client):
    body = task(classes=2)
    body["query"][0]["image"] = array_image(3)
    raw = json.loads(json.dumps(body))
    raw["query"][0]["image"][0][0] = float("nan")
    r = client.post("/api/adapt", content=json.dumps(raw).encode(), headers={"content-type": "application/json"})
    assert_error(r, 422, "NaN")
    raw["query"][0]["image"][0][0] = 0.0
    text = json.dumps(raw).replace("0.0", "1e999", 1)  # overflows to infinity when parsed
    r = client.post("/api/adapt", content=text.encode(), headers={"content-type": "application/json"})
    assert_error(r, 422, "finite")
    r = client.post(
        "/api/adapt",
        content=json.dumps({**task(classes=2), "lr": float("inf")}).encode(),
        headers={"content-type": "application/json"},
    )
    assert_error(r, 422, "Infinity")
    r = client.post(
        "/api/adapt", content=b'{"support": [], "query": [], "lr": 1e999}', headers={"content-type": "application/json"}
    )
    assert_error(r, 422, "lr", "finite")


def test_wrong_array_shape_and_values(client):
    body = task(classes=2)
    good = array_image(5)
    cases = [
        (good[:27], "28x28", "27"),
        ([row[:27] for row in good], "28x28", "28x27"),
        (good[:27] + [good[0][:5]], "28x28", "5..28"),
        ([[good]], "28x28", None),
        ([[[0.5] * 28] * 28], "28x28", None),
        ([["0.5"] * 28] * 28, "string", None),
        ([[None] * 28] * 28, "null", None),
        ([[True] * 28] * 28, "boolean", None),
        ([[1.5] * 28] * 28, "[0, 1]", None),
        ([[-0.1] * 28] * 28, "[0, 1]", None),
    ]
    for image, word, extra in cases:
        body["support"][0]["image"] = image
        detail = assert_error(post(client, body), 422, "support[0].image", word)
        if extra:
            assert extra in detail


def test_empty_drawing_names_the_image(client):
    body = task(classes=2, queries=3)
    body["query"][2]["image"] = b64(png_bytes(Image.new("L", (100, 100), "white")))
    assert_error(post(client, body), 422, "query[2].image", "empty")
    body = task(classes=2)
    body["support"][1]["image"] = b64(png_bytes(Image.new("RGBA", (100, 100), (0, 0, 0, 0))))  # cleared canvas
    assert_error(post(client, body), 422, "support[1].image", "empty")
    body["support"][1]["image"] = [[0.0] * 28] * 28
    assert_error(post(client, body), 422, "support[1].image", "empty")


def test_a_class_with_no_example(client):
    body = task(classes=3)
    body["support"] = [s for s in body["support"] if s["label"] != 1]
    assert_error(post(client, body), 422, "class 1 has no example")


def test_too_many_classes_shots_steps_queries(client):
    assert_error(post(client, fast(task(classes=11))), 422, "too many classes", "11")
    huge = fast(task(classes=2))
    huge["support"][1]["label"] = 10**30
    assert_error(post(client, huge), 422, "too many classes")
    huge["support"][1]["label"] = -(10**30)
    assert_error(post(client, huge), 422, "support[1].label")
    assert_error(post(client, {**fast(task(classes=2)), "steps": 10**30}), 422, "steps")
    assert_error(post(client, fast(task(classes=2, shots=6))), 422, "too many examples", "6")
    assert_error(post(client, fast(task(classes=2), steps=201)), 422, "steps", "0..200")
    assert_error(post(client, fast(task(classes=2), steps=-1)), 422, "steps")
    assert_error(post(client, fast(task(classes=2, queries=21))), 422, "too many queries")


def test_other_field_errors(client):
    body = fast(task(classes=2))
    checks = [
        ({**body, "support": []}, "support"),
        ({**body, "query": []}, "query"),
        ({**body, "support": body["support"][:1]}, "too few classes"),
        ({**body, "lr": 0}, "lr"),
        ({**body, "lr": 5.0}, "lr"),
        ({**body, "lr": "0.1"}, "lr"),
        ({**body, "steps": 2.5}, "steps"),
        ({**body, "steps": "3"}, "steps"),
        ({**body, "transductive": "yes"}, "transductive"),
        ({**body, "transductive": True, "query": body["query"][:1]}, "transductive"),
        ({**body, "optimizer": "sgd"}, "optimizer"),
        ({"query": body["query"]}, "support"),
        ({**body, "support": [{"image": s["image"]} for s in body["support"]]}, "support[0].label"),
        ({**body, "support": [{**s, "label": str(s["label"])} for s in body["support"]]}, "support[0].label"),
        ({**body, "support": [{**s, "label": -1} for s in body["support"]]}, "support[0].label"),
        ({**body, "support": [{**s, "label": 1.0} for s in body["support"]]}, "label"),
        ({**body, "support": [{**s, "extra": 1} for s in body["support"]]}, "support[0].extra"),
        ({**body, "support": "abc"}, "support"),
    ]
    for bad, word in checks:
        assert_error(post(client, bad), 422, word)


def test_no_input_makes_a_server_error(client):
    """A quick random sweep of mangled requests: always a 4xx with a detail, never a 5xx."""
    rng = np.random.default_rng(1)
    base = json.dumps(fast(task(classes=2, queries=1), steps=1))
    for _ in range(60):
        text = list(base)
        for _ in range(int(rng.integers(1, 6))):
            i = int(rng.integers(0, len(text)))
            text[i] = chr(int(rng.choice([ord(c) for c in '{}[]":,0123456789.-eE ntfaA=/+'])))
        r = client.post("/api/adapt", content="".join(text).encode(), headers={"content-type": "application/json"})
        assert r.status_code < 500, r.text
        if r.status_code != 200:
            assert r.json()["detail"]


def test_diverging_lr_is_a_4xx(client):
    body = {
        "support": [{"image": array_image(c), "label": c % 2} for c in range(4)],
        "query": [{"image": array_image(9)}],
        "steps": 30,
        "lr": 1.0,
    }
    r = post(client, body)
    assert r.status_code in (200, 422), r.text  # finite results or a clear 'diverged' message


# ---------------------------------------------------------------------------- pool, 503, time limit
def occupy(pool, seconds: float):
    """Block the pool's workers with jobs from another event loop; returns the event that releases them."""
    release = threading.Event()
    started = threading.Barrier(pool.workers + 1)

    def block(job):
        started.wait(5)
        release.wait(seconds)

    async def submit():
        await asyncio.gather(*(pool.run(block, seconds + 5) for _ in range(pool.workers)))

    thread = threading.Thread(target=asyncio.run, args=(submit(),), daemon=True)
    thread.start()
    started.wait(5)
    return release, thread


def test_queue_full_gives_503_with_retry_after(web_dir):
    app = create_app(Settings(web_dir=web_dir, workers=1, queue=0))
    with TestClient(app) as c:
        release, thread = occupy(app.state.demo.pool, 10)
        try:
            r = post(c, fast(task(classes=2)))
            assert_error(r, 503, "busy")
            assert int(r.headers["retry-after"]) >= 1
            assert c.get("/readyz").json()["busy"] == 1
        finally:
            release.set()
            thread.join(5)
        assert post(c, fast(task(classes=2))).status_code == 200
        assert app.state.demo.pool.rejected == 1


def test_time_limit(web_dir):
    app = create_app(Settings(web_dir=web_dir, workers=1, queue=4, timeout_s=0.3))
    with TestClient(app) as c:
        start = time.perf_counter()
        r = post(c, fast(task(classes=10, shots=5, queries=1), steps=200))
        assert_error(r, 503, "time limit")
        assert "retry-after" in r.headers
        assert time.perf_counter() - start < 5
        # waiting in the queue counts too
        release, thread = occupy(app.state.demo.pool, 0.6)
        try:
            r = post(c, fast(task(classes=2), steps=1))
        finally:
            release.set()
            thread.join(5)
        assert_error(r, 503, "queue")


def test_pool_runs_jobs_concurrently_and_survives_errors():
    from server.pool import WorkerPool

    pool = WorkerPool(workers=2, queue_size=2)
    both_running = threading.Barrier(2, timeout=10)  # passes only if the two jobs run at the same time

    async def main():
        def together(job):
            both_running.wait()
            return threading.current_thread().name

        def fail(job):
            raise KeyError("boom")

        names = await asyncio.gather(pool.run(together, 15), pool.run(together, 15))
        with pytest.raises(KeyError):
            await pool.run(fail, 5)
        return names, await pool.run(lambda job: 7, 5)

    # its own thread: the browser tests' session-scoped Playwright keeps an event loop running in this one
    with concurrent.futures.ThreadPoolExecutor(1) as runner:
        names, last = runner.submit(asyncio.run, main()).result(timeout=60)
    pool.close()
    assert len(set(names)) == 2 and last == 7


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
        import hashlib

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


# ---------------------------------------------------------------------------- static files
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
    import hashlib

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
    import re

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


# ---------------------------------------------------------------------------- no torch
def test_server_never_imports_torch_or_training():
    code = (
        "import sys, json\n"
        "from fastapi.testclient import TestClient\n"
        "from server.app import create_app\n"
        "from server.config import Settings\n"
        "import numpy as np\n"
        "c = TestClient(create_app(Settings(workers=1)))\n"
        "img = (np.random.default_rng(0).random((28, 28)) > 0.7).astype(float).tolist()\n"
        "r = c.post('/api/adapt', json={'support': [{'image': img, 'label': i} for i in range(2)], "
        "'query': [{'image': img}], 'steps': 1})\n"
        "assert r.status_code == 200, r.text\n"
        "c.get('/'); c.get('/api/model')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'training', 'torchvision'))\n"
        "print(json.dumps(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    for source in (ROOT / "server").rglob("*.py"):
        text = source.read_text()
        assert "import torch" not in text and "from training" not in text and "import training" not in text, source


def test_the_documented_example_request_works(client):
    from server.adapt_request import EXAMPLE_REQUEST

    schema = client.get("/openapi.json").json()
    assert schema["components"]["schemas"]["AdaptRequest"]["examples"] == [EXAMPLE_REQUEST]
    r = post(client, EXAMPLE_REQUEST)
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [0]  # the query is an X


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
