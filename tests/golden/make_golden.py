"""Writes tests/golden/preprocess_v1.json: golden vectors for preprocessing spec v1.

Both implementations (preprocessing/spec.py and web/js/preprocess.js) must reproduce these.
The file is deterministic: tests/test_preprocessing.py regenerates it in memory and compares.
Synthetic drawings are computed with plain float arithmetic (no rasteriser whose output
could change between library versions); the real ones are PNGs from the shared Omniglot copy.

Usage: python tests/golden/make_golden.py [--data-dir ../shared/data/omniglot]
"""

import argparse
import base64
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from preprocessing import spec  # noqa: E402
from preprocessing.png import decode_png_ink  # noqa: E402

OUT = Path(__file__).with_name("preprocess_v1.json")
OMNIGLOT_PNGS = [  # three alphabets, three very different shapes
    "images_background/Balinese/character01/0108_03.png",
    "images_background/Korean/character05/0647_01.png",
    "images_background/Latin/character26/0708_20.png",
]

FORMAT = (
    "Rasters are row-major. 'ink': nested rows of numbers in [0, 1] (1 = ink), the exact input "
    "of to_model_input. 'rgba_base64': raw RGBA bytes (height*width*4) as from getImageData; "
    "'ink' is then ink_from_rgba of it, rounded to 1e-9. 'png_base64': the PNG file; 'ink' is "
    "its decoded ink raster. 'expected.output': 28 rows of 28 float32 values rounded to 1e-6, "
    "or 'expected.error' = 'EmptyDrawingError'. 'expected.bbox': ink bounding box, half-open "
    "pixel indices; 'box' and 'side' in source pixels; 'window': top-left corner of the square "
    "window in source pixel coordinates (pixel r covers [r, r+1))."
)


def stroke_ink(height: int, width: int, polylines, pen: float) -> np.ndarray:
    """Anti-aliased pen strokes: ink falls linearly from 1 to 0 over the pen's edge pixel.

    Pixel (r, c) has its centre at (r + 0.5, c + 0.5); points are (row, col).
    Rounded to 1e-3 so the stored raster is exactly what was preprocessed.
    """
    rows, cols = np.mgrid[0:height, 0:width] + 0.5
    distance = np.full((height, width), np.inf)
    for line in polylines:
        line = np.asarray(line, dtype=np.float64)
        if len(line) == 1:
            line = np.vstack([line, line])
        for (r0, c0), (r1, c1) in zip(line[:-1], line[1:], strict=False):
            dr, dc = r1 - r0, c1 - c0
            length2 = dr * dr + dc * dc
            t = np.zeros_like(rows) if length2 == 0 else ((rows - r0) * dr + (cols - c0) * dc) / length2
            t = np.clip(t, 0.0, 1.0)
            d = np.sqrt((rows - r0 - t * dr) ** 2 + (cols - c0 - t * dc) ** 2)
            distance = np.minimum(distance, d)
    return np.round(np.clip(pen / 2.0 + 0.5 - distance, 0.0, 1.0), 3)


def canvas_rgba() -> np.ndarray:
    """A canvas-like export: transparent black background (a cleared canvas is (0,0,0,0)),
    an anti-aliased dark-blue stroke and an 80 %-opaque red one."""
    height = width = 96
    rgba = np.zeros((height, width, 4), dtype=np.uint8)
    blue = stroke_ink(height, width, [[(20, 30), (70, 25), (75, 60)], [(45, 20), (45, 55)]], 4.0)
    red = stroke_ink(height, width, [[(15, 70), (60, 80)]], 5.0)
    for colour, coverage in (((20, 30, 120, 255), blue), ((220, 20, 20, 204), red)):
        alpha = np.round(coverage * colour[3]).astype(np.uint8)
        mask = alpha > 0
        rgba[mask, :3] = colour[:3]
        rgba[mask, 3] = np.maximum(rgba[mask, 3], alpha[mask])
    return rgba


def faint_rgba() -> np.ndarray:
    """Opaque white with light-grey strokes (ink ~0.37 < 0.5) and a transparent corner: no ink."""
    rgba = np.full((64, 64, 4), 255, dtype=np.uint8)
    grey = stroke_ink(64, 64, [[(10, 10), (50, 40)]], 3.0) > 0
    rgba[grey, :3] = 160
    rgba[:16, :16] = 0
    return rgba


def window(ink: np.ndarray) -> dict:
    """The intermediate values of docs/preprocessing.md, written out for debugging a port."""
    rows = np.nonzero((ink >= spec.INK_THRESHOLD).any(axis=1))[0]
    cols = np.nonzero((ink >= spec.INK_THRESHOLD).any(axis=0))[0]
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    box = float(max(y1 - y0, x1 - x0, spec.MIN_BOX_FRACTION * max(ink.shape)))
    side = box * spec.OUTPUT_SIZE / spec.INK_BOX_SIDE
    return {
        "bbox": {"top": y0, "bottom": y1, "left": x0, "right": x1},
        "box": box,
        "side": side,
        "window": {"top": (y0 + y1) / 2.0 - side / 2.0, "left": (x0 + x1) / 2.0 - side / 2.0},
    }


