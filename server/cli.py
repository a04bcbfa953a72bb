"""reptile-demo serve [--host] [--port] [--model DIR] [--workers N] ...  (also: python -m server)
reptile-demo export-static DIR [--model DIR] ...  (a server-less, browser-only copy of the demo)

Every flag has an environment variable (REPTILE_DEMO_<NAME>, e.g. REPTILE_DEMO_PORT); flags win.
"""

import argparse
import logging
import os
import sys
import time
from pathlib import Path

# The worker pool is the server's parallelism (one onnxruntime thread per worker). numpy's BLAS,
# used by the preprocessing's small matrix products, must not start a thread per core on top of
# it: measured 7x slower per image with the cores busy. Set before numpy is first imported.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from .config import DEFAULT_MODEL, ENV_PREFIX, ROOT, SettingsError, settings_from_env  # noqa: E402

PAGE_TEMPLATES = ("index.html", "embed.html")  # web_dir/templates: the demo and the embeddable page
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class OneLineFormatter(logging.Formatter):
    """LOG_FORMAT with every non-printable character of the message backslash-escaped, so no logged
    value (a request path, a header) can end a record's line or write a control character; a
    traceback still follows on lines of its own."""

    def formatMessage(self, record):
        record.message = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in record.message)
        return super().formatMessage(record)


def build_parser() -> argparse.ArgumentParser:
    """The `reptile-demo` parser: the serve and export-static commands."""
    parser = argparse.ArgumentParser(prog="reptile-demo", description="The Reptile few-shot demo server.")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser(
        "serve",
        help="serve the demo pages and the adaptation API (the default command)",
        description=f"Settings also come from environment variables {ENV_PREFIX}<FLAG> "
        f"(e.g. {ENV_PREFIX}PORT, {ENV_PREFIX}MAX_STEPS); flags win.",
    )
    add_serve_flags(serve)
    sub.add_parser(
        "export-static",
        add_help=False,
        help="write a server-less, browser-only copy of the demo into DIR (see export-static --help)",
    )
    return parser


def add_serve_flags(parser):
    """serve's flags; each one left out falls back to its environment variable, then its default."""
    a = parser.add_argument
    a("--host", help="address to listen on (default 127.0.0.1)")
    a("--port", type=int, help="port (default 8000)")
    a("--model", type=Path, help=f"bundle directory (default {DEFAULT_MODEL.relative_to(ROOT)})")
    a("--workers", type=int, help="ONNX worker threads, one intra-op thread each (default: CPU count, at most 64)")
    a("--queue", type=int, help="adaptations that may wait for a worker; more get 503 (default 16)")
    a("--timeout-s", type=float, dest="timeout_s", help="time limit per adaptation request in seconds (default 20)")
    a("--max-steps", type=int, dest="max_steps", help="most adaptation steps a request may ask for (default 200)")
    a("--max-body-bytes", type=int, dest="max_body_bytes", help="request body limit (default 2 MiB)")
    a("--frame-ancestors", dest="frame_ancestors", help="CSP frame-ancestors for /embed (default *)")
    a("--public-url", dest="public_url", help="absolute base URL used in oEmbed answers (default: from the request)")
    a("--root-path", dest="root_path", help="path prefix when served behind a proxy (e.g. /demo)")
    a("--log-level", dest="log_level", choices=["critical", "error", "warning", "info", "debug"])


def main(argv=None) -> int:
    """`reptile-demo [serve|export-static] ...` -> exit status (2 for bad settings or an unusable bundle)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["serve"] + argv  # `reptile-demo` / `python -m server` alone serve
    if argv and argv[0] == "export-static":
        from .export_static import main as export_static

        return export_static(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command != "serve":
        build_parser().print_help()
        return 2
    overrides = {k: v for k, v in vars(args).items() if k != "command"}
    try:
        settings = settings_from_env(**overrides)
    except SettingsError as error:
        print(f"reptile-demo: {error}", file=sys.stderr)
        return 2
    templates = settings.web_dir / "templates"
    missing = [name for name in PAGE_TEMPLATES if not (templates / name).is_file()]
    if missing:  # the pages would answer 500; say so now, once
        print(f"reptile-demo: cannot serve the pages: {templates} lacks {', '.join(missing)}", file=sys.stderr)
        return 2
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter(LOG_FORMAT))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])
    started = time.perf_counter()
    import uvicorn

    from .app import create_app

    app = create_app(settings)
    state = app.state.demo
    if state.bundle is None:
        reason = state.bundle_error.removeprefix(f"bundle {settings.model}: ")  # the folder is named once
        print(f"reptile-demo: cannot serve {settings.model}: {reason}", file=sys.stderr)
        return 2
    if state.bundle.warning:
        logging.getLogger("reptile_demo").warning("model %s: %s", state.bundle.name, state.bundle.warning)
    logging.getLogger("reptile_demo").info(
        "model %s loaded and verified, %d workers, queue %d (%.0f ms since start); http://%s:%d/",
        state.bundle.name,
        settings.workers,
        settings.queue,
        (time.perf_counter() - started) * 1000,
        settings.host,
        settings.port,
    )
    # uvicorn's own access log is off: reptile_demo.access logs one line per request without the query string.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        log_config=None,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
        root_path=settings.root_path,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
