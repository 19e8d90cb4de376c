"""Test doubles and fault injection that plug in from outside, never as branches of
production code: a scripted trainer and controller (fast tests), a trainer timed against
a plain twin (the overhead benchmark), a callback that fails a trial once.

Imported only by tests and benchmarks (and by Ray workers that a test points at them,
through :attr:`ald_tune.sweeps.tuner.SweepOptions.trainer` and ``trial_callbacks``).
May import every layer.
"""

#: ``SweepOptions(trainer=SCRIPTED)``: trials that train nothing (milliseconds).
SCRIPTED = "ald_tune.testing.scripted:ScriptedTrainer"
#: ``SweepOptions(trainer=PAIRED)``: the overhead benchmark's trainer.
PAIRED = "ald_tune.testing.paired:PairedTrainer"
