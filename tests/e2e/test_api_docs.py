"""/docs in Chromium: Swagger UI from the server's own files renders every operation of
/openapi.json under the page's strict CSP, with no violation and no request off the origin."""

import json
import urllib.request

import pytest

pytestmark = pytest.mark.slow

RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


def test_api_docs_render_offline_under_a_strict_csp(demo_server, new_page):
    with urllib.request.urlopen(f"{demo_server}/openapi.json", timeout=10) as response:
        schema = json.load(response)
    operations = {(m.upper(), p) for p, item in schema["paths"].items() for m in item}
    page, watch = new_page(demo_server)
    page.add_init_script(RECORD_VIOLATIONS)
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    answer = page.goto(f"{demo_server}/docs")
    csp = answer.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    page.locator(".opblock").first.wait_for()
    shown = {
        (block.locator(".opblock-summary-method").inner_text().strip(), block.get_attribute("id"))
        for block in page.locator(".opblock").all()
    }
    assert len(shown) == len(operations), (shown, operations)

    def operation(path):
        return page.locator(".opblock", has=page.locator(f'.opblock-summary-path[data-path="{path}"]'))

    adapt = operation("/api/adapt")
    adapt.locator(".opblock-summary").click()  # expanded: its request body schema renders
    adapt.locator(".opblock-body .body-param, .opblock-body .model-example").first.wait_for()
    # "Try it out" on /api/model: the request goes to this origin and its answer renders
    model = operation("/api/model")
    model.locator(".opblock-summary").click()
    model.locator("button.try-out__btn").click()
    model.locator("button.execute").click()
    model.locator(".live-responses-table .response-col_status", has_text="200").wait_for()
    assert page.locator("link[rel=icon]").get_attribute("href").startswith("/web/img/icon.svg?v=")
    assert any("/vendor/swagger-ui/swagger-ui-bundle.js?v=" in url for url in requests)
    page.wait_for_timeout(500)
    assert page.evaluate("window.cspViolations") == []
    watch.check()
