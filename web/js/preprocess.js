// Preprocessing spec v1, the browser side of docs/preprocessing.md (Python: preprocessing/spec.py).
// Both must pass tests/golden/preprocess_v1.json; bump SPEC_VERSION in both on any change.

export const SPEC_VERSION = 1;
export const OUTPUT_SIZE = 28;
const INK_THRESHOLD = 0.5; // a pixel counts towards the ink bounding box at or above this
const INK_BOX_SIDE = 22; // the ink's longer side spans this many of the 28 output pixels
const MIN_BOX_FRACTION = 0.25; // a dot is not blown up past 1/4 of the raster's larger side

export class EmptyDrawingError extends Error {
  constructor(message = "the drawing is empty (no ink)") {
    super(message);
    this.name = "EmptyDrawingError";
  }
}

function checkSize(length, width, height, channels) {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`expected a positive integer width and height, got ${width}x${height}`);
  }
  if (length !== width * height * channels) {
    throw new RangeError(`expected ${width * height * channels} values for ${width}x${height}, got ${length}`);
  }
}

// RGBA bytes (row-major, as from getImageData) -> ink in [0, 1], 1 = ink.
// Composited over white, so a cleared (transparent black) canvas is background, not ink.
export function inkFromRGBA(data, width, height) {
  checkSize(data.length, width, height, 4);
  const ink = new Float64Array(width * height);
  for (let i = 0; i < ink.length; i++) {
    const alpha = data[4 * i + 3] / 255;
    const r = (data[4 * i] / 255) * alpha + (1 - alpha);
    const g = (data[4 * i + 1] / 255) * alpha + (1 - alpha);
    const b = (data[4 * i + 2] / 255) * alpha + (1 - alpha);
    const luminance = 0.299 * r + 0.587 * g + 0.114 * b; // Rec. 601
    ink[i] = Math.min(1, Math.max(0, 1 - luminance));
  }
  return ink;
}

// The ink's bounding box and the square window centred on it (exported for debugging and tests).
export function inkWindow(ink, width, height) {
  checkSize(ink.length, width, height, 1);
  let top = height, bottom = 0, left = width, right = 0; // bottom/right exclusive
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (ink[y * width + x] >= INK_THRESHOLD) {
        if (y < top) top = y;
        if (y + 1 > bottom) bottom = y + 1;
        if (x < left) left = x;
        if (x + 1 > right) right = x + 1;
      }
    }
  }
  if (bottom === 0) throw new EmptyDrawingError();
  const box = Math.max(bottom - top, right - left, MIN_BOX_FRACTION * Math.max(width, height));
  const side = (box * OUTPUT_SIZE) / INK_BOX_SIDE;
  return {
    bbox: { top, bottom, left, right },
    box,
    side,
    window: { top: (top + bottom) / 2 - side / 2, left: (left + right) / 2 - side / 2 },
  };
}

// [28][n] box-filter weights: the share of source pixel [r, r+1) in output cell i, i.e. the
// overlap of the two intervals over the cell length. Pixels outside 0..n-1 have no weight,
// which is how the window's outside counts as background (0).
function boxWeights(start, side, n) {
  const cell = side / OUTPUT_SIZE;
  const weights = [];
  for (let i = 0; i < OUTPUT_SIZE; i++) {
    const lo = start + cell * i;
    const hi = lo + cell;
    const first = Math.max(0, Math.floor(lo));
    const last = Math.min(n - 1, Math.ceil(hi) - 1);
    const row = { first, values: [] };
    for (let r = first; r <= last; r++) {
      row.values.push(Math.max(0, Math.min(hi, r + 1) - Math.max(lo, r)) / cell);
    }
    weights.push(row);
  }
  return weights;
}

// Ink raster (Float64Array or any array, row-major) -> Float32Array(784), row-major 28x28 in [0, 1].
// Throws EmptyDrawingError (name "EmptyDrawingError") when no pixel reaches the ink threshold.
export function toModelInput(ink, width, height) {
  const { side, window } = inkWindow(ink, width, height);
  const wy = boxWeights(window.top, side, height);
  const wx = boxWeights(window.left, side, width);
  // Rows first (wy @ ink), then columns (@ wx^T): the same order as the Python implementation.
  const rows = new Float64Array(OUTPUT_SIZE * width);
  for (let i = 0; i < OUTPUT_SIZE; i++) {
    const { first, values } = wy[i];
    for (let k = 0; k < values.length; k++) {
      const offset = (first + k) * width;
      for (let x = 0; x < width; x++) rows[i * width + x] += values[k] * ink[offset + x];
    }
  }
  const output = new Float32Array(OUTPUT_SIZE * OUTPUT_SIZE);
  for (let i = 0; i < OUTPUT_SIZE; i++) {
    for (let j = 0; j < OUTPUT_SIZE; j++) {
      const { first, values } = wx[j];
      let sum = 0;
      for (let k = 0; k < values.length; k++) sum += values[k] * rows[i * width + first + k];
      output[i * OUTPUT_SIZE + j] = sum;
    }
  }
  return output;
}
