"""The FastAPI application: create_app(settings) -> app. See docs/server.md for the routes."""

import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from bundle import BundleError, load_bundle

from . import static
from .adapt import (
    AdaptRequest,
    AdaptResponse,
    ErrorResponse,
    InputError,
    check_spec,
    parse_json,
    run_plan,
    validate_request,
)
from .config import Settings, SettingsError, settings_from_env
from .pool import DeadlineExceeded, Overloaded, WorkerPool

log = logging.getLogger("reptile_demo")
access_log = logging.getLogger("reptile_demo.access")

SERVER_TEMPLATES = Path(__file__).resolve().parent / "templates"
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
MODEL_SUFFIXES = {".json", ".onnx", ".safetensors", ".md", ".txt"}
WEB_HIDDEN = {"templates", "node_modules"}
MODES, THEMES = ("browser", "server"), ("light", "dark")
PAGE_DEFAULTS = {"classes": 3, "shots": 1, "mode": "browser", "theme": "light"}
OEMBED_SIZE = (480, 640)  # default iframe width, height

ERROR_RESPONSES = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "Malformed JSON or an unreadable request",
        413: "The body is over the size limit (2 MB by default)",
        415: "The body is not application/json",
        422: "Invalid input; the message names the field or image",
        503: "The server is busy (queue full) or the request ran past its time limit; see Retry-After",
    }.items()
}


# ---------------------------------------------------------------------------- headers
def content_security_policy(frame_ancestors: str, docs: bool = False) -> str:
    if docs:  # FastAPI's Swagger UI: its script and style come from a CDN and it starts with an inline script
        script = "'self' 'unsafe-inline' https://cdn.jsdelivr.net"
        style = "'self' 'unsafe-inline' https://cdn.jsdelivr.net"
        img = "'self' data: https://fastapi.tiangolo.com"
    else:
        script, style, img = "'self' 'wasm-unsafe-eval'", "'self'", "'self' data: blob:"
    return (
        f"default-src 'self'; script-src {script}; worker-src 'self' blob:; connect-src 'self'; "
        f"style-src {style}; img-src {img}; font-src 'self'; manifest-src 'self'; object-src 'none'; "
        f"base-uri 'self'; form-action 'self'; frame-ancestors {frame_ancestors}"
    )


class HeadersAndAccessLog:
    """Pure ASGI middleware: the security headers of every response, and one log line per request
    (method, path, status, milliseconds; never the query string or the body)."""

    def __init__(self, app, settings: Settings):
        self.app = app
        self.root = settings.root_path
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
        ]
        isolated = [(b"cross-origin-opener-policy", b"same-origin"), (b"cross-origin-embedder-policy", b"require-corp")]
        # "/" and everything it loads: cross-origin isolated so onnxruntime-web can use threads.
        self.default = (
            common
            + isolated
            + [
                (b"content-security-policy", content_security_policy("'self'").encode()),
                (b"x-frame-options", b"SAMEORIGIN"),
                (b"cross-origin-resource-policy", b"same-origin"),
            ]
        )
        # "/embed": framed by other sites, so no COOP/COEP and no X-Frame-Options; CORP cross-origin lets
        # a cross-origin-isolated parent page frame it too.
        self.embed = common + [
            (b"content-security-policy", content_security_policy(settings.frame_ancestors).encode()),
            (b"cross-origin-resource-policy", b"cross-origin"),
        ]
        self.docs = common + [
            (b"content-security-policy", content_security_policy("'self'", docs=True).encode()),
            (b"x-frame-options", b"SAMEORIGIN"),
            (b"cross-origin-resource-policy", b"same-origin"),
        ]
        # oEmbed is read by other sites' servers and pages.
        self.oembed = common + [
            (b"content-security-policy", content_security_policy("'none'").encode()),
            (b"cross-origin-resource-policy", b"cross-origin"),
            (b"access-control-allow-origin", b"*"),
        ]

    def headers_for(self, path: str):
        if self.root and path.startswith(self.root):
            path = path[len(self.root) :] or "/"
        if path in ("/embed", "/embed/"):
            return self.embed
        if path in ("/docs", "/docs/oauth2-redirect", "/redoc"):
            return self.docs
        if path == "/oembed":
            return self.oembed
        return self.default

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        extra = self.headers_for(scope.get("path", "/"))
        status = [500]

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((k, v) for k, v in extra if k not in present)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            access_log.info(
                "%s %s %d %.1fms",
                scope.get("method", "-"),
                scope.get("path", "-"),
                status[0],
                (time.perf_counter() - start) * 1000,
            )


