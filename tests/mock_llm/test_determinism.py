"""Same seed + same request -> byte-identical content and usage, across restarts."""

from __future__ import annotations

import re

from harness.mock_llm import start_mock_llm

REQUESTS = [
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Explain compost piles"}]},
    {
        "model": "gpt-4.1-mini",
        "messages": [{"role": "user", "content": "How do I speed up my database queries?"}],
        "seed": 42,
    },
    {"model": "gpt-4o", "messages": [{"role": "user", "content": "Plan a trip to Lisbon"}]},
]


def collect(service, client_for, seed_env: str) -> list[tuple[str, dict, str, dict]]:
    client = client_for(service)
    results = []
    for request in REQUESTS:
        full = client.chat.completions.create(**request, max_completion_tokens=25)
        chunks = list(
            client.chat.completions.create(
                **request,
                max_completion_tokens=25,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        results.append(
            (
                full.choices[0].message.content,
                full.usage.model_dump(),
                streamed,
                chunks[-1].usage.model_dump(),
            )
        )
    return results


def run(tmp_path, client_for, seed: str):
    with start_mock_llm(tmp_path, {"MOCK_LLM_SEED": seed}) as service:
        return collect(service, client_for, seed)


def test_same_seed_same_bytes_across_restarts(tmp_path, client_for):
    first = run(tmp_path, client_for, "1234")
    second = run(tmp_path, client_for, "1234")
    assert first == second
    for content, usage, streamed, stream_usage in first:
        assert content == streamed
        assert usage == stream_usage
    other_seed = run(tmp_path, client_for, "99")
    assert [r[0] for r in other_seed] != [r[0] for r in first]


def test_text_varies_with_prompt_and_request_seed(mock, client_for):
    client = client_for(mock)

    def ask(content, seed=None):
        return (
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": content}],
                seed=seed,
                max_completion_tokens=60,
            )
            .choices[0]
            .message.content
        )

    tomatoes = ask("How do tomatoes ripen?")
    assert tomatoes == ask("How do tomatoes ripen?")
    assert tomatoes != ask("How do tomatoes ripen?", seed=5)
    assert ask("How do tomatoes ripen?", seed=5) == ask("How do tomatoes ripen?", seed=5)
    assert tomatoes != ask("Why is the sky blue?")
    # readable: capitalised sentences of real words, and the prompt's topic shows up
    texts = [ask(f"Tell me about kubernetes clusters, take {i}") for i in range(5)]
    assert any("kubernetes" in t or "clusters" in t for t in texts)
    for text in texts:
        assert text[0].isupper()
        assert re.fullmatch(r"[A-Za-z ,.'\-]+", text), text
        assert "lorem" not in text.lower()
