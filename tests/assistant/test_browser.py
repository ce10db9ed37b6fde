"""The UI in headless Chromium (Debian's, driven by Playwright): stream an answer, see the metrics
line, send feedback, reset; any JavaScript error or CSP violation fails the test."""

from __future__ import annotations

import pytest

from harness.assistant import start_assistant
from harness.browser import chromium_browser, record_page_problems

pytestmark = pytest.mark.browser


def test_chat_in_the_browser(log_dir, mock_llm):
    with start_assistant(log_dir, mock_llm.base_url) as app, chromium_browser() as browser:
        page = browser.new_page()  # the app's strict CSP stays on (no bypass_csp)
        problems = record_page_problems(page)
        page.goto(app.url)
        page.wait_for_function("() => document.querySelectorAll('#model option').length === 4")
        assert page.input_value("#model") == "gpt-4o-mini"
        page.select_option("#model", "gpt-4o")

        page.fill("#message", "<img src=x onerror=alert(1)> tell me about tracing")
        page.click("#send")
        # streamed: text shows up while the answer is still incomplete (no metrics line yet)
        page.wait_for_function(
            "() => { const t = document.querySelector('.msg.assistant .text');"
            " return t && t.textContent.length > 0"
            " && !document.querySelector('.msg.assistant .metrics'); }",
            timeout=15000,
        )
        metrics = page.wait_for_selector(".msg.assistant .metrics", timeout=30000)
        line = metrics.text_content()
        assert "TTFT" in line and "tokens" in line and "finish: " in line
        assert len(page.text_content(".msg.assistant .text")) > 20
        # the user's message is text, never markup
        assert page.text_content(".msg.user .text").startswith("<img src=x")
        assert page.query_selector("#conversation img") is None

        page.click(".feedback button[data-score='5']")
        page.wait_for_function(
            "() => document.getElementById('status').textContent.includes('Thanks')"
        )
        assert page.get_attribute(".feedback button[data-score='5']", "aria-pressed") == "true"

        page.click("#reset")
        page.wait_for_function("() => document.querySelectorAll('.msg').length === 0")
        assert problems == []
