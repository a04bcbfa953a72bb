"""The "none of these" flags in the browser: pen trajectories and scribbles replayed through the demo page
as mouse events (Playwright, headless Chromium) and adapted by the page's Web Worker (browser mode).

Characters: the held-out characters (the bundle's training seed's split) that have Omniglot pen
trajectories: 56 characters of 8 background alphabets, 20 drawings each (tools/strokes.py; the
evaluation alphabets have none). Each task (--ways x --shots): ways + 1 of them at random, ways in-set
characters with shots + 1 drawings each (the examples, and one test drawing), one drawing of the
last as the *novel* test drawing, and a random *scribble* (tools/open_set_tasks.py scribble_strokes),
all drawn on the page's pads as mouse strokes (points simplified within 0.3 px of 105, as the
presets). The page holds 4 test drawings at most, so a task's N + 2 test drawings go in rounds of up
to 4 with the same examples, one adaptation each: each test drawing is predicted and scored in one
batch with the examples only (non-transductive), so the rounds do not change its answer.

Read back per round: window.reptileDemo.lastResult (probabilities, unknownScores, unknown: as the
worker returned them) and the page's model inputs. Checks: each drawing's model input against the
Python render of the same strokes (mean |difference| per pixel), and the same inputs through
Bundle.adapt in Python (flags that disagree, largest score difference).

    python -m benchmarks.open_set_browser [--url URL] [--model DIR] [--tasks 50] [--ways 5] [--shots 1]
        [--seed 0] [--out open_set_browser.json]

Without --url it starts `python -m server` serving --model (default the served bundle).
"""

import argparse
import json
import os
import platform
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from benchmarks.local_server import start_server, stop_server
from benchmarks.open_set_study import positive
from benchmarks.stroke_replay import replay
from server.config import DEFAULT_MODEL
from tools.chromium import launch
from tools.examples import held_out_names
from tools.open_set_tasks import SCRIBBLE, scribble_strokes
from tools.strokes import SCALE, SIZE, STROKE_ZIPS, parse_strokes, to_frame, trajectory_files

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("OMNIGLOT_DATA_DIR", ROOT.parent / "shared" / "data" / "omniglot"))
MAX_TESTS = 4  # web/js/board.js MAX_TESTS: test drawings on the page
WAIT_MS = 120_000  # for one adaptation in the browser


def held_out_trajectories(data_dir: Path, seed: int) -> dict:
    """{character key: [packed strokes of each drawing (sorted file names)]} for the held-out characters
    (split with `seed`) that have trajectories."""
    _, held_out = held_out_names(data_dir, seed)
    files = {key: found for key, found in trajectory_files(data_dir).items() if key in held_out}
    archives = {name: zipfile.ZipFile(data_dir / name) for name in STROKE_ZIPS}
    found = {}
    for key, stems in sorted(files.items()):
        members = [stems[stem] for stem in sorted(stems)]
        found[key] = [to_frame(parse_strokes(archives[name].read(member).decode())) for name, member in members]
    return found


def draw_task(rng, characters: dict, ways: int, shots: int) -> dict:
    """One task: {"classes": [key] * N, "novel": key, "support": [[strokes] * K] * N,
    "queries": [strokes] * (N + 2)}, the queries being the in-set test drawings, the novel one, the scribble."""
    keys = sorted(characters)
    chosen = [keys[i] for i in rng.choice(len(keys), ways + 1, replace=False)]
    support, queries = [], []
    for key in chosen[:ways]:
        picks = rng.choice(len(characters[key]), shots + 1, replace=False)
        support.append([characters[key][i] for i in picks[:shots]])
        queries.append(characters[key][picks[shots]])
    novel = characters[chosen[ways]]
    queries += [novel[int(rng.integers(len(novel)))], scribble_strokes(rng)]
    return {"classes": chosen[:ways], "novel": chosen[ways], "support": support, "queries": queries}


