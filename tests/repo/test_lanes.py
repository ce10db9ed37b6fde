"""`make test`'s two lanes (tests/conftest.py): what may be split between them, in what order."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections import defaultdict

from harness.prereq import ROOT

SPEC = importlib.util.spec_from_file_location("lanes", ROOT / "tests" / "conftest.py")
lanes = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(lanes)

# Two quick modules of several tests each, each with module-scoped fixtures.
PROBE_MODULES = ("tests/assistant/test_agent_units.py", "tests/loadgen/test_loadgen_units.py")


def test_a_unit_is_a_module_or_a_folder_that_shares_a_session_fixture():
    assert lanes.work_unit("tests/stack/test_engine.py::test_x") == "tests/stack"
    assert lanes.work_unit("tests/stack/test_stack.py::test_y[a::b]") == "tests/stack"
    assert lanes.work_unit("tests/scorecard/test_scorecard_agents.py::test_z") == "tests/scorecard"
    module = "tests/assistant/test_units.py"
    assert lanes.work_unit(f"{module}::test_u") == module
    assert lanes.work_unit("tests/stackless/test_a.py::t") == "tests/stackless/test_a.py"


def test_every_named_unit_exists():
    """A renamed module would silently lose its place at the front."""
    for unit in (*lanes.WHOLE_FOLDERS, *lanes.LONGEST_FIRST):
        assert (ROOT / unit).exists(), unit


def test_make_test_runs_two_lanes():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^TEST_LANES \?= 2$", makefile, re.M)
    assert "pytest -n $(TEST_LANES) $(PYTEST_ARGS)" in makefile


def test_each_module_runs_whole_in_one_lane():
    """A real two-worker run of two modules: every test of a module on the same worker."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-v", "-p", "no:cacheprovider",
         *PROBE_MODULES],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "scheduling tests via LaneScheduling" in proc.stdout
    workers = defaultdict(set)
    for worker, nodeid in re.findall(r"^\[(gw\d+)\] \[\s*\d+%\] PASSED (\S+)", proc.stdout, re.M):
        workers[nodeid.split("::")[0]].add(worker)
    assert set(workers) == set(PROBE_MODULES), proc.stdout[-3000:]
    assert all(len(on) == 1 for on in workers.values()), dict(workers)
