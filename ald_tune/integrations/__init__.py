"""Adapters to other libraries: :mod:`ald_tune.integrations.optuna` (plain Optuna) and
:mod:`ald_tune.integrations.lightning` (a PyTorch Lightning callback).

May import: config, data, engine, sweeps, tracking (each adapter drives the engine's
trainer with callbacks, as the Ray trainable does). Each library is imported only when
its adapter is used.
"""
