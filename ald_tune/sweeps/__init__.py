"""Layer 5, sweeps under Ray Tune: the public :func:`~ald_tune.sweeps.run.run_sweep`,
the function trainable (a thin driver of the engine's trainer), the ALD and grid tuners
(storage, failure and resume settings), Tune callbacks (progress lines, whole result
files), the report-ahead queue, the typed records a sweep returns, and the backfill of
MLflow from Tune's files.

May import: :mod:`ald_tune.config`, :mod:`ald_tune.data`, :mod:`ald_tune.engine`,
:mod:`ald_tune.tracking`. Tracking plugs in as a tracker object
(:class:`~ald_tune.tracking.tracker.MLflowTracker`) whose trial callback each trial adds.
"""
