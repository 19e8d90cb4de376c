"""Sizes bounded by the machine: the model weighed on the meta device before it is built,
stored weights compared shape by shape before anything is allocated."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from ald_tune.config.schema import Config
from ald_tune.config.sections import ModelConfig
from ald_tune.engine.budget import (
    activation_bytes,
    check_fits,
    check_fits_on_driver,
    check_fixed_n_z,
    check_weights,
    meta_model,
    stored_shapes,
)
from ald_tune.engine.model import build_model
from ald_tune.errors import ConfigError, DataError

GIB = 2**30
CPU = torch.device("cpu")


def test_a_model_past_free_memory_is_refused_before_it_is_built():
    cfg = Config.from_dict({"model": {"hidden": [65536, 65536]}})
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as e:
        check_fits(cfg, (1, 8, 8), 64, CPU, available=64 * GIB)
    took = time.perf_counter() - t0
    text = str(e.value)
    assert "needs about 160.6 GiB" in text and "8,611,168,448 parameters" in text
    assert "65536x65536" in text and "64.0 GiB free" in text and "Fix: smaller model.hidden" in text
    assert took < 5.0, took  # the meta device: nothing allocated


def test_a_sweeps_driver_weighs_a_gpu_run_against_the_gpus_total_without_a_cuda_context(
    monkeypatch,
):
    class Props:
        total_memory = 2 * GIB

    def no_context(*args):
        raise AssertionError("the driver read the GPU's free memory: a CUDA context")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: Props())
    monkeypatch.setattr(torch.cuda, "mem_get_info", no_context)
    huge = Config.from_dict({"model": {"hidden": [65536, 65536]}})
    with pytest.raises(ConfigError, match=r"but cuda has 2.0 GiB in all\. Fix: smaller"):
        check_fits_on_driver(huge, (1, 8, 8), 64)
    assert check_fits_on_driver(Config.from_dict({}), (1, 8, 8), 64) is not None
    import ald_tune.engine.budget as budget

    monkeypatch.setattr(budget, "available_bytes", lambda device: GIB)
    cpu = Config.from_dict({"model": {"hidden": [65536, 65536]}, "train": {"device": "cpu"}})
    with pytest.raises(ConfigError, match=r"but cpu has 1.0 GiB free\."):
        check_fits_on_driver(cpu, (1, 8, 8), 64)  # train.device=cpu: the RAM, not the GPU


def test_the_estimate_counts_optimizer_state_and_the_batch():
    cfg = Config.from_dict({})
    meta = check_fits(cfg, (1, 28, 28), 64, CPU, available=GIB)
    assert meta is not None and all(p.is_meta for p in meta.parameters())
    n = sum(p.numel() for p in meta.parameters())
    assert n == sum(p.numel() for p in build_model(cfg.model, (1, 28, 28), 64).parameters())
    weights_and_state = n * 4 * 5  # weights, grads, Adam's two moments and amsgrad's max
    with pytest.raises(ConfigError):
        check_fits(cfg, (1, 28, 28), 64, CPU, available=weights_and_state)  # no room for a batch
    small = Config.from_dict({"train": {"batch_size": 8}})
    assert activation_bytes(meta, 64) > activation_bytes(meta, 8) > 0
    check_fits(small, (1, 28, 28), 64, CPU, available=GIB)


def test_a_conv_nets_feature_maps_count():
    cfg = Config.from_dict({"model": {"arch": "conv"}})
    meta = meta_model(cfg.model, (3, 64, 64), 16)
    real = build_model(cfg.model, (3, 64, 64), 16)
    kept = []
    for m in real.modules():
        if next(m.children(), None) is None:
            m.register_forward_hook(lambda mod, i, out: kept.append(out.numel()))
    real.loss(torch.rand(4, 3, 64, 64))
    # At least what the layers' outputs hold (the backward pass needs their gradients too).
    assert activation_bytes(meta, 4) >= 4 * sum(kept)


def test_a_users_net_that_reads_values_while_it_builds_is_weighed_by_its_real_build():
    cfg = Config.from_dict({"model": {"factory": "user_models:values_at_build"}})
    assert meta_model(cfg.model, (12,), 3) is None  # .item() cannot run on meta
    assert check_fits(cfg, (12,), 3, CPU, available=1) is None  # the real build reports


def test_stored_weights_are_compared_shape_by_shape():
    cfg = ModelConfig(hidden=(16,))
    meta = meta_model(cfg, (1, 8, 8), 4)
    real = build_model(cfg, (1, 8, 8), 4).state_dict()
    check_weights(meta, stored_shapes(real), "f")
    with pytest.raises(DataError, match=r"nets.body.0.weight is \(16, 3\), the config builds"):
        check_weights(meta, {**stored_shapes(real), "nets.body.0.weight": (16, 3)}, "f")
    with pytest.raises(DataError, match="'nets.mu_head.bias' is missing"):
        check_weights(
            meta, {k: v for k, v in stored_shapes(real).items() if "mu_head.b" not in k}, "f"
        )
    with pytest.raises(DataError, match="'extra' is not in the model"):
        check_weights(meta, {**stored_shapes(real), "extra": (1,)}, "f")
    big = meta_model(cfg, (3, 4096, 4096), 4)  # an image shape in bounds: still no memory
    with pytest.raises(DataError, match="damaged or was edited"):
        check_weights(big, stored_shapes(real), "f")


@pytest.mark.parametrize("value", [0, -1, 4097, 10**9, True, 2.5])
def test_a_fixed_n_z_is_bounded_like_n_z_init(value):
    with pytest.raises(ConfigError, match=r"fixed n_z must be an int in \[1, 4096\]"):
        check_fixed_n_z(value)
    check_fixed_n_z(4096)
    check_fixed_n_z(np.int64(8))  # a grid's n_z read by numpy is an int too
