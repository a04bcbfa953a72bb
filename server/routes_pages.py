"""The pages: / (the demo), /embed (the same demo for iframes; with `view`, one part of /learn alone),
/learn ("Why it works", from the sine bundle) and /oembed (how other sites embed the demo), rendered
from web/templates with Jinja2 (autoescaped)."""

import json
from typing import Annotated, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from bundle.format import MANIFEST_FILE

from .adapt_request import ErrorResponse, InputError
from .errors import ERROR_RESPONSES, error_doc, error_response, not_ready
from .state import State, StateDep

MODES, THEMES = ("browser", "server"), ("light", "dark")
PAGE_DEFAULTS = {"classes": 3, "shots": 1, "mode": "browser", "theme": "light"}
OEMBED_SIZE = (480, 640)  # default iframe width, height
FALLBACK_LIMITS = {"min_classes": 2, "max_classes": 10, "min_shots": 1, "max_shots": 5}  # while no bundle is loaded
LEARN_VIEWS = ("sine", "landscape", "taylor")  # the parts of /learn; /embed?view=<part> shows one alone
LEARN_MODEL = "sine"  # /learn's regression bundle, a folder of models_dir served at /models/sine/ (docs/bundle.md)


def page_settings(limits: dict, classes, shots, mode, theme) -> dict:
    """The page's {classes, shots, mode, theme}: defaults filled in (within `limits`), then validated."""
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
        raise InputError(f"classes: must be {limits['min_classes']}..{limits['max_classes']}, got {values['classes']}")
    if not limits["min_shots"] <= values["shots"] <= limits["max_shots"]:
        raise InputError(f"shots: must be {limits['min_shots']}..{limits['max_shots']}, got {values['shots']}")
    if values["mode"] not in MODES:
        raise InputError(f"mode: must be one of {', '.join(MODES)}")
    if values["theme"] not in THEMES:
        raise InputError(f"theme: must be one of {', '.join(THEMES)}")
    return values


def base_url(request: Request, state: State) -> str:
    """The absolute base URL of the demo, without a trailing slash."""
    return (state.settings.public_url or str(request.base_url)).rstrip("/")


def base_url_caching(state: State, cache_control: str) -> dict:
    """The caching headers of an answer holding base_url: `cache_control` when REPTILE_DEMO_PUBLIC_URL
    fixes it; else the answer is built from the request's Host header, so only the client may store
    it (a shared cache keyed without Host would hand a forged host's URLs to everyone)."""
    if state.settings.public_url:
        return {"Cache-Control": cache_control}
    return {"Cache-Control": "private, " + cache_control.removeprefix("public, "), "Vary": "Host"}


def render(request: Request, state: State, template: str, embed: bool, values: dict) -> HTMLResponse:
    """A page from web/templates/<template>, with the template context of docs/server.md."""
    root = request.scope.get("root_path", "") or ""
    base = base_url(request, state)
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
    html = state.templates.get_template(template).render(**context)
    headers = {
        **base_url_caching(state, "no-cache"),
        "Link": f'<{oembed}>; rel="alternate"; type="application/json+oembed"; title="Reptile few-shot demo"',
    }
    return HTMLResponse(html, headers=headers)


def page(request: Request, state: State, embed: bool, query: dict):
    """/ or /embed with the query's settings; 503 while no bundle is loaded."""
    if state.bundle is None:
        return not_ready(state)
    values = page_settings(state.limits, **query)
    return render(request, state, "embed.html" if embed else "index.html", embed, values)


def learn_page(request: Request, state: State, embed: bool, view: str | None, theme: str | None):
    """/learn, or one of its parts alone (/embed?view=...); 503 naming the file while the sine bundle's
    model.json is missing or unreadable. The page needs no classification bundle."""
    path = state.model_path(LEARN_MODEL, MANIFEST_FILE)
    entry = state.files.get(path) if path is not None else None
    try:
        manifest = json.loads(entry.data) if entry is not None else None
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return error_response(
            503,
            f"the sine bundle is not usable: /models/{LEARN_MODEL}/{MANIFEST_FILE} is missing or not a manifest "
            f"(`python -m training sine --out runs/sine --bundle static/models/{LEARN_MODEL}` writes it)",
        )
    root = request.scope.get("root_path", "") or ""
    base = base_url(request, state)
    names = (MANIFEST_FILE, *manifest["files"])
    files = {name: state.asset_url(f"models/{LEARN_MODEL}/{name}", root) for name in names}
    context = {
        "settings": {"theme": theme or PAGE_DEFAULTS["theme"], "view": view},
        "view": view,
        "embed": embed,
        "sine": manifest,
        "sine_files": files,
        "base_url": base,
        "root_path": root,
        "asset": lambda relative: state.asset_url(relative, root),
        "sw_url": f"{root}/sw.js",
        "demo_url": f"{base}/",
        "learn_url": f"{base}/learn",
        "embed_url": f"{base}/embed",
    }
    html = state.templates.get_template("learn.html").render(**context)
    return HTMLResponse(html, headers=base_url_caching(state, "no-cache"))


