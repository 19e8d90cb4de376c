"""Security: no pickled code runs on load, YAML is safe, servers bind to 127.0.0.1 by
default, and credentials never reach params, tags, Tune's files, output or messages.

Each loader is fed a payload that would create a marker file if it executed: the
marker's absence proves that nothing ran, whatever the error says.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path

import pytest
from conftest import ROOT, free_port

from ald_tune import tracking as trk
from ald_tune.errors import ConfigError, DataError
from ald_tune.testing import SCRIPTED
from ald_tune.tracking import trial_logger as tl

PACKAGE = Path(ROOT) / "ald_tune"


class Payload:
    """Unpickling this runs ``touch marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# -- no pickled code on load -------------------------------------------------------------------


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_checkpoint_with_pickled_code_is_rejected_without_running_it(tmp_path, writer):
    import torch

    from ald_tune.engine.checkpoint import load_checkpoint

    marker, bad = tmp_path / "pwned", tmp_path / "checkpoint.pt"
    ckpt = {"schema_version": 1, "config": {}, "model": Payload(marker)}
    if writer == "pickle":
        bad.write_bytes(pickle.dumps(ckpt))
    else:
        torch.save(ckpt, bad)
    with pytest.raises(DataError, match="cannot be loaded safely"):
        load_checkpoint(tmp_path)  # the folder form, as Tune hands it over
    assert not marker.exists()


