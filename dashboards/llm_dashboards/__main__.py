"""`python -m llm_dashboards apply|delete`: the Terraform definitions through the REST API.

Idempotent: objects are found by name and updated (PUT), created (POST) only when missing;
charts no longer in the definitions are removed. Needs SPLUNK_API_TOKEN and SPLUNK_REALM
(or SPLUNK_API_URL, which overrides the realm's API URL).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

if sys.version_info < (3, 11):  # noqa: UP036 - a clear message on old interpreters
    sys.exit(f"dashboards: error: Python >= 3.11 is required (this is {sys.version.split()[0]})")

from llm_dashboards.client import Api, ApiError
from llm_dashboards.spec import (
    Spec,
    SpecError,
    chart_body,
    dashboard_body,
    detector_body,
    load_spec,
)

EXIT_CONFIG = 2
EXIT_API = 1


def log(message: str) -> None:
    print(message, flush=True)


def api_from_env() -> Api:
    token = os.environ.get("SPLUNK_API_TOKEN", "").strip()
    realm = os.environ.get("SPLUNK_REALM", "").strip()
    url = os.environ.get("SPLUNK_API_URL", "").strip()
    if not token:
        raise SystemExit(
            _config_error(
                "SPLUNK_API_TOKEN is not set (an API access token: "
                "Settings > Access Tokens, API scope)"
            )
        )
    if not url and not realm:
        raise SystemExit(_config_error("SPLUNK_REALM is not set (e.g. us1; or set SPLUNK_API_URL)"))
    return Api(url or f"https://api.{realm}.observability.splunkcloud.com", token)


def _config_error(message: str) -> int:
    print(f"dashboards: error: {message}", file=sys.stderr)
    return EXIT_CONFIG


def variables(spec: Spec, args: argparse.Namespace) -> dict[str, Any]:
    values = dict(spec.defaults)
    ttft_ms = os.environ.get("SCORECARD_SLO_TTFT_P90_MS", "").strip()
    if ttft_ms:
        values["ttft_p90_slo_s"] = f"{float(ttft_ms) / 1000:g}"
    values["error_rate_slo"] = (
        os.environ.get("SCORECARD_SLO_ERROR_RATE", "").strip() or values["error_rate_slo"]
    )
    values["quality_pass_rate_slo"] = (
        os.environ.get("DASHBOARDS_QUALITY_PASS_RATE_SLO", "").strip()
        or values["quality_pass_rate_slo"]
    )
    values["environment"] = args.environment or values["environment"]
    values["service"] = args.service or values["service"]
    return values


def apply(api: Api, spec: Spec, values: dict[str, Any]) -> None:
    group_body = {"name": spec.group["name"], "description": spec.group["description"]}
    groups = api.find_by_name("dashboardgroup", spec.group["name"])
    if groups:
        group_id = groups[0]["id"]
        keep = {"dashboards": groups[0].get("dashboards", [])}  # PUT replaces: keep members
        api.call("PUT", f"/v2/dashboardgroup/{group_id}", {**group_body, **keep})
        log(f"updated dashboard group {spec.group['name']!r} ({group_id})")
    else:
        group_id = api.call("POST", "/v2/dashboardgroup", group_body, query={"empty": "true"})["id"]
        log(f"created dashboard group {spec.group['name']!r} ({group_id})")

    dashboards = [
        d
        for d in api.find_by_name("dashboard", spec.dashboard["name"])
        if d.get("groupId") == group_id
    ]
    existing: dict[str, str] = {}
    if dashboards:
        for placed in dashboards[0].get("charts", []):
            chart = api.call("GET", f"/v2/chart/{placed['chartId']}", ok_missing=True)
            if chart:
                existing[chart["name"]] = chart["id"]
    chart_ids = []
    for chart in spec.charts:
        body = chart_body(chart, values)
        if chart["name"] in existing:
            chart_id = existing.pop(chart["name"])
            api.call("PUT", f"/v2/chart/{chart_id}", body)
            log(f"updated chart {chart['name']!r}")
        else:
            chart_id = api.call("POST", "/v2/chart", body)["id"]
            log(f"created chart {chart['name']!r}")
        chart_ids.append(chart_id)
    body = dashboard_body(spec, group_id, chart_ids, values["environment"])
    if dashboards:
        dashboard_id = dashboards[0]["id"]
        api.call("PUT", f"/v2/dashboard/{dashboard_id}", body)
        log(f"updated dashboard {spec.dashboard['name']!r} ({dashboard_id})")
    else:
        dashboard_id = api.call("POST", "/v2/dashboard", body)["id"]
        log(f"created dashboard {spec.dashboard['name']!r} ({dashboard_id})")
    for name, stale_id in existing.items():
        api.call("DELETE", f"/v2/chart/{stale_id}", ok_missing=True)
        log(f"deleted chart {name!r} (no longer defined)")

    for detector in spec.detectors:
        body = detector_body(detector, values)
        found = api.find_by_name("detector", detector["name"])
        if found:
            api.call("PUT", f"/v2/detector/{found[0]['id']}", body)
            log(f"updated detector {detector['name']!r}")
        else:
            api.call("POST", "/v2/detector", body)
            log(f"created detector {detector['name']!r}")


def delete(api: Api, spec: Spec) -> None:
    groups = api.find_by_name("dashboardgroup", spec.group["name"])
    group_ids = {g["id"] for g in groups}
    for dashboard in api.find_by_name("dashboard", spec.dashboard["name"]):
        if dashboard.get("groupId") not in group_ids:
            continue
        api.call("DELETE", f"/v2/dashboard/{dashboard['id']}", ok_missing=True)
        log(f"deleted dashboard {dashboard['name']!r}")
        for placed in dashboard.get("charts", []):
            api.call("DELETE", f"/v2/chart/{placed['chartId']}", ok_missing=True)
        log(f"deleted {len(dashboard.get('charts', []))} chart(s)")
    for group in groups:
        api.call("DELETE", f"/v2/dashboardgroup/{group['id']}", ok_missing=True)
        log(f"deleted dashboard group {group['name']!r}")
    for detector in spec.detectors:
        for found in api.find_by_name("detector", detector["name"]):
            api.call("DELETE", f"/v2/detector/{found['id']}", ok_missing=True)
            log(f"deleted detector {found['name']!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llm_dashboards", description=__doc__)
    parser.add_argument("action", choices=("apply", "delete"))
    parser.add_argument(
        "--environment",
        default=os.environ.get("DEPLOYMENT_ENVIRONMENT", ""),
        help="deployment.environment to select (env DEPLOYMENT_ENVIRONMENT)",
    )
    parser.add_argument(
        "--service",
        default=os.environ.get("OTEL_SERVICE_NAME", ""),
        help="the assistant's service.name (env OTEL_SERVICE_NAME)",
    )
    args = parser.parse_args(argv)
    try:
        spec = load_spec()
        api = api_from_env()
        if args.action == "apply":
            apply(api, spec, variables(spec, args))
        else:
            delete(api, spec)
    except SystemExit as exc:
        return int(exc.code or 0)
    except ApiError as exc:
        print(f"dashboards: error: {exc}", file=sys.stderr)
        return EXIT_API
    except (SpecError, ValueError) as exc:
        print(f"dashboards: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


if __name__ == "__main__":
    sys.exit(main())
