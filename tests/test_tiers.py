"""The test tiers: a fast test that starts what belongs to the integration or slow tier fails.

The guard is entered here by hand (as the hooks in tests/conftest.py enter it around every
fast test's set-up and call); it stops each thing before it starts, so these tests are fast.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import conftest
import pytest
from conftest import SERVER_FIXTURES, fast_tier_guard, processes_allowed

from ald_tune.sweeps.trainable import DEFAULT_TRAINER

FAILED = pytest.fail.Exception


@pytest.mark.parametrize(
    "argv",
    [
        [sys.executable, "-c", "pass"],
        "python3 -c pass",
        ["mlflow", "server"],
        ["ray", "start", "--head"],
        ["ald-tune", "ui"],
    ],
)
def test_starting_an_interpreter_or_a_server_program_fails(argv):
    with pytest.raises(FAILED, match=r"started the program .* mark the test @pytest.mark.integ"):
        with fast_tier_guard():
            subprocess.run(argv, shell=isinstance(argv, str), check=False)


def test_other_programs_and_the_shared_ray_start_may_run():
    with fast_tier_guard():
        assert subprocess.run(["true"]).returncode == 0
        with processes_allowed():
            assert subprocess.run([sys.executable, "-c", "pass"]).returncode == 0


def test_listening_on_a_socket_fails():
    with pytest.raises(FAILED, match="listened on a socket"):
        with fast_tier_guard(), socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)


def test_a_failure_the_test_swallows_still_fails_it():
    with pytest.raises(FAILED, match="started the program"):
        with fast_tier_guard():
            try:
                subprocess.run([sys.executable, "-c", "pass"])
            except BaseException:
                pass


def test_tune_trials_must_use_a_test_double():
    from ray import tune

    with pytest.raises(FAILED, match=rf"trainer {DEFAULT_TRAINER!r} \(not a test double\)"):
        with fast_tier_guard():
            tune.Tuner(lambda config: None, param_space={"trainer": DEFAULT_TRAINER})
    # (the fast sweeps in tests/sweeps/test_tuner.py run with SCRIPTED under the guard)


class FastItem:
    """What the set-up hook reads of a test item: no tier marker, its fixtures, its id."""

    def __init__(self, fixturenames, nodeid="tests/test_tiers.py::test_x"):
        self.fixturenames = fixturenames
        self.nodeid = nodeid

    def get_closest_marker(self, name):
        return None


@pytest.mark.parametrize("fixture", sorted(SERVER_FIXTURES))
def test_a_fast_test_may_not_ask_for_a_server_fixture(fixture):
    hook = conftest.pytest_runtest_setup(FastItem(["tmp_path", fixture]))
    with pytest.raises(FAILED, match=rf"server fixture \['{fixture}'\]; mark it"):
        next(hook)


def test_a_fast_test_may_use_ray_only_in_the_files_that_share_its_one_start():
    for nodeid in ("tests/test_tiers.py::test_x", f"{conftest.CLUSTER_FILES[0]}::test_x"):
        hook = conftest.pytest_runtest_setup(FastItem(["tmp_path", "ray_session"], nodeid))
        with pytest.raises(FAILED, match="ray_session outside RAY_FILES; add its file to RAY_"):
            next(hook)
    inside = FastItem(["ray_session"], f"{conftest.RAY_FILES[0]}::test_x")
    hook = conftest.pytest_runtest_setup(inside)
    next(hook)  # set-up goes on (under the guard)
    hook.close()


def test_the_files_that_use_ray_are_one_work_unit_under_loadfile(pytestconfig, monkeypatch):
    """What make test runs (-n --dist loadfile): the fast Ray files go to one worker, the
    files that start a two-node cluster to one, every other file is a unit of its own;
    other modes are pytest-xdist's."""
    pytest.importorskip("xdist")
    monkeypatch.setattr(pytestconfig.option, "dist", "load")
    assert conftest.pytest_xdist_make_scheduler(pytestconfig, None) is None
    monkeypatch.setattr(pytestconfig.option, "dist", "loadfile")
    monkeypatch.setattr(pytestconfig.option, "tx", ["2*popen"])  # as -n 2 sets it
    monkeypatch.setattr(pytestconfig.option, "loadscopereorder", True, raising=False)
    monkeypatch.setattr(pytestconfig.option, "heaviest_first", False)
    sched = conftest.pytest_xdist_make_scheduler(pytestconfig, None)
    assert pytestconfig.option.loadscopereorder is True  # pytest-xdist's order
    monkeypatch.setattr(pytestconfig.option, "heaviest_first", True)
    conftest.pytest_xdist_make_scheduler(pytestconfig, None)
    assert pytestconfig.option.loadscopereorder is False  # the order heaviest_first sets
    scopes = {sched._split_scope(f"{f}::test_{i}[1]") for f in conftest.RAY_FILES for i in "ab"}
    assert scopes == {conftest.RAY_SCOPE}
    scopes = {sched._split_scope(f"{f}::test_{i}") for f in conftest.CLUSTER_FILES for i in "ab"}
    assert scopes == {conftest.CLUSTER_SCOPE}
    assert sched._split_scope("tests/test_tiers.py::test_c") == "tests/test_tiers.py"
    for path in conftest.RAY_FILES:
        assert os.path.isfile(os.path.join(conftest.ROOT, path)), path  # no stale entry
    # CLUSTER_FILES are exactly the files with a test that takes the cluster fixture
    takes = re.compile(r"^def test_\w+\([^)]*\btwo_node_cluster\b", re.M)
    found = set()
    for folder, _, files in os.walk(os.path.join(conftest.ROOT, "tests")):
        for name in (n for n in files if n.startswith("test_") and n.endswith(".py")):
            with open(os.path.join(folder, name), encoding="utf-8") as fh:
                if takes.search(fh.read()):
                    found.add(os.path.relpath(os.path.join(folder, name), conftest.ROOT))
    assert found == set(conftest.CLUSTER_FILES)


