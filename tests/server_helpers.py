"""What the server tests share: random drawings as PNG bytes, and a stand-in web/ folder."""

import io
import shutil
from pathlib import Path

import numpy as np
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
