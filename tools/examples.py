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
model. Coordinates: packed as web/js/strokes.js reads them (tools/strokes.py `to_frame`: integers
in 1/1000 of the square drawing area, x right, y down, after Ramer-Douglas-Peucker simplification
within 0.3 px of the 105 px frame; time stamps in ms from the drawing's first point).

    python -m tools.examples [--data-dir ../shared/data/omniglot] [--model static/models/omniglot-20w]
"""

import argparse
import json
import zipfile
from pathlib import Path

import numpy as np

from tools.strokes import (
    EPSILON_PX,
    PEN_WIDTH,
    SCALE,
    SIZE,
    STROKE_ZIPS,
    parse_strokes,
    render,
    to_frame,
    trajectory_files,
)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "web" / "examples" / "heldout.json"
DEFAULT_MODEL = ROOT / "static" / "models" / "omniglot-20w"  # the bundle the server serves by default
CHARACTERS = 10  # the demo's most classes
DRAWINGS = 6  # 5 examples (the most shots) + 1 test drawing
SELECTION_SEED = 2018


def held_out_names(data_dir: Path, seed: int) -> tuple:
    """(all character names in load_omniglot's order, the set of held-out ones) without decoding."""
    from training.omniglot import NUM_TRAIN_CHARACTERS, ZIPS, character_layout

    names = []
    for zip_name in ZIPS:
        with zipfile.ZipFile(data_dir / zip_name) as archive:
            names += [key for key, _ in character_layout(archive, zip_name, data_dir / zip_name)]
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

    drawings = trajectory_files(data_dir)
    archives = {name: zipfile.ZipFile(data_dir / name) for name in STROKE_ZIPS}
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
