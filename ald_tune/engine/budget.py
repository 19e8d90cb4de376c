"""Sizes bounded by what the machine can hold, checked before anything is allocated.

Every config field has its own bound (:mod:`ald_tune.config.sections`), but their product
does not: ``model.hidden=[65536, 65536]`` is two legal widths and one 17 GB matrix. Here
the model is built on torch's ``meta`` device (shapes, no memory), and its weights,
gradients, optimizer state and one batch's activations are weighed against the memory
the device has free, before the real model is built. A stored model or checkpoint is
compared with what its config builds, weight by weight, the same way.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ald_tune.config.constraints import MAX_NZ
from ald_tune.engine.model import VAE, build_model
from ald_tune.engine.user_code import Factory
from ald_tune.errors import ConfigError, DataError, shown

#: A batch's activations are kept for the backward pass, and their gradients need as much.
ACTIVATION_FACTOR = 2


def meta_model(
    model_cfg, sample_shape: Sequence[int], n_z: int, factory: Factory | None = None
) -> VAE | None:
    """The model built on the ``meta`` device: every shape, no memory.

    Returns:
        The meta model, or None when the user's factory cannot build on the meta device
        (the real build then reports whatever the factory raises).

    Raises:
        ConfigError: a built-in net that cannot be built for these shapes.
    """
    try:
        with torch.device("meta"):
            return build_model(model_cfg, tuple(sample_shape), n_z, factory=factory)
    except Exception:
        if model_cfg.factory:  # the user's code may not run on meta (e.g. .item(), .to("cpu"))
            return None
        raise


def activation_bytes(model: VAE, batch_size: int) -> int:
    """Bytes of one training batch's activations, with their gradients, for the built-in
    nets (which count their own layers' outputs); 0 for a user's net (not known before
    it runs: its weights and optimizer state still count). Counted, not measured: a
    forward pass on the meta device costs seconds of imports on the first call."""
    per_sample = getattr(model.nets, "activations_per_sample", None)
    if per_sample is None:
        return 0
    return ACTIVATION_FACTOR * batch_size * int(per_sample()) * 4  # float32


def available_bytes(device: torch.device) -> int | None:
    """Free memory of ``device``: the GPU's free memory, or the machine's available RAM
    (``MemAvailable``, which counts reclaimable cache); None where it cannot be read."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    try:  # Linux; read by hand (psutil is not a dependency) for the one number needed
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**28 else f"{n / 2**20:.0f} MiB"


def largest_weight(model: torch.nn.Module) -> str:
    """The largest parameter, as ``name RxC`` (what a message points the user at)."""
    name, p = max(model.named_parameters(), key=lambda kv: kv[1].numel())
    return f"{name} {'x'.join(map(str, p.shape))}"


def check_fits(
    cfg,
    sample_shape: Sequence[int],
    n_z: int,
    device: torch.device,
    *,
    factory: Factory | None = None,
    available: int | None = None,
    room: str = "free",
) -> VAE | None:
    """Refuse a model whose training cannot fit in ``device``'s free memory, before it is
    built: weights, their gradients and the optimizer's moments (Adam: two, amsgrad
    three), plus one batch's activations.

    Args:
        cfg: the run's :class:`~ald_tune.config.schema.Config`.
        sample_shape: one sample's shape.
        n_z: the widest latent size the run builds.
        device: where it trains.
        factory: as for :func:`~ald_tune.engine.model.build_model`.
        available: free bytes (default: measured, :func:`available_bytes`).
        room: what ``available`` is, as the message says it (``"free"``, ``"in all"``).

    Returns:
        The meta model (None when the user's factory cannot build on meta).

    Raises:
        ConfigError: the estimate, what it is made of, the memory free and the fix.
    """
    meta = meta_model(cfg.model, sample_shape, n_z, factory)
    if meta is None:
        return None
    have = available_bytes(device) if available is None else available
    if have is None:
        return meta
    n_params = sum(p.numel() for p in meta.parameters())
    copies = 1 + 1 + (3 if cfg.train.amsgrad else 2)  # weights, grads, moments
    weights = copies * sum(p.numel() * p.element_size() for p in meta.parameters())
    need = weights + activation_bytes(meta, cfg.train.batch_size)
    if need > have:
        raise ConfigError(
            f"the model needs about {gib(need)} to train ({n_params:,} parameters at n_z={n_z} "
            f"for samples of shape {tuple(sample_shape)}, with gradients and optimizer state: "
            f"{gib(weights)}; one batch of {cfg.train.batch_size}: {gib(need - weights)}; "
            f"largest weight {largest_weight(meta)}), but {device.type} has {gib(have)} {room}. "
            "Fix: smaller model.hidden (or model.conv_channels / conv_hidden), a smaller "
            "train.batch_size, or smaller images."
        )
    return meta


def stored_shapes(weights: Mapping[str, Any]) -> dict[str, tuple[int, ...] | None]:
    """Each stored tensor's shape (None for a value that is not a tensor)."""
    return {str(k): tuple(v.shape) if torch.is_tensor(v) else None for k, v in weights.items()}


def check_weights(
    model: torch.nn.Module, shapes: Mapping[str, tuple[int, ...] | None], source: str
) -> None:
    """Every stored weight is one the config builds, with the shape it builds (checked on
    the meta model, before anything is allocated).

    Raises:
        DataError: naming the file and the first weight that differs.
    """
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in want if k not in shapes]
    extra = [k for k in shapes if k not in want]
    wrong = [k for k in want if k in shapes and shapes[k] != want[k]]
    if wrong:
        k = wrong[0]
        detail = f"{k} is {shown(shapes[k])}, the config builds {want[k]}"
    elif missing:
        detail = f"{shown(missing[0])} is missing"
    elif extra:
        detail = f"{shown(extra[0])} is not in the model the config builds"
    else:
        return
    n = len(wrong) + len(missing) + len(extra)
    raise DataError(
        f"{source}: its weights do not match its config ({detail}"
        f"{f'; {n - 1} more' if n > 1 else ''}); the file is damaged or was edited. "
        "Fix: use the file the run wrote, unedited."
    )


