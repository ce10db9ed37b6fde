#!/usr/bin/env python3
"""Occasional measurement: the shop assistant's agent loop, hand-written vs two agent frameworks.

Not part of `make bench` or `make test`; run it with `bash bench/agent_frameworks/run.sh`
(see README.md). The same 4-tool shop agent, on the repo's own tool schemas and implementations
(services/assistant/src/assistant/agent/tools.py + shop.py, imported, not copied), is run 4 ways
against the repo's mock LLM (services/mock-llm, near-zero latency profile):

  direct        the repo's approach: raw SSE dict chunks via openai `client.post(cast_to=object)`
                (as assistant/llm.py), tool calls assembled by index (as agent/turn.py)
  direct_typed  the same loop on `client.chat.completions.create(stream=True)` (typed chunks)
  langgraph     langgraph.prebuilt.create_react_agent + ChatOpenAI(streaming=True), graph.stream
                with stream_mode=["messages", "updates"]
  agents        openai-agents: Agent + FunctionTool + Runner.run_streamed with
                OpenAIChatCompletionsModel (AsyncOpenAI at the mock), tracing disabled

Measured per framework, each in a fresh process from its own venv: framework import time (ms),
RSS after import and after the turns, CPU and wall ms per turn, correct turns (tools called as
expected, answer grounded in the tool results) and streaming observability (every text delta,
tool-call header and argument fragment the caller sees, time-stamped from turn start).

Modes:
  --framework F --n 50            one measured run in this process (prints one JSON line)
  --framework F --import-only     only the framework import (prints one JSON line)
  --driver                        runs everything in separate processes, each framework from
                                  its own venv (build/agent-frameworks/{base,langgraph,agents}),
                                  writes build/agent-frameworks/results/*.json and summary.json

All traffic goes to --base-url, which must be on 127.0.0.1 (anything else is refused);
LangSmith and Agents SDK tracing are switched off.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "services" / "assistant" / "src"
BUILD = REPO / "build" / "agent-frameworks"  # the venvs (run.sh makes them) and results/
MAX_STEPS = 5  # the repo's ASSISTANT_AGENT_MAX_STEPS default (config.py)
SYSTEM = (
    "You are the shop assistant. Use the tools to look up products, stock, orders and policies, "
    "then answer briefly."
)
API_KEY = "sk-mock"
VENV = {"direct": "base", "direct_typed": "base", "langgraph": "langgraph", "agents": "agents"}


# --- questions (seeded) and what a correct turn calls ------------------------------------------

ORDER_IDS = ["1001", "1002", "1003", "1004", "1042", "1099"]
PRODUCTS = [
    "the Splunk T-shirt",
    "the Observability T-shirt",
    "the OpenTelemetry tee",
    "the Dashboard hoodie",
    "the red socks",
]
SIZES = ["XS", "S", "M", "L", "XL", "XXL"]
POLICY_Q = [
    "What is your return policy?",
    "How long does shipping take?",
    "Can I get a refund?",
    "What does the warranty cover?",
    "How do you handle my privacy?",
    "Do you have a size guide?",
]


def questions(n: int, seed: int = 1042) -> list[tuple[str, list[str]]]:
    """(question, expected tool names, sorted). Mock intents (services/mock-llm tools.py):
    order N -> get_order_status; product noun and/or size -> check_inventory (its `product`
    property is a strong match, search_products' `query` a weak one); policy word -> get_policy;
    two intents -> two parallel calls."""
    rng = random.Random(seed)
    out = []
    kinds = ["order", "product", "policy", "order+policy", "product+order"]
    for i in range(n):
        kind = kinds[i % len(kinds)] if i < len(kinds) else rng.choice(kinds)
        oid = rng.choice(ORDER_IDS)
        pname = rng.choice(PRODUCTS)
        size = rng.choice(SIZES)
        pq = rng.choice(POLICY_Q)
        if kind == "order":
            q = rng.choice(
                [
                    "Where is order {o}?",
                    "What is the status of order #{o}?",
                    "Can you check order number {o} for me?",
                ]
            ).format(o=oid)
            exp = ["get_order_status"]
        elif kind == "product":
            q = rng.choice(
                [
                    "Do you have {p} in {s}?",
                    "Is {p} in stock in size {s}?",
                    "Have you got {p} in {s}?",
                ]
            ).format(p=pname, s=size)
            exp = ["check_inventory"]
        elif kind == "policy":
            q = pq
            exp = ["get_policy"]
        elif kind == "order+policy":
            q = f"Where is order {oid}? Also, {pq[0].lower()}{pq[1:]}"
            exp = ["get_order_status", "get_policy"]
        else:
            q = f"Do you have {pname} in {size}, and where is order {oid}?"
            exp = ["check_inventory", "get_order_status"]
        out.append((q, sorted(exp)))
    return out


# --- measurement helpers --------------------------------------------------------------------------


def proc_status() -> dict:
    got = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                got[key] = round(int(value.split()[0]) / 1024, 1)  # MiB
    return got


class Turn:
    """What the caller could observe in one turn."""

    def __init__(self, question: str, expected: list[str]) -> None:
        self.question, self.expected = question, expected
        self.t0 = time.perf_counter()
        self.first_output_ms: float | None = None  # first streamed output chunk (1st model call)
        self.first_tool_name_ms: float | None = None  # a tool call's name seen by the caller
        self.first_tool_exec_ms: float | None = None  # the first tool started running
        self.output_events = 0  # streamed output chunks/events seen (text + tool-call deltas)
        self.arg_delta_events = 0
        self.text_delta_events = 0
        self.completion_tokens = 0  # the mock's count = content/tool chunks it sent
        self.tools_called: list[str] = []
        self.tool_results: list[dict] = []
        self.steps = 0
        self.final = ""
        self.error: str | None = None

    def ms(self) -> float:
        return (time.perf_counter() - self.t0) * 1000

    def output(self, kind: str) -> None:
        if self.first_output_ms is None:
            self.first_output_ms = self.ms()
        self.output_events += 1
        if kind == "args":
            self.arg_delta_events += 1
        elif kind == "text":
            self.text_delta_events += 1

    def tool_name_seen(self) -> None:
        if self.first_tool_name_ms is None:
            self.first_tool_name_ms = self.ms()

    def correct(self) -> bool:
        if self.error or not self.final.strip():
            return False
        if sorted(self.tools_called) != self.expected:
            return False
        # grounded: the mock quotes every scalar of each result; check one per result
        for doc in self.tool_results:
            key = next((k for k in ("status", "order_id", "topic", "product") if k in doc), None)
            if key is not None and str(doc[key]) not in self.final:
                return False
        return True

    def summary(self) -> dict:
        return {
            "q": self.question,
            "expected": self.expected,
            "called": self.tools_called,
            "steps": self.steps,
            "correct": self.correct(),
            "error": self.error,
            "first_output_ms": self.first_output_ms,
            "first_tool_name_ms": self.first_tool_name_ms,
            "first_tool_exec_ms": self.first_tool_exec_ms,
            "output_events": self.output_events,
            "arg_delta_events": self.arg_delta_events,
            "text_delta_events": self.text_delta_events,
            "completion_tokens": self.completion_tokens,
            "final": self.final[:200],
        }


CURRENT: list[Turn] = []  # the running turn, for the tool wrappers


def load_tools():
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    from assistant.agent.shop import load_shop
    from assistant.agent.tools import DEFINITIONS, TOOLS, ShopTools

    return DEFINITIONS, TOOLS, ShopTools(load_shop())


def run_tool(shop_tools, name: str, arguments: str) -> str:
    turn = CURRENT[0]
    if turn.first_tool_exec_ms is None:
        turn.first_tool_exec_ms = turn.ms()
    result = shop_tools.run(name, arguments)
    turn.tools_called.append(name)
    try:
        turn.tool_results.append(json.loads(result.content))
    except ValueError:
        turn.tool_results.append({})
    return result.content


# --- framework imports (what --import-only times) --------------------------------------------


def import_framework(fw: str):
    if fw in ("direct", "direct_typed"):
        import openai

        return {"openai": openai.__version__}
    if fw == "langgraph":
        from importlib.metadata import version

        from langchain_core.tools import StructuredTool  # noqa: F401
        from langchain_openai import ChatOpenAI  # noqa: F401
        from langgraph.prebuilt import create_react_agent  # noqa: F401

        packages = ("langgraph", "langgraph-prebuilt", "langchain-openai", "langchain-core")
        return {p: version(p) for p in (*packages, "openai")}
    if fw == "agents":
        from importlib.metadata import version

        from agents import Agent, FunctionTool, OpenAIChatCompletionsModel, Runner  # noqa: F401

        return {p: version(p) for p in ("openai-agents", "openai")}
    raise SystemExit(f"unknown framework {fw}")


# --- 1. the direct loop (as the repo) -------------------------------------------------------------


def make_direct(base_url: str, model: str, typed: bool):
    import openai

    _, TOOLS, shop_tools = load_tools()  # puts services/assistant/src on sys.path
    from assistant.agent.turn import ToolCallAssembler  # the repo's own, as the loop uses it

    client = openai.OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0, timeout=30)

    def stream(messages):
        """(content, the chunk as a dict when it carries tool calls, usage dict) per chunk, either
        way."""
        body = {
            "model": model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_completion_tokens": 512,
            "tools": list(TOOLS),
        }
        if typed:
            for chunk in client.chat.completions.create(**body):  # typed pydantic chunks
                usage = (
                    {"completion_tokens": chunk.usage.completion_tokens} if chunk.usage else None
                )
                if not chunk.choices:
                    yield None, None, usage
                    continue
                d = chunk.choices[0].delta
                entries = None
                if d.tool_calls:
                    entries = [
                        {
                            "index": tc.index,
                            "id": tc.id,
                            "function": {
                                "name": tc.function.name if tc.function else None,
                                "arguments": tc.function.arguments if tc.function else None,
                            },
                        }
                        for tc in d.tool_calls
                    ]
                tool_chunk = {"choices": [{"delta": {"tool_calls": entries}}]} if entries else None
                yield d.content, tool_chunk, usage
        else:  # the repo's way (assistant/llm.py): the SDK's SSE decoder, chunks as plain dicts
            for chunk in client.post(
                "/chat/completions",
                cast_to=object,
                body=body,
                stream=True,
                stream_cls=openai.Stream[object],
            ):
                choices = chunk.get("choices") or []
                delta = (choices[0].get("delta") or {}) if choices else {}
                tool_chunk = chunk if delta.get("tool_calls") else None
                yield delta.get("content"), tool_chunk, chunk.get("usage")

    def run_turn(turn: Turn) -> None:
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": turn.question},
        ]
        for _ in range(MAX_STEPS):
            turn.steps += 1
            asm, text = ToolCallAssembler(), []
            for content, tool_chunk, usage in stream(messages):
                if usage:
                    turn.completion_tokens += usage["completion_tokens"]
                if content:
                    turn.output("text")
                    text.append(content)
                if tool_chunk:
                    started = asm.add(tool_chunk)
                    if started:
                        turn.tool_name_seen()
                        turn.output("header")
                    else:
                        turn.output("args")
            calls = asm.assembled()
            if not calls:
                turn.final = "".join(text)
                return
            messages.append(
                {
                    "role": "assistant",
                    "content": "".join(text) or None,
                    "tool_calls": [c.message() for c in calls],
                }
            )
            for c in calls:
                content = run_tool(shop_tools, c.name, c.arguments)
                messages.append({"role": "tool", "tool_call_id": c.id, "content": content})
        turn.error = "max_steps"

    return run_turn, None


# --- 2. LangGraph -----------------------------------------------------------------------------


def make_langgraph(base_url: str, model: str):
    from langchain_core.messages import AIMessage, AIMessageChunk
    from langchain_core.tools import StructuredTool
    from langchain_core.utils.function_calling import convert_to_openai_tool
    from langchain_openai import ChatOpenAI
    from langgraph.prebuilt import create_react_agent

    DEFINITIONS, TOOLS, shop_tools = load_tools()

    def tool_func(name):
        def f(**kwargs):
            return run_tool(shop_tools, name, json.dumps(kwargs))

        return f

    lc_tools = [
        StructuredTool.from_function(
            func=tool_func(d["name"]),
            name=d["name"],
            description=d["description"],
            args_schema=d["parameters"],
        )
        for d in DEFINITIONS
    ]
    sent = [convert_to_openai_tool(t) for t in lc_tools]
    schemas_same = sent == list(TOOLS)
    llm = ChatOpenAI(
        model=model,
        base_url=base_url,
        api_key=API_KEY,
        streaming=True,
        stream_usage=True,
        max_retries=0,
        timeout=30,
        max_completion_tokens=512,
    )
    graph = create_react_agent(llm, lc_tools, prompt=SYSTEM)

    def run_turn(turn: Turn) -> None:
        final = None
        for mode, data in graph.stream(
            {"messages": [("user", turn.question)]},
            config={"recursion_limit": 2 * MAX_STEPS},
            stream_mode=["messages", "updates"],
        ):
            if mode == "messages":
                msg, _meta = data
                if isinstance(msg, AIMessageChunk):
                    if msg.content:
                        turn.output("text")
                    for tcc in msg.tool_call_chunks or []:
                        if tcc.get("name"):
                            turn.tool_name_seen()
                            turn.output("header")
                        elif tcc.get("args"):
                            turn.output("args")
            elif mode == "updates":
                for update in data.values():
                    for m in (update or {}).get("messages", []):
                        if isinstance(m, AIMessage):
                            turn.steps += 1
                            if m.usage_metadata:
                                turn.completion_tokens += m.usage_metadata["output_tokens"]
                            if not m.tool_calls:
                                final = m.content
        turn.final = final if isinstance(final, str) else json.dumps(final)

    info = {"schemas_sent_equal_repo_TOOLS": schemas_same}
    if not schemas_same:
        info["schema_sent_example"] = sent[0]
    return run_turn, info


# --- 3. OpenAI Agents SDK ---------------------------------------------------------------------


def make_agents(base_url: str, model: str):
    import asyncio

    from agents import (
        Agent,
        FunctionTool,
        ModelSettings,
        OpenAIChatCompletionsModel,
        Runner,
        set_tracing_disabled,
    )
    from agents.models.chatcmpl_converter import Converter
    from openai import AsyncOpenAI

    set_tracing_disabled(True)
    DEFINITIONS, TOOLS, shop_tools = load_tools()

    def invoker(name):
        async def on_invoke(ctx, arguments: str) -> str:
            return run_tool(shop_tools, name, arguments)  # raw JSON string: same validation

        return on_invoke

    sdk_tools = [
        FunctionTool(
            name=d["name"],
            description=d["description"],
            params_json_schema=d["parameters"],
            on_invoke_tool=invoker(d["name"]),
            strict_json_schema=False,
        )
        for d in DEFINITIONS
    ]
    try:
        sent = [Converter.tool_to_openai(t) for t in sdk_tools]
        sent_cmp = [
            {
                "type": s["type"],
                "function": {k: v for k, v in s["function"].items() if k != "strict"},
            }
            for s in sent
        ]
        schemas_same = sent_cmp == list(TOOLS)
        extra = sorted(
            {k for s in sent for k in s["function"]} - {"name", "description", "parameters"}
        )
    except Exception as exc:
        schemas_same, extra = f"unknown: {exc!r}", []
    client = AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0, timeout=30)
    agent = Agent(
        name="shop-assistant",
        instructions=SYSTEM,
        model=OpenAIChatCompletionsModel(model=model, openai_client=client),
        tools=sdk_tools,
        model_settings=ModelSettings(include_usage=True, max_tokens=512),
    )
    loop = asyncio.new_event_loop()

    async def turn_async(turn: Turn) -> None:
        result = Runner.run_streamed(agent, input=turn.question, max_turns=MAX_STEPS)
        async for ev in result.stream_events():
            if ev.type == "raw_response_event":
                t = ev.data.type
                if t == "response.output_text.delta":
                    turn.output("text")
                elif (
                    t == "response.output_item.added"
                    and getattr(ev.data.item, "type", "") == "function_call"
                ):
                    turn.tool_name_seen()
                    turn.output("header")
                elif t == "response.function_call_arguments.delta":
                    turn.output("args")
                elif t == "response.created":
                    turn.steps += 1
        turn.final = str(result.final_output or "")
        turn.completion_tokens = result.context_wrapper.usage.output_tokens

    def run_turn(turn: Turn) -> None:
        loop.run_until_complete(turn_async(turn))

    return run_turn, {"schemas_sent_equal_repo_TOOLS": schemas_same, "extra_function_keys": extra}


# --- one measured run -------------------------------------------------------------------------


def measured(fw: str, base_url: str, model: str, n: int, warmup: int) -> dict:
    rss_start = proc_status()
    t = time.perf_counter()
    versions = import_framework(fw)
    import_ms = (time.perf_counter() - t) * 1000
    rss_import = proc_status()
    if fw == "direct":
        run_turn, info = make_direct(base_url, model, typed=False)
    elif fw == "direct_typed":
        run_turn, info = make_direct(base_url, model, typed=True)
    elif fw == "langgraph":
        run_turn, info = make_langgraph(base_url, model)
    else:
        run_turn, info = make_agents(base_url, model)
    rss_setup = proc_status()
    qs = questions(n)

    def one(q, exp):
        turn = Turn(q, exp)
        CURRENT[:] = [turn]
        try:
            run_turn(turn)
        except Exception as exc:
            turn.error = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"[:300]
        return turn, (time.perf_counter() - turn.t0) * 1000

    first_turn_wall = None
    for i in range(warmup):
        _, w = one(*qs[i % len(qs)])
        first_turn_wall = first_turn_wall if first_turn_wall is not None else w
    cpu0, wall0 = time.process_time(), time.perf_counter()
    turns = [one(q, exp) for q, exp in qs]
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    rss_end = proc_status()
    recs = [t.summary() for t, _ in turns]
    walls = [w for _, w in turns]

    def med(key):
        vals = [r[key] for r in recs if r[key] is not None]
        return round(statistics.median(vals), 3) if vals else None

    return {
        "framework": fw,
        "versions": versions,
        "python": sys.version.split()[0],
        "info": info,
        "n": n,
        "warmup": warmup,
        "import_ms_in_run": round(import_ms, 1),
        "rss_mib": {
            "start": rss_start["VmRSS"],
            "after_import": rss_import["VmRSS"],
            "after_setup": rss_setup["VmRSS"],
            "after_turns": rss_end["VmRSS"],
            "peak": rss_end["VmHWM"],
        },
        "cpu_ms_per_turn": round(cpu * 1000 / n, 3),
        "wall_ms_per_turn": round(wall * 1000 / n, 3),
        "wall_ms_p50": round(statistics.median(walls), 3),
        "wall_ms_p95": round(sorted(walls)[int(0.95 * len(walls)) - 1], 3),
        "first_turn_wall_ms": round(first_turn_wall, 3) if first_turn_wall else None,
        "correct": sum(r["correct"] for r in recs),
        "errors": sorted({r["error"] for r in recs if r["error"]}),
        "median_first_output_ms": med("first_output_ms"),
        "median_first_tool_name_ms": med("first_tool_name_ms"),
        "median_first_tool_exec_ms": med("first_tool_exec_ms"),
        "output_events_total": sum(r["output_events"] for r in recs),
        "arg_delta_events_total": sum(r["arg_delta_events"] for r in recs),
        "text_delta_events_total": sum(r["text_delta_events"] for r in recs),
        "completion_tokens_total": sum(r["completion_tokens"] for r in recs),
        "model_calls_total": sum(r["steps"] for r in recs),
        "turns": recs,
    }


# --- driver -----------------------------------------------------------------------------------


SHOWN = ("cpu_ms_per_turn", "wall_ms_per_turn", "correct", "rss_mib", "median_first_output_ms")


def driver(args) -> None:
    out = BUILD / "results"
    out.mkdir(parents=True, exist_ok=True)
    me = str(Path(__file__).resolve())
    fws = args.frameworks.split(",")
    pin = ["taskset", "-c", args.client_cpu] if args.client_cpu else []
    summary = {"runs": {}, "import_ms": {}}
    for fw in fws:  # import-only, fresh process each time
        py = str(BUILD / VENV[fw] / "bin" / "python")
        vals = []
        for _ in range(args.import_reps):
            res = subprocess.run(
                [*pin, py, me, "--framework", fw, "--import-only"],
                capture_output=True,
                text=True,
                check=True,
            )
            vals.append(json.loads(res.stdout.strip().splitlines()[-1])["import_ms"])
        summary["import_ms"][fw] = {
            "median": round(statistics.median(vals), 1),
            "min": round(min(vals), 1),
            "all": vals,
        }
        print(fw, "import ms", summary["import_ms"][fw], flush=True)
    for rep in range(args.reps):  # interleaved repetitions
        for fw in fws:
            py = str(BUILD / VENV[fw] / "bin" / "python")
            cmd = [*pin, py, me, "--framework", fw, "--n", str(args.n)]
            cmd += ["--warmup", str(args.warmup), "--base-url", args.base_url]
            cmd += ["--model", args.model]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                print(fw, "FAILED", res.stderr[-3000:], flush=True)
                summary["runs"].setdefault(fw, []).append({"failed": res.stderr[-3000:]})
                continue
            data = json.loads(res.stdout.strip().splitlines()[-1])
            with open(out / f"{fw}.run{rep}.json", "w") as f:
                json.dump(data, f, indent=1)
            slim = {k: v for k, v in data.items() if k != "turns"}
            summary["runs"].setdefault(fw, []).append(slim)
            shown = {k: slim[k] for k in SHOWN}
            print(fw, rep, json.dumps(shown), flush=True)
    with open(out / "summary.json", "w") as f:
        json.dump(summary, f, indent=1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--framework")
    ap.add_argument("--import-only", action="store_true")
    ap.add_argument("--driver", action="store_true")
    ap.add_argument("--frameworks", default="direct,direct_typed,langgraph,agents")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--import-reps", type=int, default=7)
    ap.add_argument("--client-cpu", default="0")
    ap.add_argument("--base-url", default="http://127.0.0.1:18431/v1")
    ap.add_argument("--model", default="bench-fast")
    args = ap.parse_args()
    if urlparse(args.base_url).hostname != "127.0.0.1":
        raise SystemExit("only 127.0.0.1 is allowed")
    # no tracing exporters (LangSmith, the Agents SDK's): nothing leaves 127.0.0.1; inherited by
    # the driver's child processes
    os.environ.update(
        LANGSMITH_TRACING="false", LANGCHAIN_TRACING_V2="false", OPENAI_AGENTS_DISABLE_TRACING="1"
    )
    if args.driver:
        driver(args)
    elif args.import_only:
        t = time.perf_counter()
        versions = import_framework(args.framework)
        ms = (time.perf_counter() - t) * 1000
        print(
            json.dumps(
                {
                    "framework": args.framework,
                    "import_ms": round(ms, 1),
                    "rss_mib": proc_status()["VmRSS"],
                    "versions": versions,
                }
            )
        )
    else:
        print(json.dumps(measured(args.framework, args.base_url, args.model, args.n, args.warmup)))


if __name__ == "__main__":
    main()
