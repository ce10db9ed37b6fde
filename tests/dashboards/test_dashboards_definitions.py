"""Dashboards as code: Terraform formatting/validation and SignalFlow programs checked against
what the assistant and collector really emit (the archive of a real bounded run)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from scorecard_realrun import MODELS

from harness.evaluations import EVALUATION_NAMES
from harness.prereq import ROOT, require_tool

DASHBOARDS = ROOT / "dashboards"
SPEC = json.loads((DASHBOARDS / "dashboards.json").read_text())
PROGRAMS = DASHBOARDS / "signalflow"
PRICES = json.loads((ROOT / "scorecard/src/scorecard/data/prices.json").read_text())["models"]
# Produced by Splunk APM from SERVER spans (not by the collector), with a Custom MetricSet.
APM_METRICS = {"service.request.count", "service.request.duration.ns.p90"}
APM_DIMENSIONS = {"sf_environment", "sf_service", "sf_dimensionalized"}
APM_CUSTOM_DIMENSIONS = {"gen_ai.request.model"}
METRIC = re.compile(r"\b(histogram|data)\('([^']+)'")
FILTER = re.compile(r"filter\('([^']+)',\s*'([^']*)'\)")
BY = re.compile(r"by=\[([^\]]*)\]")
PLACEHOLDER = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def all_programs() -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(PROGRAMS.glob("*.flow"))}


def references(text: str) -> tuple[set[tuple[str, str]], set[str], dict[str, set[str]]]:
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    metrics = set(METRIC.findall(code))
    dimensions: set[str] = set()
    values: dict[str, set[str]] = defaultdict(set)
    for key, value in FILTER.findall(code):
        dimensions.add(key)
        values[key].add(value)
    for group in BY.findall(code):
        dimensions.update(re.findall(r"'([^']+)'", group))
    return metrics, dimensions, values


def test_every_program_is_used_and_every_reference_exists():
    used = {c["program"] for c in SPEC["charts"]} | {d["program"] for d in SPEC["detectors"]}
    assert used == set(all_programs())
    main_tf = (DASHBOARDS / "terraform" / "main.tf").read_text()
    tf_vars = set(
        re.findall(
            r"^\s*(\w+)\s*=", main_tf.split("program_vars = {", 1)[1].split("}", 1)[0], re.MULTILINE
        )
    )
    assert tf_vars == set(SPEC["defaults"])
    for name, text in all_programs().items():
        assert set(PLACEHOLDER.findall(text)) <= tf_vars, name
        assert "%{" not in text, name
        assert ".publish(" in text, name


def test_cost_program_uses_the_scorecard_price_table():
    text = (PROGRAMS / "cost_per_hour.flow").read_text()
    for model, price in PRICES.items():
        pattern = (
            rf"_in \* {price['input']:.2f} \+ \w+_out \* {price['output']:.2f}\) / 1000000\)"
            rf"\.publish\(label='{re.escape(model)} USD/h'\)"
        )
        assert re.search(pattern, text), model


def emitted(
    points: list[dict],
) -> tuple[dict[str, set[str]], dict[tuple[str, str], set[str]], set[str]]:
    """Histogram name -> attribute keys, (name, key) -> values seen, and resource keys."""
    histograms: dict[str, set[str]] = defaultdict(set)
    values: dict[tuple[str, str], set[str]] = defaultdict(set)
    resource_keys: set[str] = set()
    for point in points:
        if point["type"] == "histogram":
            histograms[point["name"]].update(point["attributes"])
            resource_keys.update(point["resource"])
            for key, value in point["attributes"].items():
                values[(point["name"], key)].add(str(value))
    return histograms, values, resource_keys


def problems(name: str, text: str, points: list[dict]) -> list[str]:
    """What a program references that the real run did not emit (empty = all good)."""
    histograms, values, resource_keys = emitted(points)
    metrics, dimensions, filter_values = references(text)
    found = []
    kinds = {kind for kind, _ in metrics}
    if not metrics:
        return [f"{name}: no metric"]
    if kinds == {"data"}:
        found += [f"{name}: {m} is not an APM metric" for _, m in metrics if m not in APM_METRICS]
        found += [
            f"{name}: {d} is not an APM dimension"
            for d in dimensions
            if d not in APM_DIMENSIONS | APM_CUSTOM_DIMENSIONS
        ]
        return found
    if kinds != {"histogram"}:
        return [f"{name}: mixes APM and OTLP metrics"]
    for _, metric in metrics:
        if metric not in histograms:
            found.append(f"{name}: {metric} is not emitted as a histogram")
            continue
        known = histograms[metric] | resource_keys
        found += [f"{name}: {metric} has no dimension {d}" for d in dimensions if d not in known]
        for dimension, wanted in filter_values.items():
            if dimension in histograms[metric]:
                found += [
                    f"{name}: {metric} never has {dimension}={v}"
                    for v in wanted - {"*"}
                    if v not in values[(metric, dimension)]
                ]
    return found


def test_signalflow_references_only_emitted_metrics_and_dimensions(real_archive):
    for name, text in all_programs().items():
        assert problems(name, text, real_archive.points) == []
    # the check itself catches a wrong metric, dimension or value
    wrong = (
        "histogram('gen_ai.client.duration').count(by=['gen_ai.request.model']).publish()\n"
        "histogram('gen_ai.client.token.usage', filter=filter('gen_ai.token.kind', 'input'))"
        ".sum(by=['model']).publish()\n"
        "histogram('gen_ai.client.token.usage', filter=filter('gen_ai.token.type', 'cached'))"
        ".sum().publish()"
    )
    assert len(problems("wrong.flow", wrong, real_archive.points)) == 4
    # the dashboard variable filters on a resource attribute every GenAI point carries
    property_ = SPEC["dashboard"]["environment_property"]
    genai = [p for p in real_archive.points if p["name"].startswith("gen_ai.")]
    assert genai and all(p["resource"].get(property_) for p in genai)
    # the cost program's models are the models the assistant really serves
    _, values, _ = emitted(real_archive.points)
    served = values[("gen_ai.client.token.usage", "gen_ai.request.model")]
    assert set(PRICES) <= served


TTFT_METRIC = "gen_ai.client.operation.time_to_first_chunk"
SCORECARD_TTFT_SLO_MS = 1000.0  # the scorecard's default --slo-ttft-p90-ms
THRESHOLD = re.compile(r"when\(T > ([^,)]+)")


def ttft_means_ms(points: list[dict]) -> dict[str, tuple[float, int]]:
    """Per model: the TTFT histogram's mean (sum / count, in ms) and its count."""
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for point in points:
        if point["name"] == TTFT_METRIC and point["type"] == "histogram":
            model = point["attributes"]["gen_ai.request.model"]
            sums[model][0] += point["sum"]
            sums[model][1] += point["count"]
    return {m: (total / count * 1000, count) for m, (total, count) in sums.items() if count}


