"""The demo's view of adaptation itself, in Chromium: "Compare with" a start without meta-learning
(joint training, a random initialization) adapted on the same drawings with the same steps, the
"Adaptation step" slider, and the optimizer and transductive settings; every control by its name,
no console error, no request leaving the origin."""

import pytest

from server.config import DEFAULT_MODEL

from .page import FAST, adaptations, draw, last_result, wait_adaptations

pytestmark = pytest.mark.slow
expect = pytest.importorskip("playwright.sync_api").expect
STARTS = {
    start: DEFAULT_MODEL.parent / f"{DEFAULT_MODEL.name}-{start}" for start in ("joint", "random")
}  # server/comparisons.py


def wait_replays(page, count: int) -> None:
    """Until the worker's replay of `count` adaptations (the steps the slider shows) has arrived."""
    page.wait_for_function("n => Number(document.getElementById('demo').dataset.replays || 0) >= n", arg=count)


def bar_values(page, test: str = "Test drawing") -> list:
    """Every set of bars of a test drawing, each {class name: probability}, in the page's order."""
    group = page.get_by_role("group", name=f"Prediction for {test}", exact=True)
    lists = [group.locator(".bar-list").nth(i) for i in range(group.locator(".bar-list").count())]
    return [
        dict(
            zip(bars.locator(".bar-name").all_inner_texts(), bars.locator(".bar-value").all_inner_texts(), strict=True)
        )
        for bars in lists
    ]


def requests_to(page, path: str) -> list:
    """The JSON bodies of the page's requests to `path`, as they are made."""
    bodies = []
    page.on("request", lambda r: bodies.append(r.post_data_json) if r.url.endswith(path) else None)
    return bodies


@pytest.mark.parametrize("start", ["joint", "random"])
def test_compare_with_a_start_without_meta_learning(demo_server, new_page, start):
    if not (STARTS[start] / "model.json").is_file():
        pytest.skip(f"no {STARTS[start].name} bundle beside the served one")
    page, watch = new_page(demo_server)
    page.goto(f"{demo_server}/?{FAST}")
    wait_adaptations(page, 1)
    assert len(bar_values(page)) == 1
    fetched = []
    page.on("request", lambda r: fetched.append(r.url) if f"/models/{STARTS[start].name}/" in r.url else None)
    n = adaptations(page)
    page.get_by_label("Compare with", exact=True).select_option(start)
    wait_adaptations(page, n + 1)
    result = last_result(page)
    assert result["compareWith"] == start and len(result["compare"]["losses"]) == 10
    group = page.get_by_role("group", name="Prediction for Test drawing", exact=True)
    title = "Joint training (no meta-learning)" if start == "joint" else "Random initialization (no meta-learning)"
    assert title in group.inner_text() and "With meta-learning (Reptile)" in group.inner_text()
    assert len(bar_values(page)) == 2 and bar_values(page)[0] != bar_values(page)[1]
    assert page.locator("#chart polyline.compare").get_attribute("points").count(",") == 10
    # the comparison's model.json and weights only: it runs on the served model's graphs
    assert sorted(url.split("/")[-1].split("?")[0] for url in fetched) == ["model.json", "weights.safetensors"]
    # the meta-learned start ends lower than the comparison on the examples it adapted to
    assert result["losses"][-1] < result["compare"]["losses"][-1]
    # a drawn stroke adapts both again
    n = adaptations(page)
    draw(page, "Test drawing", [(0.2, 0.2), (0.8, 0.7)])
    wait_adaptations(page, n + 1)
    assert len(bar_values(page)) == 2 and last_result(page)["compare"] is not None
    # back to nothing: one set of bars
    n = adaptations(page)
    page.get_by_label("Compare with", exact=True).select_option("none")
    wait_adaptations(page, n + 1)
    assert len(bar_values(page)) == 1 and last_result(page)["compare"] is None
    watch.check()


def test_the_step_slider_shows_the_bars_after_each_step(demo_server, new_page):
    page, watch = new_page(demo_server)
    compare = "joint" if (STARTS["joint"] / "model.json").is_file() else "none"
    page.goto(f"{demo_server}/?{FAST}&compare={compare}")
    wait_adaptations(page, 1)
    wait_replays(page, 1)
    slider = page.get_by_label("Adaptation step", exact=True)
    assert slider.get_attribute("max") == "10" and slider.input_value() == "10"
    last = bar_values(page)
    trace = last_result(page)["trace"]
    assert len(trace["meta"]) == 11  # before the first step, then after each
    # the replay's last step is the result itself
    result = last_result(page)["probabilities"][0]
    assert max(abs(a - b) for a, b in zip(trace["meta"][-1][0], result, strict=True)) < 1e-6
    # step 0, with the keyboard: Home
    slider.focus()
    page.keyboard.press("Home")
    assert slider.input_value() == "0"
    expect(page.locator("#predictions")).to_have_attribute("data-step", "0")
    first = bar_values(page)
    assert first != last and len(first) == len(last)
    group = page.get_by_role("group", name="Prediction for Test drawing", exact=True)
    assert "Before the first step" in group.inner_text()
    assert "before the first step" in slider.get_attribute("aria-valuetext")
    # one step on: the bars after step 1 (from the meta-learned start one step often suffices); End: the result
    page.keyboard.press("ArrowRight")
    expect(page.locator("#predictions")).to_have_attribute("data-step", "1")
    assert list(bar_values(page)[0].values()) == [f"{100 * p:.1f}%" for p in trace["meta"][1][0]]
    page.keyboard.press("End")
    expect(page.locator("#predictions")).to_have_attribute("data-step", "")
    assert bar_values(page) == last
    # the chosen step survives a new adaptation and is in the share link's settings
    page.keyboard.press("Home")
    n = adaptations(page)
    replays = int(page.locator("#demo").get_attribute("data-replays"))
    draw(page, "Test drawing", [(0.3, 0.2), (0.6, 0.8)])
    wait_adaptations(page, n + 1)
    wait_replays(page, replays + 1)
    expect(page.locator("#predictions")).to_have_attribute("data-step", "0")
    assert page.evaluate("window.reptileDemo.snapshot()")["settings"]["step"] == 0
    watch.check()