class DemoPage:
    """The demo page in browser mode with `ways` classes of `shots` examples and MAX_TESTS test drawings."""

    def __init__(self, browser, url: str, ways: int, shots: int):
        self.page = browser.new_page(viewport={"width": 1280, "height": 1400})
        self.page.goto(f"{url}/?classes={ways}&shots={shots}&mode=browser")
        self.page.wait_for_selector('#demo[data-ready="true"]', state="attached")
        self.page.get_by_role("button", name="Clear all", exact=True).click()
        for _ in range(MAX_TESTS - 1):
            self.page.locator("#add-test").click()

    def pad(self, label: str):
        return self.page.get_by_label(label, exact=True)

    def draw(self, label: str, strokes: list) -> None:
        """Replay packed strokes on the pad named `label` (its content box, measured now, is the drawing area)."""
        pad = self.pad(label)
        pad.scroll_into_view_if_needed()
        box = pad.evaluate("""c => { const r = c.getBoundingClientRect();
            return {x: r.left + c.clientLeft, y: r.top + c.clientTop, w: c.clientWidth, h: c.clientHeight}; }""")
        points = [np.asarray(s, dtype=np.float64).reshape(-1, 3)[:, :2] / SCALE * SIZE for s in strokes]
        replay(self.page, points, box)

    def clear(self, label: str) -> None:
        self.pad(label).focus()
        self.page.keyboard.press("Delete")

    def adaptations(self) -> int:
        return self.page.evaluate("window.reptileDemo.adaptations")

    def result_after(self, count: int) -> dict:
        """The first prediction shown after the page's count-th: its result and the page's model inputs."""
        self.page.wait_for_function(
            "c => window.reptileDemo.adaptations > c && !document.getElementById('demo').classList.contains('busy')",
            arg=count,
            timeout=WAIT_MS,
        )
        return self.page.evaluate("""() => { const r = window.reptileDemo.lastResult;
            return {probabilities: r.probabilities, unknownScores: r.unknownScores ?? null, unknown: r.unknown ?? null,
                    queryIndex: r.queryIndex, place: r.place, inputs: window.reptileDemo.modelInputs()}; }""")


def run_task(demo: DemoPage, task: dict, shots: int) -> list:
    """Draw one task on the page, round by round -> the rounds' results (each with its queries' indices)."""
    rounds = [
        list(range(i, min(i + MAX_TESTS, len(task["queries"])))) for i in range(0, len(task["queries"]), MAX_TESTS)
    ]
    results = []
    for r, queries in enumerate(rounds):
        first_example = "Class 1 example 1"
        if r == 0:
            demo.page.get_by_role("button", name="Clear all", exact=True).click()
        else:  # class 1 without an example adapts nothing while the test drawings change
            demo.clear(first_example)
            for t in range(MAX_TESTS):
                demo.clear("Test drawing" if t == 0 else f"Test drawing {t + 1}")
        for t, q in enumerate(queries):
            demo.draw("Test drawing" if t == 0 else f"Test drawing {t + 1}", task["queries"][q])
        examples = [(c, e) for c in range(len(task["support"])) for e in range(shots)] if r == 0 else [(0, 0)]
        for c, e in examples[:-1]:
            demo.draw(f"Class {c + 1} example {e + 1}", task["support"][c][e])
        before = demo.adaptations()
        c, e = examples[-1]
        demo.draw(f"Class {c + 1} example {e + 1}", task["support"][c][e])
        found = demo.result_after(before)
        if found["unknown"] is None:
            raise SystemExit(
                "open_set_browser: the page's adaptation returned no unknown flags (a bundle without an "
                "open_set section, or a page without the open-set score)"
            )
        found["queries"] = queries
        results.append(found)
    return results


def check_in_python(bundle, found: dict, shots: int) -> tuple:
    """The page's model inputs of one round through Bundle.adapt -> (flags that differ, max |score difference|)."""
    support = np.array([x for drawings in found["inputs"]["classes"] for x in drawings], np.float32).reshape(-1, 28, 28)
    labels = np.repeat(np.arange(len(found["inputs"]["classes"])), shots)
    queries = np.array([found["inputs"]["tests"][t] for t in found["queryIndex"]], np.float32).reshape(-1, 28, 28)
    result = bundle.adapt(support, labels, queries)
    differ = int((result.unknown != np.array(found["unknown"])).sum())
    return differ, float(np.abs(result.unknown_scores - np.array(found["unknownScores"])).max())


def input_difference(found: dict, task: dict, shots: int) -> list:
    """Mean |page model input - Python render| per pixel of every drawing of one round."""
    from preprocessing import to_model_input
    from tools.strokes import render

    pairs = [
        (found["inputs"]["tests"][t], task["queries"][q])
        for t, q in zip(found["queryIndex"], found["queries"], strict=True)
    ]
    pairs += [
        (found["inputs"]["classes"][c][e], task["support"][c][e])
        for c in range(len(task["support"]))
        for e in range(shots)
    ]
    return [
        float(np.abs(np.array(page, np.float32) - to_model_input(render(strokes)).ravel()).mean())
        for page, strokes in pairs
    ]


