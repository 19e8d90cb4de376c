"""How pytest-xdist splits the suite into work units, and in what order it hands them out.

Hooks and names re-exported by tests/conftest.py (pytest registers them from there): the
files that share one Ray runtime or one two-node cluster are one unit each
(:func:`pytest_xdist_make_scheduler`), and ``--heaviest-first`` orders the units by the
seconds stored in :data:`DURATIONS` (``--store-durations``, ``make durations``).
"""

from __future__ import annotations

import json
import os

import pytest

#: The repository's root (this file sits in tests/).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# -- the fast tier on every core: one Ray runtime -----------------------------------------------

#: The test files whose fast tests use the shared Ray runtime (``ray_session``). Under
#: pytest-xdist they are one work unit, so one worker starts Ray: a second runtime cost ~10
#: CPU-seconds of the fast tier's ~170 (its start, its idle workers, and the other worker's
#: tests slowed on two cores). A fast test elsewhere that asks for ``ray_session`` fails with a
#: line saying to add its file here.
RAY_FILES = ("tests/sweeps/test_tuner.py", "tests/system/test_hostile_input.py")
RAY_SCOPE = "ray"
#: The files whose tests start a real multi-node Ray cluster (``two_node_cluster``): one work
#: unit, so that under pytest-xdist (``make test``'s integration and slow tiers) two clusters
#: never start side by side (``ray start --head`` binds fixed ports besides ``--port``: the
#: Ray client server's 10001).
CLUSTER_FILES = ("tests/system/test_compare_end_to_end.py", "tests/system/test_fault_tolerance.py")
CLUSTER_SCOPE = "cluster"


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` with :data:`RAY_FILES` as one work unit and
    :data:`CLUSTER_FILES` as another (``--heaviest-first``: handed out in
    :func:`pytest_collection_modifyitems`'s order).

    pytest-xdist groups by file and cannot group files (``loadgroup`` needs
    ``xdist_group`` marks, which pytest-xdist 3.8 cannot read under pytest 9), so its file
    scheduler's scope is refined here; every other mode is left to pytest-xdist.
    """
    if config.getoption("dist", None) != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    if config.getoption("heaviest_first"):
        # The work units go out in the workers' collection order, which
        # pytest_collection_modifyitems sets: not pytest-xdist's own (most tests first).
        config.option.loadscopereorder = False

    class OneRayWorker(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    return OneRayWorker(config, log)


#: Each test's seconds (setup, call and teardown) in the last run that stored them
#: (``--store-durations``): what orders the work units, heaviest first.
DURATIONS = os.path.join(ROOT, "tests", "durations.json")
#: A test with no stored seconds weighs this much (a fast test's order).
UNKNOWN_TEST_S = 1.0


def pytest_addoption(parser):
    parser.addoption(
        "--heaviest-first",
        action="store_true",
        help=f"hand out the work units heaviest first, by the seconds stored in "
        f"{os.path.relpath(DURATIONS, ROOT)} (make test's integration and slow run)",
    )
    parser.addoption(
        "--store-durations",
        action="store_true",
        help=f"write each test's seconds in this run (setup, call and teardown) into "
        f"{os.path.relpath(DURATIONS, ROOT)}, which orders the work units of later runs",
    )


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected
def pytest_collection_modifyitems(config, items):
    """``--heaviest-first``: the work units (a file, or the files of :func:`shared_scope`)
    heaviest first, by the seconds :data:`DURATIONS` holds for their tests; a unit's tests
    keep their order.

    pytest-xdist hands a free worker the next unit, so a run ends when its last unit does:
    heaviest first, the last ones are short (longest-processing-time-first scheduling, as
    pytest-split does with its stored durations). With pytest-xdist's own order (most tests
    first, whatever they run) the own-model compares (80 s) came last and one worker ran
    alone for the last 46 s of 850; heaviest first, both ended within a second (2026-12-07).
    Not for the fast tier: its many short units balance in any order, and this one (the Ray
    unit first) measured 3 s slower (57 s against 54 s, twice each, alternated).
    """
    if not config.getoption("heaviest_first"):
        return
    items[:] = heaviest_first(items, read_durations(DURATIONS))


def heaviest_first(items: list, seconds: dict[str, float]) -> list:
    """``items`` (anything with a ``nodeid``) by work unit, the units by their tests'
    ``seconds`` summed (:data:`UNKNOWN_TEST_S` for a test with none), heaviest first; ties
    and a unit's own tests keep their order."""
    units: dict[str, list] = {}
    for item in items:
        units.setdefault(unit_of(item.nodeid), []).append(item)

    def weight(tests: list) -> float:
        return sum(seconds.get(i.nodeid, UNKNOWN_TEST_S) for i in tests)

    return [i for tests in sorted(units.values(), key=weight, reverse=True) for i in tests]


_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report):
    """Sums each test's seconds (in the process that sees every worker's reports)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        _seconds[report.nodeid] = _seconds.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session, exitstatus):
    """``--store-durations``: this run's tests' seconds into :data:`DURATIONS`."""
    if session.config.getoption("store_durations") and not os.environ.get("PYTEST_XDIST_WORKER"):
        store_durations(DURATIONS, _seconds)


def store_durations(path: str, seconds: dict[str, float]) -> None:
    """``seconds`` into the JSON file at ``path``: tests not in this run keep theirs, tests
    whose file is gone are dropped."""
    stored = read_durations(path)
    stored.update({t: round(s, 2) for t, s in seconds.items()})
    stored = {t: s for t, s in stored.items() if os.path.exists(os.path.join(ROOT, file_of(t)))}
    with open(path, "w") as fh:
        json.dump(dict(sorted(stored.items())), fh, indent=1)
        fh.write("\n")


def read_durations(path: str) -> dict[str, float]:
    """The seconds stored at ``path``; none before the first ``--store-durations``."""
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return {}


def unit_of(nodeid: str) -> str:
    """A test's work unit: its :func:`shared_scope`, else its file (pytest-xdist's own)."""
    return shared_scope(nodeid) or file_of(nodeid)


def file_of(nodeid: str) -> str:
    """The file a test id names."""
    return nodeid.split("::", 1)[0]


def shared_scope(nodeid: str) -> str | None:
    """The work unit a test's file shares with others: :data:`RAY_SCOPE` for a test in
    :data:`RAY_FILES`, :data:`CLUSTER_SCOPE` for one in :data:`CLUSTER_FILES`, else None."""
    path = file_of(nodeid)
    return RAY_SCOPE if path in RAY_FILES else CLUSTER_SCOPE if path in CLUSTER_FILES else None
