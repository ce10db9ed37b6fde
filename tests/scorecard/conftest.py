"""Fixtures of the scorecard tests: one real bounded run per session (shared with dashboards)."""

from __future__ import annotations

import pytest
from scorecard_realrun import RealRun, real_run


@pytest.fixture(scope="session")
def real_archive(tmp_path_factory) -> RealRun:
    return real_run(tmp_path_factory.mktemp("scorecard-real-run"))
