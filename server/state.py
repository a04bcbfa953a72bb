"""What the routes share, one State per app: the settings, the bundle (or why it did not load), the
worker pool, the file cache, the limits the server enforces, the page templates, and the versioned
URLs of the servable files. Routes receive it through the `StateDep` dependency.
"""

import logging
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bundle import BundleError, load_bundle
from bundle.format import MANIFEST_FILE
from bundle.summary import model_summary

from . import static
from .adapt import check_spec
from .comparisons import comparison_entry, comparison_manifests
from .config import Settings, SettingsError
from .pool import WorkerPool

log = logging.getLogger("reptile_demo")

ORT_DIST = Path("node_modules") / "onnxruntime-web" / "dist"
# The wasm-only build of onnxruntime-web (no WebGL/WebGPU/JSEP) and its source maps.
ORT_FILES = (
    "ort.wasm.min.mjs",
    "ort.wasm.min.js",
    "ort.wasm.bundle.min.mjs",
    "ort-wasm-simd-threaded.wasm",
    "ort-wasm-simd-threaded.mjs",
)
ORT_ALLOWED = frozenset(ORT_FILES + tuple(f + ".map" for f in ORT_FILES if not f.endswith(".wasm")))
SWAGGER_DIST = Path("node_modules") / "swagger-ui-dist"
# What /docs loads of Swagger UI (the bundle sets the global SwaggerUIBundle), and their source maps.
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")
SWAGGER_ALLOWED = frozenset(SWAGGER_FILES + tuple(f + ".map" for f in SWAGGER_FILES))
MODEL_SUFFIXES = {".json", ".onnx", ".safetensors", ".md", ".txt", ".u8"}  # .u8: the open-set bank (raw uint8)
WEB_HIDDEN = {"templates", "node_modules"}


