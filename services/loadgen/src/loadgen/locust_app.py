"""Locust wiring: the chat user, the staged shape, raw-sample collection across workers, the
self-stopping run and the report at the end. Imported by `locustfile.py` (run `python -m loadgen`).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import platform
import re
import sys
import time

import gevent
import locust
from locust import FastHttpUser, LoadTestShape, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.rpc import Message
from locust.runners import STATE_STOPPED, STATE_STOPPING, MasterRunner, WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC

from loadgen import __version__
from loadgen.config import Config, ConfigError, forwarded_settings, load_config, worker_config
from loadgen.feedback import coverage, feedback_score
from loadgen.plan import RequestPlan, UserPlanner
from loadgen.prompts import load_prompt_set
from loadgen.report import build_report, write_report, write_samples
from loadgen.shapes import stage_at
from loadgen.stats import Slo
from loadgen.streaming import StreamParser, http_error_code, read_stream
from loadgen.tracing import trace_headers

log = logging.getLogger("loadgen")

try:
    CONFIG: Config = load_config()
except ConfigError as exc:
    sys.exit(f"loadgen: configuration error: {exc}")

SAMPLES_MESSAGE = "loadgen_samples"
REPORT_KEY = "loadgen_samples"
RUN_ID_OPTION = "loadgen_run_id"
SETTINGS_OPTION = "loadgen_settings"


class RunState:
    """Per-process state of the current test, attached to the Locust environment."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.samples: list[dict] = []  # master/standalone: every sample of the run
        self.outbox: list[dict] = []  # worker: samples not yet sent to the master
        self.user_numbers = itertools.count()
        self.worker_index = 0
        self.run_id = config.run_id
        self.started_at = time.time()
        self.finishing = False
        self.timer: gevent.Greenlet | None = None
        self.is_worker = False

    def reset(self) -> None:
        self.samples = []
        self.outbox = []
        self.user_numbers = itertools.count()
        self.started_at = time.time()
        self.finishing = False

    def record(self, sample: dict) -> None:
        (self.outbox if self.is_worker else self.samples).append(sample)

    def drain(self) -> list[dict]:
        batch, self.outbox = self.outbox, []
        return batch


def state_of(environment: Environment) -> RunState:
    return environment.loadgen  # type: ignore[attr-defined]


# Some Locust events (spawning_complete) and the shape carry no environment: remember Locust's one.
_environment_ref: list[Environment | None] = [None]


# --- Locust events -------------------------------------------------------------------------------


@events.init_command_line_parser.add_listener
def _add_options(parser, **_kw) -> None:
    parser.add_argument(
        "--loadgen-settings",
        default="",
        include_in_web_ui=False,
        help="the master's LOADGEN_* settings as JSON (set by the master, adopted by workers)",
    )
    parser.add_argument(
        "--loadgen-run-id",
        default="",
        include_in_web_ui=False,
        help="load run id (set by `python -m loadgen`, passed from master to workers)",
    )


@events.init.add_listener
def _on_init(environment: Environment, runner=None, **_kw) -> None:
    state = RunState(CONFIG)
    state.is_worker = isinstance(runner, WorkerRunner)
    environment.loadgen = state  # type: ignore[attr-defined]
    _environment_ref[0] = environment
    if runner is None:
        return
    if isinstance(runner, MasterRunner) and environment.parsed_options is not None:
        # Sent to every worker with each spawn message (Locust forwards custom options).
        settings = forwarded_settings(os.environ)
        setattr(environment.parsed_options, SETTINGS_OPTION, json.dumps(settings))
    if state.is_worker:

        def attach_samples(client_id, data, **_kw) -> None:
            data[REPORT_KEY] = state.drain()

        environment.events.report_to_master.add_listener(attach_samples)
    else:

        def collect_report(client_id, data, **_kw) -> None:
            state.samples.extend(data.get(REPORT_KEY) or ())

        def collect_message(environment, msg, **_kw) -> None:
            state.samples.extend(msg.data or ())

        environment.events.worker_report.add_listener(collect_report)
        if isinstance(runner, MasterRunner):
            runner.register_message(SAMPLES_MESSAGE, collect_message)


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_kw) -> None:
    state = state_of(environment)
    state.reset()
    options = environment.parsed_options
    state.run_id = getattr(options, RUN_ID_OPTION, "") or CONFIG.run_id
    runner = environment.runner
    state.worker_index = max(getattr(runner, "worker_index", 0), 0)
    if state.is_worker:
        master_settings = getattr(options, SETTINGS_OPTION, "")
        if master_settings:
            try:
                state.config = worker_config(os.environ, json.loads(master_settings))
            except (ConfigError, ValueError) as exc:
                log.error("ignoring the master's settings, using this worker's own: %s", exc)
        return
    log.info(
        "load run %s: target %s %s, seed %s, cap %s requests/user, shape %s",
        state.run_id,
        CONFIG.target,
        CONFIG.host,
        CONFIG.seed,
        CONFIG.requests_per_user or "none",
        CONFIG.shape,
    )
    policy = CONFIG.feedback_policy()
    log.info(
        "simulated ratings: %s (%s)",
        f"{policy['rate']:.0%} of answers" if policy["simulated"] else "none",
        policy["reason"],
    )
    if CONFIG.run_time_s:
        state.timer = gevent.spawn_later(
            CONFIG.run_time_s, finish, environment, f"run time {CONFIG.run_time_s}s reached"
        )


