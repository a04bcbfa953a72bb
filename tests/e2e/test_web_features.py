"""The demo's other promises in Chromium: the embed inside a page of another origin (height and
prediction messages), keyboard-only use, Stop, save / load, the share link, offline reload through
the service worker, and the static export on a plain static server."""

import json
import re

import pytest

from server.config import DEFAULT_MODEL

from .page import FAST, adaptations, bars, draw, open_blog_post, wait_adaptations, wait_cached

pytestmark = pytest.mark.slow
expect = pytest.importorskip("playwright.sync_api").expect


def test_embed_in_a_page_of_another_origin(demo_server, new_page, static_server, tmp_path):
    src = f"{demo_server}/embed?classes=2&shots=1&mode=browser&theme=dark&{FAST}"
    page, watch = open_blog_post(src, tmp_path, static_server, new_page, demo_server, gap=1600)
    frame = page.frame_locator("#embed")
    frame.locator('#demo[data-ready="true"]').wait_for(state="attached")
    page.wait_for_timeout(1500)
    received = page.evaluate("window.received")
    sizes = [m for m in received if m["data"].get("type") == "embed-size"]
    assert sizes and sizes[0]["data"]["sentinel"] == "amp" and sizes[0]["origin"] == demo_server
    assert sizes[-1]["data"]["height"] > 300
    # out of view: it has not started (no prediction, the runtime not loaded)
    assert not [m for m in received if m["data"].get("type") == "reptile:prediction"]
    assert frame.locator("#demo").get_attribute("data-adaptations") is None
    page.locator("#embed").scroll_into_view_if_needed()
    frame.locator('#demo[data-adaptations="1"]').wait_for(state="attached", timeout=120_000)
    page.wait_for_timeout(200)
    predictions = [m["data"] for m in page.evaluate("window.received") if m["data"].get("type") == "reptile:prediction"]
    assert len(predictions) == 1
    message = predictions[0]
    assert len(message["labels"]) == 2 and len(message["probabilities"]) == 2
    assert message["predicted"] == max(range(2), key=lambda i: message["probabilities"][i])
    assert isinstance(message["unknown"], bool)  # the open-set flag; false without an open-set score
    latest = [m["data"]["height"] for m in page.evaluate("window.received") if m["data"].get("type") == "embed-size"]
    assert page.locator("#embed").get_attribute("height") == str(latest[-1])  # the parent followed the messages
    assert frame.locator("html").get_attribute("data-theme") == "dark"
    watch.check()


def focus_by_tab(page, name: str, limit: int = 80) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        label = page.evaluate("(e => e.getAttribute('aria-label') || e.textContent.trim())(document.activeElement)")
        if label == name:
            return
    raise AssertionError(f"Tab never reached {name!r}")


def test_keyboard_only(demo_server, new_page):
    page, watch = new_page(demo_server)
    page.goto(f"{demo_server}/?{FAST}")
    wait_adaptations(page, 1)
    # add a class with the keyboard: focus moves to its first drawing area
    focus_by_tab(page, "Add class")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Class 4 example 1"
    assert "Draw an example of class 4" in page.locator("#status").inner_text()
    # draw with the keyboard pen: Space down, arrows, Space up
    n = adaptations(page)
    page.keyboard.press("Space")
    for key in ["ArrowRight"] * 6 + ["ArrowDown"] * 6 + ["ArrowLeft"] * 3:
        page.keyboard.press(key)
    page.keyboard.press("Space")
    wait_adaptations(page, n + 1)
    assert len(bars(page)["probabilities"]) == 4
    assert "Prediction" in page.locator("#announce").inner_text()
    # the focused drawing area is visibly outlined
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    # switch to the server with the arrow keys of the radio group
    page.get_by_label("In your browser", exact=True).focus()
    n = adaptations(page)
    page.keyboard.press("ArrowRight")
    assert page.get_by_label("On the server", exact=True).is_checked()
    wait_adaptations(page, n + 1)
    assert "on the server" in page.locator("#status").inner_text()
    watch.check()


