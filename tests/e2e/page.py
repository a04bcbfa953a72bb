"""What the browser tests do on the demo page: draw with the mouse, wait for adaptations, read the bars."""

# Few steps keep the tests quick on 2 cores; the parity test uses the model's default.
FAST = "steps=10"

# A blog post of another origin framing an embed: it keeps every message in window.received and
# follows the embed-size ones, as the snippet the demo hands out does.
BLOG_POST = """<!doctype html><html><head><title>A blog</title></head><body>
<p>A blog post about few-shot learning.</p><div style="height: {gap}px">...</div>
<iframe id="embed" src="{src}" width="{width}" height="{height}" title="embed"></iframe>
<script>
window.received = [];
addEventListener("message", (e) => {{
  window.received.push({{origin: e.origin, data: e.data}});
  if (e.data && e.data.type === "embed-size") document.getElementById("embed").height = e.data.height;
}});
</script></body></html>"""


def open_blog_post(src: str, folder, static_server, new_page, demo_server, *, gap=0, width=960, height=300):
    """Open BLOG_POST framing `src`, served from localhost (another origin than the demo's 127.0.0.1)
    -> (page, watch); the frame is #embed."""
    (folder / "post.html").write_text(BLOG_POST.format(src=src, gap=gap, width=width, height=height))
    parent = static_server(folder, host="localhost")
    page, watch = new_page(parent.url, demo_server)
    page.goto(f"{parent.url}/post.html")
    return page, watch


def wait_cached(page, wanted: list, page_url) -> None:
    """Until the service worker's cache holds a URL containing each of `wanted` and one for which
    `page_url(url)` is true (the page itself); an AssertionError naming what is missing after 20 s."""
    cached = []
    for _ in range(100):
        cached = page.evaluate("caches.open('reptile-demo-v1').then(c => c.keys()).then(k => k.map(r => r.url))")
        if all(any(w in url for url in cached) for w in wanted) and any(page_url(u) for u in cached):
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"not cached: {[w for w in wanted if not any(w in u for u in cached)]}")


def wait_adaptations(page, count: int, timeout: float = 120_000) -> None:
    """Until at least `count` adaptations have finished (not exactly `count`: on a fast machine the
    adaptation of a stroke may finish while the next stroke is still being drawn)."""
    page.wait_for_function(
        "n => Number(document.getElementById('demo')?.dataset.adaptations || 0) >= n", arg=count, timeout=timeout
    )


def adaptations(page) -> int:
    return int(page.locator("#demo").get_attribute("data-adaptations") or 0)


def draw(page, label: str, points, exact: bool = True) -> None:
    """Draw one stroke with the mouse: points in 0..1 of the canvas."""
    canvas = page.get_by_label(label, exact=exact)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    xy = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for point in xy[1:]:
        page.mouse.move(*point, steps=3)
    page.mouse.up()


def bars(page, test: str = "Test drawing") -> dict:
    """The prediction bars of a test drawing: {class name: probability}, and the marked top class."""
    group = page.get_by_role("group", name=f"Prediction for {test}", exact=True)
    names = group.locator(".bar-list").first.locator(".bar-name").all_inner_texts()
    values = group.locator(".bar-list").first.locator(".bar-value").all_inner_texts()
    top = group.locator(".bar-list").first.locator(".bar.top .bar-name").all_inner_texts()
    return {"probabilities": dict(zip(names, (float(v.rstrip("%")) / 100 for v in values), strict=False)), "top": top}


def last_result(page) -> dict:
    return page.evaluate("JSON.parse(JSON.stringify(window.reptileDemo.lastResult))")
