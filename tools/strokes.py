"""Omniglot's pen trajectories (`strokes_background_small{1,2}.zip`): find, parse, simplify, pack and
render them.

A trajectory file `strokes_background_smallN/<Alphabet>/characterNN/NNNN_MM.txt` is the drawing
behind `images_background/<Alphabet>/characterNN/NNNN_MM.png`; its points are in the PNG's
105 x 105 pixel frame with y up (docs/preprocessing.md). The packed form is web/js/strokes.js's:
per stroke a flat list x, y, t of integers, x and y in 1/SCALE of the square drawing area (y down).
"""

import zipfile
from pathlib import Path

import numpy as np

STROKE_ZIPS = ("strokes_background_small1.zip", "strokes_background_small2.zip")
SIZE = 105  # the PNG's side: the trajectories' frame
SCALE = 1000  # packed coordinate units per drawing-area side
EPSILON_PX = 0.3  # Ramer-Douglas-Peucker tolerance, px of SIZE
PEN_WIDTH = 0.045  # x raster side (docs/preprocessing.md)


def trajectory_files(data_dir: Path) -> dict:
    """{"images_background/<Alphabet>/<character>": {drawing file stem: (strokes zip name, member)}}."""
    found = {}
    for zip_name in STROKE_ZIPS:
        with zipfile.ZipFile(data_dir / zip_name) as archive:
            for member in archive.namelist():
                parts = member.split("/")
                if len(parts) == 4 and parts[3].endswith(".txt") and not parts[0].startswith("__MACOSX"):
                    key = f"images_background/{parts[1]}/{parts[2]}"
                    found.setdefault(key, {})[parts[3][: -len(".txt")]] = (zip_name, member)
    return found


def parse_strokes(text: str) -> list:
    """A trajectory file's text -> one float array [points, 3] (x, y, t_ms) per stroke."""
    strokes, current = [], []
    for line in text.splitlines():
        line = line.strip()
        if line in ("START", ""):
            continue
        if line == "BREAK":
            if current:
                strokes.append(np.array(current, dtype=np.float64))
            current = []
            continue
        current.append([float(v) for v in line.split(",")])
    if current:
        strokes.append(np.array(current, dtype=np.float64))
    return strokes


def rdp(points: np.ndarray, epsilon: float) -> np.ndarray:
    """Ramer-Douglas-Peucker on the (x, y) columns; keeps the first and last point."""
    if len(points) < 3:
        return points
    keep = np.zeros(len(points), dtype=bool)
    keep[[0, -1]] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        if last <= first + 1:
            continue
        a, b = points[first, :2], points[last, :2]
        segment = b - a
        length = np.hypot(*segment)
        middle = points[first + 1 : last, :2]
        if length == 0:
            distances = np.hypot(*(middle - a).T)
        else:
            distances = np.abs(segment[0] * (middle[:, 1] - a[1]) - segment[1] * (middle[:, 0] - a[0])) / length
        index = int(np.argmax(distances))
        if distances[index] > epsilon:
            split = first + 1 + index
            keep[split] = True
            stack += [(first, split), (split, last)]
    return points[keep]


def to_frame(strokes: list) -> list:
    """Trajectory points -> per stroke a flat list x0, y0, t0, x1, ... (integers: x, y in 1/SCALE of the
    square drawing area, y down; t in ms), the packing of web/js/strokes.js packStrokes."""
    t0 = min(s[0, 2] for s in strokes)
    out = []
    for stroke in strokes:
        simple = rdp(stroke, EPSILON_PX)
        # pixel (r, c) of the PNG is centred at x = c, y = -r; its area is [c, c+1) x [r, r+1)
        x = (simple[:, 0] + 0.5) / SIZE
        y = (-simple[:, 1] + 0.5) / SIZE
        t = simple[:, 2] - t0
        out.append([int(round(v)) for a, b, c in zip(x, y, t, strict=True) for v in (a * SCALE, b * SCALE, c)])
    return out


def render(strokes: list, size: int = SIZE, supersample: int = 4) -> np.ndarray:
    """Packed strokes -> ink [size, size] in [0, 1], the recipe of docs/preprocessing.md (anti-aliased
    by supersampling; round caps and joins as discs)."""
    from PIL import Image, ImageDraw

    s = supersample
    image = Image.new("L", (size * s, size * s), 0)
    draw = ImageDraw.Draw(image)
    pen = max(1, round(PEN_WIDTH * size * s))
    radius = (pen - 1) / 2
    for stroke in strokes:
        points = [
            (stroke[i] / SCALE * size * s - 0.5, stroke[i + 1] / SCALE * size * s - 0.5)
            for i in range(0, len(stroke), 3)
        ]
        if len(points) > 1:
            draw.line(points, fill=255, width=pen)
        for px, py in points:
            draw.ellipse([px - radius, py - radius, px + radius, py + radius], fill=255)
    ink = np.asarray(image, dtype=np.float64) / 255.0
    return ink.reshape(size, s, size, s).mean(axis=(1, 3))
