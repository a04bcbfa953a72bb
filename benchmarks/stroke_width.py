"""Which pen width, rendered from Omniglot's real pen trajectories, reproduces its PNGs?

The browser keeps a drawing as strokes and renders them onto a white raster before the
preprocessing spec (docs/preprocessing.md) applies. To make that raster look like the
training data, this script renders the trajectories behind some Omniglot PNGs at several
pen widths and compares them with the matching PNG:

* IoU of the ink (render >= 0.5 vs PNG ink), which also needs the right coordinate frame;
* mean |difference| of the 28x28 model inputs after the spec (what the model actually sees),
  for the anti-aliased render (as a canvas produces) and for the render binarised at 0.5.

Usage: python benchmarks/stroke_width.py [--data-dir ../shared/data/omniglot] [--per-zip 150]
Runs in about 20 s on one core. The table it prints is quoted in docs/preprocessing.md.
"""

import argparse
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from demo_static.examples import parse_strokes  # Omniglot stroke file -> [n, 3] arrays (x, y, t_ms)
from preprocessing.png import decode_png_ink
from preprocessing.spec import to_model_input

SIZE = 105  # Omniglot PNG side; the trajectories are in this frame
SUPERSAMPLE = 4  # render at 4x, then area-average down: anti-aliasing like a canvas
WIDTHS = [2.0, 3.0, 3.5, 4.0, 4.25, 4.5, 4.75, 5.0, 5.25, 5.5, 6.0, 7.0]
OFFSETS = np.arange(0.25, 1.001, 0.125)  # candidate sub-pixel shifts of the frame


def render(strokes, width: float, dx: float = 0.5, dy: float = 0.5) -> np.ndarray:
    """Strokes -> float ink [105, 105]: polylines with round joins and caps, anti-aliased.

    A point maps to the continuous pixel frame (pixel c covers [c, c+1)) as
    (x + dx, -y + dy): y grows upward in the files, rows grow downward.
    """
    s = SUPERSAMPLE
    image = Image.new("L", (SIZE * s, SIZE * s), 0)
    draw = ImageDraw.Draw(image)
    pen = max(1, round(width * s))
    radius = (pen - 1) / 2  # Pillow's ellipse box is inclusive, so this gives `pen` pixels across
    for stroke in strokes:
        # Supersampled pixel k is centred at continuous (k + 0.5) / s; Pillow puts k at integer k.
        points = [((x + dx) * s - 0.5, (-y + dy) * s - 0.5) for x, y, _ in stroke]
        if len(points) > 1:
            draw.line(points, fill=255, width=pen)
        for px, py in points:  # round joins and caps, and a dot for a single-point stroke
            draw.ellipse([px - radius, py - radius, px + radius, py + radius], fill=255)
    ink = np.asarray(image, dtype=np.float64) / 255.0
    return ink.reshape(SIZE, s, SIZE, s).mean(axis=(1, 3))


def load_pairs(data_dir: Path, per_zip: int):
    """Every k-th drawing of each strokes zip (deterministic) with its PNG's ink raster."""
    images = zipfile.ZipFile(data_dir / "images_background.zip")
    png_names = set(images.namelist())
    pairs, seen, unmatched = [], set(), 0
    for zip_name in ("strokes_background_small1.zip", "strokes_background_small2.zip"):
        strokes_zip = zipfile.ZipFile(data_dir / zip_name)
        names = sorted(n for n in strokes_zip.namelist() if n.endswith(".txt") and not n.startswith("__MACOSX"))
        # strokes_background_smallN/<Alphabet>/characterNN/NNNN_MM.txt  <->
        # images_background/<Alphabet>/characterNN/NNNN_MM.png
        relative = {n: n.split("/", 1)[1][: -len(".txt")] for n in names}
        unmatched += sum(f"images_background/{r}.png" not in png_names for r in relative.values())
        for name in names[:: max(1, len(names) // per_zip)][:per_zip]:
            if relative[name] in seen:  # Greek and Latin are in both zips
                continue
            seen.add(relative[name])
            ink = decode_png_ink(images.read(f"images_background/{relative[name]}.png"))
            pairs.append((relative[name], parse_strokes(strokes_zip.read(name).decode()), ink))
    return pairs, unmatched


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/omniglot"))
    parser.add_argument("--per-zip", type=int, default=150)
    args = parser.parse_args()
    start = time.perf_counter()
    pairs, unmatched = load_pairs(args.data_dir, args.per_zip)
    print(f"{len(pairs)} drawings; stroke files without a PNG: {unmatched}")

    # 1. The frame: the sub-pixel shift that maximises IoU at a plausible width.
    fit = pairs[::3]
    scores = {
        (dx, dy): np.mean([iou(render(s, 4.5, dx, dy) >= 0.5, png >= 0.5) for _, s, png in fit])
        for dx in OFFSETS
        for dy in OFFSETS
    }
    dx, dy = max(scores, key=scores.get)
    print(
        f"frame: column = x {dx - 0.5:+.3f}, row = -y {dy - 0.5:+.3f} "
        f"(pixel centres at integers; IoU {scores[dx, dy]:.3f} at width 4.5)"
    )

    # 2. The width, in the fitted frame.
    targets = [to_model_input(png) for _, _, png in pairs]
    print(
        "| width (px of 105) | width / raster side | ink IoU | MAD 28x28 (anti-aliased) "
        "| MAD 28x28 (binarised) | ink sum ratio (anti-aliased) |"
    )
    print("|---|---|---|---|---|---|")
    for width in WIDTHS:
        ious, mad_aa, mad_bin, ratio = [], [], [], []
        for (_, strokes, png), target in zip(pairs, targets, strict=False):
            ink = render(strokes, width, dx, dy)
            ious.append(iou(ink >= 0.5, png >= 0.5))
            model_aa = to_model_input(ink)
            mad_aa.append(np.abs(model_aa - target).mean())
            mad_bin.append(np.abs(to_model_input((ink >= 0.5).astype(float)) - target).mean())
            ratio.append(model_aa.sum() / target.sum())
        print(
            f"| {width:.2f} | {width / SIZE:.4f} | {np.mean(ious):.3f} | {np.mean(mad_aa):.4f} "
            f"| {np.mean(mad_bin):.4f} | {np.mean(ratio):.3f} |"
        )

    # How big Omniglot characters are on their raster: the pen width relative to the character.
    boxes = []
    for _, _, png in pairs:
        rows, cols = np.nonzero(png >= 0.5)
        boxes.append(max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1))
    q = np.percentile(boxes, [10, 50, 90])
    print(f"ink bounding box longer side (px of 105): 10% {q[0]:.0f}, median {q[1]:.0f}, 90% {q[2]:.0f}")
    print(f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
