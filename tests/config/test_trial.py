"""A trial's param-space dict as one typed record: what the sweep writes, every reader reads."""

from __future__ import annotations

import pytest

from ald_tune.config.schema import Config
from ald_tune.config.trial import N_Z_KEY, SEED_KEY, SPACE_KEY, TrialParams, trial_config
from ald_tune.errors import ConfigError
from ald_tune.testing.faults import fail_once


def resolved(cfg: Config, **opts) -> list[dict]:
    """Every trial's config as Ray Tune resolves the sweep's param space."""
    from ray.tune.search.variant_generator import generate_variants

    from ald_tune.sweeps.tuner import SweepOptions, param_space

    return [spec for _, spec in generate_variants(param_space(cfg, SweepOptions(**opts)))]


def test_a_grid_trial_reads_back_its_grid_point_and_seed():
    cfg = Config().replace(grid={"n_z": [2, 4]}, tune={"grid_seeds": 2})
    trials = [TrialParams.from_config(c) for c in resolved(cfg, mode="grid")]
    assert sorted((p.n_z, p.seed) for p in trials) == [(2, 0), (2, 1), (4, 0), (4, 1)]
    p = trials[0]
    assert (p.mode, p.kind, p.lr, p.beta, p.callbacks) == ("grid", "grid", None, None, ())
    assert p.trainer == "ald_tune.engine.trainer:Trainer" and p.report_ahead is True
    assert p.config().to_dict() == cfg.replace(train={"seed": p.seed, "threads": 1}).to_dict()
    assert str(p.sweep_kind(cfg)) == "grid"


def test_an_ald_trial_has_no_fixed_size_and_keeps_its_callbacks():
    cfg = Config().replace(tune={"num_samples": 3})
    hook = fail_once(1, "/tmp/marker")
    configs = resolved(cfg, mode="ald", trial_callbacks=(hook,))
    trials = [TrialParams.from_config(c) for c in configs]
    assert [p.seed for p in trials] == [0, 1, 2] and {p.n_z for p in trials} == {None}
    assert trials[0].callbacks == (hook,)
    assert str(trials[0].sweep_kind(cfg)) == "ald (ald-tune)"
    # the record writes the dict it was read from, key for key and in the same order
    assert list(trials[0].to_dict().items()) == list(configs[0].items())


def test_a_nested_trial_runs_at_the_grids_widest_size():
    cfg = Config().replace(grid={"n_z": [2, 8, 4]}, train={"nested_dropout": True})
    trials = [TrialParams.from_config(c) for c in resolved(cfg, mode="grid", kind="nested")]
    assert {(p.kind, p.n_z) for p in trials} == {("nested", 8)}
    assert str(trials[0].sweep_kind(cfg)) == "nested"


def test_an_optuna_trial_carries_the_sampled_lr_and_beta_into_its_config():
    cfg = Config().replace(tune={"search": "optuna"})
    (config,) = resolved(cfg, mode="ald")
    p = TrialParams.from_config(config)
    assert p.lr == config["lr"] and p.beta == config["beta"] and p.n_z is None
    trial_cfg = trial_config(config, cpus=2.0)
    assert (trial_cfg.train.lr, trial_cfg.train.beta) == (p.lr, p.beta)
    assert (trial_cfg.train.seed, trial_cfg.train.threads) == (cfg.train.seed, 2)


def test_stored_configs_from_older_sweeps_still_read():
    """A ``params.json`` without the keys added later (kind, trainer, report_ahead)."""
    p = TrialParams.from_config({SPACE_KEY: {}, "mode": "grid", N_Z_KEY: 4, SEED_KEY: 3})
    assert (p.kind, p.trainer, p.report_ahead, p.callbacks) == (None, None, None, ())
    assert str(p.sweep_kind(Config())) == "grid" and p.config().train.seed == 3


@pytest.mark.parametrize(
    "config, key",
    [
        ({N_Z_KEY: "8"}, "n_z"),
        ({N_Z_KEY: 0}, "n_z"),
        ({N_Z_KEY: True}, "n_z"),
        ({SEED_KEY: 1.5}, "seed"),
        ({"mode": "random"}, "mode"),
        ({"kind": "huge"}, "kind"),
        ({"lr": "fast"}, "lr"),
        ({"trainer": "ald_tune.engine.trainer.Trainer"}, "trainer"),
        ({"callbacks": [["ald_tune.testing.faults:fail_once_callback"]]}, "callbacks"),
        ({"report_ahead": "yes"}, "report_ahead"),
        ({SPACE_KEY: [1, 2]}, "space"),
    ],
)
def test_a_bad_value_names_its_key_and_value(config, key):
    with pytest.raises(ConfigError, match=rf"^trial config: {key}=.* Fix: ") as err:
        TrialParams.from_config(config)
    assert "\n" not in str(err.value)


def test_a_trial_without_its_space_says_which_key_is_missing():
    with pytest.raises(ConfigError, match="the key 'space' is missing. Fix: "):
        trial_config({SEED_KEY: 0})
