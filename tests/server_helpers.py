"""What the server tests share: random drawings as PNG bytes, requests of them for /api/adapt, a
stand-in web/ folder, and a real server process on a free loopback port."""

import base64
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def drawing(seed: int, size: int = 105, mode: str = "L") -> bytes:
    """A random 'character': a few thick dark strokes on white, like a canvas export."""
    rng = np.random.default_rng(seed)
    image = Image.new(mode, (size, size), "white")
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        points = [tuple(int(v) for v in rng.integers(size // 8, size - size // 8, 2)) for _ in range(3)]
        draw.line(points, fill="black", width=max(2, size // 25))
    return png_bytes(image)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + b64(data)


def array_image(seed: int) -> list:
    """drawing(seed) as the 28 x 28 model input, a nested list for a JSON body."""
    from preprocessing import decode_png_ink, to_model_input

    return to_model_input(decode_png_ink(drawing(seed))).astype(float).tolist()


def task(classes=5, shots=1, queries=2, seed=0, as_url=False) -> dict:
    """An /api/adapt body of random drawings: `shots` per class, then `queries` queries."""
    encode = data_url if as_url else b64
    support = [{"image": encode(drawing(seed + 100 * c + s)), "label": c} for c in range(classes) for s in range(shots)]
    query = [{"image": encode(drawing(seed + 100 * (q % classes) + 50))} for q in range(queries)]
    return {"support": support, "query": query}


def fast(body: dict, steps: int = 2) -> dict:
    return {**body, "steps": steps}


def post(client, body, **kwargs):
    return client.post("/api/adapt", json=body, **kwargs)


def assert_error(r, status, *words):
    """An error answer with this status whose detail names every one of `words` (any case)."""
    assert r.status_code == status, (r.status_code, r.text)
    detail = r.json()["detail"]
    for word in words:
        assert word.lower() in detail.lower(), (word, detail)
    return detail


def make_web_dir(root: Path, contract_templates: bool = False) -> Path:
    """A stand-in for web/: a script, a stylesheet, an image, a service worker, a fake onnxruntime-web,
    and web/templates (with contract_templates, stand-in pages that print the template context)."""
    web = root / "web"
    (web / "js").mkdir(parents=True)
    (web / "css").mkdir()
    (web / "js" / "app.js").write_text("export const answer = 42;\n" + "// padding\n" * 300)
    (web / "js" / "worker.mjs").write_text("self.onmessage = () => {};\n")
    (web / "css" / "app.css").write_text("body { margin: 0 }\n" * 200)
    (web / "icon.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (web / "icon.png").write_bytes(drawing(1, size=16))
    (web / "sw.js").write_text("self.addEventListener('fetch', () => {});\n")
    (web / "secret.py").write_text("not servable\n")
    (web / ".hidden.js").write_text("hidden\n")
    dist = web / "node_modules" / "onnxruntime-web" / "dist"
    dist.mkdir(parents=True)
    (dist / "ort.wasm.min.mjs").write_text("export default {};\n" * 100)
    (dist / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm\x01\0\0\0" + bytes(5000))
    (dist / "ort.webgl.min.js").write_text("// not the wasm build\n")
    (web / "node_modules" / "onnxruntime-web" / "package.json").write_text("{}")
    swagger = web / "node_modules" / "swagger-ui-dist"
    swagger.mkdir()
    (swagger / "swagger-ui-bundle.js").write_text("window.SwaggerUIBundle = () => {};\n")
    (swagger / "swagger-ui.css").write_text(".swagger-ui {}\n")
    tpl = web / "templates"
    shutil.copytree(ROOT / "web" / "templates", tpl)
    (tpl / "partial.html").write_text("private template source {{ secret }}\n")
    if contract_templates:
        (tpl / "index.html").write_text(
            "WEB-INDEX model={{ model.name }} warning={{ model.warning }} classes={{ settings.classes }} "
            "shots={{ settings.shots }} mode={{ settings.mode }} theme={{ settings.theme }} embed={{ embed }} "
            "base={{ base_url }} app={{ asset('web/js/app.js') }} "
            "ort={{ asset('vendor/onnxruntime-web/ort.wasm.min.mjs') }} "
            "oembed={{ oembed_url }}"
        )
        (tpl / "embed.html").write_text("WEB-EMBED embed={{ embed }} theme={{ settings.theme }}")
    return web


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server_process(
    web: Path, env: dict | None = None, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text: bool = True
) -> tuple:
    """`python -m server serve` (one worker, one thread) with `web` as its web/ on a free loopback port
    -> (process, port, seconds until /readyz answered 200); the test fails with the server's output
    when it is not ready within 60 s."""
    port = free_port()
    environment = {**os.environ, "REPTILE_DEMO_WEB_DIR": str(web), "OMP_NUM_THREADS": "1", **(env or {})}
    command = [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=stdout, stderr=stderr, text=text)
    while time.perf_counter() - start < 60 and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                if response.status == 200:
                    return process, port, time.perf_counter() - start
        except OSError:  # not listening yet
            time.sleep(0.02)
    process.kill()
    pytest.fail(f"the server did not become ready: {process.communicate()!r}")


def stop_server_process(process: subprocess.Popen, wait_s: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if the server has not exited after wait_s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(wait_s)
        except subprocess.TimeoutExpired:
            process.kill()


# A provisional open-set section (bundle/open_set.py): the study's pooled weights, one threshold everywhere.
# Tests that need the fitted one use the served bundle's model.json.
PROVISIONAL_OPEN_SET = {
    "inputs": ["msp", *(f"block{b}_cosine" for b in range(1, 5)), *(f"block{b}_pooled_cosine" for b in range(1, 5))],
    "mean": [0.0581, 0.3212, 0.2472, 0.2534, 0.1053, 0.0073, 0.0240, 0.0615, 0.0890],
    "scale": [0.1398, 0.1016, 0.1026, 0.1199, 0.1168, 0.0106, 0.0305, 0.0408, 0.0992],
    "weights": [0.0937, -1.9000, 0.4397, 1.9653, 1.0304, 0.4250, 1.1037, 0.6034, 0.5397],
    "bias": -1.7253,
    "thresholds": {f"{c}x{k}": 0.6 for c in range(2, 11) for k in range(1, 6)},
}


def bundle_with_open_set(source: Path, target: Path, section: dict | None = PROVISIONAL_OPEN_SET) -> Path:
    """A copy of the bundle at `source` in `target` whose model.json has `section` as its open-set score
    (None: without one), sha256s and card rewritten."""
    from tools.fit_open_set import write_open_set

    shutil.copytree(source, target)
    write_open_set(target, section)
    return target


def bank_section(count: int = 4) -> dict:
    """A usable open-set section (4 blocks) that reads a bank of `count` reference drawings: the
    provisional thresholds, weights that keep the scores of random drawings mid-range."""
    from bundle.open_set import REFERENCES_FILE, input_names

    names = input_names(4, references=True)
    section = dict(PROVISIONAL_OPEN_SET, inputs=names, weights=[0.3] * len(names), bias=0.0)
    section.update(mean=[0.0] * len(names), scale=[1.0] * len(names))
    return dict(section, references={"file": REFERENCES_FILE, "shape": [count, 1, 28, 28]})


def bundle_with_bank(source: Path, target: Path, count: int = 4) -> tuple:
    """A copy of the bundle at `source` in `target` with bank_section and a random bank of `count`
    drawings -> (path, the bank, uint8 [count, 1, 28, 28])."""
    from tools.fit_open_set import write_open_set

    bank = np.random.default_rng(6).integers(0, 256, size=(count, 1, 28, 28), dtype=np.uint8)
    copy = bundle_with_open_set(source, target, None)
    section = bank_section(count)
    section.pop("references")  # write_open_set records the file it writes
    write_open_set(copy, section, bank)
    return copy, bank
