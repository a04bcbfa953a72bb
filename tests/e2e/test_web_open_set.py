"""The "None of these" answer in Chromium: on the demo page, classes drawn with the mouse, a drawing
like one of them reads as that class, and a random scribble reads "None of these (unknown score ...)"
above its de-emphasised bars, in the live region too, on the server too, in projector mode and the
dark theme; no console error. It needs the served bundle's fitted open-set section (bundle/open_set.py)."""

import json
import re

import numpy as np
import pytest

from server.config import DEFAULT_MODEL
from tools.open_set_tasks import scribble_strokes
from tools.strokes import SCALE

from .page import adaptations, draw, last_result, wait_adaptations

pytestmark = pytest.mark.slow
expect = pytest.importorskip("playwright.sync_api").expect

# Three shapes for the classes (points in 0..1 of the drawing area, one list per stroke).
CLASSES = [
    [[(0.5, 0.15), (0.5, 0.85)], [(0.15, 0.5), (0.85, 0.5)]],  # a plus
    [[(0.5, 0.15), (0.8, 0.3), (0.85, 0.6), (0.6, 0.85), (0.3, 0.8), (0.15, 0.5), (0.3, 0.2), (0.5, 0.15)]],  # a ring
    [[(0.2, 0.2), (0.8, 0.2), (0.2, 0.8), (0.8, 0.8)]],  # a Z
]
VERDICT = re.compile(r"^None of these \(unknown score (0\.\d\d|1\.00)\)$")


def scribble(seed: int) -> list:
    """A random scribble (tools/open_set_tasks.py's, as the score was fitted on): strokes of points in 0..1."""
    packed = scribble_strokes(np.random.default_rng(seed))
    return [[(stroke[i] / SCALE, stroke[i + 1] / SCALE) for i in range(0, len(stroke), 3)] for stroke in packed]


@pytest.fixture
def open_set_server(demo_server):
    if "open_set" not in json.loads((DEFAULT_MODEL / "model.json").read_text()):
        pytest.skip(f"{DEFAULT_MODEL.name}/model.json has no open_set section: the page shows no 'None of these'")
    return demo_server


def draw_all(page, label: str, strokes) -> None:
    """Draw strokes one after another, then wait for the adaptation of the last one."""
    n = adaptations(page)
    for stroke in strokes:
        draw(page, label, stroke)
    wait_adaptations(page, n + 1)
    page.wait_for_selector('#demo[data-status="done"]', state="attached")


def test_a_scribble_reads_none_of_these(open_set_server, new_page):
    page, watch = new_page(open_set_server)
    page.goto(f"{open_set_server}/?classes=3&shots=1&theme=dark")
    wait_adaptations(page, 1)
    page.get_by_role("button", name="Clear all", exact=True).click()
    for c, strokes in enumerate(CLASSES, start=1):
        for stroke in strokes:
            draw(page, f"Class {c} example 1", stroke)
    draw_all(page, "Test drawing", CLASSES[0])  # like class 1
    page.get_by_role("button", name="Add test drawing", exact=True).click()
    draw_all(page, "Test drawing 2", scribble(seed=0))

    result = last_result(page)
    assert result["unknown"] == [False, True], result["unknownScores"]
    known = page.get_by_role("group", name="Prediction for Test drawing", exact=True)
    strange = page.get_by_role("group", name="Prediction for Test drawing 2", exact=True)
    # the drawing like class 1 looks as without the score: its class predicted, no verdict
    assert known.locator(".verdict-unknown").count() == 0 and known.locator(".bar-group.unknown").count() == 0
    first_class = page.get_by_label("Name of class 1", exact=True).input_value()
    assert known.locator(".bar.top .bar-name").inner_text() == first_class
    assert known.locator(".bar.top .bar-mark").inner_text() == "predicted"
    # the scribble: the verdict with its score, the bars still there (3), de-emphasised, "closest"
    verdict = strange.locator(".verdict-unknown")
    expect(verdict).to_be_visible()
    assert VERDICT.match(verdict.inner_text()), verdict.inner_text()
    assert verdict.inner_text() == f"None of these (unknown score {result['unknownScores'][1]:.2f})"
    assert strange.locator(".bar").count() == 3 and strange.locator(".bar-list").is_visible()
    assert strange.locator(".bar.top .bar-mark").inner_text() == "closest"
    top_fill = "g => getComputedStyle(g.querySelector('.bar.top .bar-fill')).opacity"
    assert float(strange.evaluate(top_fill)) < float(known.evaluate(top_fill))
    # screen readers: the live region says the same
    assert f"Test drawing 2: {verdict.inner_text()}" in page.locator("#announce").inner_text()
    # on the server: the same flags, the scores within 1e-3
    n = adaptations(page)
    page.get_by_label("On the server", exact=True).check()
    wait_adaptations(page, n + 1)
    server = last_result(page)
    assert server["place"] == "server" and server["unknown"] == [False, True], server
    assert np.abs(np.array(server["unknownScores"]) - result["unknownScores"]).max() < 1e-3
    # dark theme and projector mode: still shown, distinct from the page behind it
    for mode in ("dark", "projector"):
        if mode == "projector":
            page.get_by_role("button", name="Projector mode", exact=True).click()
        expect(verdict).to_be_visible()
        colours = verdict.evaluate(
            "e => [getComputedStyle(e).backgroundColor, getComputedStyle(e.closest('.panel')).backgroundColor]"
        )
        assert colours[0] != colours[1], (mode, colours)
    watch.check()