# ---------------------------------------------------------------------------- the app
class State:
    """What the routes share: settings, the bundle (or why it failed), the pool, the file cache."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.files = static.FileCache()
        self.bundle = None
        self.bundle_error = None
        self.pool = None
        self.limits = None
        self.model_dir_name = settings.model.name
        try:
            self.bundle = load_bundle(settings.model, threads=1)
            check_spec(self.bundle)
            self.limits = self._limits()
            for graph in self.bundle.manifest["graphs"]:
                self.bundle.session(graph)  # create the sessions now, not in the first request
        except (BundleError, ValueError, KeyError, OSError) as error:
            self.bundle = None
            self.bundle_error = f"{type(error).__name__}: {error}" if not isinstance(error, BundleError) else str(error)
            log.error("the model bundle %s is not usable: %s", settings.model, self.bundle_error)
            return
        self.pool = WorkerPool(settings.workers, settings.queue)

    def _limits(self) -> dict:
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
        return self.settings.web_dir / ORT_DIST / name if name in ORT_ALLOWED else None

    def model_path(self, name: str, file: str) -> Path | None:
        if "/" in name or "/" in file or Path(file).suffix.lower() not in MODEL_SUFFIXES:
            return None
        folder = (
            self.settings.model if name == self.model_dir_name else static.safe_join(self.settings.models_dir, name)
        )
        return static.safe_join(folder, file) if folder is not None else None

    def asset_url(self, relative: str, root_path: str = "") -> str:
        """'web/js/app.js' -> '/web/js/app.js?v=<sha256[:12]>' (also 'vendor/onnxruntime-web/<file>',
        'models/<name>/<file>' or 'static/models/<name>/<file>'). Unversioned if the file is missing."""
        relative = relative.lstrip("/")
        path, url = None, "/" + relative
        if relative.startswith("web/"):
            path = self.web_path(relative[4:])
        elif relative.startswith("vendor/onnxruntime-web/"):
            path = self.ort_path(relative.rsplit("/", 1)[1])
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
        """The public summary of the bundle for /api/model and the pages (its warning included)."""
        b, s, limits = self.bundle, self.settings, self.limits
        m = b.manifest
        base = f"{root_path}/models/{self.model_dir_name}/"
        files = {}
        for name, entry in sorted(m.get("files", {}).items()):
            files[name] = {
                "url": f"{base}{name}?v={entry['sha256'][: static.HASH_CHARS]}",
                "sha256": entry["sha256"],
                "bytes": entry.get("bytes"),
            }
        manifest_version = self.files.version(s.model / "model.json")
        adaptation = b.defaults
        provenance = m.get("provenance") or {}
        return {
            "name": b.name,
            "warning": b.warning,
            "training_complete": m.get("training_complete"),
            "format_version": m.get("format_version"),
            "classes": {"min": limits["min_classes"], "max": limits["max_classes"]},
            "shots": {"min": limits["min_shots"], "max": limits["max_shots"]},
            "trained_ways": b.trained_ways,
            "adaptation": {
                k: adaptation.get(k) for k in ("optimizer", "steps", "lr", "eps", "transductive", "chosen_by")
            },
            "accuracy": m.get("accuracy"),
            "input": {"shape": list(b.image_shape), "preprocessing_spec": m["input"].get("preprocessing_spec")},
            "limits": {
                "max_steps": limits["max_steps"],
                "max_lr": limits["max_lr"],
                "max_queries": limits["max_queries"],
                "max_body_bytes": s.max_body_bytes,
                "max_image_bytes": s.max_image_bytes,
                "max_image_pixels": s.max_image_pixels,
                "timeout_s": s.timeout_s,
            },
            "manifest_url": f"{base}model.json" + (f"?v={manifest_version}" if manifest_version else ""),
            "base_url": base,
            "files": files,
            "provenance": {k: provenance.get(k) for k in ("iteration", "meta_iters", "exported_at")},
        }


def _error(status: int, detail: str, errors=None, headers=None) -> JSONResponse:
    body = {"detail": detail}
    if errors and len(errors) > 1:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or settings_from_env()
    state = State(settings)

    @asynccontextmanager
    async def lifespan(app):
        yield
        if state.pool is not None:
            state.pool.close()

    app = FastAPI(
        title="Reptile few-shot demo",
        version="1.0",
        description="Draw a few examples of new characters; a CNN meta-trained with Reptile adapts to them. "
        "The adaptation API runs the same ONNX graphs as the browser.",
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.demo = state
    app.add_middleware(HeadersAndAccessLog, settings=settings)

    env = Environment(
        loader=ChoiceLoader(
            [FileSystemLoader(str(settings.web_dir / "templates")), FileSystemLoader(str(SERVER_TEMPLATES))]
        ),
        autoescape=select_autoescape(["html", "htm", "xml"]),
        auto_reload=True,
    )

    # ------------------------------------------------------------------ errors
    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, error: RequestValidationError):
        messages = []
        for item in error.errors():
            loc = [p for p in item.get("loc", ()) if p not in ("query", "body", "path")]
            where = ".".join(str(p) for p in loc) or "request"
            messages.append(f"{where}: {item.get('msg', 'invalid')}")
        return _error(422, messages[0] if len(messages) == 1 else "; ".join(messages), messages)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, error: StarletteHTTPException):
        return _error(error.status_code, str(error.detail), headers=getattr(error, "headers", None))

    @app.exception_handler(InputError)
    async def on_input_error(request: Request, error: InputError):
        return _error(error.status, str(error), error.errors)

    @app.exception_handler(Overloaded)
    async def on_overloaded(request: Request, error: Overloaded):
        return _error(503, str(error), headers={"Retry-After": str(error.retry_after)})

    @app.exception_handler(DeadlineExceeded)
    async def on_deadline(request: Request, error: DeadlineExceeded):
        return _error(
            503,
            f"{error}; retry later, or with fewer steps or drawings",
            headers={"Retry-After": str(error.retry_after)},
        )

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, error: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "internal server error")

    def not_ready() -> JSONResponse:
        return _error(503, f"the model bundle is not loaded: {state.bundle_error}", headers={"Retry-After": "60"})

    # ------------------------------------------------------------------ pages
    def page_settings(classes, shots, mode, theme) -> dict:
        limits = state.limits
        values = {
            "classes": PAGE_DEFAULTS["classes"] if classes is None else classes,
            "shots": PAGE_DEFAULTS["shots"] if shots is None else shots,
            "mode": mode or PAGE_DEFAULTS["mode"],
            "theme": theme or PAGE_DEFAULTS["theme"],
        }
        if classes is None:
            values["classes"] = min(max(values["classes"], limits["min_classes"]), limits["max_classes"])
        if shots is None:
            values["shots"] = min(max(values["shots"], limits["min_shots"]), limits["max_shots"])
        if not limits["min_classes"] <= values["classes"] <= limits["max_classes"]:
            raise InputError(
                f"classes: must be {limits['min_classes']}..{limits['max_classes']}, got {values['classes']}"
            )
        if not limits["min_shots"] <= values["shots"] <= limits["max_shots"]:
            raise InputError(f"shots: must be {limits['min_shots']}..{limits['max_shots']}, got {values['shots']}")
        if values["mode"] not in MODES:
            raise InputError(f"mode: must be one of {', '.join(MODES)}, got {values['mode']!r}")
        if values["theme"] not in THEMES:
            raise InputError(f"theme: must be one of {', '.join(THEMES)}, got {values['theme']!r}")
        return values

    def base_url(request: Request) -> str:
        return (settings.public_url or str(request.base_url)).rstrip("/")

    def render(request: Request, template: str, embed: bool, values: dict) -> HTMLResponse:
        root = request.scope.get("root_path", "") or ""
        base = base_url(request)
        page = f"{base}/embed" if embed else f"{base}/"
        query = urlencode(values)
        oembed = f"{base}/oembed?" + urlencode({"url": f"{page}?{query}", "format": "json"})
        context = {
            "model": state.summary(root),
            "settings": values,
            "embed": embed,
            "base_url": base,
            "root_path": root,
            "asset": lambda path: state.asset_url(path, root),
            "oembed_url": oembed,
            "sw_url": f"{root}/sw.js",
            "api_url": f"{root}/api",
            "embed_url": f"{base}/embed?{query}",
            "page_url": f"{base}/?{query}",
        }
        html = env.get_template(template).render(**context)
        headers = {
            "Cache-Control": "no-cache",
            "Link": f'<{oembed}>; rel="alternate"; type="application/json+oembed"; title="Reptile few-shot demo"',
        }
        return HTMLResponse(html, headers=headers)

    # The ranges are the served bundle's (narrowed by the settings), so the OpenAPI schema states them.
    lim = state.limits or {"min_classes": 2, "max_classes": 10, "min_shots": 1, "max_shots": 5}
    Classes = Annotated[
        int | None,
        Query(ge=lim["min_classes"], le=lim["max_classes"], description="Number of classes to draw (default 3)"),
    ]
    Shots = Annotated[
        int | None, Query(ge=lim["min_shots"], le=lim["max_shots"], description="Drawings per class (default 1)")
    ]
    Mode = Annotated[Literal["browser", "server"] | None, Query(description="Where adaptation runs (default browser)")]
    Theme = Annotated[Literal["light", "dark"] | None, Query(description="Colour theme (default light)")]
    page_responses = {
        200: {"content": {"text/html": {}}, "description": "The page"},
        422: _json_response(ERROR_RESPONSES[422]["description"]),
        503: _json_response("The model bundle is not loaded"),
    }

    @app.get("/", response_class=HTMLResponse, tags=["pages"], summary="The demo page", responses=page_responses)
    async def index(
        request: Request, classes: Classes = None, shots: Shots = None, mode: Mode = None, theme: Theme = None
    ):
        if state.bundle is None:
            return not_ready()
        return render(request, "index.html", False, page_settings(classes, shots, mode, theme))

    @app.get(
        "/embed",
        response_class=HTMLResponse,
        tags=["pages"],
        summary="The embeddable demo (for iframes)",
        responses=page_responses,
    )
    async def embed(
        request: Request, classes: Classes = None, shots: Shots = None, mode: Mode = None, theme: Theme = None
    ):
        if state.bundle is None:
            return not_ready()
        return render(request, "embed.html", True, page_settings(classes, shots, mode, theme))

    @app.get(
        "/oembed",
        tags=["pages"],
        summary="oEmbed (JSON) for the embeddable demo",
        responses={
            404: ERROR_RESPONSES[422] | {"description": "Not a URL of this demo"},
            422: ERROR_RESPONSES[422],
            501: {"model": ErrorResponse, "description": "format=xml"},
        },
    )
    async def oembed(
        request: Request,
        url: str = Query(..., description="A URL of this demo (/ or /embed)"),
        format: str = Query(
            "json",
            description="Only json is offered (xml: 501, as oEmbed specifies)",
            json_schema_extra={"enum": ["json"]},
        ),
        maxwidth: int | None = Query(None, ge=1),
        maxheight: int | None = Query(None, ge=1),
    ):
        if format == "xml":
            return _error(501, "format=xml is not offered; use format=json")
        if format != "json":
            raise InputError(f"format: must be json, got {format!r}")
        if state.bundle is None:
            return not_ready()
        base = base_url(request)
        parts, own = urlsplit(url), urlsplit(base)
        path = parts.path[len(own.path) :] if own.path and parts.path.startswith(own.path) else parts.path
        if (
            parts.scheme not in ("http", "https")
            or parts.netloc.lower() != own.netloc.lower()
            or path not in ("", "/", "/embed")
        ):
            return _error(404, f"not a URL of this demo: expected {base}/ or {base}/embed")
        query = dict(parse_qsl(parts.query))
        try:
            values = page_settings(
                *(int(query[k]) if k in query else None for k in ("classes", "shots")),
                query.get("mode"),
                query.get("theme"),
            )
        except ValueError as error:
            raise InputError(f"url: {error}") from None
        width, height = OEMBED_SIZE
        width, height = min(width, maxwidth or width), min(height, maxheight or height)
        src = f"{base}/embed?{urlencode(values)}"
        title = "Teach a neural network new characters (Reptile few-shot demo)"
        html = (
            f'<iframe src="{_attr(src)}" width="{width}" height="{height}" title="{_attr(title)}" '
            f'frameborder="0" loading="lazy" allow="cross-origin-isolated"></iframe>'
        )
        return JSONResponse(
            {
                "version": "1.0",
                "type": "rich",
                "provider_name": "Reptile few-shot demo",
                "provider_url": f"{base}/",
                "title": title,
                "html": html,
                "width": width,
                "height": height,
                "cache_age": 3600,
            },
            headers={"Cache-Control": "public, max-age=3600"},
        )

    # ------------------------------------------------------------------ API
    @app.get("/healthz", tags=["health"], summary="The process is up")
    async def healthz():
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    @app.get(
        "/readyz",
        tags=["health"],
        summary="The bundle is loaded, its sha256s verified, the pool running",
        responses={503: {"model": ErrorResponse, "description": "Not ready"}},
    )
    async def readyz():
        if state.bundle is None:
            return not_ready()
        pool = state.pool
        return JSONResponse(
            {
                "status": "ready",
                "model": state.bundle.name,
                "warning": state.bundle.warning,
                "sha256_verified": True,
                "workers": pool.workers,
                "busy": pool.busy,
                "waiting": pool.waiting,
                "queue": pool.queue_size,
            },
            headers={"Cache-Control": "no-store"},
        )

    @app.get(
        "/api/model",
        tags=["api"],
        summary="The served model: name, warning, classes and shots ranges, "
        "default adaptation settings, accuracy, limits, file URLs",
        responses={503: {"model": ErrorResponse, "description": "The bundle is not loaded"}},
    )
    async def api_model(request: Request):
        if state.bundle is None:
            return not_ready()
        return JSONResponse(
            state.summary(request.scope.get("root_path", "") or ""), headers={"Cache-Control": "no-cache"}
        )

    @app.post(
        "/api/adapt",
        tags=["api"],
        response_model=AdaptResponse,
        responses=ERROR_RESPONSES,
        summary="Adapt to labelled drawings and classify the queries",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AdaptRequest"}}},
            }
        },
    )
    async def api_adapt(request: Request):
        received = time.perf_counter()
        if state.bundle is None:
            return not_ready()
        body = await read_body(request, settings.max_body_bytes)
        data = parse_json(body)
        plan = validate_request(data, state.limits, state.bundle.defaults)

        def work(job):
            queued = time.monotonic() - job.enqueued
            return run_plan(state.bundle, plan, job.check, settings.max_image_bytes, settings.max_image_pixels, queued)

        result = await state.pool.run(work, settings.timeout_s)
        result["elapsed_ms"] = round((time.perf_counter() - received) * 1000, 3)
        result["model"] = state.bundle.name
        result["warning"] = state.bundle.warning
        return JSONResponse(result, headers={"Cache-Control": "no-store"})

    # ------------------------------------------------------------------ static files
    async def send_file(request: Request, path: Path | None, missing: str, cache: str | None = None) -> Response:
        entry = await run_in_threadpool(state.files.get, path) if path is not None else None
        if entry is None:
            return _error(404, missing)
        encoding = static.choose_encoding(entry, request.headers.get("accept-encoding", ""))
        if static.version_matches(entry, request.query_params.get("v")):
            cache_control = static.IMMUTABLE
        else:
            cache_control = cache or static.SHORT
        etag = entry.etag(encoding)
        headers = {
            "Cache-Control": cache_control,
            "ETag": etag,
            "Content-Type": static.MIME_TYPES.get(entry.suffix, "application/octet-stream"),
        }
        if entry.suffix in static.COMPRESSIBLE:
            headers["Vary"] = "Accept-Encoding"
        if static.etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers={k: v for k, v in headers.items() if k != "Content-Type"})
        body = await run_in_threadpool(entry.body, encoding) if encoding else entry.data
        if encoding:
            headers["Content-Encoding"] = encoding
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return Response(b"", headers=headers)
        return Response(body, headers=headers)

    @app.api_route("/web/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def web_file(request: Request, path: str):
        return await send_file(request, state.web_path(path), f"no such file: /web/{path}")

    @app.api_route("/vendor/onnxruntime-web/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    async def ort_file(request: Request, name: str):
        path = state.ort_path(name)
        if path is None:
            return _error(404, f"/vendor/onnxruntime-web/ serves only the wasm build: {', '.join(sorted(ORT_ALLOWED))}")
        if not path.parent.is_dir():
            return _error(
                404,
                "onnxruntime-web is not installed: run `npm ci` in web/ (the Makefile's setup "
                "does it) to get web/node_modules/onnxruntime-web",
            )
        return await send_file(request, path, f"onnxruntime-web does not ship {name}")

    @app.api_route("/models/{name}/{file}", methods=["GET", "HEAD"], include_in_schema=False)
    async def model_file(request: Request, name: str, file: str):
        # model.json and MODEL_CARD.md change when a bundle is replaced: revalidate unless ?v= names them
        return await send_file(
            request, state.model_path(name, file), f"no such model file: /models/{name}/{file}", cache=static.REVALIDATE
        )

    @app.api_route("/sw.js", methods=["GET", "HEAD"], include_in_schema=False)
    async def service_worker(request: Request):
        response = await send_file(
            request,
            static.safe_join(settings.web_dir, "sw.js"),
            "no service worker (web/sw.js) in this build",
            cache=static.REVALIDATE,
        )
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = static.REVALIDATE  # browsers must see a new worker at once
            response.headers["Service-Worker-Allowed"] = (request.scope.get("root_path", "") or "") + "/"
        return response

    def openapi():
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            request_schema = AdaptRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(request_schema.pop("$defs", {}))
            components["AdaptRequest"] = request_schema
            if state.limits:
                _constrain(components, state.limits)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    return app


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) anything over `limit` bytes without reading more than limit + one chunk."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise InputError(f"the body must be application/json, got {content_type or 'no Content-Type'}", status=415)
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InputError(f"invalid Content-Length {declared[:20]!r}", status=400)
        if int(declared) > limit:
            raise InputError(f"the body is {int(declared)} bytes, over the limit of {limit} bytes", status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InputError(f"the body is over the limit of {limit} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def _constrain(components: dict, limits: dict) -> None:
    """State the served limits in the request schema (the rules that span fields, such as every class
    0..N-1 having an example, cannot be said in JSON Schema and are checked by the server)."""
    props = components["AdaptRequest"]["properties"]
    props["support"].update(minItems=2, maxItems=limits["max_classes"] * limits["max_shots"])
    props["query"].update(minItems=1, maxItems=limits["max_queries"])
    for name, bounds in (
        ("steps", {"minimum": 0, "maximum": limits["max_steps"]}),
        ("lr", {"exclusiveMinimum": 0, "maximum": limits["max_lr"]}),
    ):
        for option in props[name].get("anyOf", [props[name]]):
            if option.get("type") in ("integer", "number"):
                option.update(bounds)
    components["SupportExample"]["properties"]["label"].update(minimum=0, maximum=limits["max_classes"] - 1)


def _json_response(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
