"""The MLflow tag vocabulary: every key pinned (stored data is read by later versions), and
no tag key written anywhere but ald_tune/config/tags.py."""

from __future__ import annotations

import ast
import pathlib

from ald_tune.config import tags

PACKAGE = pathlib.Path(tags.__file__).resolve().parents[1]

#: Changing a value here breaks every store and saved search written before: add the old
#: name to tags.RENAMED instead.
PINNED = {
    "SWEEP_TAG": "ald_tune.sweep",
    "KIND_TAG": "ald_tune.kind",
    "RULE_TAG": "ald_tune.rule",
    "COMPARE_TAG": "ald_tune.compare",
    "MAIN_RULE_TAG": "ald_tune.main_rule",
    "DATASET_TAG": "ald_tune.dataset",
    "MODE_TAG": "ald_tune.mode",
    "SPACE_TAG": "ald_tune.space",
    "VERSION_TAG": "ald_tune.version",
    "RUNNER_TAG": "ald_tune.runner",
    "GIT_COMMIT_TAG": "ald_tune.git_commit",
    "TRIAL_TAG": "ald_tune.trial_id",
    "SEED_TAG": "ald_tune.seed",
    "NODES_TAG": "ald_tune.nodes",
    "FINAL_NZ_TAG": "ald_tune.final_n_z",
    "OUT_TAG": "ald_tune.out",
    "OPTUNA_TRIAL_TAG": "ald_tune.optuna_trial",
    "OPTUNA_STUDY_TAG": "ald_tune.optuna_study",
    "PRUNED_EPOCH_TAG": "ald_tune.pruned_epoch",
    "STOPPED_BY_TAG": "ald_tune.stopped_by",
    "ALD_PARENT_TAG": "ald_tune.ald_parent.",
    "GRID_PARENT_TAG": "ald_tune.grid_parent",
    "RECOMMENDED_TAG": "ald_tune.recommended_n_z",
    "BASELINES_TAG": "ald_tune.baselines",
    "EDGE_TAG": "ald_tune.plateau_edge",
    "NEAR_EDGE_TAG": "ald_tune.near_edge",
    "COMPLETE_TAG": "ald_tune.compare_complete",
    "PARENT_TAG": "mlflow.parentRunId",
    "SOURCE_NAME_TAG": "mlflow.source.name",
    "SOURCE_TYPE_TAG": "mlflow.source.type",
    "USER_TAG": "mlflow.user",
    "SOURCE_GIT_TAG": "mlflow.source.git.commit",
    "EXPERIMENT_KIND_TAG": "mlflow.experimentKind",
}


def test_every_tag_key_is_pinned():
    assert tags.every_key() == PINNED


def test_keys_are_distinct_and_old_names_are_never_current():
    values = list(PINNED.values())
    assert len(set(values)) == len(values)
    for key, old in tags.RENAMED.items():
        assert key in values and not set(old) & set(values)


def test_read_falls_back_to_the_name_a_key_had_before():
    old = {"ald_tune.integrations.optuna.study": "s1"}
    assert tags.read(old, tags.OPTUNA_STUDY_TAG) == "s1"
    both = {"ald_tune.integrations.optuna.study": "old", "ald_tune.optuna_study": "new"}
    assert tags.read(both, tags.OPTUNA_STUDY_TAG) == "new"
    assert tags.read({}, tags.SEED_TAG, "0") == "0"


def _tag_like_literals(path: pathlib.Path) -> list[str]:
    """String constants in a module that look like an ald_tune tag key: ``ald_tune.x`` (or
    ``ald_tune.x.`` for a prefix) where ``x`` is not one of the package's modules."""
    modules = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            parts = node.value.split(".")
            if (
                len(parts) in (2, 3)
                and parts[0] == "ald_tune"
                and parts[1].isidentifier()
                and parts[1] not in modules
                and (len(parts) == 2 or parts[2] == "")
            ):
                found.append(node.value)
    return found


def test_no_tag_key_is_written_outside_the_vocabulary():
    stray = {
        str(p.relative_to(PACKAGE)): _tag_like_literals(p)
        for p in PACKAGE.rglob("*.py")
        if p.name not in ("tags.py", "_compat.py")  # _compat lists old module names
    }
    assert {k: v for k, v in stray.items() if v} == {}


def test_the_stray_key_check_finds_one():
    """The check above can fail: a module with a literal key is caught."""
    sample = PACKAGE / "config" / "tags.py"
    assert "ald_tune.sweep" in _tag_like_literals(sample)
