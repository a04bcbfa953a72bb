"""Server mode and a busy server in Chromium: a 503 (or 429) with Retry-After makes the page wait
until the advertised time, say so with a countdown, then send the newest request once; Stop cancels
the wait, the browser is offered at once, and Retry-After's two forms are read with a cap."""

import json
import re
import time

import pytest

from .page import FAST, adaptations, draw, wait_adaptations

pytestmark = pytest.mark.slow
expect = pytest.importorskip("playwright.sync_api").expect

# Every /api/adapt fetch as the page makes it: when it was sent and answered (performance.now()),
# its status and body. Installed before the page's scripts, so app.js calls this fetch.
FETCH_LOG = """(() => {
  const fetch = window.fetch;
  window.adaptLog = [];
  window.fetch = function (url, options) {
    if (!String(url).endsWith("/api/adapt")) return fetch.apply(this, arguments);
    const entry = { sent: performance.now(), body: options.body };
    window.adaptLog.push(entry);
    return fetch.apply(this, arguments).then((response) => {
      entry.answered = performance.now();
      entry.status = response.status;
      return response;
    });
  };
})();"""

BUSY = re.compile(r"The server is busy; trying again in (\d+) s\.")


def open_server_mode(demo_server, new_page, answer):
    """The demo in server mode, /api/adapt answered by answer(route, n) (n: 1 for the first request)."""
    # service workers blocked: routing does not see requests a service worker makes (Playwright)
    page, watch = new_page(demo_server, service_workers="block")
    page.add_init_script(FETCH_LOG)
    routed = []

    def handle(route):
        routed.append(time.monotonic())
        answer(route, len(routed))

    page.route("**/api/adapt", handle)
    page.goto(f"{demo_server}/?mode=server&{FAST}")
    return page, watch, routed


def busy(route, retry_after="2", status=503, date=None):
    """A busy server's answer; retry_after=None: without Retry-After."""
    headers = {"Retry-After": retry_after, "Date": date}
    headers = {name: value for name, value in headers.items() if value is not None}
    route.fulfill(status=status, headers=headers, json={"detail": "the server is busy"})


def check(watch):
    """watch.check(), but the console's own lines for the injected busy answers are expected."""
    assert not [e for e in watch.errors if not re.search(r"status of (503|429)", e)], watch.errors
    assert not watch.foreign


def wait_backoff(page) -> int:
    """Until the page waits for the server: -> the seconds its status counts down from."""
    page.wait_for_selector('#demo[data-status="backoff"]', state="attached")
    return int(BUSY.fullmatch(page.locator("#status").inner_text()).group(1))


def test_the_newest_drawing_is_sent_once_after_the_wait(demo_server, new_page):
    page, watch, routed = open_server_mode(
        demo_server, new_page, lambda route, n: busy(route) if n == 1 else route.continue_()
    )
    assert wait_backoff(page) in (1, 2)
    expect(page.locator("#announce")).to_have_text(BUSY)
    assert page.get_by_role("button", name="Stop", exact=True).is_enabled()
    assert page.get_by_role("button", name="Adapt in your browser instead", exact=True).is_visible()
    # two strokes during the wait: each replaces the waiting request, none is sent
    draw(page, "Test drawing", [(0.2, 0.3), (0.8, 0.7)])
    draw(page, "Test drawing", [(0.3, 0.8), (0.7, 0.2)])
    drawn = page.evaluate("performance.now()")
    assert BUSY.fullmatch(page.locator("#status").inner_text())
    wait_adaptations(page, 1)
    page.wait_for_timeout(500)
    log = page.evaluate("window.adaptLog")
    assert len(log) == 2 and len(routed) == 2 and adaptations(page) == 1
    first, retry = log
    assert (first["status"], retry["status"]) == (503, 200)
    assert drawn < retry["sent"], "the strokes took longer than the wait: a slower machine than planned"
    assert retry["sent"] - first["answered"] >= 2000  # not a millisecond early
    assert routed[1] - routed[0] >= 2.0
    image = json.loads(retry["body"])["query"][0]["image"]
    assert [v for row in image for v in row] == page.evaluate("window.reptileDemo.modelInputs().tests[0]")
    assert json.loads(first["body"])["query"][0]["image"] != image  # the newest drawing, not the first
    assert re.match(r"Adapted in .* on the server", page.locator("#status").inner_text())
    assert page.locator("#offer").is_hidden()
    check(watch)