class State:
    """What the routes share: settings, the bundle (or why it failed), the pool, the file cache."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.files = static.FileCache()
        self.templates = Environment(
            loader=FileSystemLoader(str(settings.web_dir / "templates")),
            autoescape=select_autoescape(["html", "htm", "xml"]),
            auto_reload=True,
        )
        self.bundle = None
        self.bundle_error = None
        self.pool = None
        self.limits = None
        self.model_dir_name = settings.model.name
        self.comparisons = {}  # "Compare with" start -> (folder, manifest): server/comparisons.py
        try:
            self.bundle = load_bundle(settings.model, threads=1)
            check_spec(self.bundle)
            self.limits = self._limits()
            self.bundle.open_graphs()  # every session created and checked now, not in the first request
            self.comparisons = comparison_manifests(settings.models_dir, self.model_dir_name, self.bundle.manifest)
        except (BundleError, ValueError, KeyError, OSError) as error:
            self.bundle = None
            self.bundle_error = f"{type(error).__name__}: {error}" if not isinstance(error, BundleError) else str(error)
            return
        self.pool = WorkerPool(settings.workers, settings.queue)

    def _limits(self) -> dict:
        """The settings' ranges narrowed to the bundle's; SettingsError when they do not fit it."""
        s, b = self.settings, self.bundle
        (bc_lo, bc_hi), (bs_lo, bs_hi) = b.classes_range, b.shots_range
        limits = {
            "min_classes": max(s.min_classes, bc_lo),
            "max_classes": min(s.max_classes, bc_hi),
            "min_shots": max(s.min_shots, bs_lo),
            "max_shots": min(s.max_shots, bs_hi),
            "max_steps": s.max_steps,
            "max_lr": s.max_lr,
            "max_queries": s.max_queries,
        }
        if limits["min_classes"] > limits["max_classes"] or limits["min_shots"] > limits["max_shots"]:
            raise SettingsError(
                f"the configured classes/shots ranges do not overlap the bundle's "
                f"(classes {bc_lo}..{bc_hi}, shots {bs_lo}..{bs_hi})"
            )
        defaults = b.defaults
        if defaults["steps"] > s.max_steps:
            raise SettingsError(f"the bundle's default steps ({defaults['steps']}) exceed max_steps ({s.max_steps})")
        if not 0 < defaults["lr"] <= s.max_lr:
            raise SettingsError(f"the bundle's default lr ({defaults['lr']}) is above max_lr ({s.max_lr})")
        return limits

    # ------------------------------------------------------------------ files
    def web_path(self, relative: str) -> Path | None:
        """A servable file under web/ (never templates/ or node_modules/)."""
        if relative.split("/", 1)[0] in WEB_HIDDEN:
            return None
        path = static.safe_join(self.settings.web_dir, relative)
        return path if path is not None and path.suffix.lower() in static.MIME_TYPES else None

    def ort_path(self, name: str) -> Path | None:
        """A file of onnxruntime-web's wasm build, or None for any other name."""
        return self.settings.web_dir / ORT_DIST / name if name in ORT_ALLOWED else None

    def swagger_path(self, name: str) -> Path | None:
        """A file of Swagger UI's distribution that /docs loads, or None for any other name."""
        return self.settings.web_dir / SWAGGER_DIST / name if name in SWAGGER_ALLOWED else None

    def model_path(self, name: str, file: str) -> Path | None:
        """A bundle file: the served bundle under its folder name, or a bundle in models_dir."""
        if "/" in name or "/" in file or Path(file).suffix.lower() not in MODEL_SUFFIXES:
            return None
        folder = (
            self.settings.model if name == self.model_dir_name else static.safe_join(self.settings.models_dir, name)
        )
        return static.safe_join(folder, file) if folder is not None else None

    def asset_url(self, relative: str, root_path: str = "") -> str:
        """'web/js/app.js' -> '/web/js/app.js?v=<sha256[:12]>' (also 'vendor/onnxruntime-web/<file>',
        'vendor/swagger-ui/<file>', 'models/<name>/<file>' or 'static/models/<name>/<file>').
        Unversioned if the file is missing."""
        relative = relative.lstrip("/")
        path, url = None, "/" + relative
        if relative.startswith("web/"):
            path = self.web_path(relative[4:])
        elif relative.startswith("vendor/onnxruntime-web/"):
            path = self.ort_path(relative.rsplit("/", 1)[1])
        elif relative.startswith("vendor/swagger-ui/"):
            path = self.swagger_path(relative.rsplit("/", 1)[1])
        elif relative.startswith(("models/", "static/models/")):
            parts = relative.split("/")[-2:]
            url = "/models/" + "/".join(parts)
            path = self.model_path(*parts) if len(parts) == 2 else None
        version = self.files.version(path) if path is not None else None
        if version is None:
            log.warning("asset(%r): no such servable file; its URL is not versioned", relative)
            return root_path + url
        return f"{root_path}{url}?v={version}"

    # ------------------------------------------------------------------ manifest
    def summary(self, root_path: str = "") -> dict:
        """The public summary of the bundle for /api/model and the pages (its warning included), with
        the comparison starts the page may adapt beside it."""
        s, limits = self.settings, self.limits
        summary = model_summary(
            self.bundle.manifest,
            base_url=f"{root_path}/models/{self.model_dir_name}/",
            manifest_version=self.files.version(s.model / MANIFEST_FILE),
            classes={"min": limits["min_classes"], "max": limits["max_classes"]},
            shots={"min": limits["min_shots"], "max": limits["max_shots"]},
            limits={
                "max_steps": limits["max_steps"],
                "max_lr": limits["max_lr"],
                "max_queries": limits["max_queries"],
                "max_body_bytes": s.max_body_bytes,
                "max_image_bytes": s.max_image_bytes,
                "max_image_pixels": s.max_image_pixels,
                "max_image_side": s.max_image_side,
                "max_request_pixels": s.max_request_pixels,
                "timeout_s": s.timeout_s,
            },
        )
        summary["comparisons"] = {
            start: comparison_entry(
                manifest, lambda file, f=folder: self.asset_url(f"models/{f.name}/{file}", root_path)
            )
            for start, (folder, manifest) in self.comparisons.items()
        }
        return summary


def get_state(request: Request) -> State:
    """The app's State (stored by create_app as app.state.demo)."""
    return request.app.state.demo


StateDep = Annotated[State, Depends(get_state)]