@events.spawning_complete.add_listener
def _on_spawning_complete(user_count: int, **_kw) -> None:
    environment = _environment_ref[0]
    if environment is None:
        return
    state = state_of(environment)
    if state.is_worker or CONFIG.shape != "constant" or not CONFIG.requests_per_user:
        return
    gevent.spawn(_finish_when_users_done, environment)


def _finish_when_users_done(environment: Environment) -> None:
    runner = environment.runner
    while runner.user_count > 0:
        if runner.state in (STATE_STOPPING, STATE_STOPPED):
            return
        gevent.sleep(0.25)
    finish(environment, f"all users sent their {CONFIG.requests_per_user} requests")


def finish(environment: Environment, reason: str) -> None:
    """Stop the test (workers flush their samples first); in headless mode also quit."""
    state = state_of(environment)
    if state.finishing:
        return
    state.finishing = True
    runner = environment.runner
    log.info("%s: stopping the test", reason)
    # A master forgets workers once they report "stopped"; remember them to tell them to quit.
    workers = list(runner.clients) if isinstance(runner, MasterRunner) else []
    if runner.state not in (STATE_STOPPING, STATE_STOPPED):
        runner.stop()  # a master waits here until every worker has stopped (samples sent first)
    if CONFIG.headless:
        # Let Locust's CSV writer (one snapshot per second) record the final numbers first.
        gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.5)
        for client_id in workers:
            if client_id not in runner.clients:
                runner.server.send_to_client(Message("quit", None, client_id))
        runner.quit()


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_kw) -> None:
    state = state_of(environment)
    if state.timer is not None and state.timer is not gevent.getcurrent():
        state.timer.kill(block=False)
        state.timer = None
    if state.is_worker:
        batch = state.drain()
        if batch:
            environment.runner.send_message(SAMPLES_MESSAGE, batch)
        return
    if not CONFIG.headless:
        _write_reports(environment, locust_html=True)


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_kw) -> None:
    if state_of(environment).is_worker or not CONFIG.headless:
        return
    report = _write_reports(environment, locust_html=False)
    if report is not None:
        environment.process_exit_code = report["gate"]["exit_code"]


def _write_reports(environment: Environment, *, locust_html: bool) -> dict | None:
    """Write the LLM summary (and Locust's HTML); a run without a single request writes nothing,
    so that stopping an idle load generator keeps the last real report."""
    state = state_of(environment)
    if not state.samples:
        log.info("no request was made: the reports in %s are kept", CONFIG.report_dir)
        return None
    runner = environment.runner
    workers = runner.worker_index_max if isinstance(runner, MasterRunner) else 0
    ratings = {
        **CONFIG.feedback_policy(),
        "sent": sum(1 for s in state.samples if s.get("feedback_score") is not None),
    }
    metadata = {
        "run_id": state.run_id,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.started_at)),
        "ended_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "workers": workers,
        "samples": len(state.samples),
        "locust_version": locust.__version__,
        "loadgen_version": __version__,
        "python_version": platform.python_version(),
        "simulated_ratings": ratings,
    }
    report = build_report(
        state.samples,
        settings=CONFIG.public(),
        metadata=metadata,
        slo=Slo(CONFIG.slo_ttft_ms, CONFIG.slo_tpot_ms, CONFIG.slo_e2e_ms),
        max_error_rate=CONFIG.max_error_rate,
        min_goodput_ratio=CONFIG.min_goodput_ratio,
        max_added_ttft_ms=CONFIG.max_added_ttft_ms,
    )
    json_path, _ = write_report(report, CONFIG.report_dir)
    write_samples(state.samples, CONFIG.report_dir)
    if locust_html:
        from locust.html import get_html_report

        html = get_html_report(environment, show_download_link=False)
        (CONFIG.report_dir / "locust.html").write_text(html, encoding="utf-8")
    overall = report["overall"]
    log.info(
        "LLM summary %s: %d requests, %d failed, goodput ratio %s, gate %s %s",
        json_path,
        overall["requests"],
        overall["failed"],
        overall["goodput"]["ratio"],
        "PASS" if report["gate"]["passed"] else "FAIL",
        "; ".join(report["gate"]["violations"]),
    )
    return report


