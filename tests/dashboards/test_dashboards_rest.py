"""The REST path (`make dashboards` / `make dashboards-delete`) against a fake API on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_signalfx_api import FakeApi

from harness.prereq import ROOT

DASHBOARDS = ROOT / "dashboards"
SPEC = json.loads((DASHBOARDS / "dashboards.json").read_text())
TOKEN = "test-token-value-123"
CHARTS = len(SPEC["charts"])
DETECTORS = len(SPEC["detectors"])


def run(
    action: str,
    url: str,
    token: str = TOKEN,
    extra_env: dict | None = None,
    args: tuple[str, ...] = (),
) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SPLUNK_", "SCORECARD_", "DEPLOYMENT_", "OTEL_"))
    }
    env.update(
        PYTHONPATH=str(DASHBOARDS), SPLUNK_API_TOKEN=token, SPLUNK_API_URL=url, **(extra_env or {})
    )
    return subprocess.run(
        [sys.executable, "-m", "llm_dashboards", action, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def rendered(file_name: str, **overrides: str) -> str:
    values = {**SPEC["defaults"], **overrides}
    text = (DASHBOARDS / "signalflow" / file_name).read_text()
    for name, value in values.items():
        text = text.replace("${" + name + "}", str(value))
    return text


@pytest.fixture
def api():
    with FakeApi(token=TOKEN) as fake:
        yield fake


def test_first_apply_creates_everything_with_exact_requests(api):
    result = run("apply", api.url, extra_env={"DEPLOYMENT_ENVIRONMENT": "workshop-7"})
    assert result.returncode == 0, result.stderr
    group_name, dash_name = SPEC["group"]["name"], SPEC["dashboard"]["name"]
    expected = (
        ["GET /v2/dashboardgroup", "POST /v2/dashboardgroup", "GET /v2/dashboard"]
        + ["POST /v2/chart"] * CHARTS
        + ["POST /v2/dashboard"]
        + ["GET /v2/detector", "POST /v2/detector"] * DETECTORS
    )
    assert api.calls() == expected
    assert all(r.token == TOKEN for r in api.requests)
    first = api.requests
    assert first[0].query == {"name": group_name, "limit": "100"}
    assert first[1].query == {"empty": "true"}
    assert first[1].body == {"name": group_name, "description": SPEC["group"]["description"]}
    assert first[2].query["name"] == dash_name
    for request, chart in zip(first[3 : 3 + CHARTS], SPEC["charts"], strict=True):
        assert request.body["name"] == chart["name"]
        assert request.body["programText"] == rendered(chart["program"], environment="workshop-7")
        assert request.body["options"]["type"] == "TimeSeriesChart"
        assert request.body["options"]["defaultPlotType"] == chart["plot_type"]
        assert "${" not in request.body["programText"]
    dashboard = first[3 + CHARTS].body
    group_id = next(iter(api.objects["dashboardgroup"]))
    assert dashboard["groupId"] == group_id
    chart_ids = list(api.objects["chart"])
    assert [c["chartId"] for c in dashboard["charts"]] == chart_ids
    assert [(c["row"], c["column"], c["width"], c["height"]) for c in dashboard["charts"]] == [
        (c["row"], c["column"], c["width"], c["height"]) for c in SPEC["charts"]
    ]
    variable = dashboard["filters"]["variables"][0]
    assert variable["property"] == "deployment.environment" and variable["value"] == ["workshop-7"]
    assert variable["applyIfExists"] is True
    detectors = [r.body for r in api.requests if r.call == "POST /v2/detector"]
    assert [d["name"] for d in detectors] == [d["name"] for d in SPEC["detectors"]]
    assert "T > 1.0" in detectors[0]["programText"]
    assert "> 0.05" in detectors[1]["programText"]
    assert detectors[0]["rules"] == [
        {
            "detectLabel": "TTFT p90 above SLO",
            "severity": "Major",
            "description": "TTFT p90 above the SLO for 5 minutes",
        }
    ]
    assert TOKEN not in result.stdout + result.stderr
    assert "created dashboard" in result.stdout


def test_second_apply_updates_in_place_without_duplicates(api):
    assert run("apply", api.url).returncode == 0
    ids_before = {kind: set(objs) for kind, objs in api.objects.items()}
    api.reset_log()
    result = run("apply", api.url, extra_env={"SCORECARD_SLO_TTFT_P90_MS": "1500"})
    assert result.returncode == 0, result.stderr
    expected = (
        [
            "GET /v2/dashboardgroup",
            "PUT /v2/dashboardgroup/" + next(iter(ids_before["dashboardgroup"])),
            "GET /v2/dashboard",
        ]
        + [f"GET /v2/chart/{cid}" for cid in api.objects["chart"]]
        + [f"PUT /v2/chart/{cid}" for cid in api.objects["chart"]]
        + ["PUT /v2/dashboard/" + next(iter(ids_before["dashboard"]))]
    )
    assert api.calls()[: len(expected)] == expected
    assert [c for c in api.calls() if c.startswith("POST")] == []
    group_put = api.requests[1].body
    assert group_put == {
        "name": SPEC["group"]["name"],
        "description": SPEC["group"]["description"],
        "dashboards": list(ids_before["dashboard"]),
    }
    assert {kind: set(objs) for kind, objs in api.objects.items()} == ids_before
    assert len(api.objects["chart"]) == CHARTS and len(api.objects["detector"]) == DETECTORS
    assert len(api.objects["dashboard"]) == 1 and len(api.objects["dashboardgroup"]) == 1
    ttft = next(d for d in api.objects["detector"].values() if "TTFT" in d["name"])
    assert "T > 1.5" in ttft["programText"]  # the update reached the detector


def test_stale_charts_are_removed_on_apply(api):
    assert run("apply", api.url).returncode == 0
    dashboard = next(iter(api.objects["dashboard"].values()))
    api.objects["chart"]["CH9999"] = {"id": "CH9999", "name": "an old chart", "programText": "x"}
    dashboard["charts"].append(
        {"chartId": "CH9999", "row": 9, "column": 0, "width": 1, "height": 1}
    )
    result = run("apply", api.url)
    assert result.returncode == 0, result.stderr
    assert "DELETE /v2/chart/CH9999" in api.calls()
    assert "CH9999" not in api.objects["chart"]
    assert len(next(iter(api.objects["dashboard"].values()))["charts"]) == CHARTS


def test_delete_removes_everything_and_is_repeatable(api):
    assert run("apply", api.url).returncode == 0
    api.reset_log()
    result = run("delete", api.url)
    assert result.returncode == 0, result.stderr
    assert all(not objs for objs in api.objects.values()), api.objects
    deletes = [c for c in api.calls() if c.startswith("DELETE")]
    assert len(deletes) == 1 + CHARTS + 1 + DETECTORS
    api.reset_log()
    again = run("delete", api.url)
    assert again.returncode == 0, again.stderr
    assert [c for c in api.calls() if not c.startswith("GET")] == []


def test_unrelated_objects_are_left_alone(api):
    api.objects["dashboardgroup"]["OLDGROUP"] = {
        "id": "OLDGROUP",
        "name": "LLM assistant (old copy)",
        "dashboards": [],
    }
    api.objects["detector"]["OLDDETECTOR"] = {
        "id": "OLDDETECTOR",
        "name": "LLM assistant: something else",
    }
    assert run("apply", api.url).returncode == 0
    assert run("delete", api.url).returncode == 0
    assert set(api.objects["dashboardgroup"]) == {"OLDGROUP"}
    assert set(api.objects["detector"]) == {"OLDDETECTOR"}


def test_configuration_and_api_errors_are_clear(api):
    missing = run("apply", api.url, token="")
    assert missing.returncode == 2 and "SPLUNK_API_TOKEN is not set" in missing.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPLUNK_")}
    no_realm = subprocess.run(
        [sys.executable, "-m", "llm_dashboards", "apply"],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(DASHBOARDS), "SPLUNK_API_TOKEN": "t"},
        timeout=30,
    )
    assert no_realm.returncode == 2 and "SPLUNK_REALM is not set" in no_realm.stderr
    wrong = run("apply", api.url, token="wrong-secret-token")
    assert wrong.returncode == 1
    assert "HTTP 401" in wrong.stderr and "API scope" in wrong.stderr
    assert "wrong-secret-token" not in wrong.stderr + wrong.stdout
    assert "Traceback" not in wrong.stderr
    down = run("apply", "http://127.0.0.1:9")
    assert down.returncode == 1 and "failed" in down.stderr and "Traceback" not in down.stderr


def test_realm_gives_the_api_url():
    sys.path.insert(0, str(DASHBOARDS))
    try:
        from llm_dashboards.__main__ import api_from_env

        old = dict(os.environ)
        os.environ.update(SPLUNK_API_TOKEN="t", SPLUNK_REALM="eu0", SPLUNK_API_URL="")
        try:
            api = api_from_env()
        finally:
            os.environ.clear()
            os.environ.update(old)
        assert api.base_url == "https://api.eu0.observability.splunkcloud.com"
    finally:
        sys.path.remove(str(DASHBOARDS))


def test_readme_documents_the_manual_step():
    readme = (DASHBOARDS / "README.md").read_text()
    assert "Custom MetricSet" in readme and "gen_ai.request.model" in readme
    assert Path(DASHBOARDS / "terraform" / "main.tf").exists()