def test_stop_cancels_the_wait(demo_server, new_page):
    page, watch, routed = open_server_mode(
        demo_server, new_page, lambda route, n: busy(route) if n == 1 else route.continue_()
    )
    wait_backoff(page)
    page.get_by_role("button", name="Stop", exact=True).click()
    page.wait_for_selector('#demo[data-status="stopped"]', state="attached")
    assert page.locator("#status").inner_text() == "Stopped. The next stroke adapts again."
    assert page.get_by_role("button", name="Stop", exact=True).is_disabled()
    page.wait_for_timeout(2500)  # past the advertised time: nothing was sent
    assert len(page.evaluate("window.adaptLog")) == 1 and len(routed) == 1
    assert page.locator("#status").inner_text() == "Stopped. The next stroke adapts again."
    # after the wait, the next stroke is sent at once
    draw(page, "Test drawing", [(0.2, 0.5), (0.8, 0.5)])
    wait_adaptations(page, 1)
    assert len(routed) == 2
    check(watch)


def test_switching_to_the_browser_drops_the_wait(demo_server, new_page):
    page, watch, routed = open_server_mode(demo_server, new_page, lambda route, n: busy(route, "30"))
    assert wait_backoff(page) in (29, 30)
    page.get_by_role("button", name="Adapt in your browser instead", exact=True).click()
    assert page.get_by_label("In your browser", exact=True).is_checked()
    wait_adaptations(page, 1)
    assert page.evaluate("window.reptileDemo.lastResult.place") == "browser"
    assert len(routed) == 1
    check(watch)


@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        (lambda route, n: busy(route, "3600"), 60),  # capped
        (lambda route, n: busy(route, "5", status=429), 5),
        # an HTTP-date, read against the answer's Date: a server clock far off does not matter
        (lambda route, n: busy(route, "Sun, 06 Nov 1994 08:50:07 GMT", date="Sun, 06 Nov 1994 08:49:37 GMT"), 30),
    ],
    ids=["capped", "429", "http-date"],
)
def test_what_the_status_counts_down_from(demo_server, new_page, answer, shown):
    page, watch, routed = open_server_mode(demo_server, new_page, answer)
    assert wait_backoff(page) in (shown - 1, shown)
    page.wait_for_timeout(1200)
    assert wait_backoff(page) < shown  # counting down
    page.get_by_role("button", name="Stop", exact=True).click()
    page.wait_for_selector('#demo[data-status="stopped"]', state="attached")
    assert len(routed) == 1
    check(watch)


def test_without_retry_after_the_failure_is_shown_at_once(demo_server, new_page):
    page, watch, routed = open_server_mode(demo_server, new_page, lambda route, n: busy(route, None))
    page.wait_for_selector('#demo[data-status="error"]', state="attached")
    assert page.locator("#status").inner_text() == (
        "Adapting on the server failed: the server answered 503: the server is busy"
    )
    assert page.get_by_role("button", name="Adapt in your browser instead", exact=True).is_visible()
    draw(page, "Test drawing", [(0.2, 0.5), (0.8, 0.5)])  # no wait was asked for: sent at once
    page.wait_for_function("window.adaptLog.length === 2")
    assert len(routed) == 2
    check(watch)


def test_retry_after_is_read_in_both_forms(demo_server, new_page):
    page, watch = new_page(demo_server)
    page.goto(f"{demo_server}/?mode=server&{FAST}")
    date = "Sun, 06 Nov 1994 08:49:37 GMT"
    cases = [
        ["2", None, 2000],
        ["0", None, 0],
        ["3600", None, 60_000],
        ["99999999999999999999999", None, 60_000],
        ["Sun, 06 Nov 1994 08:50:07 GMT", date, 30_000],
        ["Sunday, 06-Nov-94 08:50:07 GMT", date, 30_000],
        ["Sun Nov  6 08:50:07 1994", date, 30_000],
        [date, "Sun, 06 Nov 1994 08:50:07 GMT", 0],  # in the past: at once
        ["1.5", None, None],
        ["-1", None, None],
        ["soon", None, None],
        ["", None, None],
        [None, None, None],
    ]
    got = page.evaluate(
        """async (cases) => { const { retryAfterMs } = await import("/web/js/adapters.js");
        return cases.map(([value, date]) => retryAfterMs(value, date)); }""",
        cases,
    )
    assert got == [expected for _, _, expected in cases]
    # an HTTP-date without the answer's Date: read against the page's clock
    ms = page.evaluate("""async () => { const { retryAfterMs } = await import("/web/js/adapters.js");
        return retryAfterMs(new Date(Date.now() + 10000).toUTCString()); }""")
    assert 8000 < ms <= 10_000
    watch.check()