# --- the simulated user --------------------------------------------------------------------------

_SESSION_SAFE = re.compile(r"[^A-Za-z0-9_-]")


class ChatUser(FastHttpUser):
    """One person chatting: seeded conversations, streamed answers, occasional feedback."""

    host = CONFIG.host

    def __init__(self, environment: Environment) -> None:
        state = state_of(environment)
        self.config = config = state.config  # a worker's is its master's (see _on_test_start)
        self.network_timeout = config.request_timeout_s
        self.connection_timeout = min(config.request_timeout_s, 10.0)
        super().__init__(environment)
        self.state = state
        self.user_index = next(state.user_numbers)
        self.planner = UserPlanner(
            seed=self.config.seed,
            worker_index=state.worker_index,
            user_index=self.user_index,
            models=self.config.models,
            weights=self.config.weights,
            prompts=load_prompt_set(),
            turns=self.config.turns,
            wait_s=self.config.wait_s,
            feedback_rate=self.config.feedback_rate,
        )
        self.sent = 0
        self.next_wait_s = 0.0
        self.session_id = ""
        self.history: list[dict] = []

    def wait_time(self) -> float:
        return self.next_wait_s

    @task
    def converse(self) -> None:
        cap = self.config.requests_per_user
        if cap and self.sent >= cap:
            raise StopUser()
        plan = self.planner.next()
        if plan.turn == 1:
            run_tag = _SESSION_SAFE.sub("", self.state.run_id)[-24:]
            self.session_id = (
                f"lg-{run_tag}-w{plan.worker_index}u{plan.user_index}c{plan.conversation}"
            )
            self.history = []
        sample = self.chat(plan)
        self.sent += 1
        if self.config.simulated_ratings and plan.give_feedback and sample["response_id"]:
            self.send_feedback(plan, sample)
        self.state.record(sample)
        self.next_wait_s = plan.wait_s
        if cap and self.sent >= cap:
            raise StopUser()

    def _request_body(self, plan: RequestPlan) -> dict:
        if self.config.target == "assistant":
            body = {
                "message": plan.prompt.text,
                "model": plan.model,
                "temperature": plan.temperature,
                "top_p": plan.top_p,
            }
            if plan.max_tokens:
                body["max_tokens"] = plan.max_tokens
            return body
        messages = [
            {"role": "system", "content": load_prompt_set().system},
            *self.history,
            {"role": "user", "content": plan.prompt.text},
        ]
        body = {
            "model": plan.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": plan.temperature,
            "top_p": plan.top_p,
            "seed": plan.request_seed,
            "user": self.session_id,
        }
        if plan.max_tokens:
            body["max_completion_tokens"] = plan.max_tokens
        return body

    def _headers(self, plan: RequestPlan) -> dict[str, str]:
        headers = {
            "Accept": "text/event-stream",
            "Accept-Encoding": "identity",
            **trace_headers(self.state.run_id, plan.model),
        }
        if self.config.target == "assistant":
            headers["X-Session-Id"] = self.session_id
        elif self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def chat(self, plan: RequestPlan) -> dict:
        """Send one streamed chat request, time every line, and return its raw sample."""
        parser = StreamParser(self.config.target if self.config.target == "openai" else "assistant")
        path = self.config.chat_path
        failure = None
        error_code = None
        headers = self._headers(plan)
        start_s = time.time()
        t0 = time.perf_counter()
        with self.client.request(
            "POST",
            path,
            json=self._request_body(plan),
            headers=headers,
            stream=True,
            catch_response=True,
            name=path,
        ) as resp:
            status = resp.status_code or 0
            if status == 200:
                failure = read_stream(resp, parser, t0)
            elif status:
                try:
                    error_code = http_error_code(resp.content or b"")
                except Exception:  # the error body itself broke off
                    error_code = None
            else:
                error_code = type(getattr(resp, "error", None)).__name__
            e2e_ms = (time.perf_counter() - t0) * 1000.0
            resp.request_meta["response_time"] = e2e_ms
            kind = parser.outcome(status, failure)
            if kind is None:
                resp.success()
            else:
                resp.failure(kind if not error_code else f"{kind} ({error_code})")
        if kind is None:
            self._fire("TTFT", plan.model, parser.ttft_ms or 0.0)
            self._fire("E2E", plan.model, e2e_ms)
            if self.config.target == "openai":
                self.history += [
                    {"role": "user", "content": plan.prompt.text},
                    {"role": "assistant", "content": parser.text},
                ]
        return {
            "model": plan.model,
            "error_kind": kind,
            "error_code": error_code,
            "status": status,
            "start_s": start_s,
            "e2e_ms": round(e2e_ms, 3),
            "ttft_ms": round(parser.ttft_ms, 3) if parser.ttft_ms is not None else None,
            "content_ms": [round(t, 3) for t in parser.content_ms],
            # the shop agent's turn: when the answer's text began (the first delta; TTFT may be an
            # earlier tool call), every tool call's arrival, and the done event's counts
            "answer_ms": round(parser.answer_ms, 3) if parser.answer_ms is not None else None,
            "tool_call_ms": [round(t, 3) for t in parser.tool_call_ms],
            "steps": parser.steps,
            "tool_calls": parser.tool_calls,
            "tool_errors": parser.tool_errors,
            "input_tokens": parser.input_tokens,
            "output_tokens": parser.output_tokens,
            "finish_reason": parser.finish_reason,
            "server_ttft_ms": parser.server_ttft_ms,
            "server_duration_ms": parser.server_duration_ms,
            "server_time_to_answer_ms": parser.server_time_to_answer_ms,
            "response_id": parser.response_id,
            "trace_id": headers["traceparent"].split("-")[1],
            "app_trace_id": parser.trace_id,
            "worker": plan.worker_index,
            "user": plan.user_index,
            "seq": plan.sequence,
            "conversation": plan.conversation,
            "turn": plan.turn,
            "prompt_id": plan.prompt.id,
            "temperature": plan.temperature,
            "top_p": plan.top_p,
            "max_tokens": plan.max_tokens,
            # the content heuristic of feedback.py: share of the question's content words the
            # answer mentions (None for a failed request or a question without content words)
            "answer_coverage": (
                round(value, 4)
                if kind is None and (value := coverage(plan.prompt.text, parser.text)) is not None
                else None
            ),
            "feedback_score": None,
        }

    def send_feedback(self, plan: RequestPlan, sample: dict) -> None:
        slo = Slo(self.config.slo_ttft_ms, self.config.slo_tpot_ms, self.config.slo_e2e_ms)
        score = feedback_score(sample, slo, plan.feedback_noise)
        headers = {"X-Session-Id": self.session_id, **trace_headers(self.state.run_id)}
        with self.client.post(
            "/api/feedback",
            json={"response_id": sample["response_id"], "score": score},
            headers=headers,
            name="/api/feedback",
            catch_response=True,
        ) as resp:
            if resp.status_code == 204:
                resp.success()
                sample["feedback_score"] = score
            else:
                resp.failure(f"feedback HTTP {resp.status_code}")

    def _fire(self, kind: str, model: str, value_ms: float) -> None:
        self.environment.events.request.fire(
            request_type="LLM",
            name=f"{kind} {model}",
            response_time=value_ms,
            response_length=0,
            exception=None,
            context={},
        )


# --- the staged load shape -----------------------------------------------------------------------


class StagedShape(LoadTestShape):
    """Ramp, plateau, spike, recover, cool-down (LOADGEN_SHAPE=staged; LOADGEN_STAGES)."""

    use_common_options = False

    def tick(self):
        stage = stage_at(self.get_run_time(), CONFIG.stages)
        if stage is not None:
            return stage.users, stage.spawn_rate
        environment = _environment_ref[0]
        if environment is not None:
            # Stop through finish() so workers flush their samples before the process quits.
            gevent.spawn(finish, environment, "staged shape completed")
        last = CONFIG.stages[-1]
        return last.users, last.spawn_rate
