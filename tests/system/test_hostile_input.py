"""Hostile input, one table per class of defect: every case exits 2 (or raises the project's
error type) with one line naming the field or file, the value (bounded) and the fix, no
traceback, in seconds, before Ray starts, and nothing already recorded changes.

Through the CLI in this process (``ald_tune.cli.main.main``), with Ray replaced by a
tripwire: reaching ``init_ray`` fails the case. The tables count their cases
(``CASES_PER_CLASS``).
"""

from __future__ import annotations

import hashlib
import os
import re
import time

import numpy as np
import pytest
import torch

from ald_tune.cli.main import main
from ald_tune.engine.artifacts import load_model
from ald_tune.engine.checkpoint import load_checkpoint, save_checkpoint
from ald_tune.errors import ConfigError, DataError, shown
from ald_tune.sweeps import tuner as tuners
from ald_tune.tracking.store import redact_uri

SPACE = "search_spaces/digits.yaml"
TINY = [
    "--set",
    "train.epochs=4",
    "--set",
    "ald.window=4",
    "--set",
    "ald.patience=2",
    "--set",
    "model.hidden=[16]",
    "--set",
    "eval.n_fid=40",
]


@pytest.fixture(autouse=True)
def _forget_user_modules():
    """Cases write modules of their own (``hostile_*``) onto sys.path: undo it after each."""
    import sys

    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if name.startswith("hostile_"):
            del sys.modules[name]


def user_module(tmp, name: str, source: str) -> str:
    """Write ``tmp/name.py`` and put ``tmp`` on sys.path, as a user's own package."""
    import importlib
    import sys

    (tmp / f"{name}.py").write_text(source)
    sys.path.insert(0, str(tmp))
    importlib.invalidate_caches()
    return f"model.factory={name}:build"


def tripwire(*args, **kwargs):
    raise AssertionError("Ray was started before the bad input was refused")


@pytest.fixture
def no_ray(monkeypatch):
    monkeypatch.setattr(tuners, "init_ray", tripwire)


def snapshot(folder) -> dict[str, str]:
    """Every file under ``folder`` and a hash of its bytes (what is already recorded)."""
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, folder)] = hashlib.md5(fh.read()).hexdigest()
    return out


def refused(capsys, argv, *needles, max_s=30.0, max_chars=1500):
    """Run the CLI; exit code 2, one short line on stderr with every needle, no traceback."""
    t0 = time.perf_counter()
    rc = main(argv)
    took = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert rc == 2, (rc, err[-2000:])
    assert "Traceback" not in err and len(err) <= max_chars, err[:3000]
    assert re.match(r"ald-tune( compare)?: error: ", err), err[:500]
    for needle in needles:
        assert needle in err, (needle, err)
    assert took < max_s, took
    return err


# -- 1. resource exhaustion through error messages ---------------------------------------


def alias_bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + f"\ntrain: {{epochs: *a{levels - 1}}}\n"


EXHAUSTION = [
    (
        "alias bomb, 9 levels",
        lambda t: ["--space", write(t, alias_bomb(9))],
        ["YAML alias", "Fix:"],
    ),
    (
        "one alias",
        lambda t: ["--space", write(t, "x: &v 3\ntrain: {epochs: *v}\n")],
        ["YAML alias *", "Fix: write the value out"],
    ),
    ("alias in --set", lambda t: ["--set", "model.hidden=[&a 1, *a]"], ["YAML alias", "override"]),
    (
        "a 20,000-character --set",
        lambda t: ["--set", "model.hidden=[" + "1," * 10_000 + "1]"],
        ["at most 10,000", "Fix: put long values"],
    ),
    (
        "deep nesting in --set",
        lambda t: ["--set", "model.hidden=" + "[" * 60 + "1" + "]" * 60],
        ["'hidden' parameter of ModelConfig", "Got [", "..."],
    ),
    (
        "thousands of unknown keys",
        lambda t: ["--space", write(t, "train:\n" + "".join(f"  k{i}: 1\n" for i in range(5000)))],
        ["unknown key(s)"],
    ),
    (
        "a 2 MB space file",
        lambda t: ["--space", write(t, "#" * 2_000_000 + "\n")],
        ["bytes; a search space is a few kilobytes"],
    ),
    (
        "a huge string value",
        lambda t: ["--set", "data.path=" + "p" * 5000, "--set", "data.name=npz"],
        ["'path' parameter of DataConfig", "..."],
    ),
]


