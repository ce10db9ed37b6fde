"""Two lanes side by side: `make test` runs pytest-xdist with two workers, and this file decides
what may be split between them, in what order, and what must run alone.

A unit of work is a test module (its module-scoped fixtures start real processes once), or a
whole folder where a session-scoped fixture is shared (the stack tests share one container
engine, the scorecard tests one real run). The longest units go first, so that the other lane
fills with the short ones while they run (longest first keeps the two lanes' ends close).

Units that compare two clocks within a tight tolerance (what the client or the mock saw against
what the telemetry recorded) run last and alone: beside the other lane's load, CPU contention puts
tens of milliseconds between the clocks that the stack itself did not add. A cold two-lane run with
them shared failed 7 such checks (for example a span TTFT 70.6 ms after the mock's first token,
allowed 50; a UI TTFT 377 ms against the span's 301 ms, allowed +50) and passed them all alone.

xdist's own `--dist loadgroup` cannot do this with pytest 9: it renames `item._nodeid`, which
pytest 9 no longer reads (the groups are silently ignored), so the units are given to xdist's
scope scheduler through its `pytest_xdist_make_scheduler` hook instead.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import pytest

# Folders whose tests share a session-scoped fixture: one unit each.
WHOLE_FOLDERS = ("tests/stack", "tests/scorecard")

# The slowest units of a full run (pytest's --durations), longest first; the rest follow in
# collection order.
LONGEST_FIRST = (
    "tests/reliability/test_nothing_lost.py",
    "tests/reliability/test_fault_matrix.py",
    "tests/assistant/test_openapi_fuzz.py",
    "tests/bench/test_bench_quick.py",
    "tests/assistant/test_evals.py",
    "tests/loadgen/test_loadgen_mock.py",
)

# Units that run after everything else, with no other lane running (see above).
ALONE_LAST = (
    "tests/stack",
    "tests/reconciliation/test_reconciliation.py",
    "tests/scorecard",
    "tests/mock_llm/test_ground_truth.py",
    "tests/assistant/test_browser.py",
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


def lane_scheduler(
    config: pytest.Config,
    log,
    alone: Collection[str] = ALONE_LAST,
    unit_of: Callable[[str], str] = work_unit,
):
    """xdist's scope scheduler with our units as its scopes, in collection order: each unit runs
    whole on one worker, the next going to the first worker that is free. The units in `alone`
    wait until no other is left; then the lanes shut down one by one, and the last runs them."""
    from xdist.scheduler import LoadScopeScheduling

    class LaneScheduling(LoadScopeScheduling):
        def __init__(self, config: pytest.Config, log) -> None:
            super().__init__(config, log)
            config.option.loadscopereorder = False  # xdist would re-sort units by test count

        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

        def _assign_work_unit(self, node) -> None:
            shared = next((unit for unit in self.workqueue if unit not in alone), None)
            if shared is not None:
                self.workqueue.move_to_end(shared, last=False)
            else:
                others = [n for n in self.assigned_work if n is not node]
                if any(not n.shutting_down for n in others):
                    node.shutdown()  # finishes what it holds; the last lane runs the rest
                    return
                if others:
                    return  # a lane still finishing: remove_node() calls us again after it
            super()._assign_work_unit(node)

        def remove_node(self, node) -> str | None:
            crashed = super().remove_node(node)
            for lane in list(self.assigned_work):
                self._reschedule(lane)
            return crashed

    return LaneScheduling(config, log)


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    return lane_scheduler(config, log)
