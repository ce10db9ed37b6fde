"""`make test`'s two lanes (tests/conftest.py): what may be split between them, in what order."""

from __future__ import annotations

import importlib.util
import json
import os
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
    for unit in (*lanes.WHOLE_FOLDERS, *lanes.LONGEST_FIRST, *lanes.ALONE_LAST):
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


# A suite of sleeping tests that log when and where they ran; test_alone.py is collected before
# test_b.py and test_c.py, and must still run last, alone.
SUITE_CONFTEST = """
import importlib.util, json, os, time
import pytest

spec = importlib.util.spec_from_file_location("lanes", {conftest!r})
lanes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lanes)

def pytest_xdist_make_scheduler(config, log):
    return lanes.lane_scheduler(config, log, alone=("test_alone.py",),
                                unit_of=lambda nodeid: nodeid.split("::")[0])

@pytest.fixture(autouse=True)
def logged(request):
    start = time.monotonic()
    time.sleep(0.3)
    yield
    with open(os.environ["LANES_LOG"], "a") as log:
        log.write(json.dumps([request.node.nodeid, os.environ["PYTEST_XDIST_WORKER"],
                              start, time.monotonic()]) + "\\n")
"""
SUITE = {"test_a.py": 4, "test_alone.py": 2, "test_b.py": 3, "test_c.py": 1}


def test_units_that_run_alone_wait_for_every_other_and_share_no_lane(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(
        SUITE_CONFTEST.format(conftest=str(ROOT / "tests" / "conftest.py"))
    )
    for module, count in SUITE.items():
        tests = "".join(f"def test_{i}():\n    pass\n\n" for i in range(count))
        (tmp_path / module).write_text(tests)
    log = tmp_path / "ran.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "LANES_LOG": str(log)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ran = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(ran) == sum(SUITE.values())
    alone = [r for r in ran if r[0].startswith("test_alone.py::")]
    shared = [r for r in ran if r not in alone]
    assert len({worker for _, worker, _, _ in shared}) == 2, ran  # the others did use two lanes
    assert len({worker for _, worker, _, _ in alone}) == 1, ran
    assert min(start for _, _, start, _ in alone) > max(end for _, _, _, end in shared), ran