def write(tmp, text: str, name: str = "space.yaml") -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("case, argv, needles", EXHAUSTION, ids=[c[0] for c in EXHAUSTION])
def test_error_messages_stay_small_whatever_the_input(
    case, argv, needles, tmp_path, capsys, no_ray
):
    import tracemalloc

    tracemalloc.start()
    refused(capsys, ["ald", "--run-dir", str(tmp_path), *argv(tmp_path)], *needles, max_s=20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200e6, peak  # a bomb would need gigabytes


def test_shown_bounds_any_value():
    deep: list = []
    for _ in range(1000):
        deep = [deep, deep]
    assert len(shown(deep)) <= 120 and len(shown("x" * 10**6)) <= 120


# -- 2. names used as paths and as MLflow filter strings ----------------------------------

NAMES = [
    ("ald", "--name", "../../escape"),
    ("grid", "--name", "a/b"),
    ("ald", "--name", "it's"),
    ("ald", "--name", "x" * 300),
    ("ald", "--name", ".hidden"),
    ("ald", "--name", "a..b"),
    ("ald", "--experiment", "../../X"),
    ("grid", "--experiment", "e' or '1'='1"),
    ("compare", "--name", "../up"),
    ("train", "--experiment", "../../X"),
]


@pytest.mark.parametrize("command, flag, value", NAMES)
def test_every_given_name_is_checked_before_anything_is_written(
    command, flag, value, tmp_path, capsys, no_ray
):
    work = tmp_path / "work"
    work.mkdir()
    before = snapshot(tmp_path)
    extra = (
        ["--tracking-uri", f"sqlite:///{work}/m.db", "--out", str(work / "o")]
        if command == "train"
        else ["--run-dir", str(work)]
    )
    err = refused(
        capsys, [command, *TINY, *extra, flag, value], f"{flag} must be 1-100 letters", "Fix:"
    )
    assert len(err) < 800
    assert snapshot(tmp_path) == before  # nothing written, inside or outside the run folder
    assert not os.path.exists(tmp_path.parent / "escape")


# -- 3. checks that must come before Ray (and before the MLflow parent run) ----------------


def before_ray_cases():
    return [
        (
            "storage is a file",
            lambda t: ["--storage", write(t, "x", "file")],
            ["is a file, not a folder", "Fix:"],
        ),
        (
            "storage cannot be made",
            lambda t: ["--storage", "/proc/ald-tune/x"],
            ["cannot be written", "Fix:"],
        ),
        (
            "conv net on 8x8 images",
            lambda t: ["--set", "model.arch=conv"],
            ["'arch' parameter of ModelConfig is 'conv'", "8x8", "Fix: model.arch=mlp"],
        ),
        (
            "silhouette samples <= clusters",
            lambda t: ["--set", "eval.n_silhouette=8"],
            ["eval.n_silhouette=8", "k=10", "Fix:"],
        ),
        (
            "cache folder that cannot be made",
            lambda t: ["--set", "eval.cache_dir=/proc/nope/x"],
            ["/proc/nope/x"],
        ),
        (
            "n_z of a billion",
            lambda t: ["--set", "ald.n_z_init=1000000000"],
            ["'n_z_init' parameter of ALDConfig must be an int in [1, 4096]"],
        ),
        (
            "a grid point of a million",
            lambda t: ["--set", "grid.n_z=[2, 1000000]"],
            ["'n_z' parameter of GridConfig"],
        ),
        (
            "a hidden layer of 10^8",
            lambda t: ["--set", "model.hidden=[100000000]"],
            ["'hidden' parameter of ModelConfig"],
        ),
        (
            "a user model whose heads differ",
            lambda t: ["--set", "model.factory=user_models:broken_heads"],
            ["the heads differ in size (to_mu has 64 outputs, to_logvar 65)"],
        ),
        (
            "a model factory that does not import",
            lambda t: ["--set", "model.factory=my_pkg.models:build_vae"],
            ["model.factory 'my_pkg.models:build_vae' cannot be imported", "PYTHONPATH"],
        ),
        (
            "widths in bounds whose product is not",
            lambda t: ["--set", "model.hidden=[65536, 65536, 65536]"],
            ["the model needs about", "GiB free", "65536x65536", "Fix: smaller model.hidden"],
        ),
        (
            "a factory that raises",
            lambda t: ["--set", "model.factory=user_models:raises_value_error"],
            [
                "model.factory 'user_models:raises_value_error' raised ValueError",
                "user_models.py:",
                "--debug",
            ],
        ),
        (
            "a factory module with a SyntaxError",
            lambda t: ["--set", user_module(t, "hostile_syntax", "def build(:\n")],
            ["importing hostile_syntax raised SyntaxError", "hostile_syntax.py:1", "--debug"],
        ),
        (
            "a factory module that fails at import",
            lambda t: ["--set", user_module(t, "hostile_boom", "import os\nos.environ['X_']\n")],
            ["importing hostile_boom raised KeyError: 'X_'", "hostile_boom.py:2"],
        ),
        (
            "a decode of the wrong shape",
            lambda t: ["--set", "model.factory=user_models:wrong_decode_shape"],
            ["decode returned a tensor of shape (2, 64)", "need shape (2, 1, 8, 8)"],
        ),
        (
            "Bernoulli on standardised vectors",
            lambda t: ["--set", "data.name=breast_cancer", "--set", "model.likelihood=bernoulli"],
            ["Bernoulli, which needs values in [0, 1]", "Fix: model.likelihood=gaussian"],
        ),
    ]


@pytest.mark.parametrize(
    "case, argv, needles", before_ray_cases(), ids=[c[0] for c in before_ray_cases()]
)
def test_impossible_runs_fail_before_ray_and_before_any_mlflow_run(
    case, argv, needles, tmp_path, capsys, no_ray
):
    refused(capsys, ["ald", *TINY, "--run-dir", str(tmp_path), *argv(tmp_path)], *needles)
    assert not (tmp_path / "mlflow.db").exists()  # the parent run comes last


@pytest.mark.parametrize(
    "flag, value, needle",
    [
        (
            "--cpus-per-trial",
            "64",
            "tune.cpus_per_trial=64, but no node of the Ray cluster has more",
        ),
        ("--gpus-per-trial", "1", "tune.gpus_per_trial=1, but no node"),
    ],
)
@pytest.mark.parametrize("address", ["default", "--address local", "RAY_ADDRESS=local"])
def test_resources_no_node_has_are_refused_once_ray_is_up(
    flag, value, needle, address, ray_session, tmp_path, capsys, monkeypatch
):
    """``local`` starts a cluster of the command's own, as no address does: it never grows,
    so Tune would wait forever."""
    from mlflow import MlflowClient

    extra = ["--address", "local"] if address == "--address local" else []
    if address == "RAY_ADDRESS=local":
        monkeypatch.setenv("RAY_ADDRESS", "local")
    argv = ["ald", *TINY, "--run-dir", str(tmp_path), flag, value, *extra]
    refused(capsys, argv, needle, "Fix:")
    runs = (
        MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").search_experiments()
        if (tmp_path / "mlflow.db").exists()
        else []
    )
    assert all(e.name == "Default" for e in runs)  # no parent run was made


# -- 5. silent acceptance -----------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("done") / "run"
    assert main(["train", *TINY, "--set", f"eval.cache_dir={cache_dir}", "--out", str(out)]) == 0
    return out


def image_folder(tmp, link, parent_link=False, sibling_link=False):
    from PIL import Image

    root = tmp / "imgs"
    (root / "a").mkdir(parents=True)
    for i in range(30):
        Image.fromarray(np.full((8, 8), i, np.uint8)).save(root / "a" / f"{i}.png")
    if link:
        os.symlink(root / "a" / "0.png", root / "a" / "zz.png")
    if parent_link:
        os.symlink(".", root / "zz_all")  # imgs/zz_all -> imgs: every image twice
    if sibling_link:
        os.symlink("a", root / "b")
    return root


SILENT = [
    (
        "--resume with --space",
        lambda t, r: ["train", "--resume", str(r), "--space", SPACE],
        ["--resume continues a run as it was configured", "--space", "Fix: drop --space"],
    ),
    (
        "--resume with --set",
        lambda t, r: ["train", "--resume", str(r), "--set", "train.epochs=9"],
        ["--set would be ignored"],
    ),
    (
        "--resume with --fixed-nz",
        lambda t, r: ["train", "--resume", str(r), "--fixed-nz", "3"],
        ["--fixed-nz"],
    ),
    (
        "an existing --out",
        lambda t, r: ["train", *TINY, "--out", str(r)],
        ["already holds a run", "--overwrite"],
    ),
    (
        "a missing space path",
        lambda t, r: ["train", "--space", str(t / "conf" / "digits.yaml")],
        ["does not exist"],
    ),
    (
        "a linked image",
        lambda t, r: [
            "train",
            *TINY,
            "--set",
            "data.name=folder",
            "--set",
            f"data.path={image_folder(t, True)}",
        ],
        ["are the same file (a link)", "Fix: remove the link"],
    ),
    (
        "true labels of one class",
        lambda t, r: [
            "train",
            *TINY,
            "--set",
            "data.name=npz",
            "--set",
            f"data.path={one_class(t)}",
            "--set",
            "eval.silhouette_labels=true",
            "--set",
            "eval.n_silhouette=10",
            "--set",
            "eval.n_fid=5",
        ],
        ["hold 1 class", "Fix: eval.silhouette_labels=kmeans"],
    ),
    (
        "silhouette samples <= clusters",
        lambda t, r: ["train", *TINY, "--set", "eval.n_silhouette=6"],
        ["eval.n_silhouette=6"],
    ),
    (
        "--checkpoint-every -1",
        lambda t, r: ["train", *TINY, "--checkpoint-every", "-1"],
        ["--checkpoint-every must be an int >= 0", "Got -1"],
    ),
    (
        "data.path with a bundled data set",
        lambda t, r: ["train", *TINY, "--set", f"data.path={t}"],
        ["'path' parameter of DataConfig must be unset when name='digits'", "Fix: drop data.path"],
    ),
    (
        "a class folder linked to its parent",
        lambda t, r: [
            "train",
            *TINY,
            "--set",
            "data.name=folder",
            "--set",
            f"data.path={image_folder(t, False, parent_link=True)}",
        ],
        ["class folder zz_all links to", "read twice", "Fix: remove the link"],
    ),
    (
        "a class folder linked to another class",
        lambda t, r: [
            "train",
            *TINY,
            "--set",
            "data.name=folder",
            "--set",
            f"data.path={image_folder(t, False, sibling_link=True)}",
        ],
        ["are the same file (a link), in classes a and b", "Fix: remove the link"],
    ),
    (
        "Bernoulli on standardised vectors",
        lambda t, r: [
            "train",
            *TINY,
            "--set",
            "data.name=breast_cancer",
            "--set",
            "model.likelihood=bernoulli",
        ],
        ["model.likelihood='bernoulli' is Bernoulli", "spans [-", "Fix: model.likelihood=gaussian"],
    ),
]


def one_class(tmp) -> str:
    path = tmp / "one.npz"
    np.savez(
        path,
        x=np.random.default_rng(0).random((60, 1, 8, 8)).astype(np.float32),
        y=np.zeros(60, np.int64),
    )
    return str(path)


@pytest.mark.parametrize("case, argv, needles", SILENT, ids=[c[0] for c in SILENT])
def test_nothing_is_accepted_silently(case, argv, needles, finished_run, tmp_path, capsys):
    before = snapshot(finished_run)
    refused(capsys, argv(tmp_path, finished_run), *needles)
    assert snapshot(finished_run) == before


def test_a_resumed_run_advances_its_own_checkpoint(finished_run, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(finished_run, run)
    assert main(["train", "--resume", str(run)]) == 0  # no --out: back into the same folder
    assert not any(p.name.startswith("train-") for p in tmp_path.iterdir())


# -- 6. ordinary bad files: the project's errors, not tracebacks ----------------------------


def corrupt_npz(tmp) -> str:
    path = tmp / "bad.npz"
    np.savez(path, x=np.zeros((50, 1, 8, 8), np.float32))
    raw = bytearray(path.read_bytes())
    raw[200:260] = b"\xff" * 60  # inside the member's data: its CRC fails
    path.write_bytes(bytes(raw))
    return str(path)


def corrupt_image_folder(tmp) -> str:
    root = image_folder(tmp, False)
    (root / "a" / "15.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    return str(root)


BAD_FILES = [
    (
        "npz with a corrupt member",
        lambda t: ["--set", "data.name=npz", "--set", f"data.path={corrupt_npz(t)}"],
        ["bad.npz"],
    ),
    (
        "a corrupt image",
        lambda t: ["--set", "data.name=folder", "--set", f"data.path={corrupt_image_folder(t)}"],
        ["cannot read image", "15.png", "Fix:"],
    ),
    ("--out is a file", lambda t: ["--out", write(t, "x", "out")], ["is a file, not a folder"]),
    ("unwritable cache", lambda t: ["--set", "eval.cache_dir=/proc/nope"], ["/proc/nope"]),
]


@pytest.mark.parametrize("case, argv, needles", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_files_get_a_line_not_a_traceback(case, argv, needles, tmp_path, capsys):
    refused(capsys, ["train", *TINY, *argv(tmp_path)], *needles)


def test_report_on_a_missing_experiment(tmp_path, capsys):
    from mlflow import MlflowClient

    MlflowClient(f"sqlite:///{tmp_path}/m.db").search_experiments()  # a store, but empty
    refused(
        capsys,
        ["report", "--experiment", "nope", "--tracking-uri", f"sqlite:///{tmp_path}/m.db"],
        "experiment 'nope' not found",
        "Fix:",
    )


BAD_STORES = [
    (
        "a store that is not SQLite",
        lambda t: ["ald", *TINY, "--tracking-uri", "sqlite:///" + write(t, "a,b\n1,2\n", "m.db")],
        ["m.db", "is not a SQLite database", "Fix:"],
    ),
    (
        "a store that is a folder",
        lambda t: ["ald", *TINY, "--tracking-uri", f"sqlite:///{t}"],
        ["names a folder, not a SQLite file", "Fix:"],
    ),
    (
        "recommend where no store is",
        lambda t: ["recommend", "--experiment", "e", "--run-dir", str(t / "never" / "made")],
        ["there is no MLflow store at", "never/made/mlflow.db", "Fix:"],
    ),
    (
        "report where no store is",
        lambda t: ["report", "--experiment", "e", "--run-dir", str(t / "never" / "made")],
        ["there is no MLflow store at", "Fix:"],
    ),
    (
        "ui on a store that is not SQLite",
        lambda t: ["ui", "--tracking-uri", "sqlite:///" + write(t, "a,b\n1,2\n", "m.db")],
        ["m.db", "is not a SQLite database", "Fix:"],
    ),
    (
        "ui on a port past 65535",
        lambda t: ["ui", "--run-dir", str(t / "never" / "made"), "--port", "99999"],
        ["--port must be an int in [1, 65535]. Got 99999"],
    ),
]


@pytest.mark.parametrize("case, argv, needles", BAD_STORES, ids=[c[0] for c in BAD_STORES])
def test_bad_stores_get_a_line_before_ray_and_nothing_is_made(
    case, argv, needles, tmp_path, capsys, no_ray, monkeypatch
):
    from types import SimpleNamespace

    from ald_tune.cli import ui

    def no_server(*args, **kwargs):
        raise AssertionError("the MLflow server was started before the bad input was refused")

    monkeypatch.setattr(ui, "subprocess", SimpleNamespace(Popen=no_server))
    refused(capsys, argv(tmp_path), *needles)
    assert not (tmp_path / "never").exists()  # a command that reads makes no store


# -- 7. tampered checkpoints and models ------------------------------------------------------


def tampered(finished_run, tmp, change) -> str:
    """An edit made on purpose: the content changed and its SHA-256 written again (so the
    checks behind the digest are the ones that must catch it)."""
    ckpt = torch.load(finished_run / "checkpoint.pt", weights_only=True)
    change(ckpt)
    return save_checkpoint(ckpt, tmp / "checkpoint.pt")


def nan_weight(ckpt) -> None:
    nan_weight_of_state(ckpt["model"])


TAMPERED = [
    ("n_z of a billion", lambda c: c.update(n_z=10**9), "stored n_z 1000000000"),
    (
        "an image shape in bounds that the weights do not fit",
        lambda c: c.update(image_shape=[3, 4096, 4096]),
        "do not match its config",
    ),
    ("NaN weights", nan_weight, "is damaged: its weight"),
    (
        "a model factory the file names",
        lambda c: c["config"]["model"].update(factory="this:x"),
        "names model.factory 'this:x'",
    ),
    ("n_z that the weights do not hold", lambda c: c.update(n_z=3), "do not hold n_z=3"),
    (
        "a huge image shape",
        lambda c: c.update(image_shape=[3, 100000, 100000]),
        "stored sample shape",
    ),
    (
        "config that does not match the weights",
        lambda c: c["config"]["model"].update(hidden=[8]),
        "do not match its config",
    ),
    (
        "a config out of range",
        lambda c: c["config"]["train"].update(epochs=0),
        "'epochs' parameter of TrainConfig",
    ),
    ("not a checkpoint", lambda c: c.pop("model"), "is not an ald-tune checkpoint"),
]


@pytest.mark.parametrize("case, change, needle", TAMPERED, ids=[c[0] for c in TAMPERED])
def test_tampered_checkpoints_are_refused_before_allocating(
    case, change, needle, finished_run, tmp_path, capsys
):
    path = tampered(finished_run, tmp_path, change)
    err = refused(capsys, ["train", "--resume", path, "--out", str(tmp_path / "o")], needle)
    assert "weights_only=False" not in err


def test_a_byte_flipped_inside_a_checkpoint_is_refused_as_damaged(finished_run, tmp_path, capsys):
    import shutil
    import zipfile

    path = tmp_path / "run" / "checkpoint.pt"
    shutil.copytree(finished_run, path.parent)
    with zipfile.ZipFile(path) as zf:  # the largest stored tensor: the flip lands in a weight
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    head = info.header_offset
    skip = 30 + int.from_bytes(raw[head + 26 : head + 28], "little")
    skip += int.from_bytes(raw[head + 28 : head + 30], "little")
    raw[head + skip + info.file_size // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    torch.load(path, weights_only=True)  # torch itself loads it without a word
    before = snapshot(path.parent)
    refused(capsys, ["train", "--resume", str(path.parent)], "is damaged", "SHA-256", "Fix:")
    assert snapshot(path.parent) == before


def model_file_with(finished_run, tmp, weights=None, **meta_changes) -> str:
    """The run's model file with its weights or metadata changed (the weights' SHA-256
    recomputed: an edit made on purpose)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from ald_tune.engine.checkpoint import DIGEST_KEY, content_digest

    src = str(finished_run / "model.safetensors")
    with safe_open(src, framework="pt") as fh:
        meta = dict(fh.metadata())
    state = load_file(src)
    if weights is not None:
        weights(state)
    meta.update(meta_changes)
    meta[DIGEST_KEY] = content_digest(dict(sorted(state.items())))
    path = str(tmp / "model.safetensors")
    save_file(state, path, metadata=meta)
    return path


MODEL_FILE_CASES = [
    "nan weights",
    "a flipped byte",
    "an image shape in bounds",
    "a factory it names",
]


@pytest.mark.parametrize("case", MODEL_FILE_CASES)
def test_a_damaged_or_edited_model_file_is_refused(case, finished_run, tmp_path):
    import json

    if case == "nan weights":
        path = model_file_with(finished_run, tmp_path, weights=nan_weight_of_state)
        needle = "is damaged: its weight"
    elif case == "a flipped byte":
        path = model_file_with(finished_run, tmp_path)
        raw = bytearray(open(path, "rb").read())
        raw[-3] ^= 0x01  # the last tensor's bytes
        open(path, "wb").write(bytes(raw))
        needle = "is damaged: its weights do not match the SHA-256"
    elif case == "an image shape in bounds":
        path = model_file_with(finished_run, tmp_path, image_shape=json.dumps([3, 4096, 4096]))
        needle = "do not match its config"
    else:
        from safetensors import safe_open

        with safe_open(str(finished_run / "model.safetensors"), framework="pt") as fh:
            cfg = json.loads(fh.metadata()["config"])
        cfg["model"]["factory"] = "this:x"
        path = model_file_with(finished_run, tmp_path, config=json.dumps(cfg))
        needle = "names model.factory 'this:x'"
    t0 = time.perf_counter()
    with pytest.raises(DataError) as e:
        load_model(path)
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert time.perf_counter() - t0 < 5.0


def nan_weight_of_state(state) -> None:
    weight = next(v for k, v in state.items() if k.endswith("weight"))
    weight.view(-1)[0] = float("nan")


def test_a_file_that_is_not_a_checkpoint_does_not_repeat_torchs_advice(tmp_path):
    import pickle

    path = tmp_path / "checkpoint.pt"
    with open(path, "wb") as fh:
        pickle.dump({"x": object()}, fh)
    with pytest.raises(DataError) as e:
        load_checkpoint(path)
    assert "weights_only" not in str(e.value) and "runs no code" in str(e.value)


@pytest.mark.parametrize(
    "damage, error",
    [
        (lambda p: p.write_bytes(b"garbage"), DataError),
        (lambda p: p.unlink(), DataError),
    ],
)
def test_load_model_raises_the_projects_errors(damage, error, finished_run, tmp_path):
    import shutil

    path = tmp_path / "model.safetensors"
    shutil.copy(finished_run / "model.safetensors", path)
    assert load_model(str(path)).n_z >= 1
    damage(path)
    with pytest.raises(error):
        load_model(str(path))
    with pytest.raises(ConfigError):  # an error type of the project, not a bare one
        from safetensors.torch import load_file, save_file

        shutil.copy(finished_run / "model.safetensors", path)
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = dict(fh.metadata())
        meta["config"] = meta["config"].replace('"epochs": 4', '"epochs": -1')
        save_file(load_file(str(path)), str(path), metadata=meta)
        load_model(str(path))


# -- 8. exposure ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri, hidden",
    [
        ("postgresql://ana:p@ss@db:5432/x", "p@ss"),
        ("mysql://u:a@b@c@h/x", "a@b@c"),
        ("http://ana:s3cret@127.0.0.1:5000", "s3cret"),
        ("https://tok@en@h/x", "tok@en"),
    ],
)
def test_a_password_with_a_raw_at_sign_is_masked_whole(uri, hidden):
    text = redact_uri(f"cannot reach {uri} (refused)")
    assert hidden not in text and "***@" in text


@pytest.mark.integration
def test_a_local_sweeps_ray_keeps_token_authentication_on(tmp_path):
    """Ray 2.60 cannot bind its servers to loopback; its token authentication guards them."""
    import subprocess
    import sys

    code = (
        "import os; from ald_tune.sweeps.tuner import init_ray; import ray; init_ray(None); "
        "print('auth', os.environ.get('RAY_AUTH_MODE', 'token')); ray.shutdown()"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "auth token" in out.stdout and "Token authentication is enabled" in out.stderr


CASES_PER_CLASS = {
    "1 resource exhaustion": len(EXHAUSTION) + 1,
    "2 names": len(NAMES),
    "3 before Ray": len(before_ray_cases()) + 2,
    "4 interruptions": 5,  # test_interruptions.py: Ctrl-C x2, SIGTERM x2; the ui test
    "5 silent acceptance": len(SILENT) + 1,
    "6 bad files": len(BAD_FILES) + len(BAD_STORES) + 3,
    "7 tampered files": len(TAMPERED) + 2 + len(MODEL_FILE_CASES),
    "8 exposure": 5,
}