def test_ttft_metric_values_match_the_mock_profiles(real_archive):
    """The TTFT charts and detector read this histogram: its values must be the models' TTFT
    (the mock's profile ttft_ms, plus a few ms of prefill and assistant), in seconds. A TTFT
    that times a role-only first chunk (about 4 ms for every model) fails here."""
    points = [p for p in real_archive.points if p["name"] == TTFT_METRIC]
    assert points and {p["unit"] for p in points} == {"s"}
    means = ttft_means_ms(real_archive.points)
    assert set(means) == set(MODELS)
    for model, (mean_ms, count) in means.items():
        profile_ms = real_archive.profiles[model]["ttft_ms"]
        # jitter (seeded, clipped at 3 sd) over a handful of calls, prefill and the assistant's
        # own few ms: well inside [0.7, 1.3] x profile + 50 ms; a wrong unit is 1000x off
        low, high = 0.7 * profile_ms, 1.3 * profile_ms + 50
        assert low <= mean_ms <= high, (model, mean_ms, count, profile_ms)


def test_ttft_detector_threshold_is_in_the_metric_unit(real_archive):
    """The detector compares the histogram's p90 (seconds) with ${ttft_p90_slo_s}: the default
    must be the scorecard's SLO in seconds, and on a real run it must separate the models whose
    TTFT is below the SLO from those above it (a threshold in ms would never fire)."""
    text = (PROGRAMS / "detector_ttft_p90.flow").read_text()
    assert f"histogram('{TTFT_METRIC}'" in text
    rendered = text.replace("${ttft_p90_slo_s}", SPEC["defaults"]["ttft_p90_slo_s"])
    threshold = float(THRESHOLD.search(rendered).group(1))
    assert threshold == SCORECARD_TTFT_SLO_MS / 1000
    chart = (PROGRAMS / "ttft_p90.flow").read_text()
    assert f"histogram('{TTFT_METRIC}'" in chart and "scale(" not in chart  # plotted in s
    assert any(c["program"] == "ttft_p90.flow" and "(s)" in c["name"] for c in SPEC["charts"])
    means = ttft_means_ms(real_archive.points)
    profiles = {m: real_archive.profiles[m]["ttft_ms"] for m in MODELS}
    below = [m for m, ttft_ms in profiles.items() if ttft_ms < 0.8 * SCORECARD_TTFT_SLO_MS]
    above = [m for m, ttft_ms in profiles.items() if ttft_ms > 1.1 * SCORECARD_TTFT_SLO_MS]
    assert below and above, profiles  # the shipped profiles have both
    for model in below:
        assert means[model][0] / 1000 < threshold, model
    for model in above:
        assert means[model][0] / 1000 > threshold, model


