"""Two lanes side by side: `make test` runs pytest-xdist with `--dist loadgroup`, and this hook
decides what may be split between its workers.

A unit of work is a test module (its module-scoped fixtures start real processes once), a whole
folder where a session-scoped fixture is shared (the stack tests share one container engine, the
scorecard tests one real run). The longest units go first, so that the other lane fills with the
short ones while they run (longest-first keeps the two lanes' ends close).
"""

from __future__ import annotations

from pathlib import Path

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

ROOT = Path(__file__).resolve().parents[1]


def work_unit(item: pytest.Item) -> str:
    """The unit `item` runs in: its folder if listed in WHOLE_FOLDERS, else its module."""
    module = Path(str(item.path)).resolve().relative_to(ROOT).as_posix()
    for folder in WHOLE_FOLDERS:
        if module.startswith(folder + "/"):
            return folder
    return module


def _rank(unit: str) -> int:
    return LONGEST_FIRST.index(unit) if unit in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    lanes = config.pluginmanager.hasplugin("xdist") and getattr(config.option, "numprocesses", None)
    if not lanes:
        return
    units = {item.nodeid: work_unit(item) for item in items}
    items.sort(key=lambda item: _rank(units[item.nodeid]))  # stable: collection order otherwise
    for item in items:
        item.add_marker(pytest.mark.xdist_group(units[item.nodeid]))
