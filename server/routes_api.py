"""The API: /healthz, /readyz, /api/model, POST /api/adapt, and the OpenAPI schema that documents
them (with the served limits stated in the request schema)."""

import time

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from .adapt import run_plan
from .adapt_request import AdaptRequest, AdaptResponse, ErrorResponse, InputError, parse_json, validate_request
from .errors import ERROR_RESPONSES, not_ready
from .images import ImageLimits, check_request_pixels
from .state import StateDep

router = APIRouter()
# Route functions have no docstring: FastAPI would publish it as the operation's description.


@router.get("/healthz", tags=["health"], summary="The process is up")
async def healthz():
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


@router.get(
    "/readyz",
    tags=["health"],
    summary="The bundle is loaded, its sha256s verified, the pool running",
    responses={503: {"model": ErrorResponse, "description": "Not ready"}},
)
async def readyz(state: StateDep):
    if state.bundle is None:
        return not_ready(state)
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


@router.get(
    "/api/model",
    tags=["api"],
    summary="The served model: name, warning, classes and shots ranges, "
    "default adaptation settings, accuracy, limits, file URLs",
    responses={503: {"model": ErrorResponse, "description": "The bundle is not loaded"}},
)
async def api_model(request: Request, state: StateDep):
    if state.bundle is None:
        return not_ready(state)
    return JSONResponse(state.summary(request.scope.get("root_path", "") or ""), headers={"Cache-Control": "no-cache"})


@router.post(
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
async def api_adapt(request: Request, state: StateDep):
    received = time.perf_counter()
    if state.bundle is None:
        return not_ready(state)
    settings = state.settings
    body = await read_body(request, settings.max_body_bytes)
    data = parse_json(body)
    plan = validate_request(data, state.limits, state.bundle.defaults)
    check_request_pixels(plan.support + plan.queries, settings.max_request_pixels)

    limits = ImageLimits(settings.max_image_bytes, settings.max_image_pixels, settings.max_image_side)

    def work(job):
        return run_plan(state.bundle, plan, job.check, limits, time.monotonic() - job.enqueued)

    result = await state.pool.run(work, settings.timeout_s)
    result["elapsed_ms"] = round((time.perf_counter() - received) * 1000, 3)
    result["model"] = state.bundle.name
    result["warning"] = state.bundle.warning
    return JSONResponse(result, headers={"Cache-Control": "no-store"})


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) anything over `limit` bytes without reading more than limit + one chunk."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise InputError(f"the body must be application/json, got {content_type[:60] or 'no Content-Type'}", status=415)
    declared = request.headers.get("content-length")  # never beside Transfer-Encoding: the middleware refuses that
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise InputError("invalid Content-Length: not a number of bytes", status=400)
        if len(declared) > 15:  # over any limit, and too long to convert cheaply
            raise InputError(f"the declared body is over the limit of {limit} bytes", status=413)
        if int(declared) > limit:
            raise InputError(f"the body is {int(declared)} bytes, over the limit of {limit} bytes", status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InputError(f"the body is over the limit of {limit} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def openapi_schema(app: FastAPI) -> dict:
    """app.openapi: FastAPI's schema plus AdaptRequest (the body is read by hand, so FastAPI does
    not see it) constrained by the served limits; built once per app."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        request_schema = AdaptRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(request_schema.pop("$defs", {}))
        components["AdaptRequest"] = request_schema
        limits = app.state.demo.limits
        if limits:
            _constrain(components, limits)
        app.openapi_schema = schema
    return app.openapi_schema


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
