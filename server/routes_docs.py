"""/docs: the API documentation, Swagger UI served from web/node_modules/swagger-ui-dist (never a
CDN) and started by web/docs/api-docs.js, so its CSP is as strict as the demo's: no inline script
or style, no other host. The schema it shows is /openapi.json."""

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from .errors import error_response
from .routes_files import SWAGGER_MISSING
from .state import SWAGGER_FILES, StateDep

router = APIRouter()
INITIALISER = "web/docs/api-docs.js"
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} - API</title>
  <link rel="icon" href="{icon}" type="image/svg+xml">
  <link rel="stylesheet" href="{css}">
  <script src="{bundle}" defer></script>
  <script src="{initialiser}" defer></script>
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{openapi}">
    <noscript>The API documentation needs JavaScript; the schema itself is <a href="{openapi}">{openapi}</a>.</noscript>
  </div>
</body>
</html>
"""


@router.get("/docs", include_in_schema=False)
async def api_docs(request: Request, state: StateDep):
    root = request.scope.get("root_path", "") or ""
    if not all(state.files.version(state.swagger_path(name)) for name in SWAGGER_FILES):
        return error_response(503, SWAGGER_MISSING)

    def url(relative: str) -> str:
        return escape(state.asset_url(relative, root))

    html = PAGE.format(
        title=escape(request.app.title),
        icon=url("web/img/icon.svg"),
        css=url("vendor/swagger-ui/swagger-ui.css"),
        bundle=url("vendor/swagger-ui/swagger-ui-bundle.js"),
        initialiser=url(INITIALISER),
        openapi=escape(root + request.app.openapi_url),
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})
