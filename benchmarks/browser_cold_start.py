"""Cold start of the browser mode, several servers or page settings side by side (e.g. two
versions of the page, or 1 and 2 threads).

Each run opens the page in a fresh browser context (empty cache) and waits for the first
prediction; runs alternate between the servers (and --query settings) so that load hits them
alike. Reports the median (min-max) over --runs of: navigation -> first prediction shown, the
page's trigger -> shown, and the worker's loading time (runtime + model + sessions).

    python -m benchmarks.browser_cold_start --urls http://127.0.0.1:8001 http://127.0.0.1:8002 --runs 7
    python -m benchmarks.browser_cold_start --query "classes=5&shots=1&mode=browser&threads=1" \\
        "classes=5&shots=1&mode=browser&threads=2"

Without --urls it starts one server (this checkout) and measures it alone.
"""

import argparse

from benchmarks.browser_adapt import summary
from benchmarks.local_server import start_server, stop_server
from tools.chromium import launch, wait_for_adaptations


def main(argv=None) -> int:
    """Open each server x --query page --runs times in fresh contexts; print the median (min-max) table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", nargs="*", help="running demo servers (default: start one)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--query",
        nargs="+",
        default=["classes=5&shots=1&mode=browser&threads=1"],
        help="page settings; several are measured side by side",
    )
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    process = None
    urls = args.urls
    if not urls:
        process, url, _ = start_server("--log-level", "warning")
        urls = [url]
    pages = [(url, query) for url in urls for query in args.query]
    results = {page: [] for page in pages}
    try:
        with sync_playwright() as p:
            browser = launch(p)
            for _ in range(args.runs):
                for url, query in pages:
                    context = browser.new_context(viewport={"width": 1280, "height": 900})
                    page = context.new_page()
                    page.goto(f"{url.rstrip('/')}/?{query}")
                    wait_for_adaptations(page, 1)
                    first = page.evaluate("window.reptileDemo.metrics[0]")
                    runtime = page.evaluate("window.reptileDemo.runtime")
                    results[url, query].append((first["shownAt"], first["totalMs"], runtime["loadMs"]))
                    context.close()
            browser.close()
    finally:
        if process:
            stop_server(process)
    print(f"{args.runs} fresh contexts per server and setting; median (min-max) ms\n")
    print("| server | page settings | navigation -> shown | trigger -> shown | worker loading |\n|---|---|---|---|---|")
    for (url, query), rows in results.items():
        print(f"| {url} | `{query}` | " + " | ".join(summary([r[i] for r in rows]) for i in range(3)) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
