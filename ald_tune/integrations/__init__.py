"""Adapters to other libraries, one subpackage each: :mod:`ald_tune.integrations.optuna`.

May import: config, data, engine, sweeps, tracking (each adapter drives the engine's
trainer with callbacks, as the Ray trainable does). Each library is imported only when
its adapter is used.
"""