def pages_router(limits: dict | None) -> APIRouter:
    """The page routes. Their classes and shots bounds are the served bundle's (narrowed by the
    settings), so they are declared per app and the OpenAPI schema states them."""
    lim = limits or FALLBACK_LIMITS
    Classes = Annotated[
        int | None,
        Query(ge=lim["min_classes"], le=lim["max_classes"], description="Number of classes to draw (default 3)"),
    ]
    Shots = Annotated[
        int | None, Query(ge=lim["min_shots"], le=lim["max_shots"], description="Drawings per class (default 1)")
    ]
    Mode = Annotated[Literal["browser", "server"] | None, Query(description="Where adaptation runs (default browser)")]
    Theme = Annotated[Literal["light", "dark"] | None, Query(description="Colour theme (default light)")]
    View = Annotated[
        Literal[LEARN_VIEWS] | None,
        Query(
            description="One part of /learn alone: sine (the sine-wave toy), landscape (Reptile in parameter "
            "space) or taylor (the Taylor analysis)"
        ),
    ]
    page_responses = {
        200: {"content": {"text/html": {}}, "description": "The page"},
        422: error_doc(ERROR_RESPONSES[422]["description"]),
        503: error_doc("The model bundle is not loaded"),
    }

    async def page_query(classes: Classes = None, shots: Shots = None, mode: Mode = None, theme: Theme = None):
        """The pages' query parameters, type- and range-checked by FastAPI (unknown ones are ignored)."""
        return {"classes": classes, "shots": shots, "mode": mode, "theme": theme}

    PageQuery = Annotated[dict, Depends(page_query)]
    router = APIRouter()

    @router.get("/", response_class=HTMLResponse, tags=["pages"], summary="The demo page", responses=page_responses)
    async def index(request: Request, state: StateDep, query: PageQuery):
        return page(request, state, False, query)

    @router.get(
        "/embed",
        response_class=HTMLResponse,
        tags=["pages"],
        summary="The embeddable demo (for iframes)",
        responses=page_responses,
    )
    async def embed(request: Request, state: StateDep, query: PageQuery, view: View = None):
        if view is not None:
            return learn_page(request, state, True, view, query["theme"])
        return page(request, state, True, query)

    @router.get(
        "/learn",
        response_class=HTMLResponse,
        tags=["pages"],
        summary="Why it works: the sine-wave toy, Reptile in parameter space, the Taylor analysis",
        responses=page_responses | {503: error_doc("The sine bundle (static/models/sine) is missing")},
    )
    async def learn(request: Request, state: StateDep, theme: Theme = None, view: View = None):
        # The page keeps its own state (points, steps, sliders) in the query too; the server reads only
        # theme and view and leaves the rest to the page, which ignores values out of range.
        return learn_page(request, state, False, view, theme)

    router.add_api_route(
        "/oembed",
        oembed,
        methods=["GET"],
        tags=["pages"],
        summary="oEmbed (JSON) for the embeddable demo",
        responses={
            404: ERROR_RESPONSES[422] | {"description": "Not a URL of this demo"},
            422: ERROR_RESPONSES[422],
            501: {"model": ErrorResponse, "description": "format=xml"},
        },
    )
    return router


async def oembed(
    request: Request,
    state: StateDep,
    url: str = Query(..., description="A URL of this demo (/ or /embed)"),
    format: str = Query(
        "json",
        description="Only json is offered (xml: 501, as oEmbed specifies)",
        json_schema_extra={"enum": ["json"]},
    ),
    maxwidth: int | None = Query(None, ge=1),
    maxheight: int | None = Query(None, ge=1),
):
    # oEmbed type "rich": an iframe of /embed with the settings of `url`, a URL of this demo. (Route
    # functions have no docstring: FastAPI would publish it as the operation's description.)
    if format == "xml":
        return error_response(501, "format=xml is not offered; use format=json")
    if format != "json":
        raise InputError("format: must be json")
    if state.bundle is None:
        return not_ready(state)
    base = base_url(request, state)
    try:
        parts, own = urlsplit(url), urlsplit(base)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise InputError("url: not a valid URL") from None
    path = parts.path[len(own.path) :] if own.path and parts.path.startswith(own.path) else parts.path
    if (
        parts.scheme not in ("http", "https")
        or parts.netloc.lower() != own.netloc.lower()
        or path not in ("", "/", "/embed")
    ):
        return error_response(404, f"not a URL of this demo: expected {base}/ or {base}/embed")
    query = dict(parse_qsl(parts.query))
    try:
        values = page_settings(
            state.limits,
            *(url_integer(query, name, state.limits) for name in ("classes", "shots")),
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
        f'<iframe src="{html_attribute(src)}" width="{width}" height="{height}" title="{html_attribute(title)}" '
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
        headers=base_url_caching(state, "public, max-age=3600"),
    )


def url_integer(query: dict, name: str, limits: dict):
    """classes or shots from oEmbed's url: None when absent, else a decimal integer (InputError naming it)."""
    text = query.get(name)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 6):  # a longer number is out of range anyway
        raise InputError(f"{name}: must be an integer {limits[f'min_{name}']}..{limits[f'max_{name}']}")
    return int(text)


def html_attribute(text: str) -> str:
    """`text` escaped for a double-quoted HTML attribute."""
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