def check_fits_on_driver(cfg, sample_shape: Sequence[int], n_z: int) -> VAE | None:
    """:func:`check_fits` on the machine that starts a sweep, before Ray: against its
    available RAM, or a GPU's total memory. Not the GPU's free memory: reading it opens a
    CUDA context in the driver (about 0.5 GiB held for the whole sweep, and on a GPU in
    exclusive-process mode one the trials could then not open). Each trial checks its own
    device's free memory again when it starts.

    Raises:
        ConfigError: as :func:`check_fits`.
    """
    device = local_device(cfg.train.device)
    if device.type != "cuda":
        return check_fits(cfg, sample_shape, n_z, device)
    total = int(torch.cuda.get_device_properties(device).total_memory)  # no context
    return check_fits(cfg, sample_shape, n_z, device, available=total, room="in all")


def local_device(name: str) -> torch.device:
    """The device a run configured with ``train.device=name`` would use on this machine
    (the CPU where CUDA is asked for but absent: a cluster's workers may have it)."""
    if name in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu" if name in ("auto", "cuda") else name)


def check_fixed_n_z(fixed_n_z: int | None) -> None:
    """``fixed_n_z`` is bounded like ``ald.n_z_init``.

    Raises:
        ConfigError: naming the value and the range.
    """
    if fixed_n_z is None:
        return
    if isinstance(fixed_n_z, bool) or not isinstance(fixed_n_z, numbers.Integral):
        raise ConfigError(f"fixed n_z must be an int in [1, {MAX_NZ}]. Got {shown(fixed_n_z)}.")
    if not 1 <= fixed_n_z <= MAX_NZ:
        raise ConfigError(
            f"fixed n_z must be an int in [1, {MAX_NZ}] (as ald.n_z_init). Got {fixed_n_z} instead."
        )
