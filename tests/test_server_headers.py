"""Headers that decide who may store or run what: /docs (Swagger UI from web/node_modules, under
a CSP as strict as the demo's), /vendor/swagger-ui/ (allow-listed, versioned, compressed), and
the caching of answers built from the Host header (the pages and /oembed)."""

import fnmatch
import re
import shlex
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from server_helpers import make_web_dir

from server.app import create_app
from server.config import Settings
from server.state import ORT_ALLOWED, ORT_DIST, SWAGGER_ALLOWED, SWAGGER_DIST

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
needs_swagger = pytest.mark.skipif(
    not (WEB / SWAGGER_DIST).is_dir(), reason="swagger-ui-dist is not installed (make setup runs npm ci in web/)"
)


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(workers=1))) as c:  # the real web/, with its node_modules
        yield c


@pytest.fixture(scope="module")
def bare_client(tmp_path_factory):
    web = make_web_dir(tmp_path_factory.mktemp("web"))
    shutil.rmtree(web / SWAGGER_DIST, ignore_errors=True)  # swagger-ui-dist not installed
    with TestClient(create_app(Settings(web_dir=web, workers=1))) as c:
        yield c


# ---------------------------------------------------------------------------- /docs
@needs_swagger
def test_docs_page_loads_only_served_files_under_a_strict_csp(client):
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = dict(part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";"))
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'" and csp["connect-src"] == "'self'"
    assert "unsafe" not in r.headers["content-security-policy"] and "http" not in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "SAMEORIGIN" and r.headers["cache-control"] == "no-cache"
    scripts = re.findall(r"<script[^>]*>", r.text)
    assert len(scripts) == 2 and all(" src=" in tag for tag in scripts)  # no inline script
    assert "<style" not in r.text and " style=" not in r.text
    urls = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    versioned = [url for url in urls if "?v=" in url]
    assert {url.split("?")[0] for url in versioned} == {
        "/web/img/icon.svg",
        "/vendor/swagger-ui/swagger-ui.css",
        "/vendor/swagger-ui/swagger-ui-bundle.js",
        "/web/docs/api-docs.js",
    }
    for url in versioned:
        asset = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert asset.status_code == 200 and asset.headers["cache-control"].endswith("immutable"), url
    bundle = client.get(next(url for url in versioned if "/swagger-ui-bundle.js?" in url))
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert 'data-openapi-url="/openapi.json"' in r.text


@needs_swagger
def test_vendor_swagger_ui_serves_its_allow_list_only(client):
    for name in sorted(SWAGGER_ALLOWED):
        r = client.get(f"/vendor/swagger-ui/{name}", headers={"Accept-Encoding": "br, gzip"})
        assert r.status_code == 200 and r.headers["content-encoding"] in ("br", "gzip"), name
        assert r.headers["vary"] == "Accept-Encoding" and r.headers["cache-control"] == "public, max-age=60"
    for name in ("index.html", "swagger-initializer.js", "oauth2-redirect.html", "package.json", "LICENSE"):
        r = client.get(f"/vendor/swagger-ui/{name}")
        assert r.status_code == 404 and "serves only" in r.json()["detail"], name
    assert client.get("/vendor/swagger-ui/..%2fswagger-ui-dist%2fpackage.json").status_code == 404


def test_oauth2_redirect_and_redoc_are_not_served(client):
    for path in ("/docs/oauth2-redirect", "/redoc"):
        assert client.get(path).status_code == 404


def test_openapi_does_not_list_the_docs(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert not any(p.startswith(("/docs", "/vendor")) for p in paths)


def test_docs_without_swagger_ui_say_what_to_install(bare_client):
    r = bare_client.get("/docs")
    assert r.status_code == 503 and r.headers["cache-control"] == "no-store"
    detail = r.json()["detail"]
    assert "swagger-ui-dist is not installed" in detail and "npm ci" in detail
    r = bare_client.get("/vendor/swagger-ui/swagger-ui-bundle.js")
    assert r.status_code == 404 and "npm ci" in r.json()["detail"]


def test_the_image_ships_every_vendor_file_the_server_serves():
    """The Dockerfile's stage-1 copies cover each allow-listed file of both packages (no Docker here)."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    sources = []
    for line in text.splitlines():
        words = shlex.split(line.strip()) if line.strip().startswith("COPY --from=web") else []
        sources += [w.removeprefix("/app/web/") for w in words[2:-1]]
    for dist, allowed in ((ORT_DIST, ORT_ALLOWED), (SWAGGER_DIST, SWAGGER_ALLOWED)):
        for name in allowed:
            wanted = (dist / name).as_posix()
            assert any(fnmatch.fnmatch(wanted, s) or wanted.startswith(s) for s in sources), wanted


# ---------------------------------------------------------------------------- Host-derived answers
def test_answers_built_from_the_host_header_are_private(bare_client):
    evil = {"Host": "evil.example"}
    for path in ("/", "/embed"):
        r = bare_client.get(path, headers=evil)
        assert r.status_code == 200 and "http://evil.example/oembed?" in r.headers["link"]
        assert r.headers["cache-control"] == "private, no-cache" and r.headers["vary"] == "Host"
    r = bare_client.get("/oembed", params={"url": "http://evil.example/embed"}, headers=evil)
    assert r.status_code == 200 and 'src="http://evil.example/embed?' in r.json()["html"]
    assert r.headers["cache-control"] == "private, max-age=3600" and r.headers["vary"] == "Host"


def test_a_public_url_makes_the_answers_shareable(tmp_path):
    settings = Settings(web_dir=make_web_dir(tmp_path), workers=1, public_url="https://demo.example/reptile")
    with TestClient(create_app(settings)) as c:
        evil = {"Host": "evil.example"}
        r = c.get("/oembed", params={"url": "https://demo.example/reptile/?classes=4"}, headers=evil)
        assert r.status_code == 200, r.text
        assert 'src="https://demo.example/reptile/embed?classes=4&amp;' in r.json()["html"]
        assert r.headers["cache-control"] == "public, max-age=3600" and "vary" not in r.headers
        r = c.get("/oembed", params={"url": "http://evil.example/embed"}, headers=evil)
        assert r.status_code == 404 and r.headers["cache-control"] == "no-store"
        page = c.get("/", headers=evil)
        assert page.headers["cache-control"] == "no-cache" and "vary" not in page.headers
        assert "evil.example" not in page.text + page.headers["link"]
        assert "https://demo.example/reptile/oembed?" in page.headers["link"]
