"""Preprocessing spec v1 in Chromium: the page's own web/js/preprocess.js passes the golden vectors
(tests/golden/) in the browser, with the real Omniglot PNGs decoded through a canvas, as the page
reads its drawings (getImageData -> inkFromRGBA -> toModelInput). tests/js/ runs the same module
under Node, where there is no canvas."""

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow
GOLDEN = json.loads((Path(__file__).resolve().parents[1] / "golden/preprocess_v1.json").read_text())

RUN_CASES = """async (cases) => {
  const spec = await import("/web/js/preprocess.js");
  const bytes = (b64) => Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  const results = [];
  for (const c of cases) {
    const result = { name: c.name };
    let ink = c.ink.flat();
    if (c.png_base64 !== undefined) {
      // decoded by the browser, drawn on a canvas and read back as the page reads a drawing
      const bitmap = await createImageBitmap(new Blob([bytes(c.png_base64)], { type: "image/png" }));
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      const context = canvas.getContext("2d");
      context.drawImage(bitmap, 0, 0);
      const { data } = context.getImageData(0, 0, bitmap.width, bitmap.height);
      ink = Array.from(spec.inkFromRGBA(data, bitmap.width, bitmap.height));
      result.decoded = { ink, width: bitmap.width, height: bitmap.height };
    } else if (c.rgba_base64 !== undefined) {
      ink = Array.from(spec.inkFromRGBA(new Uint8ClampedArray(bytes(c.rgba_base64)), c.width, c.height));
      result.decoded = { ink, width: c.width, height: c.height };
    }
    try {
      const found = spec.inkWindow(ink, c.width, c.height);
      result.bbox = found.bbox;
      result.box = found.box;
      result.side = found.side;
      result.window = { top: found.window.top, left: found.window.left };
      result.output = Array.from(spec.toModelInput(ink, c.width, c.height));
    } catch (error) {
      result.error = error.name;
    }
    results.push(result);
  }
  return { specVersion: spec.SPEC_VERSION, results };
}"""


def test_golden_vectors_in_the_browser(demo_server, new_page):
    page, watch = new_page(demo_server)
    page.goto(f"{demo_server}/embed?mode=server")  # any page of the origin: the module is imported by the test
    answer = page.evaluate(RUN_CASES, GOLDEN["cases"])
    assert answer["specVersion"] == GOLDEN["spec_version"]
    assert [r["name"] for r in answer["results"]] == [c["name"] for c in GOLDEN["cases"]]
    decoded_pngs = 0
    for case, result in zip(GOLDEN["cases"], answer["results"], strict=False):
        name = case["name"]
        if "decoded" in result:
            decoded = result["decoded"]
            assert (decoded["width"], decoded["height"]) == (int(case["width"]), int(case["height"])), name
            np.testing.assert_allclose(decoded["ink"], np.ravel(case["ink"]), atol=1e-9, err_msg=name)
            decoded_pngs += "png_base64" in case
        expected = case["expected"]
        if "error" in expected:
            assert result.get("error") == expected["error"], name
            continue
        assert "error" not in result, f"{name}: {result.get('error')}"
        assert result["bbox"] == expected["bbox"], name
        np.testing.assert_allclose(
            [result["box"], result["side"], result["window"]["top"], result["window"]["left"]],
            [expected["box"], expected["side"], expected["window"]["top"], expected["window"]["left"]],
            atol=1e-9,
            err_msg=name,
        )
        np.testing.assert_allclose(result["output"], np.ravel(expected["output"]), atol=1e-5, err_msg=name)
    assert decoded_pngs == 3  # the three real Omniglot PNGs went through the browser's decoder
    watch.check()
