"""Each run's final model as an MLflow 3 logged model: logged into a real SQLite store,
found by a numeric search on its n_z, loaded back by ``models:/`` and ``runs:/`` URIs
(through ald-tune's safe loader) and by MLflow's own pyfunc loader."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from ald_tune.config.schema import Config
from ald_tune.engine.artifacts import save_model
from ald_tune.engine.model import build_model
from ald_tune.errors import DataError
from ald_tune.tracking import models, runs, store
from ald_tune.tracking.pending import PENDING_FILE, send_pending

SHAPE = (1, 8, 8)
#: The search docs/tracking.md shows: MLflow compares params as strings, so the n_z filter
#: goes through the linked metric.
BEST_SMALL = {
    "filter_string": "metrics.final_n_z <= 8",
    "order_by": [{"field_name": "metrics.recon_loss", "ascending": True}],
}


def _tiny_file(folder, n_z: int) -> str:
    cfg = Config.from_dict({"model": {"hidden": [16]}})
    torch.manual_seed(n_z)
    model = build_model(cfg.model, SHAPE, n_z)
    os.makedirs(folder, exist_ok=True)
    return save_model(model, cfg.to_dict(), SHAPE, os.path.join(folder, "model.safetensors"))


def _run_with_history(c, exp_id: str, n_z: int, recon: float) -> str:
    """A run as a trial leaves it: three epochs of n_z and recon_loss."""
    from mlflow.entities import Metric

    run_id = c.create_run(exp_id, run_name=f"nz{n_z}").info.run_id
    runs.log_params(c, run_id, {"data.name": "digits"})
    c.log_batch(
        run_id,
        metrics=[Metric("n_z", n_z, 1000 + s, s) for s in range(3)]
        + [Metric("recon_loss", recon + 2 - s, 1000 + s, s) for s in range(3)],
    )
    return run_id


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """Three runs of n_z 3, 6 and 12 with their logged models: (uri, exp_id, {n_z: ids}),
    made once for the module (the tests below only read them, or log what is there)."""
    tmp_path = tmp_path_factory.mktemp("logged")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    c = store.client(uri)
    exp_id = store.ensure_experiment(c, "models")
    out = {}
    for n_z, recon in ((3, 20.0), (6, 10.0), (12, 5.0)):
        run_id = _run_with_history(c, exp_id, n_z, recon)
        model_id = models.log_model(c, run_id, _tiny_file(tmp_path / str(n_z), n_z), step=2)
        out[n_z] = (run_id, model_id)
    return uri, exp_id, out


def test_a_numeric_search_finds_the_best_small_model_and_it_loads_by_uri(logged):
    import mlflow

    uri, exp_id, ids = logged
    c = store.client(uri)
    found = c.search_logged_models([exp_id], **BEST_SMALL)
    assert [m.model_id for m in found] == [ids[6][1], ids[3][1]]  # 12 left out; best first
    best = found[0]
    assert best.params["n_z"] == "6" and best.params["data.name"] == "digits"
    assert best.source_run_id == ids[6][0] and best.model_type == models.MODEL_TYPE
    linked = {m.key: m.value for m in best.metrics}
    assert linked == {"final_n_z": 6.0, "n_z": 6.0, "recon_loss": 10.0}  # the last epoch's
    with pytest.raises(mlflow.exceptions.MlflowException, match="Invalid comparison operator"):
        c.search_logged_models([exp_id], filter_string="params.n_z <= 8")  # strings only
    vae = models.load_model(f"models:/{best.model_id}", tracking_uri=uri)
    assert vae.n_z == 6 and vae.decode(torch.zeros(2, 6)).shape == (2, *SHAPE)
    # the run's own history gains no row by the linking (same values, same times)
    assert len(c.get_metric_history(ids[6][0], "recon_loss")) == 3
    assert [m.step for m in c.get_metric_history(ids[6][0], "final_n_z")] == [2]


def test_runs_uri_loads_the_run_artifact_and_a_retry_logs_no_second_model(logged):
    uri, exp_id, ids = logged
    c = store.client(uri)
    run_id, model_id = ids[3]
    path = os.path.join(store.sqlite_path(uri).rsplit("/", 1)[0], "3", "model.safetensors")
    c.log_artifact(run_id, path)
    assert models.load_model(f"runs:/{run_id}/model.safetensors", tracking_uri=uri).n_z == 3
    assert models.log_model(c, run_id, path) == model_id
    assert len(c.search_logged_models([exp_id])) == 3
    assert models.load_model(path).n_z == 3  # a plain path, as before


def test_mlflows_own_pyfunc_loader_encodes_to_latent_means(logged):
    import mlflow
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    from ald_tune.tracking import pyfunc_code  # the code file MLflow runs, as a module
    from ald_tune.tracking.pyfunc import VAEPyfunc

    uri, _, ids = logged
    with _use_tracking_uri(uri):  # as mlflow.set_tracking_uri(uri): both loaders use it
        pm = mlflow.pyfunc.load_model(f"models:/{ids[6][1]}")
        assert models.load_model(f"models:/{ids[3][1]}").n_z == 3
    x = np.random.default_rng(0).random((4, 64))  # float64, flattened: both accepted
    mu = pm.predict(x)
    assert mu.shape == (4, 6) and mu.dtype == np.float32
    vae = models.load_model(f"models:/{ids[6][1]}", tracking_uri=uri)
    want = vae.encode(torch.as_tensor(x, dtype=torch.float32).reshape(4, *SHAPE))[0]
    assert np.allclose(mu, want.detach().numpy(), atol=1e-6)
    assert isinstance(pm.unwrap_python_model(), VAEPyfunc) and pyfunc_code.VAEPyfunc is VAEPyfunc


def test_a_registered_model_loads_by_name_version_latest_and_alias_from_its_own_store(
    logged, tmp_path, monkeypatch
):
    """models:/<name>/<version>, /latest and @alias are looked up in the store tracking_uri
    names, not in MLflow's global registry (which would make an empty ./mlflow.db)."""
    import mlflow
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    uri, _, ids = logged
    with _use_tracking_uri(uri):  # registered as a user does: mlflow.set_tracking_uri first
        for n_z in (3, 6):
            mlflow.register_model(f"models:/{ids[n_z][1]}", "small-vae")
    store.client(uri).set_registered_model_alias("small-vae", "champion", "1")
    monkeypatch.chdir(tmp_path)  # where the global default store would appear
    assert models.load_model("models:/small-vae/1", tracking_uri=uri).n_z == 3
    assert models.load_model("models:/small-vae/latest", tracking_uri=uri).n_z == 6
    assert models.load_model("models:/small-vae@champion", tracking_uri=uri).n_z == 3
    with pytest.raises(DataError, match="registered name, version or alias"):
        models.load_model("models:/small-vae/9", tracking_uri=uri)
    assert not os.path.exists(tmp_path / "mlflow.db")


