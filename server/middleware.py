"""The security headers of every response (per page kind: the isolated demo, the embeddable page,
the API docs, oEmbed) and one access-log line per request, as one pure ASGI middleware."""

import logging
import time

from .config import Settings

access_log = logging.getLogger("reptile_demo.access")


def content_security_policy(frame_ancestors: str, docs: bool = False) -> str:
    """The CSP header value: no inline script or style except on the API docs (Swagger UI)."""
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
        """The extra headers of a request path (the proxy's root_path removed)."""
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
            await self.app(scope, receive, send_with_headers)
        finally:
            access_log.info(
                "%s %s %d %.1fms",
                scope.get("method", "-"),
                scope.get("path", "-"),
                status[0],
                (time.perf_counter() - start) * 1000,
            )
