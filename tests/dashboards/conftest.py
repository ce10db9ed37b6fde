"""Fixtures of the dashboards tests: the real-run archive shared with tests/scorecard."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scorecard"))

from scorecard_realrun import RealRun, real_run


@pytest.fixture(scope="session")
def real_archive(tmp_path_factory) -> RealRun:
    return real_run(tmp_path_factory.mktemp("scorecard-real-run"))
