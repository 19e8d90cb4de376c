"""Plain Optuna, without Ray: ALD (or the fixed-n_z grid) as an objective for
``study.optimize`` (``objective``), and the grid sampler, the study and ``optimize``
(``study``). Optuna is imported by these modules, never by ``import ald_tune``.
"""

from ald_tune.integrations.optuna.objective import ALDObjective
from ald_tune.integrations.optuna.study import grid_sampler, make_study, optimize, study_runs

__all__ = ["ALDObjective", "grid_sampler", "make_study", "optimize", "study_runs"]
