"""Layer 4, sweeps under Ray Tune: the function trainable (a thin driver of the
engine's trainer), the ALD and grid tuners (storage, failure and resume settings),
Tune callbacks (progress lines, whole result files), the report-ahead queue and the
typed records a sweep returns.

May import: :mod:`ald_tune.config`, :mod:`ald_tune.data`, :mod:`ald_tune.engine`. Knows
nothing of MLflow: trackers arrive as trial callbacks named in the trial's config.
"""