def main(argv=None) -> int:
    """Replay the tasks in the browser, print the flag rates and the checks (and --out JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running demo server (default: start one serving --model)")
    parser.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, help="the bundle the server serves (started here, or at --url)"
    )
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="Omniglot zips (env OMNIGLOT_DATA_DIR)")
    parser.add_argument("--tasks", type=positive, default=50)
    parser.add_argument("--ways", type=int, default=5, choices=range(2, 11), metavar="2..10")
    parser.add_argument("--shots", type=int, default=1, choices=range(1, 6), metavar="1..5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the figures here (JSON)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from bundle import MANIFEST_FILE, BundleError, load_bundle, sha256_file

    try:
        bundle = load_bundle(args.model, threads=1)
    except BundleError as error:
        parser.exit(2, f"open_set_browser: {error}\n")
    if bundle.open_set is None:
        parser.exit(2, f"open_set_browser: {args.model} has no open_set section: it flags nothing to measure\n")
    characters = held_out_trajectories(args.data_dir, bundle.manifest["provenance"]["training_config"]["seed"])
    print(f"{len(characters)} held-out characters with pen trajectories, {args.tasks} tasks", flush=True)
    rng = np.random.default_rng(args.seed)
    tasks = [draw_task(rng, characters, args.ways, args.shots) for _ in range(args.tasks)]

    process, url = None, (args.url or "").rstrip("/")
    if not args.url:
        env = {
            "REPTILE_DEMO_MODEL": str(args.model.resolve()),
            "REPTILE_DEMO_MODELS_DIR": str(args.model.resolve().parent),
        }
        process, url, _ = start_server("--log-level", "warning", env=env)
    flags, scores, correct, differ, score_gap, mad = [], [], [], 0, 0.0, []
    started = time.perf_counter()
    try:
        with sync_playwright() as p:
            browser = launch(p)
            demo = DemoPage(browser, url, args.ways, args.shots)
            for i, task in enumerate(tasks):
                row_flags, row_scores = [None] * (args.ways + 2), [None] * (args.ways + 2)
                for found in run_task(demo, task, args.shots):
                    for row, q in enumerate(found["queries"]):
                        row_flags[q], row_scores[q] = found["unknown"][row], found["unknownScores"][row]
                        if q < args.ways:
                            correct.append(int(np.argmax(found["probabilities"][row])) == q)
                    d, gap = check_in_python(bundle, found, args.shots)
                    differ, score_gap = differ + d, max(score_gap, gap)
                    mad += input_difference(found, task, args.shots)
                flags.append(row_flags)
                scores.append(row_scores)
                if (i + 1) % 10 == 0:
                    print(f"{i + 1} tasks, {time.perf_counter() - started:.0f} s", flush=True)
            browser.close()
    finally:
        if process:
            stop_server(process)
    wall_s = time.perf_counter() - started
    flags = np.array(flags, dtype=bool)
    kinds = {"inset": flags[:, : args.ways], "novel": flags[:, args.ways], "scribble": flags[:, args.ways + 1]}
    flagged = {k: float(v.mean()) for k, v in kinds.items()}
    ci95 = {k: float(1.96 * np.sqrt(flagged[k] * (1 - flagged[k]) / v.size)) for k, v in kinds.items()}
    record = {
        "command": "python -m benchmarks.open_set_browser " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": bundle.name,
        "model_json_sha256": sha256_file(bundle.path / MANIFEST_FILE),
        "setting": f"{args.ways}x{args.shots}",
        "tasks": args.tasks,
        "characters": sorted({k for t in tasks for k in [*t["classes"], t["novel"]]}),
        "character_pool": len(characters),
        "flagged": flagged,
        "flagged_ci95": ci95,
        "accuracy": float(np.mean(correct)),
        "unknown_scores": np.array(scores, dtype=np.float64).round(6).tolist(),
        "python_check": {"flags_differing": differ, "queries": int(flags.size), "max_abs_score_difference": score_gap},
        "input_mad": {"median": float(np.median(mad)), "max": float(np.max(mad)), "drawings": len(mad)},
        "scribble": SCRIBBLE,
        "wall_s": wall_s,
        "host": f"{platform.machine()} {os.cpu_count()} cpus, headless Chromium (browser mode)",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(
        f"{record['setting']}, {args.tasks} tasks in the browser ({wall_s:.0f} s): flagged "
        + ", ".join(f"{k} {100 * flagged[k]:.1f} ± {100 * ci95[k]:.1f} %" for k in kinds)
        + f"; in-set accuracy {100 * record['accuracy']:.1f} %"
    )
    print(
        f"Bundle.adapt on the page's inputs: {differ} of {flags.size} flags differ, max |score difference| "
        f"{score_gap:.2e}; page input vs Python render: mean |difference| per pixel median "
        f"{record['input_mad']['median']:.4f}, max {record['input_mad']['max']:.4f}"
    )
    if args.out:
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
