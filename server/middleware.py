"""The security headers of every response (per page kind: the isolated demo, the embeddable page,
the API docs, oEmbed), one access-log line per request, and the refusal of ambiguously framed
requests, as one pure ASGI middleware."""

import json
import logging
import time
from urllib.parse import quote

from .config import Settings

access_log = logging.getLogger("reptile_demo.access")
# RFC 3986's path characters (unreserved, sub-delims, ':', '@', '/'): printable ASCII without spaces.
PATH_SAFE = "/:@!$&'()*+,;=-._~"


def log_token(text: str) -> str:
    """A client-controlled value as one printable log token: anything outside RFC 3986's path
    characters (controls, spaces, '%', non-ASCII) percent-encoded, so a request can neither end
    its log line, write a NUL or control character, nor add fields that look like the status."""
    return quote(text, safe=PATH_SAFE, errors="backslashreplace")


# Both framings on one request could be read differently by a proxy in front (request smuggling):
# refused, as proxies do, closing the connection so no byte after it is read as another request.
BOTH_FRAMINGS = json.dumps({"detail": "the request has both Content-Length and Transfer-Encoding; send one of them"})


def has_both_framings(scope) -> bool:
    """True when the request's headers carry both Content-Length and Transfer-Encoding."""
    names = {name.lower() for name, _ in scope.get("headers", ())}
    return b"content-length" in names and b"transfer-encoding" in names


async def refuse_both_framings(send) -> None:
    """400 JSON with Connection: close, sent before the application sees the request."""
    body = BOTH_FRAMINGS.encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def content_security_policy(frame_ancestors: str, wasm: bool = True) -> str:
    """The CSP header value: scripts, styles, fonts and connections from this origin only, never
    inline; wasm compilation only where onnxruntime-web runs (not on the API docs)."""
    script = "'self' 'wasm-unsafe-eval'" if wasm else "'self'"
    return (
        f"default-src 'self'; script-src {script}; worker-src 'self' blob:; connect-src 'self'; "
        f"style-src 'self'; img-src 'self' data: blob:; font-src 'self'; manifest-src 'self'; object-src 'none'; "
        f"base-uri 'self'; form-action 'self'; frame-ancestors {frame_ancestors}"
    )


class HeadersAndAccessLog:
    """Pure ASGI middleware: the security headers of every response, one log line per request
    (method, path, status, milliseconds; never the query string or the body; method and path
    percent-encoded by log_token), and the refusal of a request framed twice (BOTH_FRAMINGS)."""

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
            (b"content-security-policy", content_security_policy("'self'", wasm=False).encode()),
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
        """The extra headers of a request path (the proxy's root_path removed)."""
        if self.root and path.startswith(self.root):
            path = path[len(self.root) :] or "/"
        if path in ("/embed", "/embed/"):
            return self.embed
        if path == "/docs":
            return self.docs
        if path == "/oembed":
            return self.oembed
        return self.default

    async def __call__(self, scope, receive, send):
        """Add the headers to the response start (those the route set win) and log the request."""
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
            if has_both_framings(scope):
                await refuse_both_framings(send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            access_log.info(
                "%s %s %d %.1fms",
                log_token(scope.get("method", "-")),
                log_token(scope.get("path", "-")),
                status[0],
                (time.perf_counter() - start) * 1000,
            )