def test_saved_model_loads_without_unpickling(tmp_path):
    import torch

    from ald_tune.config.schema import Config
    from ald_tune.engine.artifacts import load_model, save_model
    from ald_tune.engine.model import build_model

    cfg = Config.from_dict({"model": {"hidden": [16]}})
    model = build_model(cfg.model, (1, 8, 8), 3)
    path = save_model(model, cfg.to_dict(), (1, 8, 8), str(tmp_path / "model.safetensors"))
    again = load_model(path)  # round trip: safetensors + JSON metadata only
    assert again.n_z == 3
    for (k, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k
    marker, bad = tmp_path / "pwned", tmp_path / "evil.safetensors"
    bad.write_bytes(pickle.dumps({"w": Payload(marker)}))
    with pytest.raises(Exception):
        load_model(str(bad))
    torch.save({"w": Payload(marker)}, tmp_path / "evil2.safetensors")  # a torch zip archive
    with pytest.raises(Exception):
        load_model(str(tmp_path / "evil2.safetensors"))
    assert not marker.exists()


# -- no file chooses the code that runs ---------------------------------------------------------

EVIL = """import pathlib
pathlib.Path({marker!r}).write_text("imported")


def build(**kwargs):
    raise SystemError("evil factory ran")
"""


@pytest.fixture
def evil_folder(tmp_path, monkeypatch):
    """A download folder holding ``evilmod.py``, the working directory of a Python session
    started there (so the folder is on sys.path)."""
    import importlib
    import sys

    folder = tmp_path / "downloads"
    folder.mkdir()
    marker = tmp_path / "pwned"
    (folder / "evilmod.py").write_text(EVIL.format(marker=str(marker)))
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    importlib.invalidate_caches()
    yield folder, marker
    sys.modules.pop("evilmod", None)


def model_file_naming(folder, factory: str) -> str:
    from ald_tune.config.schema import Config
    from ald_tune.engine.artifacts import save_model
    from ald_tune.engine.model import build_model

    cfg = Config.from_dict({"model": {"hidden": [16]}})
    model = build_model(cfg.model, (1, 8, 8), 3)
    named = Config.from_dict({"model": {"hidden": [16], "factory": factory}})
    return save_model(model, named.to_dict(), (1, 8, 8), str(folder / "model.safetensors"))


def test_a_model_file_never_imports_the_factory_it_names(evil_folder, capsys):
    import sys

    from ald_tune.engine.artifacts import load_model

    folder, marker = evil_folder
    path = model_file_naming(folder, "evilmod:build")
    with pytest.raises(DataError) as e:
        load_model(path)
    text = str(e.value)
    assert "names model.factory 'evilmod:build'" in text and "not imported" in text
    assert "load_model(path, factory='evilmod:build')" in text and "\n" not in text
    assert not marker.exists() and "evilmod" not in sys.modules
    with pytest.raises(DataError, match="not the 'mine:build' you allowed"):
        load_model(path, factory="mine:build")
    assert not marker.exists()
    # Named by the caller, it is imported (and its failure is one line): the test can fail.
    with pytest.raises(ConfigError, match="raised SystemError: evil factory ran"):
        load_model(path, factory="evilmod:build")
    assert marker.read_text() == "imported"


def test_a_model_file_naming_an_installed_module_imports_nothing(tmp_path, capsys):
    import sys

    from ald_tune.engine.artifacts import load_model

    was_imported = "this" in sys.modules
    path = model_file_naming(tmp_path, "this:x")
    with pytest.raises(DataError, match="names model.factory 'this:x'"):
        load_model(path)
    assert "Beautiful is better than ugly" not in capsys.readouterr().out
    assert was_imported or "this" not in sys.modules


def test_train_resume_never_imports_the_factory_its_checkpoint_names(
    evil_folder, cache_dir, capsys
):
    from ald_tune.cli.main import main
    from ald_tune.config.schema import load_config
    from ald_tune.engine.checkpoint import save_checkpoint
    from ald_tune.engine.trainer import Trainer

    folder, marker = evil_folder
    cfg = load_config(
        str(Path(ROOT) / "search_spaces" / "digits.yaml"),
        overrides=["model.hidden=[16]", "eval.n_fid=40", f"eval.cache_dir={cache_dir}"],
    )
    ckpt = Trainer(cfg).checkpoint()
    ckpt["config"]["model"]["factory"] = "evilmod:build"
    save_checkpoint(ckpt, folder / "run" / "checkpoint.pt")
    run = str(folder / "run")
    assert main(["train", "--resume", run]) == 2
    err = capsys.readouterr().err
    assert "names model.factory 'evilmod:build'" in err and "Traceback" not in err
    assert "--set model.factory=evilmod:build" in err
    assert main(["train", "--resume", run, "--set", "model.factory=other:x"]) == 2
    assert "not the 'other:x' you allowed" in capsys.readouterr().err
    assert main(["train", "--resume", run, "--set", "train.epochs=3"]) == 2
    assert "--set would be ignored" in capsys.readouterr().err
    assert not marker.exists()
    # The one override --resume takes names the factory: then, and only then, it runs.
    assert main(["train", "--resume", run, "--set", "model.factory=evilmod:build"]) == 2
    assert "raised SystemError: evil factory ran" in capsys.readouterr().err
    assert marker.read_text() == "imported"


UNSAFE = [
    (r"\bpickle\.loads?\(|\bcloudpickle\.loads?\(|\bdill\.loads?\(", "unpickles"),
    (r"\byaml\.(load|unsafe_load|full_load)\(|yaml\.(Unsafe|Full)?Loader\b", "unsafe YAML"),
    (r"allow_pickle\s*=\s*True", "numpy pickle"),
    (r"\b(eval|exec)\(\s*[^)]", "eval/exec"),
]


def test_package_source_has_no_unsafe_loaders():
    """A static guard: new code that unpickles or loads YAML unsafely fails here."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for pattern, what in UNSAFE:
            found += [f"{path.name}: {what}: {m.group(0)}" for m in re.finditer(pattern, text)]
        for m in re.finditer(r"torch\.load\(", text):
            call = text[m.start() : text.find(")", m.start()) + 1]
            if "weights_only=True" not in call:
                found.append(f"{path.name}: torch.load without weights_only=True: {call}")
        # TorchScript (jit.load) only for the FID Inception network shipped in a package.
        if "jit.load(" in text and path.name != "extractors.py":
            found.append(f"{path.name}: torch.jit.load")
    assert not found, found


# -- YAML is loaded safely ----------------------------------------------------------------------


def test_yaml_tags_that_construct_objects_are_rejected(tmp_path):
    from ald_tune.config.schema import load_config

    marker = tmp_path / "pwned"
    space = tmp_path / "space.yaml"
    space.write_text(f"train: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match=r"space\.yaml.*not valid YAML.*python/object"):
        load_config(space)
    with pytest.raises(ConfigError, match=r"override .*not valid YAML"):
        load_config(
            "search_spaces/digits.yaml",
            overrides=[f"train.epochs=!!python/object/apply:os.system ['touch {marker}']"],
        )
    assert not marker.exists()


# -- servers bind to 127.0.0.1 unless asked ------------------------------------------------------


def test_every_host_option_defaults_to_localhost():
    import argparse

    from ald_tune.cli.main import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    hosts = {
        name: a.default
        for name, p in subs.choices.items()
        for a in p._actions
        if a.dest in ("host", "bind", "address_to_bind")
    }
    assert hosts == {"ui": "127.0.0.1"}  # the only server ald-tune starts


def test_ui_starts_mlflow_on_localhost_unless_asked(tmp_path, monkeypatch, capsys):
    import subprocess

    import mlflow  # noqa: F401 - imported before Popen is replaced (its import runs processes)

    from ald_tune.cli.main import main

    calls = []

    class FakeServer:
        pid = 0

        def __init__(self, cmd, **kw):
            calls.append(cmd)

        def wait(self):
            return 0

        def poll(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakeServer)
    assert main(["ui", "--run-dir", str(tmp_path)]) == 0
    assert main(["ui", "--run-dir", str(tmp_path), "--host", "0.0.0.0", "--port", "5001"]) == 0
    first, second = calls
    assert first[first.index("--host") + 1] == "127.0.0.1" and first[2:4] == ["mlflow", "server"]
    assert second[second.index("--host") + 1] == "0.0.0.0"


# -- no secrets in messages, params, tags, files, output ----------------------------------------

SECRET = "s3cret-PW-9f2"
TOKEN = "tok-SECRET-77ab"


@pytest.fixture
def no_credentials(monkeypatch):
    """Whatever a test puts into MLflow's credential variables is removed afterwards."""
    for var in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    "text, shown",
    [
        ("http://alice:pw@127.0.0.1:5000", "http://alice:***@127.0.0.1:5000"),
        ("https://tok123@mlflow.example.org/", "https://***@mlflow.example.org/"),
        (
            "API request to http://a:b%40c@h:1/api failed",
            "API request to http://a:***@h:1/api failed",
        ),
        ("sqlite:////abs/mlflow.db", "sqlite:////abs/mlflow.db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ],
)
def test_redact_uri(text, shown):
    assert trk.redact_uri(text) == shown


def test_redact_uri_masks_token_and_password_values(no_credentials):
    no_credentials.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
    no_credentials.setenv("MLFLOW_TRACKING_PASSWORD", SECRET)
    assert trk.redact_uri(f"header Bearer {TOKEN}; pw {SECRET}") == "header Bearer ***; pw ***"


def test_credentials_in_the_uri_move_to_the_environment(no_credentials):
    uri = trk.resolve_tracking_uri(f"http://alice:{SECRET}@127.0.0.1:5000/", "/tmp")
    assert uri == "http://127.0.0.1:5000"
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "alice"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == SECRET  # where MLflow reads it


def test_messages_never_show_the_password(tmp_path, no_credentials):
    from ald_tune.config.schema import load_config
    from ald_tune.sweeps.run import run_sweep
    from ald_tune.sweeps.tuner import SweepOptions
    from ald_tune.tracking.tracker import TrackingOptions

    uri = f"http://alice:{SECRET}@127.0.0.1:{free_port()}"
    with pytest.raises(ConfigError) as err:
        trk.check_tracking(uri)
    assert SECRET not in str(err.value) and "alice:***@" in str(err.value)
    cfg = load_config("search_spaces/digits.yaml", overrides=["train.epochs=30"])
    with pytest.raises(ConfigError) as err:
        run_sweep(
            cfg,
            SweepOptions(run_dir=str(tmp_path), trainer=SCRIPTED, verbose=False),
            TrackingOptions(uri=uri),
        )
    assert SECRET not in str(err.value)
    no_credentials.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    no_credentials.setattr(tl, "FLUSH_BACKOFF_S", (0.01, 0.01))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger = tl.TrialLogger(uri, "1", "p", "t", {}, {}, "r")
        logger.finish()
    texts = [str(w.message) for w in caught]
    assert texts and not any(SECRET in t for t in texts) and all("alice:***@" in t for t in texts)
    with pytest.raises(ConfigError) as err:
        trk.resolve_tracking_uri(f"ftp://alice:{SECRET}@host/x", str(tmp_path))
    assert SECRET not in str(err.value)


def _leaks(root: Path, secrets) -> list[str]:
    out = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            out += [f"{path}: {s}" for s in secrets if s.encode() in data]
    return out


def _run_texts(c, exp_id) -> str:
    runs = c.search_runs([exp_id], max_results=1000)
    return repr([(r.data.params, r.data.tags, r.info.run_name) for r in runs])


@pytest.mark.integration
def test_token_never_reaches_params_tags_files_or_output(
    ray_session, tmp_path, capfd, no_credentials
):
    from ald_tune.config.schema import load_config
    from ald_tune.sweeps.run import run_sweep
    from ald_tune.sweeps.tuner import SweepOptions

    no_credentials.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
    cfg = load_config(
        "search_spaces/digits.yaml", overrides=["train.epochs=30", "tune.num_samples=1"]
    )
    result = run_sweep(
        cfg,
        SweepOptions(mode="ald", run_dir=str(tmp_path), trainer=SCRIPTED, verbose=True, name="tok"),
    )
    from mlflow import MlflowClient

    assert TOKEN not in _run_texts(MlflowClient(result.tracking_uri), result.experiment_id)
    assert not _leaks(tmp_path, [TOKEN])  # Tune's folder, the SQLite store, the artifacts
    out = capfd.readouterr()
    assert TOKEN not in out.out + out.err


@pytest.mark.slow
def test_uri_credentials_never_reach_params_tags_files_or_output(
    ray_session, mlflow_server, tmp_path, capfd, no_credentials
):
    from mlflow import MlflowClient

    from ald_tune.config.schema import load_config
    from ald_tune.sweeps.run import run_sweep
    from ald_tune.sweeps.tuner import SweepOptions
    from ald_tune.tracking.tracker import TrackingOptions

    uri = mlflow_server.replace("http://", f"http://alice:{SECRET}@")
    cfg = load_config(
        "search_spaces/digits.yaml", overrides=["train.epochs=30", "tune.num_samples=1"]
    )
    result = run_sweep(
        cfg,
        SweepOptions(
            mode="ald",
            run_dir=str(tmp_path),
            trainer=SCRIPTED,
            verbose=True,
            name="creds",
        ),
        TrackingOptions(uri=uri, experiment="creds"),
    )
    assert all(t.status == "TERMINATED" for t in result.trials)
    assert SECRET not in str(result.tracking_uri)
    c = MlflowClient(mlflow_server)
    texts = _run_texts(c, result.experiment_id)
    assert SECRET not in texts and "ald_tune.trial_id" in texts
    assert not _leaks(tmp_path, [SECRET])  # Tune's params.json, result.json, state files
    for run in c.search_runs([result.experiment_id]):  # and the artifacts logged
        folder = c.download_artifacts(run.info.run_id, "", str(tmp_path / "dl" / run.info.run_id))
        assert not _leaks(Path(folder), [SECRET])
    out = capfd.readouterr()
    assert SECRET not in out.out + out.err
