"""Fidelity of the browser's drawing pipeline: Omniglot's real pen trajectories replayed through the
demo page as mouse events (Playwright, headless Chromium), compared with the PNGs they belong to.

For the first --drawings drawings of the first --characters held-out characters that have
trajectories (the paper's split with the bundle's training seed: 56 characters x 20 drawings exist;
Playwright sends each mouse move as a round trip, so all 1,120 take an hour on a busy 2-core box):

1. replay: each stroke's points -> page.mouse down / move / up on the page's "Test drawing"
   canvas (its content box stands for Omniglot's 105 x 105 frame); the page renders the strokes
   (pen width 0.045 of the side) and preprocesses them in JavaScript; its 28 x 28 model input is
   read back (window.reptileDemo.modelInputs);
2. the PNG through the Python preprocessing (what meta-training saw), and the same trajectory
   rendered by Python (Pillow, tools.strokes.render) for reference;
3. mean |difference| per pixel of the 28 x 28 inputs, and few-shot accuracy (5-way 1-shot, the
   bundle's default adaptation, --tasks tasks sampled once) on the replayed inputs vs on the PNGs.

    python -m benchmarks.stroke_replay [--url URL] [--characters 20] [--drawings 10] [--tasks 200]

Without --url it starts `python -m server`. The page adapts nothing meanwhile (its classes are
cleared first), so the replay measures drawing and preprocessing only.
"""

import argparse
import json
import time
import zipfile
from pathlib import Path

import numpy as np

from benchmarks.local_server import start_server, stop_server
from server.config import DEFAULT_MODEL
from tools.chromium import launch
from tools.examples import held_out_names
from tools.strokes import EPSILON_PX, SCALE, SIZE, STROKE_ZIPS, parse_strokes, rdp, render, trajectory_files

ROOT = Path(__file__).resolve().parent.parent


def load_drawings(data_dir: Path, seed: int, limit: int, per_character: int, epsilon: float):
    """-> [(character key, [(png bytes, strokes in 105-frame continuous coordinates)] * per_character)]"""
    _, held_out = held_out_names(data_dir, seed)
    found = {key: files for key, files in trajectory_files(data_dir).items() if key in held_out}
    archives = {name: zipfile.ZipFile(data_dir / name) for name in STROKE_ZIPS}
    images = zipfile.ZipFile(data_dir / "images_background.zip")
    characters = []
    for key in sorted(found)[:limit]:
        drawings = []
        for stem in sorted(found[key])[:per_character]:
            zip_name, member = found[key][stem]
            text = archives[zip_name].read(member).decode()
            strokes = [rdp(s, epsilon) if epsilon > 0 else s for s in parse_strokes(text)]
            strokes = [np.stack([s[:, 0] + 0.5, -s[:, 1] + 0.5], axis=1) for s in strokes]
            drawings.append((images.read(f"{key}/{stem}.png"), strokes))
        characters.append((key, drawings))
    return characters


def replay(page, strokes, box):
    """Draw the strokes (105-frame coordinates) on the page's canvas whose content box is `box`."""
    for stroke in strokes:
        points = [(box["x"] + x / SIZE * box["w"], box["y"] + y / SIZE * box["h"]) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point)
        page.mouse.up()


