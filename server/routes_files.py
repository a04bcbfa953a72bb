"""The static files: /web/<path>, /vendor/onnxruntime-web/<file> (the wasm build only),
/vendor/swagger-ui/<file> (what /docs loads), /models/<name>/<file> and /sw.js, with content-hash
caching, ETags and compression (server/static.py). None of them is in the OpenAPI schema."""

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from . import static
from .errors import error_response
from .state import ORT_ALLOWED, SWAGGER_ALLOWED, State, StateDep

router = APIRouter()
SWAGGER_MISSING = (
    "swagger-ui-dist is not installed: run `npm ci` in web/ (the Makefile's setup does it) to get "
    "web/node_modules/swagger-ui-dist, which the API documentation at /docs loads"
)


async def send_file(request: Request, state: State, path: Path | None, missing: str, cache: str | None = None):
    """The file (GET or HEAD), 304 when If-None-Match names it, or 404 with `missing`. Cache-Control:
    immutable when ?v= names this content, else `cache` (default: a short max-age)."""
    entry = await run_in_threadpool(state.files.get, path) if path is not None else None
    if entry is None:
        return error_response(404, missing)
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


@router.api_route("/web/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def web_file(request: Request, path: str, state: StateDep):
    return await send_file(request, state, state.web_path(path), f"no such file: /web/{path}")


@router.api_route("/vendor/onnxruntime-web/{name}", methods=["GET", "HEAD"], include_in_schema=False)
async def ort_file(request: Request, name: str, state: StateDep):
    path = state.ort_path(name)
    if path is None:
        return error_response(
            404, f"/vendor/onnxruntime-web/ serves only the wasm build: {', '.join(sorted(ORT_ALLOWED))}"
        )
    if not path.parent.is_dir():
        return error_response(
            404,
            "onnxruntime-web is not installed: run `npm ci` in web/ (the Makefile's setup "
            "does it) to get web/node_modules/onnxruntime-web",
        )
    return await send_file(request, state, path, f"onnxruntime-web does not ship {name}")


@router.api_route("/vendor/swagger-ui/{name}", methods=["GET", "HEAD"], include_in_schema=False)
async def swagger_file(request: Request, name: str, state: StateDep):
    path = state.swagger_path(name)
    if path is None:
        return error_response(404, f"/vendor/swagger-ui/ serves only {', '.join(sorted(SWAGGER_ALLOWED))}")
    if not path.parent.is_dir():
        return error_response(404, SWAGGER_MISSING)
    return await send_file(request, state, path, f"swagger-ui-dist does not ship {name}")


@router.api_route("/models/{name}/{file}", methods=["GET", "HEAD"], include_in_schema=False)
async def model_file(request: Request, name: str, file: str, state: StateDep):
    # model.json and MODEL_CARD.md change when a bundle is replaced: revalidate unless ?v= names them
    path = state.model_path(name, file)
    return await send_file(request, state, path, f"no such model file: /models/{name}/{file}", cache=static.REVALIDATE)


@router.api_route("/sw.js", methods=["GET", "HEAD"], include_in_schema=False)
async def service_worker(request: Request, state: StateDep):
    response = await send_file(
        request,
        state,
        static.safe_join(state.settings.web_dir, "sw.js"),
        "no service worker (web/sw.js) in this build",
        cache=static.REVALIDATE,
    )
    if response.status_code in (200, 304):
        response.headers["Cache-Control"] = static.REVALIDATE  # browsers must see a new worker at once
        response.headers["Service-Worker-Allowed"] = (request.scope.get("root_path", "") or "") + "/"
    return response