def test_the_work_units_go_heaviest_first_by_their_tests_stored_seconds():
    """Longest first by the stored seconds, a unit's files together (the Ray files one
    unit), unknown tests at :data:`conftest.UNKNOWN_TEST_S` each, and each unit's own
    order kept."""

    class Item:
        def __init__(self, nodeid: str):
            self.nodeid = nodeid

    ray_a, ray_b = (f"{f}::test_x" for f in conftest.RAY_FILES)
    ids = ["tests/a.py::t1", ray_a, "tests/b.py::t1", "tests/a.py::t2", "tests/c.py::t1", ray_b]
    ids += ["tests/d.py::t1", "tests/d.py::t2", "tests/d.py::t3"]
    seconds = {"tests/a.py::t1": 2.0, "tests/a.py::t2": 0.5, "tests/b.py::t1": 60.0}
    seconds |= {ray_a: 20.0, ray_b: 20.0, "tests/c.py::t1": 0.1}
    order = [i.nodeid for i in conftest.heaviest_first([Item(n) for n in ids], seconds)]
    assert order == [
        "tests/b.py::t1",  # 60 s
        ray_a,  # the Ray files, one unit: 40 s
        ray_b,
        "tests/d.py::t1",  # three tests with no seconds stored: 3 x 1 s
        "tests/d.py::t2",
        "tests/d.py::t3",
        "tests/a.py::t1",  # 2.5 s, its own order
        "tests/a.py::t2",
        "tests/c.py::t1",
    ]


def test_stored_durations_merge_into_the_file_and_drop_gone_files(tmp_path):
    import json

    path = str(tmp_path / "durations.json")
    kept, gone = "tests/test_tiers.py::test_kept", "tests/gone_test_file.py::test_x"
    conftest.store_durations(path, {kept: 1.234, gone: 2.0})
    assert json.load(open(path)) == {kept: 1.23}
    conftest.store_durations(path, {"tests/conftest.py::test_new": 0.5})
    assert json.load(open(path)) == {"tests/conftest.py::test_new": 0.5, kept: 1.23}
