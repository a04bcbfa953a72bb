"""The FastAPI server through FastAPI's test client: health, the model and its docs, adaptation
(parity with the bundle), every bad-input class, and a server that never imports torch."""

import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from server_helpers import array_image, assert_error, b64, drawing, fast, png_bytes, post, task

from server.config import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = DEFAULT_MODEL  # the bundle the server serves by default
PREVIEW_WARNING = json.loads((BUNDLE / "model.json").read_text()).get("warning")


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
