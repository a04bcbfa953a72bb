"""How long the demo takes from the last pen-up to the prediction on screen, in headless Chromium.

For 5-way 1-shot and 5-way 5-shot (the page's example drawings), in browser mode (onnxruntime-web
in the page's worker; 1 and 2 threads: the page is cross-origin isolated) and in server mode:

* cold: a fresh browser context (empty cache) opens the page; the first adaptation runs as soon as
  the page's script starts, so "cold" is the page's own trigger -> prediction shown, which includes
  fetching the runtime (wasm) and the model, compiling, verifying sha256s and the warm-up; also
  given from navigation start.
* warm: then --repeat times a stroke is drawn with the mouse in the test drawing; the page records
  the pen-up and the moment the bars are drawn (window.reptileDemo.metrics).

    python -m benchmarks.browser_adapt [--url http://127.0.0.1:8000] [--repeat 5] [--steps 100 10]
    python -m benchmarks.browser_adapt --models models/omniglot-5w models/omniglot-5w-small

Without --url it starts `python -m server` on a free port, one per --models bundle, so bundles
(e.g. the 64- and 32-filter models) compare side by side: each row carries the bundle's measured
5-way 1-shot accuracy from its model.json. Prints a Markdown table (median, min
and max over the repeats; per step = the worker's compute time / steps).
"""

import argparse
import json
import statistics
import sys
import urllib.request
from pathlib import Path

from benchmarks.local_server import start_server, stop_server
from tools.chromium import launch, wait_for_adaptations


def stroke(page, k):
    """Draw the k-th short stroke across the test drawing with the mouse."""
    canvas = page.get_by_label("Test drawing", exact=True)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * (0.2 + 0.6 * ((k * 0.37) % 1))
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + box["width"] * 0.4, y + 4, steps=4)
    page.mouse.up()


def warm_runs(page, repeat):
    """The page's metrics of `repeat` adaptations, each triggered by a stroke on the test drawing."""
    out = []
    for k in range(repeat):
        n = int(page.locator("#demo").get_attribute("data-adaptations"))
        stroke(page, k)
        wait_for_adaptations(page, n + 1)
        out.append(page.evaluate("window.reptileDemo.metrics.at(-1)"))
    return out


def summary(values):
    """ "median (min-max)" of values, whole numbers."""
    return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"


def accuracy_5w1s(model: dict) -> str:
    """The bundle's measured 5-way 1-shot accuracy (non-transductive), from its manifest."""
    for row in (model.get("accuracy") or {}).get("results", []):
        if (row["ways"], row["shots"]) == (5, 1):
            return f"{100 * row['non_transductive']['accuracy']:.2f} ± {100 * row['non_transductive']['ci95']:.2f}"
    return "not measured"


def measure(browser, url, args, rows, raw):
    """Cold and warm runs of every steps x shots x place setting on the server at url: table rows and raw data."""
    model = json.load(urllib.request.urlopen(f"{url}/api/model"))
    name = f"{model['name']} ({accuracy_5w1s(model)})"
    for steps in args.steps or [model["adaptation"]["steps"]]:
        for shots in args.shots:
            places = [("browser", t) for t in args.threads] + ([] if args.no_server_mode else [("server", None)])
            for place, threads in places:
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                query = f"classes=5&shots={shots}&steps={steps}&mode={place}"
                if threads:
                    query += f"&threads={threads}"
                page.goto(f"{url}/?{query}")
                wait_for_adaptations(page, 1)
                cold = page.evaluate("window.reptileDemo.metrics[0]")
                runtime = page.evaluate("window.reptileDemo.runtime")
                warm = warm_runs(page, args.repeat)
                context.close()
                totals = [m["totalMs"] for m in warm]
                per_step = (
                    [m["computeMs"] / m["steps"] for m in warm]
                    if place == "browser"
                    else [m["serverMs"] / m["steps"] for m in warm]
                )
                label = (
                    f"browser, {runtime['numThreads']} thread{'s' if runtime['numThreads'] > 1 else ''}"
                    if place == "browser"
                    else "server"
                )
                rows.append(
                    f"| {name} | 5-way {shots}-shot | {steps} | {label} | {cold['totalMs']:.0f} | "
                    f"{cold['shownAt']:.0f} | {summary(totals)} | {statistics.median(per_step):.1f} |"
                )
                raw.append(
                    {
                        "model": model["name"],
                        "shots": shots,
                        "steps": steps,
                        "place": place,
                        "threads": runtime and runtime["numThreads"],
                        "cold": cold,
                        "runtime": runtime,
                        "warm": warm,
                    }
                )
                print(rows[-1], file=sys.stderr, flush=True)  # progress; the table goes to stdout at the end


def main(argv=None) -> int:
    """Measure every bundle in --models (or the server at --url) and print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running demo server (default: start one per --models entry)")
    parser.add_argument(
        "--models",
        type=Path,
        nargs="*",
        default=[None],
        help="bundle directories to compare, each served by its own server (default: the default bundle)",
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--steps", type=int, nargs="*", help="adaptation steps (default: the model's default)")
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--shots", type=int, nargs="*", default=[1, 5])
    parser.add_argument("--no-server-mode", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the raw measurements here")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    rows, raw = [], []
    with sync_playwright() as p:
        browser = launch(p)
        for model in [None] if args.url else args.models:
            process, url = None, args.url
            if not args.url:
                process, url, _ = start_server("--log-level", "warning", *(["--model", str(model)] if model else []))
            try:
                measure(browser, url.rstrip("/"), args, rows, raw)
            finally:
                if process:
                    stop_server(process)
        browser.close()
    print()
    print(
        "| model (5w1s accuracy %) | task | steps | where | cold: trigger -> shown (ms) "
        "| cold: navigation -> shown (ms) | warm: pen-up -> shown, median (min-max) ms | per step (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
