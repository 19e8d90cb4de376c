"""One signal path for interruptions: SIGTERM does what Ctrl-C does, with exit code 143."""

from __future__ import annotations

import signal

import pytest

from ald_tune import interrupts
from ald_tune.interrupts import (
    abandon,
    exit_code,
    keep_ctrl_c_handler,
    keep_sigterm_handler,
    on_sigterm,
    received_sigterm,
    sigterm_as_interrupt,
)


@pytest.fixture(autouse=True)
def python_ctrl_c():
    """Python's own Ctrl-C handler during each test, whatever an earlier test left."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def sigterm_self() -> None:
    """SIGTERM to this thread (the main one), so its handler runs before the next line; from
    ``os.kill`` another thread (Ray's, in this process) may take it and run it later."""
    signal.raise_signal(signal.SIGTERM)


def test_sigterm_raises_keyboard_interrupt_and_gives_exit_code_143():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with sigterm_as_interrupt():
            sigterm_self()
            pytest.fail("the handler did not interrupt")
    assert received_sigterm() and exit_code() == 143
    assert signal.getsignal(signal.SIGTERM) is before  # the previous handler is back


def test_ctrl_c_keeps_exit_code_130():
    with pytest.raises(KeyboardInterrupt):
        with sigterm_as_interrupt():
            signal.raise_signal(signal.SIGINT)
            pytest.fail("Ctrl-C did not interrupt")
    assert not received_sigterm() and exit_code() == 130


def test_sigterm_goes_to_whatever_handles_ctrl_c_now(monkeypatch):
    """Inside a sweep's fit, Ray Tune's SIGINT handler stops the trials and returns: SIGTERM
    must reach it, not raise past it."""
    stopped = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stopped.append(signum))
    try:
        with sigterm_as_interrupt():
            sigterm_self()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert stopped == [signal.SIGINT] and exit_code() == 143


def test_sigterm_interrupts_even_where_ctrl_c_is_ignored():
    """A job a script started with ``&`` ignores SIGINT; ``kill`` must still stop it."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with pytest.raises(KeyboardInterrupt):
            with sigterm_as_interrupt():
                sigterm_self()
                pytest.fail("the handler did not interrupt")
    finally:
        signal.signal(signal.SIGINT, previous)


def test_the_handler_comes_back_after_code_that_replaced_it():
    """``ray.init`` installs its own SIGTERM handler (and abseil's below Python)."""

    def rays(signum, frame):
        raise AssertionError("Ray's handler ran")

    with sigterm_as_interrupt():
        with keep_sigterm_handler():
            signal.signal(signal.SIGTERM, rays)
        assert signal.getsignal(signal.SIGTERM) is interrupts._on_sigterm
        with pytest.raises(KeyboardInterrupt):
            sigterm_self()
            pytest.fail("the handler did not interrupt")


def test_a_default_handler_is_left_to_the_code_that_replaced_it():
    def rays(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with keep_sigterm_handler():
            signal.signal(signal.SIGTERM, rays)
        assert signal.getsignal(signal.SIGTERM) is rays
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_starts_the_registered_actions_first():
    seen = []
    with pytest.raises(KeyboardInterrupt):
        with sigterm_as_interrupt():
            with on_sigterm(lambda: seen.append("watch")):
                sigterm_self()
                pytest.fail("the handler did not interrupt")
    assert seen == ["watch"] and not interrupts._actions


def test_abandon_runs_the_ending_prints_one_line_and_exits_143(monkeypatch, capsys):
    exits = []
    monkeypatch.setattr(interrupts.os, "_exit", exits.append)
    with pytest.raises(KeyboardInterrupt):
        with sigterm_as_interrupt("ald-tune"):
            sigterm_self()
            pytest.fail("the handler did not interrupt")
    abandon(lambda: "ald sweep x interrupted. Resume with --resume --name x.")
    abandon(lambda: 1 / 0)  # a failing ending still ends the process, with a line
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "ald-tune: SIGTERM: ald sweep x interrupted. Resume with --resume --name x."
    assert err[-1].startswith("ald-tune: SIGTERM: interrupted; closing its runs failed")
    assert exits == [143, 143]


def test_ctrl_c_handler_left_by_tunes_fit_is_taken_back():
    """Tune's ``fit`` leaves its SIGINT handler, which afterwards only logs: a Ctrl-C or
    SIGTERM between two sweeps of a ``compare`` would end nothing."""
    stale = []
    with sigterm_as_interrupt():
        with keep_ctrl_c_handler():
            signal.signal(signal.SIGINT, lambda signum, frame: stale.append(signum))
        with pytest.raises(KeyboardInterrupt):
            sigterm_self()
            pytest.fail("the handler did not interrupt")
    assert not stale and signal.getsignal(signal.SIGINT) is signal.default_int_handler