def test_stop_and_newest_request(demo_server, new_page):
    page, watch = new_page(demo_server)
    page.goto(f"{demo_server}/?steps=200")
    wait_adaptations(page, 1)
    n = adaptations(page)
    strokes = len(page.evaluate("window.reptileDemo.snapshot()")["tests"][0])
    draw(page, "Test drawing", [(0.2, 0.2), (0.8, 0.8)])
    page.get_by_role("button", name="Stop", exact=True).click()
    page.wait_for_selector('#demo[data-status="stopped"]', state="attached")
    assert adaptations(page) == n and "Stopped" in page.locator("#status").inner_text()
    # three quick strokes: only the newest adaptation finishes
    for k in range(3):
        draw(page, "Test drawing", [(0.2 + 0.1 * k, 0.5), (0.5, 0.2 + 0.1 * k)])
    wait_adaptations(page, n + 1)
    page.wait_for_timeout(500)
    assert adaptations(page) == n + 1
    assert len(page.evaluate("window.reptileDemo.snapshot()")["tests"][0]) == strokes + 4
    watch.check()


def test_save_load_and_share_link(demo_server, new_page, tmp_path):
    page, watch = new_page(demo_server)
    page.goto(f"{demo_server}/?classes=2&shots=2&{FAST}")
    wait_adaptations(page, 1)
    page.get_by_label("Name of class 1", exact=True).fill("Alpha")
    draw(page, "Test drawing", [(0.3, 0.3), (0.7, 0.6)])
    wait_adaptations(page, 2)
    saved_state = page.evaluate("window.reptileDemo.snapshot()")
    with page.expect_download() as download:
        page.get_by_role("button", name="Save drawings", exact=True).click()
    path = tmp_path / "drawings.json"
    download.value.save_as(path)
    saved = json.loads(path.read_text())
    assert saved == json.loads(json.dumps(saved_state))
    assert saved["format"] == "reptile-demo-drawings" and saved["classes"][0]["name"] == "Alpha"
    assert len(saved["classes"]) == 2 and all(len(c["examples"]) == 2 for c in saved["classes"])

    page.get_by_role("button", name="Clear all", exact=True).click()
    assert all(d is None for c in page.evaluate("window.reptileDemo.modelInputs()")["classes"] for d in c)
    page.locator("#load").set_input_files(str(path))
    wait_adaptations(page, 3)
    assert page.evaluate("window.reptileDemo.snapshot()") == saved
    assert page.get_by_label("Name of class 1", exact=True).input_value() == "Alpha"

    page.get_by_text("Embed this demo in another page").click()
    snippet = page.get_by_label("Embed code", exact=True).input_value()
    assert (
        f'<iframe src="{demo_server}/embed?classes=2&amp;shots=2' in snippet
        or f'<iframe src="{demo_server}/embed?classes=2&shots=2' in snippet
    )
    assert "embed-size" in snippet  # the lines that let the parent follow the height messages

    page.get_by_role("button", name="Copy share link", exact=True).click()
    # the link is filled in once the state is compressed (asynchronous): wait for it
    expect(page.get_by_label("Share link", exact=True)).to_have_value(re.compile("#d="), timeout=15_000)
    link = page.get_by_label("Share link", exact=True).input_value()
    assert "#d=" in link and link.startswith(demo_server)
    other, other_watch = new_page(demo_server)
    other.goto(link)
    wait_adaptations(other, 1)
    assert other.evaluate("window.reptileDemo.snapshot()") == saved
    watch.check()
    other_watch.check()


def test_offline_after_the_first_visit(demo_server, new_page):
    page, watch = new_page(demo_server, route=False)
    page.goto(f"{demo_server}/?{FAST}")
    wait_adaptations(page, 1)
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    wanted = [
        "ort-wasm-simd-threaded.wasm",
        "weights.safetensors",
        "predict.onnx",
        "worker.js",
        "engine.js",
        "heldout.json",
        "app.js",
        "demo.css",
    ]
    wait_cached(page, wanted, lambda url: url.rstrip("/").endswith(f"?{FAST}"))
    page.context.set_offline(True)
    page.reload()
    wait_adaptations(page, 1)
    assert "in your browser" in page.locator("#status").inner_text()
    assert page.evaluate("navigator.serviceWorker.controller !== null")
    watch.check()


