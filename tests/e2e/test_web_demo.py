"""The demo page in Chromium: opens working with the example drawings, mouse drawing re-adapts,
undo / clear, both modes agree, no console error, no request leaving the origin."""

import json

import numpy as np
import pytest

from server.config import DEFAULT_MODEL

from .page import FAST, adaptations, bars, draw, last_result, wait_adaptations

pytestmark = pytest.mark.slow
STROKE = [(0.2, 0.3), (0.5, 0.35), (0.8, 0.3), (0.75, 0.7), (0.3, 0.75)]


def test_opens_working_with_examples_and_redraws_with_the_mouse(demo_server, new_page):
    page, watch = new_page(demo_server)
    page.goto(f"{demo_server}/?{FAST}")
    wait_adaptations(page, 1)
    # the preview model's warning is on the page
    manifest = json.loads((DEFAULT_MODEL / "model.json").read_text())
    if manifest.get("warning"):
        assert manifest["warning"] in page.locator(".model-warning").inner_text()
    # three classes of one held-out example each, one test drawing, predictions with the top class marked
    for c in (1, 2, 3):
        assert page.get_by_label(f"Class {c} example 1", exact=True).is_visible()
    result = bars(page)
    assert len(result["probabilities"]) == 3 and len(result["top"]) == 1
    assert abs(sum(result["probabilities"].values()) - 1) < 0.01
    status = page.locator("#status").inner_text()
    assert "in your browser" in status and "10 steps" in status
    assert page.locator("#chart polyline.meta").get_attribute("points").count(",") == 10  # one point per step

    # clearing an example stops adaptation until the class has one again
    row = page.get_by_label("Class 1 example 1", exact=True).locator("xpath=..")
    row.get_by_role("button", name="Clear", exact=True).click()
    assert "Draw an example of class 1" in page.locator("#status").inner_text()
    n = adaptations(page)
    draw(page, "Class 1 example 1", STROKE)
    wait_adaptations(page, n + 1)
    # the model input of the mouse drawing is a preprocessed 28x28 image with ink
    inputs = page.evaluate("window.reptileDemo.modelInputs()")
    first = np.array(inputs["classes"][0][0]).reshape(28, 28)
    assert first.max() > 0.5 and first[:3].max() < 0.05  # ink inside, the margin empty
    # undo removes the stroke: class 1 is empty again, the Undo button is disabled
    undo = row.get_by_role("button", name="Undo", exact=True)
    undo.click()
    assert page.evaluate("window.reptileDemo.modelInputs()")["classes"][0][0] is None
    assert undo.is_disabled()
    # draw it again in two strokes: each finished stroke re-adapts (the newest request wins)
    n = adaptations(page)
    draw(page, "Class 1 example 1", STROKE[:3])
    draw(page, "Class 1 example 1", STROKE[2:])
    wait_adaptations(page, n + 1)
    page.wait_for_selector('#demo[data-status="done"]', state="attached")
    assert len(page.evaluate("window.reptileDemo.snapshot()")["classes"][0]["examples"][0]) == 2
    # the test drawing too
    n = adaptations(page)
    draw(page, "Test drawing", [(0.1, 0.1), (0.9, 0.9)])
    wait_adaptations(page, n + 1)
    watch.check()


def test_server_mode_gives_the_browsers_probabilities(demo_server, new_page):
    """Browser and server adapt the same drawings (default steps) to probabilities within 1e-3."""
    page, watch = new_page(demo_server)
    page.goto(f"{demo_server}/?classes=3&shots=2")
    wait_adaptations(page, 1)
    browser = last_result(page)
    assert browser["place"] == "browser" and len(browser["losses"]) == page.evaluate(
        "JSON.parse(document.getElementById('demo').dataset.config).model.adaptation.steps"
    )
    notice = page.locator("#server-notice")
    assert not notice.is_visible()
    with page.expect_request(lambda r: r.url.endswith("/api/adapt") and r.method == "POST"):
        page.get_by_label("On the server", exact=True).check()
    wait_adaptations(page, 2)
    assert notice.is_visible() and "sent to" in notice.inner_text()
    server = last_result(page)
    assert server["place"] == "server"
    assert "on the server" in page.locator("#status").inner_text()
    difference = np.abs(np.array(browser["probabilities"]) - np.array(server["probabilities"])).max()
    assert difference < 1e-3, difference
    assert np.allclose(browser["losses"], server["losses"], atol=1e-3)
    assert browser["predictions"] == server["predictions"]
    # drawing in server mode adapts on the server again
    n = adaptations(page)
    draw(page, "Test drawing", STROKE)
    wait_adaptations(page, n + 1)
    assert last_result(page)["place"] == "server"
    watch.check()


def test_browser_mode_starts_one_worker_from_startup_js(demo_server, new_page):
    # startup.js (an async module of its own, also imported by app.js) starts the runtime: the page
    # and app.js must share one instance of it (the same URL), so one worker and one runtime
    page, watch = new_page(demo_server)
    requested = []
    page.on("request", lambda r: requested.append(r.url.split("?")[0].rsplit("/", 1)[-1]))
    page.goto(f"{demo_server}/?{FAST}")
    wait_adaptations(page, 1)
    assert requested.count("worker.js") == 1 and requested.count("startup.js") == 1, requested
    assert page.evaluate("window.reptileDemo.runtime")["model"]
    watch.check()


def test_server_mode_never_loads_the_browser_runtime(demo_server, new_page):
    page, watch = new_page(demo_server)
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"{demo_server}/?mode=server&{FAST}")
    wait_adaptations(page, 1)
    assert "on the server" in page.locator("#status").inner_text()
    assert page.evaluate("window.reptileDemo.runtime") is None
    lazy = [u for u in requested if "/vendor/" in u or "/models/" in u or u.split("?")[0].endswith("/worker.js")]
    assert not lazy, lazy  # the runtime, the model and the worker come only with browser mode
    n = adaptations(page)
    page.get_by_label("In your browser", exact=True).check()
    wait_adaptations(page, n + 1)
    assert any("ort-wasm-simd-threaded.wasm" in u for u in requested)
    watch.check()
