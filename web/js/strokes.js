// Vector drawings and their rendering (docs/preprocessing.md, "From strokes to a raster").
// A drawing is a list of strokes; a stroke is a list of points [x, y, t]: x, y in [0, 1] of the
// square drawing area (x right, y down), t in ms since the drawing's first point.
import { inkFromRGBA, toModelInput } from "./preprocess.js";

export const PEN_WIDTH = 0.045; // x the raster side: measured against Omniglot's PNGs
export const RASTER_SIDE = 105; // Omniglot's own size

// Draw strokes on a 2D context covering `side` x `side` pixels, pen width relative to the side.
export function drawStrokes(ctx, strokes, side, color = "#000") {
  const width = PEN_WIDTH * side;
  ctx.save();
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineWidth = width;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  for (const stroke of strokes) {
    if (stroke.length === 0) continue;
    if (stroke.length === 1 || stroke.every((p) => p[0] === stroke[0][0] && p[1] === stroke[0][1])) {
      // a tap: a disc of the pen's diameter (browsers disagree on zero-length lines)
      ctx.beginPath();
      ctx.arc(stroke[0][0] * side, stroke[0][1] * side, width / 2, 0, 2 * Math.PI);
      ctx.fill();
      continue;
    }
    ctx.beginPath();
    ctx.moveTo(stroke[0][0] * side, stroke[0][1] * side);
    for (let i = 1; i < stroke.length; i++) ctx.lineTo(stroke[i][0] * side, stroke[i][1] * side);
    ctx.stroke();
  }
  ctx.restore();
}

function rasterContext(side) {
  const canvas = typeof OffscreenCanvas !== "undefined" ? new OffscreenCanvas(side, side)
    : Object.assign(document.createElement("canvas"), { width: side, height: side });
  return canvas.getContext("2d", { willReadFrequently: true });
}

let shared = null;

// The model input of a drawing: Float32Array(784), or null when it has no ink (an empty drawing).
export function modelInput(strokes) {
  if (!strokes.length) return null;
  const side = RASTER_SIDE;
  if (!shared) shared = rasterContext(side);
  const ctx = shared;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, side, side);
  drawStrokes(ctx, strokes, side, "#000");
  const { data } = ctx.getImageData(0, 0, side, side);
  try {
    return toModelInput(inkFromRGBA(data, side, side), side, side);
  } catch (error) {
    if (error.name === "EmptyDrawingError") return null;
    throw error;
  }
}

// Paint a 28x28 model input (ink = 1) onto a canvas, pixel by pixel.
export function paintModelInput(canvas, input) {
  canvas.width = 28;
  canvas.height = 28;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const value = input ? Math.round(255 * (1 - input[i])) : 255;
    image.data.set([value, value, value, 255], 4 * i);
  }
  ctx.putImageData(image, 0, 0);
}

// Compact form for files and links: each stroke a flat list of integers x, y (1/1000) and t (ms).
export function packStrokes(strokes) {
  return strokes.map((stroke) => stroke.flatMap(([x, y, t]) => [Math.round(x * 1000), Math.round(y * 1000), Math.round(t)]));
}

export function unpackStrokes(packed) {
  if (!Array.isArray(packed)) throw new TypeError("strokes must be a list");
  return packed.map((flat) => {
    if (!Array.isArray(flat) || flat.length % 3 !== 0) throw new TypeError("a stroke must be a list of x, y, t triples");
    const stroke = [];
    for (let i = 0; i < flat.length; i += 3) {
      const [x, y, t] = [flat[i] / 1000, flat[i + 1] / 1000, flat[i + 2]];
      if (![x, y, t].every(Number.isFinite)) throw new TypeError("stroke coordinates must be numbers");
      stroke.push([x, y, t]);
    }
    return stroke;
  });
}
