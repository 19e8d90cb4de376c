"""Layer 2, data: the dataset registry (images as one (N, C, H, W) tensor in [0, 1] plus
optional labels), one reader per source, checks with clear errors, the seeded split, and
the intrinsic dimension of a split (:mod:`ald_tune.data.intrinsic`, a baseline).

May import: :mod:`ald_tune.config`. Nothing is downloaded at import; torch,
torchvision, scikit-learn, scikit-dimension, zarr and PIL load inside the functions that
need them.
"""

from ald_tune.data.datasets import (
    DATASETS,
    DEFAULT_ROOT,
    SPLITS,
    ImageData,
    check_enough_samples,
    load_dataset,
    read_idx,
    train_val_split,
    validate_images,
)

__all__ = [
    "DATASETS",
    "DEFAULT_ROOT",
    "SPLITS",
    "ImageData",
    "check_enough_samples",
    "load_dataset",
    "read_idx",
    "train_val_split",
    "validate_images",
]
