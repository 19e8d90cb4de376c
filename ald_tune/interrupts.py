"""One path for interruptions: SIGTERM is handled as Ctrl-C.

``kill PID``, ``timeout``, systemd, Slurm and Kubernetes stop a process with SIGTERM.
While a command runs inside :func:`sigterm_as_interrupt`, a SIGTERM goes to whatever
handles Ctrl-C (SIGINT) at that moment: Ray Tune's handler while a sweep's ``fit`` runs
(it stops the trials, saves the experiment state and returns, as on Ctrl-C), else
Python's, which raises :class:`KeyboardInterrupt`. So every command ends a SIGTERM the
way it ends a Ctrl-C (its runs marked KILLED, the message saying how to resume), and
:func:`exit_code` gives 143 (128 + SIGTERM) instead of 130.

``ray.init`` installs its own SIGTERM handlers: a Python one (``sys.exit``) and, in the
driver's core worker, abseil's failure handler, which prints a stack and aborts the
process 3 s later (exit -6): the trials are never stopped and the MLflow runs stay
RUNNING. :func:`keep_sigterm_handler` around ``ray.init`` puts the caller's handler back.

Example:
    >>> with sigterm_as_interrupt():
    ...     pass  # a SIGTERM here raises KeyboardInterrupt (or stops Tune's fit)
    >>> exit_code()
    130
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

#: The signal of the last interruption (None: none, or Ctrl-C).
_received: dict[str, int | None] = {"signum": None}
#: The command's name for messages (``ald-tune``, ``ald_tune/run.py``).
_prog = {"name": "ald-tune"}
#: What else a SIGTERM starts (:func:`on_sigterm`), newest last.
_actions: list[Callable[[], None]] = []


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM: record it, start the registered actions, then do what Ctrl-C does now."""
    _received["signum"] = signum
    for action in list(_actions):
        action()
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)  # Tune's handler inside fit, else KeyboardInterrupt
    else:  # SIGINT ignored (a job started with `&` by a script) or default: interrupt anyway
        raise KeyboardInterrupt


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def sigterm_as_interrupt(prog: str = "ald-tune") -> Iterator[None]:
    """While inside, SIGTERM interrupts as Ctrl-C does; the previous handler comes back after.

    Args:
        prog: the command's name, for the line :func:`abandon` prints.

    Signal handlers belong to the main thread: elsewhere this does nothing.
    """
    _received["signum"] = None
    _prog["name"] = prog
    if not _main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


@contextmanager
def keep_sigterm_handler() -> Iterator[None]:
    """Around code that installs its own SIGTERM handler (``ray.init``): afterwards the
    handler set before is in force again, when it was a Python function (a deliberate one,
    like :func:`sigterm_as_interrupt`'s); a default or ignored SIGTERM is left to the code."""
    before = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if callable(before) and _main_thread():
            # Set again even when Python still reports it: Ray's core worker replaced it
            # below Python (sigaction), where signal.getsignal does not look.
            signal.signal(signal.SIGTERM, before)


@contextmanager
def keep_ctrl_c_handler() -> Iterator[None]:
    """Around Ray Tune's ``fit``: afterwards the SIGINT (and SIGUSR1) handlers set before are
    in force again.

    ``fit`` installs a handler that stops the sweep and never takes it back: after ``fit``
    it only logs "Stop signal received", so a Ctrl-C or SIGTERM between two sweeps of a
    ``compare`` (or after the last) would end nothing.
    """
    if not _main_thread():
        yield
        return
    signums = [signal.SIGINT, *([signal.SIGUSR1] if hasattr(signal, "SIGUSR1") else [])]
    before = {signum: signal.getsignal(signum) for signum in signums}
    try:
        yield
    finally:
        for signum, handler in before.items():
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(signum, handler)


@contextmanager
def on_sigterm(action: Callable[[], None]) -> Iterator[None]:
    """While inside, a SIGTERM also calls ``action`` (in the main thread, from the signal
    handler: it must return at once, e.g. by starting a thread), before the interruption."""
    _actions.append(action)
    try:
        yield
    finally:
        _actions.remove(action)


def abandon(ending: Callable[[], str]) -> None:
    """End the process now, from any thread, when an interruption cannot end it the usual way
    (the main thread waits on something that is gone): ``ending()`` (say, close the MLflow
    runs) gives the one line to print, then :func:`exit_code`, without running ``atexit``."""
    try:
        message = ending()
    except Exception as exc:  # the line and the exit code matter more
        message = f"interrupted; closing its runs failed ({type(exc).__name__})."
    cause = "SIGTERM: " if received_sigterm() else ""
    print(f"\n{_prog['name']}: {cause}{message}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(exit_code())


def exit_code() -> int:
    """The exit code of an interrupted command: 128 + the signal (130 Ctrl-C, 143 SIGTERM)."""
    return 128 + (_received["signum"] or signal.SIGINT)


def received_sigterm() -> bool:
    """Whether the last interruption was a SIGTERM."""
    return _received["signum"] == signal.SIGTERM
