"""README screenshots of the demo: headless Chromium against a running server.

    python -m tools.screenshots --url http://127.0.0.1:8000 [--out docs/img]

Writes demo.png (the page as it opens), demo-5way.png (5 classes x 2 examples with the comparison
against a random initialization and "what the model sees"), embed-dark.png and projector.png.
"""

import argparse
from pathlib import Path

from tools.chromium import launch, wait_for_adaptations

ROOT = Path(__file__).resolve().parent.parent


def wait(page, count=1):
    """Wait for the page's count-th prediction, at most 3 minutes."""
    wait_for_adaptations(page, count, timeout_ms=180_000)


def main(argv=None) -> int:
    """Take the screenshots named by --only (default all) into --out."""
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--only", nargs="*", help="names of the shots to take (default all)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    url = args.url.rstrip("/")
    wanted = set(args.only or ["demo", "demo-5way", "embed-dark", "projector"])
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1200, "height": 900}, device_scale_factor=1)
        if "demo" in wanted:
            page.goto(f"{url}/")
            wait(page)
            page.screenshot(path=args.out / "demo.png", full_page=True)
        if "demo-5way" in wanted:
            page.goto(f"{url}/?classes=5&shots=2")
            wait(page)
            page.get_by_label("Show what the model sees", exact=False).check()
            page.get_by_label("Compare with no meta-learning", exact=False).check()
            wait(page, 2)
            page.screenshot(path=args.out / "demo-5way.png", full_page=True)
        if "embed-dark" in wanted:
            page.set_viewport_size({"width": 760, "height": 700})
            page.goto(f"{url}/embed?classes=3&shots=1&mode=browser&theme=dark")
            wait(page)
            page.screenshot(path=args.out / "embed-dark.png", full_page=True)
        if "projector" in wanted:
            page.set_viewport_size({"width": 1600, "height": 1000})
            page.goto(f"{url}/?classes=3")
            wait(page)
            page.get_by_role("button", name="Projector mode").click()
            page.locator("#teach-title").scroll_into_view_if_needed()
            page.screenshot(path=args.out / "projector.png")
        browser.close()
    print(f"screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
