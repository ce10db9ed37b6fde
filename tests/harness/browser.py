"""Headless Chromium (Debian's, installed by scripts/setup-chromium.sh) driven by Playwright."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

from harness.prereq import missing

# The flags that keep Chromium quiet on a machine without internet (no background connections).
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not shutil.which(path):
        missing("Debian's chromium (scripts/setup-chromium.sh)")
    return path


@contextlib.contextmanager
def chromium_browser() -> Iterator:
    """A launched Playwright browser, closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=list(CHROMIUM_ARGS)
        )
        try:
            yield browser
        finally:
            browser.close()


def record_page_problems(page) -> list[str]:
    """Collect the page's JavaScript errors and console errors/warnings into the returned list."""
    problems: list[str] = []
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}")
            if msg.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    return problems


def open_chat_page(browser, url: str, models: int | None = None) -> tuple:
    """A new page on the chat UI at `url` (its strict CSP on: no bypass), once the model list has
    loaded (exactly `models` options, or at least one), and the list `record_page_problems`
    fills."""
    page = browser.new_page()
    problems = record_page_problems(page)
    page.goto(url)
    loaded = f"=== {models}" if models is not None else "> 0"
    page.wait_for_function(f"() => document.querySelectorAll('#model option').length {loaded}")
    return page, problems


def ask(page, question: str) -> None:
    """Type a question into the chat UI and send it."""
    page.fill("#message", question)
    page.click("#send")