def main(argv=None) -> int:
    """Replay the drawings, then print the input differences and the accuracies (and a JSON summary)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "omniglot")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--characters", type=int, default=20, help="held-out characters (at most 56)")
    parser.add_argument("--drawings", type=int, default=10, help="drawings per character (at most 20)")
    parser.add_argument(
        "--epsilon",
        type=float,
        default=EPSILON_PX,
        help="simplify the trajectories within this many px of 105 first, as the presets (0: raw)",
    )
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, help="write the inputs (npz) here")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from bundle import load_bundle
    from preprocessing import decode_png_ink, to_model_input

    bundle = load_bundle(args.model)
    seed = bundle.manifest["provenance"]["training_config"]["seed"]
    characters = load_drawings(args.data_dir, seed, args.characters, args.drawings, args.epsilon)
    n = sum(len(d) for _, d in characters)
    points = sum(len(s) for _, d in characters for _, strokes in d for s in strokes)
    print(
        f"{len(characters)} held-out characters with trajectories, {n} drawings, {points} points "
        f"(simplified within {args.epsilon} px)",
        flush=True,
    )

    png = np.stack([[to_model_input(decode_png_ink(p)) for p, _ in d] for _, d in characters]).astype(np.float32)
    python_render = np.stack(
        [
            [
                to_model_input(
                    render(
                        [np.concatenate([s / SIZE * SCALE, np.zeros((len(s), 1))], 1).ravel().tolist() for s in strokes]
                    )
                )
                for _, strokes in d
            ]
            for _, d in characters
        ]
    ).astype(np.float32)

    process, url = None, (args.url or "").rstrip("/")
    if not args.url:
        process, url, _ = start_server("--log-level", "warning")
    replayed = np.zeros_like(png)
    started = time.perf_counter()
    try:
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{url}/?classes=2&mode=server")
            page.wait_for_selector('#demo[data-ready="true"]', state="attached")
            page.get_by_role("button", name="Clear all", exact=True).click()
            canvas = page.get_by_label("Test drawing", exact=True)
            canvas.scroll_into_view_if_needed()
            box = page.evaluate("""() => { const c = document.querySelector('canvas.pad.big');
                const r = c.getBoundingClientRect();
                return {x: r.left + c.clientLeft, y: r.top + c.clientTop, w: c.clientWidth, h: c.clientHeight}; }""")
            for i, (_, drawings) in enumerate(characters):
                for j, (_, strokes) in enumerate(drawings):
                    replay(page, strokes, box)
                    replayed[i, j] = np.array(
                        page.evaluate("window.reptileDemo.modelInputs().tests[0]"), np.float32
                    ).reshape(28, 28)
                    canvas.focus()
                    page.keyboard.press("Delete")  # clear the pad
            browser.close()
    finally:
        if process:
            stop_server(process)
    replay_s = time.perf_counter() - started
    if args.save:
        np.savez_compressed(args.save, png=png, replayed=replayed, python_render=python_render)

    def mad(a, b):
        d = np.abs(a - b).mean(axis=(2, 3))
        return f"{d.mean():.4f} (median {np.median(d):.4f}, 95th pct {np.percentile(d, 95):.4f})"

    print(f"replayed {n} drawings in {replay_s:.0f} s")
    print(f"MAD 28x28, replay in Chromium vs PNG:          {mad(replayed, png)}")
    print(f"MAD 28x28, Python render of the strokes vs PNG: {mad(python_render, png)}")
    print(f"MAD 28x28, replay in Chromium vs Python render: {mad(replayed, python_render)}")

    rng = np.random.default_rng(args.seed)
    ways = 5
    correct = {"png": 0, "replayed": 0, "replayed support, png query": 0}
    for _ in range(args.tasks):
        classes = rng.choice(len(characters), ways, replace=False)
        pairs = [rng.choice(png.shape[1], 2, replace=False) for _ in classes]
        labels = np.arange(ways)
        for name, support_set, query_set in (
            ("png", png, png),
            ("replayed", replayed, replayed),
            ("replayed support, png query", replayed, png),
        ):
            support = np.stack([support_set[c, s] for c, (s, _) in zip(classes, pairs, strict=False)])
            query = np.stack([query_set[c, q] for c, (_, q) in zip(classes, pairs, strict=False)])
            result = bundle.adapt(support, labels, query)
            correct[name] += int((result.predictions == labels).sum())
    total = args.tasks * ways
    for name, count in correct.items():
        p = count / total
        print(
            f"5-way 1-shot accuracy, {name}: {100 * p:.1f} % +- {196 * np.sqrt(p * (1 - p) / total):.1f} "
            f"({args.tasks} tasks, {bundle.defaults['steps']} steps)"
        )
    print(
        json.dumps(
            {
                "drawings": n,
                "characters": len(characters),
                "tasks": args.tasks,
                "accuracy": {k: v / total for k, v in correct.items()},
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
