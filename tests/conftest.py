"""Two lanes side by side: `make test` runs pytest-xdist with two workers, and this file decides
what may be split between them.

A unit of work is a test module (its module-scoped fixtures start real processes once), or a
whole folder where a session-scoped fixture is shared (the stack tests share one container
engine, the scorecard tests one real run). The longest units go first, so that the other lane
fills with the short ones while they run (longest first keeps the two lanes' ends close).

xdist's own `--dist loadgroup` cannot do this with pytest 9: it renames `item._nodeid`, which
pytest 9 no longer reads (the groups are silently ignored), so the units are given to xdist's
scope scheduler through its `pytest_xdist_make_scheduler` hook instead.
"""

from __future__ import annotations

import pytest

# Folders whose tests share a session-scoped fixture: one unit each.
WHOLE_FOLDERS = ("tests/stack", "tests/scorecard")

# The slowest units of a full run (pytest's --durations), longest first; the rest follow in
# collection order.
LONGEST_FIRST = (
    "tests/reliability/test_nothing_lost.py",
    "tests/stack",
    "tests/reliability/test_fault_matrix.py",
    "tests/assistant/test_openapi_fuzz.py",
    "tests/bench/test_bench_quick.py",
    "tests/scorecard",
    "tests/assistant/test_evals.py",
    "tests/loadgen/test_loadgen_mock.py",
    "tests/reconciliation/test_reconciliation.py",
)


def work_unit(nodeid: str) -> str:
    """The unit a test runs in: its folder if listed in WHOLE_FOLDERS, else its module."""
    module = nodeid.split("::", 1)[0]
    for folder in WHOLE_FOLDERS:
        if module.startswith(folder + "/"):
            return folder
    return module


def _rank(unit: str) -> int:
    return LONGEST_FIRST.index(unit) if unit in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In the workers (they collect, in the same order each): the longest units first."""
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: _rank(work_unit(item.nodeid)))  # stable otherwise


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """xdist's scope scheduler with our units as its scopes: each unit runs whole on one worker,
    the next unit going to the first worker that is free."""
    from xdist.scheduler import LoadScopeScheduling

    class LaneScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return LaneScheduling(config, log)