def test_apm_charts_match_the_server_spans(real_archive):
    """APM derives sf_service/sf_environment from resources and the custom dimension from the
    SERVER span's tag: the assistant must set them, with the values the charts select."""
    servers = [
        s for s in real_archive.spans if s["kind"] == "SERVER" and s["name"] == "POST /api/chat"
    ]
    assert servers
    for span in servers:
        assert span["attributes"].get("gen_ai.request.model")
        assert span["resource"]["service.name"] == SPEC["defaults"]["service"]
        assert span["resource"]["deployment.environment"] == SPEC["defaults"]["environment"]


def test_terraform_is_formatted():
    terraform = require_tool("terraform")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", "-no-color"],
        cwd=DASHBOARDS / "terraform",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_terraform_validate(tmp_path):
    """`terraform validate` needs the signalfx provider: skipped when it cannot be downloaded."""
    terraform = require_tool("terraform")
    work = tmp_path / "dashboards"
    shutil.copytree(DASHBOARDS, work, ignore=shutil.ignore_patterns(".terraform*", "__pycache__"))
    tf = work / "terraform"
    init = subprocess.run(
        [terraform, "init", "-backend=false", "-input=false", "-no-color"],
        cwd=tf,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if init.returncode != 0:
        output = (init.stderr + init.stdout).split("Error:", 1)[-1].split()
        pytest.skip(
            "terraform validate needs the splunk-terraform/signalfx provider from "
            f"registry.terraform.io, which cannot be downloaded here: {' '.join(output[:30])}"
        )
    result = subprocess.run(
        [terraform, "validate", "-no-color"], cwd=tf, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_terraform_reads_the_shared_definitions():
    main_tf = (DASHBOARDS / "terraform" / "main.tf").read_text()
    assert 'file("${path.module}/../dashboards.json")' in main_tf
    assert 'templatefile("${path.module}/../signalflow/${each.value.program}"' in main_tf
    versions = (DASHBOARDS / "terraform" / "versions.tf").read_text()
    assert 'source  = "splunk-terraform/signalfx"' in versions
    assert 'version = "9.33.0"' in versions
    assert Path(DASHBOARDS / "terraform" / "terraform.tfvars.example").exists()


def test_programs_are_balanced_and_render_like_templatefile():
    sys.path.insert(0, str(DASHBOARDS))
    try:
        from llm_dashboards.spec import SpecError, render
    finally:
        sys.path.remove(str(DASHBOARDS))
    assert render("a ${x} $${y} b", {"x": 1}) == "a 1 ${y} b"  # as Terraform's templatefile
    with pytest.raises(SpecError, match="no value for"):
        render("${missing}", {})
    with pytest.raises(SpecError, match="directives"):
        render("%{ for x in y }", {})
    pairs = {"(": ")", "[": "]"}
    for name, text in all_programs().items():
        for number, line in enumerate(text.splitlines(), 1):
            if line.lstrip().startswith("#") or not line.strip():
                continue
            assert line.count("'") % 2 == 0, f"{name}:{number}: unbalanced quote"
            stack = []
            for char in re.sub(r"'[^']*'", "''", line):
                if char in pairs:
                    stack.append(pairs[char])
                elif char in pairs.values():
                    assert stack and stack.pop() == char, f"{name}:{number}: unbalanced {char}"
            assert not stack, f"{name}:{number}: unclosed {stack}"


def test_quality_chart_and_detector_read_the_judges_scores(real_archive):
    """The pass-rate chart and the quality-drop detector divide the judge's score sum by its
    count: on the real run (evaluations on, mock judge) every model has the four evaluations,
    each a pass rate in [0, 1], and the detector's threshold is such a rate."""
    points = [
        p
        for p in real_archive.points
        if p["name"] == "gen_ai.evaluation.score"
        and p["attributes"].get("gen_ai.evaluation.name") != "user_satisfaction"
    ]
    totals = {}
    for point in points:
        key = (
            point["attributes"]["gen_ai.request.model"],
            point["attributes"]["gen_ai.evaluation.name"],
        )
        count, total = totals.get(key, (0, 0.0))
        totals[key] = (count + point["count"], total + point["sum"])
    names = {name for _, name in totals}
    assert names == set(EVALUATION_NAMES)
    assert {model for model, _ in totals} >= {"gpt-4o", "o3-mini"}
    assert all(0.0 <= total / count <= 1.0 for count, total in totals.values())
    assert 0.0 < float(SPEC["defaults"]["quality_pass_rate_slo"]) < 1.0
    detector = (DASHBOARDS / "signalflow" / "detector_quality_drop.flow").read_text()
    assert "rate < ${quality_pass_rate_slo}" in detector
