"""Every error answer is JSON {"detail": ..., ["errors": [...]]}, never cached: error_response(),
the exception handlers that produce it, and its OpenAPI descriptions."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .adapt_request import ErrorResponse, InputError, problem
from .middleware import log_token
from .pool import DeadlineExceeded, Overloaded
from .state import State

log = logging.getLogger("reptile_demo")

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


def error_doc(description: str) -> dict:
    """An OpenAPI response entry: `description`, with an ErrorResponse JSON body."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }


def error_response(status: int, detail: str, errors=None, headers=None) -> JSONResponse:
    """The JSON error answer; `errors` is included only when it lists more than one problem."""
    body = {"detail": detail}
    if errors and len(errors) > 1:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})


def not_ready(state: State) -> JSONResponse:
    """503 for every model route while the bundle is not loaded, with the reason."""
    return error_response(503, f"the model bundle is not loaded: {state.bundle_error}", headers={"Retry-After": "60"})


async def on_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's parameter validation (query and path): 422 naming each parameter and its problem."""
    messages = []
    for item in error.errors():
        loc = [p for p in item.get("loc", ()) if p not in ("query", "body", "path")]
        where = ".".join(str(p)[:40] for p in loc) or "request"
        messages.append(f"{where}: {problem(item)}")
    return error_response(422, messages[0] if len(messages) == 1 else "; ".join(messages), messages)


async def on_http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    """Starlette's own errors (404 for an unknown route, 405) in the same JSON shape."""
    return error_response(error.status_code, str(error.detail), headers=getattr(error, "headers", None))


async def on_input_error(request: Request, error: InputError) -> JSONResponse:
    """Invalid input: its status (400, 413, 415 or 422), message and headers."""
    return error_response(error.status, str(error), error.errors, error.headers)


async def on_overloaded(request: Request, error: Overloaded) -> JSONResponse:
    """The pool's queue is full: 503 with Retry-After."""
    return error_response(503, str(error), headers={"Retry-After": str(error.retry_after)})


async def on_deadline(request: Request, error: DeadlineExceeded) -> JSONResponse:
    """The request ran past its time limit: 503 with Retry-After."""
    return error_response(
        503,
        f"{error}; retry later, or with fewer steps or drawings",
        headers={"Retry-After": str(error.retry_after)},
    )


async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
    """Anything else: answered 500 without details. Starlette raises the error again after this
    answer, and the server logs it with its traceback, so one line here says where it came from."""
    log.error("unexpected %s on %s %s", type(error).__name__, log_token(request.method), log_token(request.url.path))
    return error_response(500, "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on `app`."""
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(InputError, on_input_error)
    app.add_exception_handler(Overloaded, on_overloaded)
    app.add_exception_handler(DeadlineExceeded, on_deadline)
    app.add_exception_handler(Exception, on_unexpected)