def test_optimizer_and_transductive_change_the_request_and_result(demo_server, new_page):
    page, watch = new_page(demo_server)
    page.goto(f"{demo_server}/?{FAST}")
    wait_adaptations(page, 1)
    adam = last_result(page)
    assert adam["settings"]["optimizer"] == "adam" and adam["settings"]["transductive"] is False
    # SGD, chosen with the keyboard in "Adaptation settings": its own learning rate
    page.get_by_text("Adaptation settings", exact=True).click()
    optimizer = page.get_by_label("Optimizer", exact=True)
    n = adaptations(page)
    optimizer.select_option("sgd")
    wait_adaptations(page, n + 1)
    sgd = last_result(page)
    assert sgd["settings"]["optimizer"] == "sgd" and sgd["settings"]["lr"] != adam["settings"]["lr"]
    assert page.get_by_label("Learning rate", exact=True).input_value() == str(sgd["settings"]["lr"])
    assert sgd["losses"][0] == pytest.approx(adam["losses"][0], rel=1e-5)  # the same start, other steps
    assert sgd["probabilities"] != adam["probabilities"]  # (both losses can reach 0.0 in float32 after a step)
    # transductive needs two test drawings: with one it changes nothing
    box = page.get_by_label("Transductive prediction", exact=True)
    n = adaptations(page)
    box.check()
    wait_adaptations(page, n + 1)
    assert last_result(page)["settings"]["transductive"] is False
    n = adaptations(page)
    page.get_by_role("button", name="Add test drawing", exact=True).click()
    draw(page, "Test drawing 2", [(0.5, 0.1), (0.5, 0.9)])
    wait_adaptations(page, n + 1)
    together = last_result(page)
    assert together["settings"]["transductive"] is True and len(together["probabilities"]) == 2
    n = adaptations(page)
    box.uncheck()
    wait_adaptations(page, n + 1)
    apart = last_result(page)
    assert apart["settings"]["transductive"] is False
    assert apart["probabilities"][0] != together["probabilities"][0]  # BatchNorm over other rows
    # on the server: the same settings go into the request
    bodies = requests_to(page, "/api/adapt")
    box.check()
    n = adaptations(page)
    page.get_by_label("On the server", exact=True).check()
    wait_adaptations(page, n + 1)
    assert bodies and bodies[-1]["optimizer"] == "sgd" and bodies[-1]["transductive"] is True
    assert bodies[-1]["lr"] == sgd["settings"]["lr"]
    server = last_result(page)
    assert len(server["probabilities"]) == 2
    watch.check()


def test_the_url_and_a_share_link_keep_the_new_settings(demo_server, new_page):
    page, watch = new_page(demo_server)
    page.goto(f"{demo_server}/?{FAST}&optimizer=sgd&transductive=1&compare=random&step=2")
    wait_adaptations(page, 1)
    assert page.get_by_label("Optimizer", exact=True).input_value() == "sgd"
    assert page.get_by_label("Transductive prediction", exact=True).is_checked()
    random_bundle = (STARTS["random"] / "model.json").is_file()
    assert page.get_by_label("Compare with", exact=True).input_value() == ("random" if random_bundle else "none")
    wait_replays(page, 1)
    expect(page.locator("#predictions")).to_have_attribute("data-step", "2")
    settings = page.evaluate("window.reptileDemo.snapshot()")["settings"]
    assert settings["optimizer"] == "sgd" and settings["transductive"] is True and settings["step"] == 2
    watch.check()


@pytest.mark.parametrize("theme", ["dark", "projector"])
def test_the_new_controls_are_legible_in_the_dark_theme_and_projector_mode(demo_server, new_page, theme):
    page, watch = new_page(demo_server)
    page.goto(f"{demo_server}/?{FAST}&theme={'dark' if theme == 'dark' else 'light'}")
    wait_adaptations(page, 1)
    if theme == "projector":
        page.get_by_role("button", name="Projector mode", exact=True).click()
    page.get_by_text("Adaptation settings", exact=True).click()
    for name in ("Compare with", "Adaptation step", "Optimizer", "Transductive prediction"):
        control = page.get_by_label(name, exact=True)
        assert control.is_visible(), name
        label = page.locator(f"label:has-text('{name}')").first
        ratio = page.evaluate(CONTRAST, label.element_handle())
        assert ratio >= 4.5, (name, theme, ratio)
    watch.check()


# The WCAG contrast ratio of an element's text colour against the first opaque background behind it.
CONTRAST = """(element) => {
  const rgb = (text) => text.match(/[\\d.]+/g).map(Number);
  const luminance = ([r, g, b]) => {
    const c = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  let node = element;
  let background = null;
  while (node && !background) {
    const colour = rgb(getComputedStyle(node).backgroundColor);
    if (colour.length < 4 || colour[3] > 0) background = colour;
    node = node.parentElement;
  }
  const [a, b] = [luminance(rgb(getComputedStyle(element).color)), luminance(background || [255, 255, 255])];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""
