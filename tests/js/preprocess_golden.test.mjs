// web/js/preprocess.js against the golden vectors of preprocessing spec v1.
// Run: node --test tests/js/preprocess_golden.test.mjs   (Node >= 20, no packages)
// Node has no canvas, so PNG cases start from their stored decoded ink raster; decoding a PNG
// through a canvas is left to the browser test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import {
  EmptyDrawingError,
  SPEC_VERSION,
  inkFromRGBA,
  inkWindow,
  toModelInput,
} from "../../web/js/preprocess.js";

const golden = JSON.parse(readFileSync(new URL("../golden/preprocess_v1.json", import.meta.url), "utf8"));

function assertClose(actual, expected, tolerance, what) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const difference = Math.abs(actual[i] - expected[i]);
    if (!(difference <= tolerance)) {
      assert.fail(`${what}[${i}] (row ${Math.floor(i / 28)}, col ${i % 28} if 28 wide): ` +
        `got ${actual[i]}, expected ${expected[i]} (tolerance ${tolerance})`);
    }
  }
}

test("golden file is for this spec version", () => {
  assert.equal(golden.spec_version, SPEC_VERSION);
  assert.ok(golden.cases.length >= 8);
});

for (const c of golden.cases) {
  test(`golden case ${c.name}: ${c.note}`, () => {
    const storedInk = c.ink.flat();
    let ink = storedInk;
    if (c.rgba_base64 !== undefined) {
      const rgba = new Uint8ClampedArray(Buffer.from(c.rgba_base64, "base64"));
      ink = inkFromRGBA(rgba, c.width, c.height);
      assertClose(ink, storedInk, 1e-9, "ink");
    }
    if (c.expected.error !== undefined) {
      assert.throws(() => toModelInput(ink, c.width, c.height), (error) => {
        assert.equal(error.name, c.expected.error);
        assert.ok(error instanceof EmptyDrawingError && error instanceof Error);
        return true;
      });
      return;
    }
    const found = inkWindow(ink, c.width, c.height);
    assert.deepEqual(found.bbox, c.expected.bbox);
    assertClose([found.box, found.side, found.window.top, found.window.left],
      [c.expected.box, c.expected.side, c.expected.window.top, c.expected.window.left], 1e-9, "box, side, window");
    const output = toModelInput(ink, c.width, c.height);
    assert.ok(output instanceof Float32Array);
    assertClose(output, c.expected.output.flat(), 1e-5, "output");
  });
}

test("inkFromRGBA composites over white with Rec. 601 luminance", () => {
  const rgba = new Uint8ClampedArray([0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 0, 0, 0, 128, 255, 0, 0, 255]);
  assertClose(inkFromRGBA(rgba, 5, 1), [0, 1, 0, 128 / 255, 1 - 0.299], 1e-12, "ink");
});

test("an empty drawing throws EmptyDrawingError, the threshold itself is ink", () => {
  assert.throws(() => toModelInput(new Float64Array(100), 10, 10), { name: "EmptyDrawingError" });
  assert.throws(() => toModelInput(new Float64Array(100).fill(0.49), 10, 10), { name: "EmptyDrawingError" });
  const dot = new Float64Array(100);
  dot[55] = 0.5;
  assert.ok(Math.max(...toModelInput(dot, 10, 10)) > 0);
});

test("sizes that do not match the data are refused", () => {
  assert.throws(() => inkFromRGBA(new Uint8ClampedArray(12), 2, 2), RangeError);
  assert.throws(() => toModelInput(new Float64Array(10), 3, 3), RangeError);
  assert.throws(() => toModelInput(new Float64Array(0), 0, 0), RangeError);
});
