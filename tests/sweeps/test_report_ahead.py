"""ReportAhead: order kept, one job in flight, errors raised back in the training thread."""

from __future__ import annotations

import threading
import time

import pytest

from ald_tune.sweeps.report_ahead import ReportAhead


def test_jobs_run_in_order_on_one_other_thread():
    seen, threads = [], set()

    def job(i):
        time.sleep(0.002 * (i % 3))  # uneven jobs must not overtake each other
        seen.append(i)
        threads.add(threading.get_ident())

    with ReportAhead() as ahead:
        for i in range(20):
            ahead.submit(job, i)
    assert seen == list(range(20))
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_at_most_one_job_is_in_flight_and_the_caller_runs_ahead_of_it():
    started, release = threading.Event(), threading.Event()
    running = []

    def slow(i):
        running.append(i)
        started.set()
        release.wait(5)

    ahead = ReportAhead()
    ahead.submit(slow, 0)
    assert started.wait(5)
    # The caller is free while job 0 runs (the overlap that hides tune.report's wait)...
    assert running == [0]
    # ...and the next submit waits for it: never two in flight.
    t = threading.Thread(target=ahead.submit, args=(slow, 1))
    t.start()
    time.sleep(0.05)
    assert running == [0] and t.is_alive()
    release.set()
    t.join(5)
    ahead.close()
    assert running == [0, 1]
    assert ahead.waited_s > 0.04


def test_a_jobs_error_is_raised_at_the_next_submit():
    def boom():
        raise ValueError("report failed")

    ran = []
    ahead = ReportAhead()
    ahead.submit(boom)
    with pytest.raises(ValueError, match="report failed"):
        ahead.submit(ran.append, 1)
    assert ran == []  # nothing is started after a failed report
    ahead.close()


def test_tunes_stop_request_systemexit_reaches_the_training_thread():
    def stop():
        raise SystemExit(0)  # what ray.tune.report does when Tune stops the trial

    with pytest.raises(SystemExit):
        with ReportAhead() as ahead:
            ahead.submit(stop)


def test_the_last_jobs_error_is_raised_at_exit():
    def boom():
        raise RuntimeError("last report failed")

    with pytest.raises(RuntimeError, match="last report failed"):
        with ReportAhead() as ahead:
            ahead.submit(boom)


def test_the_callers_error_wins_and_the_jobs_is_kept_as_a_note():
    def boom():
        raise RuntimeError("report failed")

    with pytest.raises(KeyError) as info:
        with ReportAhead() as ahead:
            ahead.submit(boom)
            time.sleep(0.01)
            raise KeyError("training failed")
    assert any("report failed" in n for n in getattr(info.value, "__notes__", []))


def test_disabled_runs_each_job_inline():
    seen = []
    with ReportAhead(enabled=False) as ahead:
        ahead.submit(lambda: seen.append(threading.get_ident()))
        assert seen == [threading.get_ident()]  # already done, in this thread
