"""CPU of the judge's own HTTP call, made as the assistant's evaluator makes it.

Run with the assistant's interpreter (its pinned openai SDK), against a running mock LLM:

    build/venvs/assistant/bin/python bench/micro_judge_call.py --base-url http://127.0.0.1:PORT/v1 \
        [--calls 200] [--answer-model bench]

One non-streaming chat answer of `--answer-model` is fetched first (outside the timing), as the
answer to judge. Then the judge body of that answer (`assistant.evals.judge.judge_body`) is posted
`--calls` times to `mock-judge` with an openai client built with the evaluator's settings
(`Evaluator._make_client`: timeout 30 s, connect 5 s, max_retries 1) and the evaluator's call
(`client.post("/chat/completions", cast_to=object, ...)`). Prints JSON: process CPU
(time.process_time: this process, all threads) per call, mean and percentiles, after warm-up calls.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services/assistant/src"))


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--base-url", required=True)
    cli.add_argument("--calls", type=int, default=200)
    cli.add_argument("--warmup", type=int, default=5)
    cli.add_argument("--answer-model", default="bench")
    cli.add_argument("--judge-model", default="mock-judge")
    cli.add_argument("--question", default="Tell me about observability.")
    args = cli.parse_args()
    import openai

    from assistant.evals.judge import judge_body, parse_judge_response

    client = openai.OpenAI(  # the evaluator's settings (assistant/evals/evaluator.py)
        api_key="sk-mock",
        base_url=args.base_url,
        timeout=openai.Timeout(30.0, connect=5.0),
        max_retries=1,
    )
    answer = client.post(
        "/chat/completions",
        cast_to=object,
        body={
            "model": args.answer_model,
            "messages": [{"role": "user", "content": args.question}],
        },
    )["choices"][0]["message"]["content"]
    body = judge_body(args.judge_model, args.question, answer, [])
    per_call: list[float] = []
    for i in range(args.warmup + max(1, args.calls)):
        start = time.process_time()
        response = client.post("/chat/completions", cast_to=object, body=body, options={})
        used = time.process_time() - start
        if i >= args.warmup:
            per_call.append(used)
    verdicts = parse_judge_response(response)  # the mock judge answered the contract's JSON
    ordered = sorted(per_call)
    print(
        json.dumps(
            {
                "calls": len(per_call),
                "answer_chars": len(answer),
                "judge_body_bytes": len(json.dumps(body)),
                "evaluations": len(verdicts),
                "cpu_ms_per_call_mean": statistics.fmean(per_call) * 1000,
                "cpu_ms_per_call_p50": statistics.median(per_call) * 1000,
                "cpu_ms_per_call_p90": ordered[int(0.9 * (len(ordered) - 1))] * 1000,
                "cpu_ms_per_call_min": ordered[0] * 1000,
            }
        )
    )


if __name__ == "__main__":
    main()
