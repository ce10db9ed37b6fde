"""The shared definitions: dashboards.json plus the SignalFlow files, rendered like Terraform's
templatefile() (`${name}` is replaced, `$${` is a literal `${`; no other directives are used)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC_FILE = ROOT / "dashboards.json"
PROGRAM_DIR = ROOT / "signalflow"
_PLACEHOLDER = re.compile(r"(\$?)\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class SpecError(Exception):
    """The shared definitions are inconsistent (a bug in the repository, not user input)."""


def render(template: str, variables: dict[str, Any], where: str = "program") -> str:
    def replace(match: re.Match) -> str:
        escaped, name = match.groups()
        if escaped:
            return "${" + name + "}"
        if name not in variables:
            raise SpecError(f"{where}: no value for ${{{name}}}")
        return str(variables[name])

    if "%{" in template:
        raise SpecError(f"{where}: template directives (%{{...}}) are not supported")
    return _PLACEHOLDER.sub(replace, template)


def program(file_name: str, variables: dict[str, Any]) -> str:
    return render((PROGRAM_DIR / file_name).read_text(), variables, file_name)


@dataclass(frozen=True)
class Spec:
    raw: dict[str, Any]

    @property
    def group(self) -> dict[str, Any]:
        return self.raw["group"]

    @property
    def dashboard(self) -> dict[str, Any]:
        return self.raw["dashboard"]

    @property
    def defaults(self) -> dict[str, str]:
        return self.raw["defaults"]

    @property
    def charts(self) -> list[dict[str, Any]]:
        return self.raw["charts"]

    @property
    def detectors(self) -> list[dict[str, Any]]:
        return self.raw["detectors"]


def load_spec(path: Path = SPEC_FILE) -> Spec:
    spec = Spec(json.loads(path.read_text()))
    names = [chart["name"] for chart in spec.charts]
    if len(set(names)) != len(names):
        raise SpecError("chart names must be unique (they identify charts on re-runs)")
    return spec


def chart_body(chart: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
    """A /v2/chart body for a time chart."""
    return {
        "name": chart["name"],
        "description": chart["description"],
        "programText": program(chart["program"], variables),
        "options": {
            "type": "TimeSeriesChart",
            "defaultPlotType": chart["plot_type"],
            "time": {"type": "relative", "range": 3_600_000},
        },
    }


def dashboard_body(
    spec: Spec, group_id: str, chart_ids: list[str], environment: str
) -> dict[str, Any]:
    layout = [
        {
            "chartId": chart_id,
            "row": c["row"],
            "column": c["column"],
            "width": c["width"],
            "height": c["height"],
        }
        for chart_id, c in zip(chart_ids, spec.charts, strict=True)
    ]
    return {
        "name": spec.dashboard["name"],
        "description": spec.dashboard["description"],
        "groupId": group_id,
        "charts": layout,
        "filters": {
            "time": {"start": spec.dashboard["time_range"], "end": "Now"},
            "variables": [
                {
                    "property": spec.dashboard["environment_property"],
                    "alias": "environment",
                    "value": [environment],
                    "required": False,
                    "applyIfExists": True,
                    "restricted": False,
                    "preferredSuggestions": [],
                    "replaceOnly": False,
                }
            ],
        },
    }


def detector_body(detector: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": detector["name"],
        "description": detector["description"],
        "programText": program(detector["program"], variables),
        "rules": [
            {
                "detectLabel": r["detect_label"],
                "severity": r["severity"],
                "description": r["description"],
            }
            for r in detector["rules"]
        ],
    }