def test_a_uri_that_does_not_resolve_says_so_in_one_line(logged, tmp_path):
    uri = logged[0]
    with pytest.raises(DataError) as err:
        models.load_model("models:/m-0123456789abcdef", tracking_uri=uri)
    text = str(err.value)
    assert "\n" not in text and text.startswith("models:/m-0123456789abcdef does not resolve")
    assert "Fix: " in text
    missing = tmp_path / "elsewhere" / "mlflow.db"
    with pytest.raises(DataError, match="no MLflow store at"):
        models.load_model("runs:/abc/model.safetensors", tracking_uri=f"sqlite:///{missing}")
    assert not missing.exists()  # no empty store made


def test_pending_final_files_are_sent_with_their_logged_model(tmp_path):
    """What ``log_final`` keeps and backfill resends: the files, the tags and the model."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    c = store.client(uri)
    exp_id = store.ensure_experiment(c, "pending")
    run_id = _run_with_history(c, exp_id, 5, 7.0)
    folder = tmp_path / "mlflow_pending"
    _tiny_file(folder, 5)
    (folder / "history.json").write_text("{}")
    (folder / PENDING_FILE).write_text(
        json.dumps(
            {
                "trial_id": "t1",
                "files": ["history.json", "model.safetensors"],
                "tags": {runs.FINAL_NZ_TAG: "5"},
                "step": 2,
            }
        )
    )
    model_id = send_pending(c, run_id, str(folder))
    assert not folder.exists()
    (model,) = c.search_logged_models([exp_id])
    assert model.model_id == model_id and model.params["n_z"] == "5"
    assert c.get_run(run_id).outputs.model_outputs[0].model_id == model_id


def test_final_files_that_cannot_be_written_warn_and_leave_no_folder(tmp_path, monkeypatch):
    import tempfile

    from ald_tune.testing.scripted import ScriptedTrainer
    from ald_tune.tracking.trial_logger import TrialLogger

    def fail(out_dir):
        raise OSError(28, "No space left on device")

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    exp_id = store.ensure_experiment(store.client(uri), "full-disk")
    logger = TrialLogger(uri, exp_id, None, "t1", {}, {}, "trial")
    trainer = ScriptedTrainer(Config())
    monkeypatch.setattr(trainer, "save_outputs", fail)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with pytest.warns(RuntimeWarning, match="final outputs could not be written.*No space"):
        logger.log_final(trainer)
    assert os.listdir(tmp_path / "tmp") == []


def test_runs_ald_tune_creates_carry_mlflows_context_tags(tmp_path):
    """Source and user (MLflow's ``resolve_tags``) on the parent; a trial's run copies its
    parent's (its own process is a Ray worker); ald-tune's tags win."""
    from ald_tune.config.kinds import SweepKind
    from ald_tune.config.tags import SOURCE_NAME_TAG, USER_TAG
    from ald_tune.tracking.trial_logger import TrialLogger

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = Config.from_dict({"model": {"hidden": [16]}})
    exp_id, parent = runs.start_parent_run(
        uri, "ctx", "s1", kind=SweepKind("fixed"), cfg=cfg, space=None, resume=False
    )
    c = store.client(uri)
    c.set_tag(parent, SOURCE_NAME_TAG, "the-driver.py")
    tags = c.get_run(parent).data.tags
    assert tags[USER_TAG] and tags[runs.SWEEP_TAG] == "s1"
    logger = TrialLogger(uri, exp_id, parent, "t1", {USER_TAG: "ci"}, {}, "trial")
    child = c.get_run(logger.run_id).data.tags
    assert child[SOURCE_NAME_TAG] == "the-driver.py" and child[USER_TAG] == "ci"
    assert runs.run_tags({"a": "1"})[SOURCE_NAME_TAG]  # outside any parent: this process
