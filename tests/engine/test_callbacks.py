"""The one per-epoch mechanism: callbacks called in order, timed by one cadence."""

from __future__ import annotations

import pytest

from ald_tune.config.schema import load_config
from ald_tune.engine.callbacks import Cadence, Callback, CallbackList
from ald_tune.testing.scripted import ScriptedTrainer


class Log(Callback):
    wants_images = True

    def __init__(self, name, events, fail_at=None):
        self.name, self.events, self.fail_at = name, events, fail_at

    def on_epoch_end(self, trainer, result):
        self.events.append(
            (self.name, "epoch", result.epoch, result.checkpoint_due, result.images is not None)
        )
        if result.epoch == self.fail_at:
            raise RuntimeError("boom")

    def on_checkpoint(self, trainer, result):
        self.events.append((self.name, "checkpoint", result.epoch))

    def on_run_end(self, trainer, status):
        self.events.append((self.name, "end", status))


def cfg(epochs=7):
    return load_config(
        "search_spaces/digits.yaml",
        overrides=[f"train.epochs={epochs}", "ald.window=4", "ald.final_share=0"],
    )


def test_the_cadence_decides_checkpoints_and_images():
    c = Cadence(checkpoint_every=3, checkpoint_min_s=10.0, image_every=2)
    assert [c.checkpoint_due(e, False, 11.0) for e in range(6)] == [False, False, True] * 2
    assert not c.checkpoint_due(2, False, 9.0) and c.checkpoint_due(4, True, 0.0)
    assert [c.images_due(e, e == 4) for e in range(5)] == [True, False, True, False, True]
    assert not Cadence(image_every=0).images_due(0, True)
    assert Cadence.from_config(cfg()) == Cadence(5, 5.0, 10)


def test_fit_calls_every_callback_in_order_and_says_how_the_run_ended():
    events: list = []
    trainer = ScriptedTrainer(cfg(7))
    trainer.fit([Log("a", events), Log("b", events)], Cadence(3, 0.0, 4))
    epochs = [e for e in events if e[1] == "epoch"]
    assert [e[:3] for e in epochs[:2]] == [("a", "epoch", 0), ("b", "epoch", 0)]
    assert [(e[2], e[3], e[4]) for e in epochs if e[0] == "a"] == [
        (0, False, True),
        (1, False, False),
        (2, True, False),
        (3, False, False),
        (4, False, True),
        (5, True, False),
        (6, True, True),
    ]
    # checkpoints come after every callback's epoch end, in list order
    i = events.index(("a", "checkpoint", 2))
    assert events[i - 1][:3] == ("b", "epoch", 2) and events[i + 1] == ("b", "checkpoint", 2)
    assert events[-2:] == [("a", "end", "FINISHED"), ("b", "end", "FINISHED")]


@pytest.mark.parametrize("error, status", [(RuntimeError, "FAILED"), (KeyboardInterrupt, "KILLED")])
def test_a_failed_or_stopped_run_still_ends_every_callback(error, status):
    events: list = []

    class Raise(Callback):
        def on_epoch_end(self, trainer, result):
            if result.epoch == 2:
                raise error("stop")

    with pytest.raises(error):
        ScriptedTrainer(cfg()).fit([Log("a", events), Raise()], Cadence(0, 0.0, 0))
    assert events[-1] == ("a", "end", status)


def test_a_callback_list_ends_them_all_even_if_one_fails():
    ended = []

    class Bad(Callback):
        def on_run_end(self, trainer, status):
            raise ValueError("bad close")

    class Good(Callback):
        def on_run_end(self, trainer, status):
            ended.append(status)

    with pytest.raises(ValueError, match="bad close"):
        CallbackList([Bad(), Good()]).on_run_end(None, "FINISHED")
    assert ended == ["FINISHED"]


def test_every_console_line_says_a_decision_the_same_way():
    from ald_tune.engine.callbacks import action_text

    assert action_text(5, 27, False) == "remove 5 -> n_z 27"
    assert action_text(0, 27, False) == "keep"
    assert action_text(0, 27, True) == "STOP"
    assert action_text(2, 25, True) == "STOP, remove 2 -> n_z 25"
