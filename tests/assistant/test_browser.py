"""The UI in headless Chromium (Debian's, driven by Playwright): stream an answer, see the metrics
line, send feedback, reset; any JavaScript error or CSP violation fails the test."""

from __future__ import annotations

import math

import pytest

from harness.assistant import start_assistant
from harness.browser import ask, chromium_browser, open_chat_page
from harness.mock_llm import start_mock_llm
from harness.prereq import ROOT

pytestmark = pytest.mark.browser


def test_chat_in_the_browser(log_dir, mock_llm):
    with start_assistant(log_dir, mock_llm.base_url) as app, chromium_browser() as browser:
        page, problems = open_chat_page(browser, app.url, models=4)
        assert page.input_value("#model") == "gpt-4o-mini"
        page.select_option("#model", "gpt-4o")

        ask(page, "<img src=x onerror=alert(1)> tell me about tracing")
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


# One model whose first token comes 300 ms after the request, and whose role chunk comes at once:
# the TTFT the UI shows must be the first token's, and the very number the chat span holds.
SLOW_START = """
models:
  gpt-4o: {ttft_ms: 300, tokens_per_s: 100, output_tokens: {min: 10, mean: 15, max: 20},
           role_chunk: early, rpm: 0, tpm: 0}
"""


def test_the_ui_shows_the_spans_ttft(log_dir, collector):
    with (
        start_mock_llm(log_dir, profiles=SLOW_START) as mock,
        start_assistant(
            log_dir, mock.base_url, otlp=collector.otlp_http, env={"ASSISTANT_MODELS": "gpt-4o"}
        ) as app,
        chromium_browser() as browser,
    ):
        page, problems = open_chat_page(browser, app.url, models=1)
        ask(page, "How long does shipping take?")
        line = page.wait_for_selector(".msg.assistant .metrics", timeout=30000).text_content()
        shown_ms = int(line.split("TTFT ", 1)[1].split(" ms", 1)[0])
        (entry,) = mock.requests_log()

        def chat_span():
            found = [
                s
                for s in collector.spans()
                if s["attributes"].get("gen_ai.response.id") == entry["completion_id"]
            ]
            return found[0] if found else None

        span = collector.wait_until(chat_span, timeout=30)
        span_ms = span["attributes"]["gen_ai.response.time_to_first_chunk"] * 1000
        assert shown_ms == math.floor(round(span_ms, 3) + 0.5)  # the done event, as JS rounds it
        assert entry["scheduled_ttft_ms"] <= span_ms < entry["scheduled_ttft_ms"] + 50
        assert shown_ms >= 300
        assert problems == []


def test_the_judges_badge_appears_under_the_answer(log_dir):
    """Evaluations on, as shipped, with the mock's own judge: the UI polls the verdict and shows
    it under the answer, without a console error while it is pending."""
    with (
        start_mock_llm(log_dir) as mock,
        start_assistant(log_dir, mock.base_url, env={"ASSISTANT_EVALUATIONS": "true"}) as app,
        chromium_browser() as browser,
    ):
        page, problems = open_chat_page(browser, app.url, models=4)
        ask(page, "How long does shipping to Canada take?")
        badge = page.wait_for_selector(".msg.assistant .judge", timeout=30000).text_content()
        assert badge.startswith("judge: ")
        assert badge == "judge: 4/4 pass" or badge.endswith("failed"), badge
        assert problems == []


SCREENSHOTS = ROOT / "build" / "screenshots"


def test_the_agent_shows_its_work(log_dir, collector):
    """The shop agent in the UI: a greeting with example questions; a click on one shows each
    tool step under the answer as it happens, and the answer's trace with a link to Splunk APM.
    The screenshot (build/screenshots/chat-agent.png) is the README's picture."""
    env = {
        "ASSISTANT_AGENT": "true",
        "ASSISTANT_APM_REALM": "us1",
        "ASSISTANT_EVALUATIONS": "true",
    }
    with (
        start_mock_llm(log_dir) as mock,
        start_assistant(log_dir, mock.base_url, otlp=collector.otlp_http, env=env) as app,
        chromium_browser() as browser,
    ):
        page, problems = open_chat_page(browser, app.url, models=4)
        page.set_viewport_size({"width": 1100, "height": 900})
        examples = page.query_selector_all(".greeting .example")
        assert len(examples) == 5
        assert page.query_selector_all(".msg") == []  # the greeting is not part of the chat
        examples[0].click()
        metrics = page.wait_for_selector(".msg.assistant .metrics", timeout=60000).text_content()
        steps = [s.text_content() for s in page.query_selector_all(".msg.assistant .steps li")]
        assert len(steps) == 2, steps
        assert steps[0].startswith("check_inventory · ") and steps[0].endswith(
            "XL: in stock for 2 of 3 product(s)"
        )
        assert steps[1].startswith("get_policy · ") and steps[1].endswith("shipping policy")
        assert "2 model calls, 2 tool calls" in metrics
        link = page.wait_for_selector(".msg.assistant a.trace")
        trace_id = link.text_content().removeprefix("trace ")
        assert link.get_attribute("href") == f"https://app.us1.signalfx.com/#/apm/traces/{trace_id}"

        def agent_span():
            return [
                s
                for s in collector.spans()
                if s["trace_id"] == trace_id and s["name"] == "invoke_agent shop-assistant"
            ] or None

        assert collector.wait_until(agent_span, timeout=30)  # the link names the answer's trace
        page.wait_for_selector(".msg.assistant .judge", timeout=30000)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "chat-agent.png"), full_page=True)
        assert problems == []