def number(value: float, digits: int):
    """Rounded, and written as an int when whole, to keep the file small and exact."""
    value = round(float(value), digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    return int(value) if value.is_integer() else value


def matrix(a: np.ndarray, digits: int) -> list:
    return [[number(v, digits) for v in row] for row in a]


def make_case(name: str, note: str, ink: np.ndarray, **inputs) -> dict:
    case = {"name": name, "note": note, "width": ink.shape[1], "height": ink.shape[0], **inputs}
    case["ink"] = matrix(ink, 9)
    try:
        output = spec.to_model_input(ink)
    except spec.EmptyDrawingError:
        case["expected"] = {"error": "EmptyDrawingError"}
    else:
        case["expected"] = {**window(ink), "output": matrix(output, 6)}
    return case


def cases(data_dir: Path) -> list[dict]:
    found = []
    with zipfile.ZipFile(data_dir / "images_background.zip") as images:
        for path in OMNIGLOT_PNGS:
            png = images.read(path)
            ink = decode_png_ink(png)
            found.append(
                make_case(
                    "omniglot_" + path.split("/")[1].lower(),
                    f"real Omniglot PNG {path} (1-bit, 105x105)",
                    ink,
                    png_base64=base64.b64encode(png).decode("ascii"),
                )
            )

    found.append(
        make_case(
            "small_off_centre",
            "a ~30 px drawing in the top-right corner of a 105 raster: cropped, centred and enlarged",
            stroke_ink(105, 105, [[(8, 64), (36, 68), (33, 92)]], 3.0),
        )
    )
    found.append(
        make_case(
            "wide_flat_stroke",
            "an 80 px wide, 5 px tall stroke: the aspect ratio is kept, the short side padded",
            stroke_ink(105, 105, [[(60, 12), (58, 90)]], 4.0),
        )
    )
    found.append(
        make_case(
            "tiny_dot",
            "a 3 px dot: the window is the minimum, 1/4 of the raster side * 28/22",
            stroke_ink(105, 105, [[(40.5, 70.5)]], 2.0),
        )
    )
    found.append(
        make_case(
            "touching_edge",
            "ink along the top and left edges: the window extends outside, which counts as 0",
            stroke_ink(105, 105, [[(0.5, 60), (0.5, 0.5), (50, 0.5)], [(0.5, 0.5), (40, 40)]], 3.0),
        )
    )
    found.append(
        make_case(
            "non_square_120x80",
            "width 120, height 80, a 24x12 drawing: the minimum box is 1/4 of the LARGER side (30)",
            stroke_ink(80, 120, [[(50, 20), (50, 42)], [(45, 30), (56, 30)]], 2.0),
        )
    )

    for name, note, rgba in (
        (
            "canvas_rgba_antialiased",
            "96x96 RGBA canvas export: transparent black background, anti-aliased blue and 80 %-opaque red ink",
            canvas_rgba(),
        ),
        (
            "empty_faint_ink",
            "light grey strokes (ink 0.37) on white with a transparent corner: no pixel reaches 0.5, "
            "so EmptyDrawingError",
            faint_rgba(),
        ),
    ):
        ink = spec.ink_from_rgba(rgba)
        # A computed ink value at the threshold could land on either side in another language.
        assert not np.any(np.abs(ink - spec.INK_THRESHOLD) < 1e-6), name
        found.append(make_case(name, note, ink, rgba_base64=base64.b64encode(rgba.tobytes()).decode("ascii")))
    return found


def dumps(value, indent: str = "") -> str:
    """JSON with one matrix row a line: small, diffable, and readable when a port disagrees."""
    inner = indent + " "
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k)}: {dumps(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and value and isinstance(value[0], (list, dict)):
        return "[\n" + ",\n".join(inner + dumps(v, inner) for v in value) + "\n" + indent + "]"
    return json.dumps(value, separators=(",", ":"))


def build(data_dir: Path) -> str:
    golden = {
        "spec_version": spec.SPEC_VERSION,
        "output_size": spec.OUTPUT_SIZE,
        "ink_threshold": spec.INK_THRESHOLD,
        "ink_box_side": spec.INK_BOX_SIDE,
        "min_box_fraction": spec.MIN_BOX_FRACTION,
        "format": FORMAT,
        "generated_by": "tests/golden/make_golden.py",
        "cases": cases(data_dir),
    }
    return dumps(golden) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "omniglot")
    args = parser.parse_args()
    text = build(args.data_dir)
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(text) / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
