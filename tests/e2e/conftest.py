"""Browser tests of the web demo: a real server (`python -m server`) on a free loopback
port and Debian's Chromium driven by Playwright. Skipped where Chromium or the Python playwright
package is missing (`make test` installs both where it can)."""

import os
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from server_helpers import start_server_process, stop_server_process

from tools.chromium import ARGS, CHROMIUM

ROOT = Path(__file__).resolve().parents[2]
ORT_DIST = ROOT / "web" / "node_modules" / "onnxruntime-web" / "dist"


@pytest.fixture(scope="session")
def playwright_browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if not ORT_DIST.is_dir():
        pytest.skip("onnxruntime-web is not installed (make setup runs npm ci in web/)")
    executable = CHROMIUM if os.path.exists(CHROMIUM) else None  # else Playwright's own download
    manager = sync_api.sync_playwright().start()
    try:
        browser = manager.chromium.launch(executable_path=executable, args=ARGS, headless=True)
    except Exception as error:  # no Chromium at all: neither Debian's nor Playwright's download
        manager.stop()
        pytest.skip(f"no Chromium to drive ({error.__class__.__name__}); `make chromium` installs Debian's")
    yield browser
    browser.close()
    manager.stop()


@pytest.fixture(scope="session")
def demo_server():
    """The real server on a free port: -> its base URL (http://127.0.0.1:PORT)."""
    log_path = ROOT / ".pytest_cache" / "e2e-server.log"
    with open(log_path if log_path.parent.is_dir() else os.devnull, "w") as log:
        process, port, _ = start_server_process(ROOT / "web", stdout=log)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            stop_server_process(process, wait_s=10)


class StaticServer:
    """A plain static file server for a folder (no COOP/COEP, no CSP): another origin, or a static host."""

    def __init__(self, folder: Path, host: str = "127.0.0.1"):
        handler = partial(QuietHandler, directory=str(folder))
        self.httpd = ThreadingHTTPServer((host, 0), handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".wasm": "application/wasm",
        ".json": "application/json",
    }

    def log_message(self, *args):
        pass


@pytest.fixture
def static_server():
    servers = []

    def start(folder: Path, host: str = "127.0.0.1") -> StaticServer:
        server = StaticServer(folder, host)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


class PageWatch:
    """Console errors, page errors and every request that leaves the page's origin (those are
    aborted, so a test also fails if the page depends on one)."""

    def __init__(self, context, origins, route: bool = True):
        self.origins = set(origins)
        self.errors, self.foreign = [], []
        if route:
            context.route("**/*", self._route)
        else:  # routing bypasses service workers (Playwright): only watch
            context.on("request", self._request)
        context.on("console", self._console)
        context.on("weberror", lambda error: self.errors.append(f"page error: {error.error}"))

    def _route(self, route):
        url = route.request.url
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if parts.scheme in ("data", "blob") or origin in self.origins:
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def _request(self, request):
        parts = urlsplit(request.url)
        if parts.scheme not in ("data", "blob") and f"{parts.scheme}://{parts.netloc}" not in self.origins:
            self.foreign.append(request.url)

    def _console(self, message):
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def check(self):
        assert not self.errors, "\n".join(self.errors)
        assert not self.foreign, f"requests left the origin: {self.foreign}"


@pytest.fixture
def new_page(playwright_browser):
    """new_page(origin, **context_options) -> (page, watch); watch.check() at the end of the test."""
    contexts = []

    def make(*origins, route: bool = True, **options):
        options.setdefault("viewport", {"width": 1280, "height": 900})
        context = playwright_browser.new_context(**options)
        contexts.append(context)
        watch = PageWatch(context, origins, route)
        page = context.new_page()
        page.set_default_timeout(90_000)
        return page, watch

    yield make
    for context in contexts:
        context.close()
