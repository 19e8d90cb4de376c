"""Every MLflow tag key ald-tune writes or reads, in one place.

Tag keys are stored data: a store written by one version is read by the next, and a
user's saved search (``tags.ald_tune.rule = 'paper'``) must keep matching. So a key is
never renamed in place. Each key is defined here once, the modules that write or read
tags import it from here, and ``tests/config/test_tags.py`` pins every value.

A key that was once written under another name lists that name in :data:`RENAMED`;
:func:`read` looks under both, and every writer uses the first one.
"""

from __future__ import annotations

from collections.abc import Mapping

# A sweep's parent run (written once when the sweep starts: tracking.runs, config.kinds)
SWEEP_TAG = "ald_tune.sweep"  # the sweep's name (its Tune folder)
KIND_TAG = "ald_tune.kind"  # one of config.kinds.KINDS
RULE_TAG = "ald_tune.rule"  # ALD sweeps and trials: the stop rule
COMPARE_TAG = "ald_tune.compare"  # the `compare` run that made the sweep, if any
MAIN_RULE_TAG = "ald_tune.main_rule"  # that compare's main rule (its report comes first)
DATASET_TAG = "ald_tune.dataset"
MODE_TAG = "ald_tune.mode"  # "grid" (fixed n_z) or "ald" (resizing), on parents and trials
SPACE_TAG = "ald_tune.space"  # the search-space file the sweep ran
VERSION_TAG = "ald_tune.version"  # the ald-tune version that started it
RUNNER_TAG = "ald_tune.runner"  # what started it: "tune", "optuna", "train"
GIT_COMMIT_TAG = "ald_tune.git_commit"  # the project's commit, where it is a git checkout

# A trial's run
TRIAL_TAG = "ald_tune.trial_id"  # Ray's trial id (a retried trial logs into its own run)
SEED_TAG = "ald_tune.seed"
NODES_TAG = "ald_tune.nodes"  # the Ray nodes a trial ran on, comma-separated
FINAL_NZ_TAG = "ald_tune.final_n_z"
OUT_TAG = "ald_tune.out"  # `ald-tune train`: the folder its checkpoint and model are in
OPTUNA_TRIAL_TAG = "ald_tune.optuna_trial"  # the Optuna trial number
OPTUNA_STUDY_TAG = "ald_tune.optuna_study"  # the Optuna study's name
PRUNED_EPOCH_TAG = "ald_tune.pruned_epoch"  # the epoch an Optuna pruner stopped the trial at
STOPPED_BY_TAG = "ald_tune.stopped_by"  # who ended a FINISHED trial early: "asha" or "rule"

# Written by the comparison (report.comparison) after its sweeps ran
ALD_PARENT_TAG = "ald_tune.ald_parent."  # + rule, on the grid parent
GRID_PARENT_TAG = "ald_tune.grid_parent"  # on the other sweeps' parents
RECOMMENDED_TAG = "ald_tune.recommended_n_z"
BASELINES_TAG = "ald_tune.baselines"  # on the grid parent: the --baselines of its compare
EDGE_TAG = "ald_tune.plateau_edge"  # on each ALD parent: the grid's optimum
NEAR_EDGE_TAG = "ald_tune.near_edge"  # on each ALD parent: "k/N" seeds near the edge
COMPLETE_TAG = "ald_tune.compare_complete"  # every sweep of that compare has finished

# MLflow's own
PARENT_TAG = "mlflow.parentRunId"
#: MLflow's run-context tags (its ``resolve_tags()``: the UI's Source and User columns),
#: which a trial's run copies from its sweep's parent (a Ray worker is not the source)
SOURCE_NAME_TAG = "mlflow.source.name"
SOURCE_TYPE_TAG = "mlflow.source.type"
USER_TAG = "mlflow.user"
SOURCE_GIT_TAG = "mlflow.source.git.commit"
#: on each experiment ald-tune creates: MLflow 3's UI opens it on its runs (model training),
#: not on its GenAI pages (traces, evaluations), which hold nothing of a sweep
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

#: key -> the names it was written under before (read, never written). 0.2's module move
#: renamed the Optuna study tag by accident; stores of that version hold the second name.
RENAMED: dict[str, tuple[str, ...]] = {
    OPTUNA_STUDY_TAG: ("ald_tune.integrations.optuna.study",),
}


def read(tags: Mapping[str, str], key: str, default: str | None = None) -> str | None:
    """The value of ``key`` in a run's ``tags``, or of a name it was written under before.

    Example:
        >>> read({"ald_tune.integrations.optuna.study": "s1"}, OPTUNA_STUDY_TAG)
        's1'
    """
    for name in (key, *RENAMED.get(key, ())):
        if name in tags:
            return tags[name]
    return default


def every_key() -> dict[str, str]:
    """Constant name -> tag key, for the test that pins them and the docs."""
    return {
        name: value
        for name, value in globals().items()
        if name.endswith("_TAG") and isinstance(value, str)
    }
