"""Build web/examples/heldout.json: the demo's preset drawings, as real pen trajectories of Omniglot
characters that meta-training never saw.

Which characters are honest to use: the model is meta-trained on the paper's split (all 1,623
characters of both zips shuffled with the training seed, the first 1,200 for training, the other
423 held out; training/omniglot.py `Omniglot.split`). Omniglot's published pen trajectories
(`strokes_background_small{1,2}.zip`) cover 8 background alphabets only, but the split is by
character, not by alphabet, so about a quarter of those characters are held out: this script takes
presets only from them (never seen in meta-training, like every test task of the evaluation;
their alphabets were seen through other characters, as in the paper's evaluation). The images
of the evaluation alphabets have no trajectories, and turning a PNG back into strokes would be
our guess, not a drawing.

Choice: alphabets in sorted order, round robin, one held-out character of each in turn (picked
with numpy's default_rng(SELECTION_SEED)) until CHARACTERS are chosen; for each the first
DRAWINGS drawings (sorted file names; 20 people drew each character). No choice looks at the
model. Coordinates: the trajectory frame is the PNG's 105 x 105 pixel frame with y up
(docs/preprocessing.md); stored as integers in 1/1000 of the square drawing area (x right,
y down), after Ramer-Douglas-Peucker simplification within EPSILON_PX of the 105 px frame, with
the time stamps in ms from the drawing's first point.

    python -m demo_static.examples [--data-dir ../shared/data/omniglot] [--model static/models/omniglot-20w]
"""

import argparse
import json
import zipfile
from pathlib import Path

import numpy as np

from server.config import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "web" / "examples" / "heldout.json"
STROKE_ZIPS = ("strokes_background_small1.zip", "strokes_background_small2.zip")
CHARACTERS = 10  # the demo's most classes
DRAWINGS = 6  # 5 examples (the most shots) + 1 test drawing
SELECTION_SEED = 2018
EPSILON_PX = 0.3
SIZE = 105
SCALE = 1000  # stored coordinate units per drawing-area side
PEN_WIDTH = 0.045  # x raster side (docs/preprocessing.md)


def parse_strokes(text: str) -> list:
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
        out.append([int(round(v)) for a, b, c in zip(x, y, t, strict=False) for v in (a * SCALE, b * SCALE, c)])
    return out


def render(strokes: list, size: int = SIZE, supersample: int = 4) -> np.ndarray:
    """Stored strokes -> ink [size, size] in [0, 1], the recipe of docs/preprocessing.md (anti-aliased
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


def held_out_names(data_dir: Path, seed: int) -> tuple:
    """(all character names in load_omniglot's order, the set of held-out ones) without decoding."""
    from training.omniglot import NUM_TRAIN_CHARACTERS, ZIPS, _layout

    names = []
    for zip_name in ZIPS:
        with zipfile.ZipFile(data_dir / zip_name) as archive:
            names += [key for key, _ in _layout(archive, zip_name, data_dir / zip_name)]
    order = np.random.default_rng(seed).permutation(len(names))
    return names, {names[i] for i in order[NUM_TRAIN_CHARACTERS:]}


def build(data_dir: Path, model_dir: Path) -> dict:
    from preprocessing import decode_png_ink, to_model_input

    manifest = json.loads((model_dir / "model.json").read_text())
    config = (manifest.get("provenance") or {}).get("training_config") or {}
    if config.get("dataset", "omniglot") != "omniglot":
        raise SystemExit(f"{model_dir} is not an Omniglot model")
    seed = int(config.get("seed", 0))
    _, held_out = held_out_names(data_dir, seed)

    drawings = {}  # "images_background/<Alphabet>/<character>" -> {file stem: (zip, member)}
    archives = {name: zipfile.ZipFile(data_dir / name) for name in STROKE_ZIPS}
    for zip_name, archive in archives.items():
        for member in archive.namelist():
            parts = member.split("/")
            if len(parts) == 4 and parts[3].endswith(".txt") and not parts[0].startswith("__MACOSX"):
                key = f"images_background/{parts[1]}/{parts[2]}"
                drawings.setdefault(key, {})[parts[3][:-4]] = (zip_name, member)
    candidates = sorted(k for k in drawings if k in held_out and len(drawings[k]) >= DRAWINGS)
    by_alphabet = {}
    for key in candidates:
        by_alphabet.setdefault(key.split("/")[1], []).append(key)
    rng = np.random.default_rng(SELECTION_SEED)
    for keys in by_alphabet.values():
        rng.shuffle(keys)
    chosen = []
    while len(chosen) < CHARACTERS and any(by_alphabet.values()):
        for alphabet in sorted(by_alphabet):
            if by_alphabet[alphabet] and len(chosen) < CHARACTERS:
                chosen.append(by_alphabet[alphabet].pop(0))

    images = zipfile.ZipFile(data_dir / "images_background.zip")
    characters, differences = [], []
    for key in chosen:
        _, alphabet, character = key.split("/")
        entries = []
        for stem in sorted(drawings[key])[:DRAWINGS]:
            zip_name, member = drawings[key][stem]
            strokes = to_frame(parse_strokes(archives[zip_name].read(member).decode()))
            png = images.read(f"{key}/{stem}.png")
            mad = float(np.abs(to_model_input(render(strokes)) - to_model_input(decode_png_ink(png))).mean())
            differences.append(mad)
            entries.append({"file": f"{key}/{stem}.png", "strokes": strokes})
        characters.append(
            {
                "name": f"{alphabet.replace('_', ' ')} {int(character[len('character') :])}",
                "alphabet": alphabet,
                "character": character,
                "drawings": entries,
            }
        )
    return {
        "format": "reptile-demo-examples",
        "format_version": 1,
        "description": "Real pen trajectories (Omniglot, Lake et al. 2015, MIT licence) of characters held out "
        "from meta-training: the paper's character split with the training seed. Their alphabets "
        "were seen in training through other characters, as in the paper's evaluation.",
        "source": {
            "strokes": list(STROKE_ZIPS),
            "images": "images_background.zip",
            "split": {
                "seed": seed,
                "rule": "default_rng(seed).permutation of all 1,623 characters; "
                "the first 1,200 train, the rest held out",
            },
            "model": manifest.get("name"),
            "held_out_with_strokes": len(candidates),
            "selection": f"round robin over sorted alphabets, default_rng({SELECTION_SEED}); "
            f"first {DRAWINGS} drawings (sorted) of each",
        },
        "coordinates": {
            "unit": f"per stroke a flat list x, y, t, x, y, t, ...: x, y in 1/{SCALE} of the square "
            "drawing area (x right, y down), t in ms from the drawing's first point",
            "simplification": f"Ramer-Douglas-Peucker, {EPSILON_PX} px of {SIZE}",
        },
        "fidelity": {
            "what": "mean |difference| per pixel of the 28x28 model input, stored strokes rendered "
            f"at pen width {PEN_WIDTH} vs the drawing's own PNG",
            "mean": round(float(np.mean(differences)), 4),
            "max": round(float(np.max(differences)), 4),
        },
        "characters": characters,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "omniglot")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    result = build(args.data_dir, args.model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, separators=(",", ":"))
    args.out.write_text(text + "\n")
    print(
        f"{args.out}: {len(result['characters'])} characters, {len(text)} bytes; "
        f"{result['source']['held_out_with_strokes']} held-out characters have strokes; "
        f"model-input difference to the PNGs {result['fidelity']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
