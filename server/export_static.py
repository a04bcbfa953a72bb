"""A server-less copy of the demo: `reptile-demo export-static DIR` (also `python -m server export-static DIR`).

DIR then holds index.html and embed.html (browser mode only: no server to adapt on), the page's
scripts and styles, onnxruntime-web's wasm build, the model bundle (and the model.json and weights of
its comparison starts, server/comparisons.py), the example drawings and the service worker, all with
relative URLs, so it works from any static web host (a blog's own server,
GitHub Pages) or a sub-folder of one. A static host sends no COOP/COEP headers, so the runtime
runs on one thread there; `_headers` asks hosts that read it (Netlify, Cloudflare Pages) for them.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

from bundle.files import HASH_CHARS, sha256_file
from bundle.format import MANIFEST_FILE, check_format
from bundle.summary import model_summary

from .comparisons import comparison_entry, comparison_manifests
from .config import DEFAULT_MODEL, ROOT, Settings

WEB = ROOT / "web"
ORT_DIST = WEB / "node_modules" / "onnxruntime-web" / "dist"
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
# docs/: the initialiser of the server's /docs page, which a static copy has no use for
WEB_SKIP = {"templates", "node_modules", "package.json", "package-lock.json", "sw.js", "docs"}
WEB_SUFFIXES = {".js", ".mjs", ".css", ".json", ".svg", ".png", ".ico", ".woff2", ".txt"}
MARKER = ".reptile-demo-static"
HEADERS = """/*
  Cross-Origin-Opener-Policy: same-origin
  Cross-Origin-Embedder-Policy: require-corp
  Cross-Origin-Resource-Policy: same-origin
  X-Content-Type-Options: nosniff
/embed.html
  ! Cross-Origin-Opener-Policy
  ! Cross-Origin-Embedder-Policy
  Cross-Origin-Resource-Policy: cross-origin
"""


class ExportError(Exception):
    """The export cannot be written; the message says why."""


def read_manifest(bundle: Path) -> dict:
    """The bundle's model.json, or ExportError if this code does not read its format."""
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    problem = check_format(manifest, str(bundle))
    if problem:
        raise ExportError(problem)
    return manifest


def static_summary(manifest: dict, bundle: Path) -> dict:
    """The page's view of the bundle, in the shape of the server's GET /api/model with relative URLs:
    the bundle's own classes and shots ranges, and the server's default step and lr limits (the
    browser enforces them; the bundle's default steps always fit)."""
    return model_summary(
        manifest,
        base_url=f"models/{bundle.name}/",
        manifest_version=sha256_file(bundle / MANIFEST_FILE)[:HASH_CHARS],
        classes=manifest["classes"],
        shots=manifest["shots"],
        limits={"max_steps": max(Settings.max_steps, manifest["adaptation"]["steps"]), "max_lr": Settings.max_lr},
    )


def export_static(
    out: Path, bundle: Path, classes: int = 3, shots: int = 1, theme: str = "light", force: bool = False
) -> list:
    """Write the static site into `out`; -> the files written (relative paths)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    bundle = Path(bundle).resolve()
    out = Path(out).resolve()
    missing = [f for f in ORT_FILES if not (ORT_DIST / f).is_file()]
    if missing:
        raise ExportError(
            f"onnxruntime-web is not installed ({', '.join(missing)} missing): run `npm ci` in web/ "
            "(make setup does it)"
        )
    if not (bundle / MANIFEST_FILE).is_file():
        raise ExportError(f"{bundle} is not a model bundle (no model.json)")
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists() and not force:
            raise ExportError(
                f"{out} exists and is not empty (and not an earlier export): choose another folder or pass --force"
            )
        for child in out.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(bundle)
    summary = static_summary(manifest, bundle)
    low, high = summary["classes"]["min"], summary["classes"]["max"]
    if not low <= classes <= high:
        raise ExportError(f"classes must be {low}..{high}")
    if not summary["shots"]["min"] <= shots <= summary["shots"]["max"]:
        raise ExportError(f"shots must be {summary['shots']['min']}..{summary['shots']['max']}")
    written = []

    def copy(source: Path, relative: str):
        """Copy `source` to out/relative and record it."""
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(relative)

    for source in sorted(WEB.rglob("*")):
        relative = source.relative_to(WEB)
        if (
            source.is_file()
            and relative.parts[0] not in WEB_SKIP
            and source.suffix in WEB_SUFFIXES
            and not any(p.startswith(".") for p in relative.parts)
        ):
            copy(source, f"web/{relative.as_posix()}")
    for name in ORT_FILES:
        copy(ORT_DIST / name, f"vendor/onnxruntime-web/{name}")
    for name in [MANIFEST_FILE, *manifest["files"]]:
        copy(bundle / name, f"models/{bundle.name}/{name}")
    comparisons = comparison_manifests(bundle.parent, bundle.name, manifest)
    for folder, start_manifest in comparisons.values():  # the page fetches only these two files of each
        for name in (MANIFEST_FILE, start_manifest["weights"]["file"]):
            copy(folder / name, f"models/{folder.name}/{name}")
    copy(WEB / "sw.js", "sw.js")

    def asset(path: str) -> str:
        """The page's asset URL: relative, with ?v=<sha256[:12]> of the exported file."""
        path = path.lstrip("/")
        if path.startswith("static/models/"):
            path = path[len("static/") :]
        target = out / path
        if not target.is_file():
            raise ExportError(f"the page asks for {path}, which the export does not contain")
        return f"{path}?v={sha256_file(target)[:HASH_CHARS]}"

    summary["comparisons"] = {
        start: comparison_entry(m, lambda file, f=folder: asset(f"models/{f.name}/{file}"))
        for start, (folder, m) in comparisons.items()
    }
    env = Environment(loader=FileSystemLoader(str(WEB / "templates")), autoescape=select_autoescape(["html"]))
    for page, embed in (("index.html", False), ("embed.html", True)):
        settings = {"classes": classes, "shots": shots, "mode": "browser", "theme": theme}
        html = env.get_template(page).render(
            model=summary,
            settings=settings,
            embed=embed,
            base_url=".",
            asset=asset,
            static_export=True,
            root_path=".",
            api_url="",
            sw_url="sw.js",
        )
        (out / page).write_text(html)
        written.append(page)
    (out / "_headers").write_text(HEADERS)
    (out / ".nojekyll").write_text("")
    (out / MARKER).write_text(json.dumps({"model": summary["name"], "files": len(written)}) + "\n")
    written += ["_headers", ".nojekyll", MARKER]
    return written


def main(argv=None) -> int:
    """`reptile-demo export-static DIR [...]` -> exit status (2 when the export cannot be written)."""
    parser = argparse.ArgumentParser(
        prog="reptile-demo export-static", description="Write a server-less, browser-only copy of the demo into DIR."
    )
    parser.add_argument("dir", type=Path, help="output folder (created; an earlier export there is replaced)")
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL,
        help=f"bundle directory (default {DEFAULT_MODEL.relative_to(ROOT)})",
    )
    parser.add_argument("--classes", type=int, default=3, help="classes on the page at first (default 3)")
    parser.add_argument("--shots", type=int, default=1, help="examples per class at first (default 1)")
    parser.add_argument("--theme", choices=["light", "dark"], default="light")
    parser.add_argument("--force", action="store_true", help="empty DIR even if it holds something else")
    args = parser.parse_args(argv)
    try:
        written = export_static(args.dir, args.model, args.classes, args.shots, args.theme, args.force)
    except ExportError as error:
        print(f"export-static: {error}", file=sys.stderr)
        return 2
    size = sum((args.dir / f).stat().st_size for f in written)
    print(
        f"{args.dir}: {len(written)} files, {size / 1e6:.1f} MB; open index.html through any static web server "
        "(not file://: browsers do not run module workers from files)"
    )
    return 0
