"""Headless Chromium on the demo page (Playwright), for the README screenshots and the browser benchmarks."""

from pathlib import Path

CHROMIUM = "/usr/bin/chromium"  # Debian's (`make chromium`); without it, Playwright's own download
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch(playwright):
    """A headless Chromium browser: Debian's where it is installed, else Playwright's own."""
    return playwright.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else None, args=ARGS)


def wait_for_adaptations(page, count: int = 1, timeout_ms: int = 300_000) -> None:
    """Wait until the page has shown its count-th prediction (#demo's data-adaptations)."""
    page.wait_for_selector(f'#demo[data-adaptations="{count}"]', state="attached", timeout=timeout_ms)
