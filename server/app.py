"""The FastAPI application: create_app(settings) -> app. It builds the shared State, includes one
router per concern (pages, API, static files, the API docs), and installs the headers middleware and
the error handlers. See docs/server.md for the routes."""

import logging
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from . import routes_api, routes_docs, routes_files
from .config import Settings, settings_from_env
from .errors import install_error_handlers
from .middleware import HeadersAndAccessLog
from .routes_pages import pages_router
from .state import State

log = logging.getLogger("reptile_demo")


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Say why at startup when serving without a bundle; stop the worker pool at shutdown."""
    state = app.state.demo
    if state.bundle is None:  # `reptile-demo serve` refuses to start instead; other ASGI servers get here
        log.error("the model bundle %s is not usable: %s", state.settings.model, state.bundle_error)
    yield
    if state.pool is not None:
        state.pool.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for `settings` (default: from the environment); routes reach its State via StateDep."""
    settings = settings or settings_from_env()
    state = State(settings)
    app = FastAPI(
        title="Reptile few-shot demo",
        version="1.0",
        description="Draw a few examples of new characters; a CNN meta-trained with Reptile adapts to them. "
        "The adaptation API runs the same ONNX graphs as the browser.",
        lifespan=lifespan,
        docs_url=None,  # routes_docs serves /docs from web/node_modules instead of FastAPI's CDN page
        redoc_url=None,
    )
    app.state.demo = state
    app.add_middleware(HeadersAndAccessLog, settings=settings)
    install_error_handlers(app)
    app.include_router(pages_router(state.limits))
    app.include_router(routes_api.router)
    app.include_router(routes_files.router)
    app.include_router(routes_docs.router)
    app.openapi = partial(routes_api.openapi_schema, app)
    return app