def test_static_export_runs_without_the_server(new_page, static_server, tmp_path):
    from server.export_static import export_static

    site = tmp_path / "site"
    written = export_static(site, DEFAULT_MODEL)
    assert "index.html" in written and "vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm" in written
    host = static_server(site)
    page, watch = new_page(host.url)
    page.goto(f"{host.url}/index.html?{FAST}")
    wait_adaptations(page, 1)
    assert page.get_by_label("On the server", exact=True).count() == 0
    assert page.evaluate("window.reptileDemo.runtime.numThreads") == 1  # a static host: not isolated
    assert len(bars(page)["probabilities"]) == 3
    draw(page, "Test drawing", [(0.2, 0.5), (0.8, 0.5)])
    wait_adaptations(page, 2)
    page.goto(f"{host.url}/embed.html?{FAST}")
    wait_adaptations(page, 1)
    watch.check()


def test_a_failing_mode_offers_the_other(demo_server, new_page):
    # service workers blocked: the page's own worker would otherwise fetch the runtime past page.route
    page, watch = new_page(demo_server, service_workers="block")
    # the browser runtime cannot be fetched: the page says so and offers the server
    page.route("**/ort-wasm-simd-threaded.wasm*", lambda route: route.abort())
    page.goto(f"{demo_server}/?{FAST}")
    page.wait_for_selector('#demo[data-status="error"]', state="attached")
    assert "in your browser failed" in page.locator("#status").inner_text()
    offer = page.get_by_role("button", name="Adapt on the server instead", exact=True)
    offer.click()
    wait_adaptations(page, 1)
    assert page.get_by_label("On the server", exact=True).is_checked()
    assert page.locator("#offer").is_hidden()
    # the server fails (busy): the page offers the browser, whose runtime is reachable again
    page.unroute("**/ort-wasm-simd-threaded.wasm*")
    page.route(
        "**/api/adapt",
        lambda route: route.fulfill(status=503, headers={"Retry-After": "2"}, json={"detail": "the server is busy"}),
    )
    page.get_by_role("button", name="Remove class 3", exact=True).click()
    page.wait_for_selector('#demo[data-status="error"]', state="attached")
    assert "the server is busy" in page.locator("#status").inner_text()
    page.get_by_role("button", name="Adapt in your browser instead", exact=True).click()
    wait_adaptations(page, 2)
    assert page.get_by_label("In your browser", exact=True).is_checked()
    assert len(bars(page)["probabilities"]) == 2  # class 3 was removed
    assert page.get_by_role("button", name="Remove class 2", exact=True).is_disabled()  # 2 classes at least
    assert not watch.foreign
    # (the console shows the injected failures: a failed wasm fetch and a 503; nothing else is checked)


def test_compare_and_what_the_model_sees(demo_server, new_page):
    page, watch = new_page(demo_server)
    page.goto(f"{demo_server}/?{FAST}")
    wait_adaptations(page, 1)
    page.get_by_label("Show what the model sees", exact=False).check()
    view = page.get_by_role("img", name="What the model sees of Test drawing", exact=True)
    assert view.is_visible()
    pixels = page.evaluate("""() => { const c = [...document.querySelectorAll('canvas.model-view')].at(-1);
        return Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data.filter((_, i) => i % 4 == 0)); }""")
    expected = page.evaluate("window.reptileDemo.modelInputs().tests[0]")
    assert max(abs(p - round(255 * (1 - e))) for p, e in zip(pixels, expected, strict=False)) <= 1
    # (tests/e2e/test_web_compare.py tests "Compare with" fully)
    if page.locator("#compare option[value=random]:not([disabled])").count():
        page.get_by_label("Compare with", exact=True).select_option("random")
        wait_adaptations(page, 2)
        result = page.evaluate("window.reptileDemo.lastResult")
        assert result["compare"] and len(result["compare"]["losses"]) == 10
        group = page.get_by_role("group", name="Prediction for Test drawing", exact=True)
        assert "Random initialization" in group.inner_text() and group.locator(".bar-list").count() == 2
        assert page.locator("#chart polyline.compare").get_attribute("points").count(",") == 10
    watch.check()
