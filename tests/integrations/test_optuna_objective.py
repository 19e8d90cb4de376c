"""Plain Optuna: the ALD objective, the GridSampler baseline, pruning and MLflow on SQLite.

Fast tests use the scripted trainer (no training); one slow test trains for real.
"""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

from ald_tune.config.schema import load_config
from ald_tune.errors import ConfigError
from ald_tune.integrations.optuna import ALDObjective, grid_sampler, make_study, optimize
from ald_tune.integrations.optuna import objective as objective_module
from ald_tune.integrations.optuna import study as study_module
from ald_tune.testing.scripted import ScriptedTrainer

EPOCHS = 12
optuna.logging.set_verbosity(optuna.logging.WARNING)


def cfg_for(*extra):
    return load_config(
        "search_spaces/digits.yaml",
        overrides=[
            f"train.epochs={EPOCHS}",
            "ald.window=6",
            "ald.patience=2",
            "grid.n_z=[2, 8, 16]",
            "tune.num_samples=2",
            "ald.final_share=0",  # every run exactly EPOCHS long (no extension after a late stop)
            "tune.grid_seeds=1",  # one trial per grid n_z
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def uri(tmp_path_factory) -> str:
    """One SQLite store for the module (its schema migration is the slow part)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


@pytest.fixture
def experiment(request) -> str:
    return f"exp-{request.node.name}"


@pytest.fixture(autouse=True)
def _no_env_tracking(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(autouse=True)
def _quick_plot(request, monkeypatch):
    """Fast tests skip matplotlib's ~1 s per trial (the end-of-run plot is tested with plots)."""
    if request.node.get_closest_marker("slow"):
        return

    def plot_history(history, path, title=""):
        open(path, "wb").close()
        return path

    monkeypatch.setattr("ald_tune.engine.artifacts.plot_history", plot_history)
    # the final outputs' writer imported it by name: its own reference is the one called
    monkeypatch.setattr("ald_tune.tracking.pending.plot_history", plot_history)


def new_study(**kw) -> optuna.Study:
    return optuna.create_study(direction="minimize", **kw)


def runs(uri, experiment):
    """(client, parent runs, child runs) of one experiment."""
    from mlflow import MlflowClient

    c = MlflowClient(uri)
    exp = c.get_experiment_by_name(experiment)
    found = c.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in found if "ald_tune.sweep" in r.data.tags]
    children = [r for r in found if "mlflow.parentRunId" in r.data.tags]
    return c, parents, children


def n_z_steps(c, run_id):
    hist = c.get_metric_history(run_id, "n_z")
    return sorted(m.step for m in hist), [m.value for m in sorted(hist, key=lambda m: m.step)]


class PruneFromStep(optuna.pruners.BasePruner):
    """Prunes every trial once it has reported step ``k``."""

    def __init__(self, k: int) -> None:
        self.k = k

    def prune(self, study, trial) -> bool:
        return trial.last_step is not None and trial.last_step >= self.k


# -- the objective ---------------------------------------------------------------------
def test_ald_objective_reports_every_epoch_and_records_n_z():
    study = new_study()
    study.optimize(ALDObjective(cfg_for(), trainer=ScriptedTrainer), n_trials=2)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert [t.user_attrs["seed"] for t in study.trials] == [0, 1]  # repeated trials are seeds
    for t in study.trials:
        hist = t.user_attrs["n_z_history"]
        assert len(hist) == EPOCHS and hist[0] == 64 and hist[-1] < 64
        # n_z falls, but an undone trial goes back to a size the run had before
        assert all(b <= a or b in hist[: i + 1] for i, (a, b) in enumerate(zip(hist, hist[1:])))
        assert t.user_attrs["final_n_z"] == hist[-1] == t.user_attrs["n_z"]
        assert sorted(t.intermediate_values) == list(range(EPOCHS))
        assert t.value == t.intermediate_values[EPOCHS - 1]
        assert "mlflow_run_id" not in t.user_attrs  # no URI, no $MLFLOW_TRACKING_URI: no tracking


def test_works_with_fixed_trial():
    trial = optuna.trial.FixedTrial({"n_z": 8})
    value = ALDObjective(cfg_for(), fixed=True, trainer=ScriptedTrainer)(trial)
    assert value == pytest.approx(value) and trial.user_attrs["n_z_history"] == [8] * EPOCHS


def test_search_samples_lr_in_range_with_a_fixed_seed():
    study = new_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(
        ALDObjective(cfg_for(), search={"lr": (1e-4, 1e-2)}, trainer=ScriptedTrainer), n_trials=3
    )
    for t in study.trials:
        assert set(t.params) == {"lr"} and 1e-4 <= t.params["lr"] <= 1e-2
        assert t.user_attrs["seed"] == 0
    assert len({t.params["lr"] for t in study.trials}) == 3


def test_tune_search_optuna_samples_both_ranges_from_config():
    cfg = cfg_for(
        "tune.search=optuna", "tune.lr_range=[0.001, 0.002]", "tune.beta_range=[0.5, 0.7]"
    )
    objective = ALDObjective(cfg, trainer=ScriptedTrainer)
    assert objective.search == {"lr": (0.001, 0.002), "beta": (0.5, 0.7)}
    study = new_study()
    study.optimize(objective, n_trials=1)
    p = study.trials[0].params
    assert 0.001 <= p["lr"] <= 0.002 and 0.5 <= p["beta"] <= 0.7
    assert ALDObjective(cfg, fixed=True, trainer=ScriptedTrainer).search == {}  # the grid is a grid


def test_pruner_prunes_and_closes_the_mlflow_run(uri, experiment):
    study = new_study(pruner=PruneFromStep(3))
    with ALDObjective(
        cfg_for(), tracking_uri=uri, experiment=experiment, trainer=ScriptedTrainer
    ) as objective:
        study.optimize(objective, n_trials=2)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    for t in study.trials:
        assert sorted(t.intermediate_values) == [0, 1, 2, 3] and t.user_attrs["pruned_epoch"] == 3
        assert len(t.user_attrs["n_z_history"]) == 4 and "final_n_z" not in t.user_attrs
    c, parents, children = runs(uri, experiment)
    assert len(children) == 2 and parents[0].info.status == "FINISHED"
    for child in children:
        assert child.info.status == "KILLED" and child.data.tags["ald_tune.pruned_epoch"] == "3"
        assert n_z_steps(c, child.info.run_id)[0] == [0, 1, 2, 3]  # flushed before closing


def test_a_failing_trial_closes_its_run_as_failed(uri, experiment, monkeypatch):
    from ald_tune.testing.scripted import ScriptedTrainer

    original = ScriptedTrainer.run_epoch

    def run_epoch(self):
        if self.epoch == 2:
            raise RuntimeError("boom")
        return original(self)

    monkeypatch.setattr(ScriptedTrainer, "run_epoch", run_epoch)
    with pytest.raises(RuntimeError, match="boom"):
        optimize(cfg_for(), tracking_uri=uri, experiment=experiment, trainer=ScriptedTrainer)
    c, parents, children = runs(uri, experiment)
    assert [r.info.status for r in children] == ["FAILED"] and parents[0].info.status == "FAILED"
    assert n_z_steps(c, children[0].info.run_id)[0] == [0, 1]


# -- the grid ---------------------------------------------------------------------------
def test_grid_sampler_runs_each_n_z_once_and_stops_by_itself():
    cfg = cfg_for()
    study = new_study(sampler=grid_sampler(cfg))
    study.optimize(ALDObjective(cfg, fixed=True, trainer=ScriptedTrainer), n_trials=10)
    assert len(study.trials) == 3
    assert sorted(t.params["n_z"] for t in study.trials) == [2, 8, 16]
    for t in study.trials:
        n = t.params["n_z"]
        assert t.user_attrs["n_z_history"] == [n] * EPOCHS and t.user_attrs["final_n_z"] == n
        assert t.user_attrs["seed"] == cfg.train.seed
    worst = max(study.trials, key=lambda t: t.value)
    assert worst.params["n_z"] == 2  # the scripted curve is flat from BEST_N_Z=8 on


def test_grid_seeds_add_a_seed_axis():
    cfg = cfg_for("tune.grid_seeds=2")
    study = optimize(cfg, mode="grid", trainer=ScriptedTrainer)
    assert sorted((t.params["n_z"], t.user_attrs["seed"]) for t in study.trials) == [
        (2, 0),
        (2, 1),
        (8, 0),
        (8, 1),
        (16, 0),
        (16, 1),
    ]


# -- MLflow -----------------------------------------------------------------------------
def test_mlflow_parent_per_study_and_child_per_trial(uri, experiment):
    study = optimize(cfg_for(), tracking_uri=uri, experiment=experiment, trainer=ScriptedTrainer)
    c, parents, children = runs(uri, experiment)
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    assert parent.data.tags["ald_tune.sweep"] == study.study_name
    assert parent.data.tags["ald_tune.runner"] == "optuna" and parent.info.status == "FINISHED"
    by_trial = {int(r.data.tags["ald_tune.optuna_trial"]): r for r in children}
    for t in study.trials:
        child = by_trial[t.number]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["ald_tune.trial_id"] == f"optuna-{study.study_name}-{t.number}"
        assert child.data.tags["ald_tune.seed"] == str(t.user_attrs["seed"])
        assert child.info.run_id == t.user_attrs["mlflow_run_id"]
        assert child.info.status == "FINISHED"
        steps, values = n_z_steps(c, child.info.run_id)
        assert steps == list(range(EPOCHS))  # every epoch exactly once
        assert values == t.user_attrs["n_z_history"]
        assert child.data.tags["ald_tune.final_n_z"] == str(t.user_attrs["final_n_z"])
        assert child.data.params["train.seed"] == str(t.user_attrs["seed"])
        assert {a.path for a in c.list_artifacts(child.info.run_id)} >= {"history.json"}
    # Optimising the same study again continues its parent run.
    optimize(
        cfg_for(), study=study, tracking_uri=uri, experiment=experiment, trainer=ScriptedTrainer
    )
    _, parents, children = runs(uri, experiment)
    assert len(parents) == 1 and len(children) == 4 and parents[0].info.status == "FINISHED"
    assert len({r.data.tags["ald_tune.trial_id"] for r in children}) == 4


def test_grid_under_mlflow_logs_a_constant_n_z(uri, experiment):
    study = optimize(
        cfg_for(), mode="grid", tracking_uri=uri, experiment=experiment, trainer=ScriptedTrainer
    )
    c, parents, children = runs(uri, experiment)
    assert len(parents) == 1 and parents[0].data.tags["ald_tune.mode"] == "grid"
    assert len(children) == 3 == len(study.trials)
    for child in children:
        steps, values = n_z_steps(c, child.info.run_id)
        assert steps == list(range(EPOCHS)) and len(set(values)) == 1
        assert child.data.params["optuna.n_z"] == str(int(values[0]))


def test_tracking_uri_from_environment(uri, experiment, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    study = optimize(cfg_for("tune.num_samples=1"), experiment=experiment, trainer=ScriptedTrainer)
    assert "mlflow_run_id" in study.trials[0].user_attrs
    assert len(runs(uri, experiment)[2]) == 1


def test_a_new_study_with_a_used_name_gets_fresh_child_runs(uri, experiment):
    kw = dict(tracking_uri=uri, experiment=experiment, trainer=ScriptedTrainer)
    optimize(cfg_for(), study=make_study(cfg_for(), study_name="same"), **kw)
    with pytest.warns(RuntimeWarning, match="earlier study with the same name"):
        optimize(cfg_for(), study=make_study(cfg_for(), study_name="same"), **kw)
    c, parents, children = runs(uri, experiment)
    assert len(parents) == 1 and len(children) == 4
    for child in children:  # none of the second study's epochs was dropped as "already logged"
        assert n_z_steps(c, child.info.run_id)[0] == list(range(EPOCHS))


# -- arguments --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"metric": "silhouette"}, "'metric' parameter of ALDObjective"),
        ({"trainer": "fake"}, "'trainer' parameter of ALDObjective"),
        ({"search": {"momentum": (0.1, 0.9)}}, "'search' parameter of ALDObjective"),
        ({"search": {"lr": (0.0, 1e-2)}}, r"'search\['lr'\]' parameter .* Got \(0.0, 0.01\)"),
        ({"search": {"lr": (1e-2, 1e-4)}}, r"search\['lr'\]"),
        ({"search": {"beta": "wide"}}, r"search\['beta'\]"),
        ({"search": {"lr": (1e-4, 1e-2)}, "fixed": True}, "empty when fixed=True"),
        ({"tracking_uri": "file:./mlruns"}, "file store is deprecated"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ALDObjective(cfg_for(), **kwargs)


def test_optimize_checks_mode_and_study():
    cfg = cfg_for()
    with pytest.raises(ConfigError, match="'mode' parameter of optimize"):
        optimize(cfg, mode="random", trainer=ScriptedTrainer)
    with pytest.raises(ConfigError, match="direction='minimize'"):
        optimize(cfg, study=optuna.create_study(direction="maximize"), trainer=ScriptedTrainer)
    with pytest.raises(ConfigError, match="GridSampler"):
        optimize(cfg, mode="grid", study=new_study(), trainer=ScriptedTrainer)


def test_make_study_mirrors_the_ray_tuners():
    cfg = cfg_for("tune.scheduler=asha", "tune.asha_grace=4")
    grid, ald = make_study(cfg, "grid"), make_study(cfg, "ald")
    assert isinstance(grid.sampler, optuna.samplers.GridSampler)
    assert isinstance(grid.pruner, optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(ald.sampler, optuna.samplers.TPESampler)
    assert isinstance(ald.pruner, optuna.pruners.NopPruner)
    assert grid.study_name.startswith("grid-digits-")
    assert grid.study_name != make_study(cfg, "grid").study_name  # a new study, a new name


@pytest.mark.integration
def test_import_is_free_of_ray_and_mlflow():
    code = (
        "import sys, ald_tune.integrations.optuna.objective; "
        "print(sorted(m for m in ('ray', 'mlflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- real training ----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::ald_tune.engine.rules.base.PruningFloorWarning")
def test_real_engine_two_trials_on_digits(uri, experiment, cache_dir):
    cfg = load_config(
        "search_spaces/digits.yaml",
        overrides=[
            "train.epochs=4",
            "ald.window=4",
            "ald.patience=1",
            "model.hidden=[32, 32]",
            "ald.n_z_init=8",
            "eval.n_fid=20",
            f"eval.cache_dir={cache_dir}",
            "tune.num_samples=2",
            "ald.rule=paper",
        ],
    )
    study = optimize(cfg, tracking_uri=uri, experiment=experiment)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    for t in study.trials:
        hist = t.user_attrs["n_z_history"]
        assert len(hist) == 4 and hist[0] == 8 and hist == sorted(hist, reverse=True)
        assert sorted(t.intermediate_values) == [0, 1, 2, 3] and t.value > 0
    c, parents, children = runs(uri, experiment)
    assert len(parents) == 1 and len(children) == 2
    for child in children:
        assert n_z_steps(c, child.info.run_id)[0] == [0, 1, 2, 3]
        assert child.info.status == "FINISHED"


def test_the_package_exports_the_objective_and_the_study_side():
    assert ALDObjective is objective_module.ALDObjective
    assert (grid_sampler, make_study, optimize) == (
        study_module.grid_sampler,
        study_module.make_study,
        study_module.optimize,
    )


def test_credentials_in_the_uri_never_stay_in_the_callers_environment(monkeypatch):
    """``ALDObjective(tracking_uri='http://u:p@host')`` wrote user and password into
    ``os.environ``, even when it then failed; now they are there only while it talks to
    MLflow."""
    import os

    from conftest import free_port

    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    before = dict(os.environ)
    with pytest.raises(ConfigError, match="unreachable"):
        ALDObjective(cfg_for(), tracking_uri=f"http://ana:pw-77@127.0.0.1:{free_port()}")
    assert dict(os.environ) == before

    seen = []

    def record(*args, **kwargs):
        seen.append(
            (os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD"))
        )
        return ("1", "0a1b")

    monkeypatch.setattr(objective_module, "check_tracking", record)
    monkeypatch.setattr(objective_module, "start_parent_run", record)
    monkeypatch.setattr(objective_module, "finish_run", record)
    objective = ALDObjective(cfg_for(), tracking_uri="http://ana:pw-77@mlflow.example:5000")
    assert objective.tracking_uri == "http://mlflow.example:5000"
    objective.parent_run("study")
    objective.finish()
    assert seen == [("ana", "pw-77")] * 3 and dict(os.environ) == before


def test_study_runs_reads_stores_written_before_and_after_the_tag_rename(uri, experiment):
    """0.2 wrote the study's name as ``ald_tune.integrations.optuna.study`` (a module move
    renamed the key by accident); the old key ``ald_tune.optuna_study`` is written again.
    A store holding both kinds of runs answers "which runs are this study's" with both."""
    from mlflow import MlflowClient

    from ald_tune.integrations.optuna import study_runs

    study = optimize(cfg_for(), tracking_uri=uri, experiment=experiment, trainer=ScriptedTrainer)
    c, _, children = runs(uri, experiment)
    assert {r.data.tags.get("ald_tune.optuna_study") for r in children} == {study.study_name}
    assert not any("ald_tune.integrations.optuna.study" in r.data.tags for r in children)
    exp_id = MlflowClient(uri).get_experiment_by_name(experiment).experiment_id
    old = c.create_run(exp_id, tags={"ald_tune.integrations.optuna.study": study.study_name})
    c.create_run(exp_id, tags={"ald_tune.integrations.optuna.study": "another study"})
    found = {r.info.run_id for r in study_runs(uri, study.study_name, experiment)}
    assert found == {r.info.run_id for r in children} | {old.info.run_id}
    with pytest.raises(ConfigError, match=r"no experiment 'nope'.*Fix: pass the experiment"):
        study_runs(uri, study.study_name, "nope")
