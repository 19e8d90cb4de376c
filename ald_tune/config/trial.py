"""One Ray Tune trial's settings: the param space's dict as a typed record.

Ray Tune hands each trial a plain dict (its ``param_space`` with the searched values
resolved), and Tune stores it as the trial's ``params.json``. That dict is written in
one place (:func:`ald_tune.sweeps.tuner.param_space`, from the key names below) and
read in one place: :meth:`TrialParams.from_config`, which every reader (the trainable,
the MLflow trial logger, backfill, the sweep's result collector, the progress printer,
the fault-injection double) calls instead of reading keys itself.

The dict's keys (stored in Tune folders, checkpoints and MLflow, so never renamed)::

    {"space": Config.to_dict(), "mode": "ald" | "grid",
     "kind": "grid" | "asha" | "fixed" | "ald" | "nested",
     "trainer": "module:Class", "callbacks": [["module:factory", {kwargs}], ...],
     "report_ahead": bool, "n_z": 8 (a fixed size only), "seed": 0,
     "lr"/"beta": (Optuna only)}

Example:
    >>> p = TrialParams.from_config({"space": {}, "mode": "grid", "n_z": 8, "seed": 1})
    >>> p.n_z, p.seed, p.mode
    (8, 1, 'grid')
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ald_tune.config.kinds import KINDS, SweepKind
from ald_tune.config.schema import Config
from ald_tune.errors import ConfigError, shown

#: The param space's keys, in the order the dict is built (Tune names trial folders
#: after the searched ones, ``n_z`` and ``seed``, in this order).
SPACE_KEY = "space"
MODE_KEY = "mode"
KIND_KEY = "kind"
TRAINER_KEY = "trainer"
CALLBACKS_KEY = "callbacks"
REPORT_AHEAD_KEY = "report_ahead"
N_Z_KEY = "n_z"
SEED_KEY = "seed"
LR_KEY = "lr"
BETA_KEY = "beta"

#: The sweep modes a trial's ``mode`` may name.
TRIAL_MODES = ("ald", "grid")


@dataclass(frozen=True)
class TrialParams:
    """A trial's param-space dict, typed (see the module docstring for the keys).

    Attributes:
        space: the sweep's search space (:meth:`Config.to_dict`); None when absent.
        mode: the sweep's mode, ``ald`` or ``grid``.
        kind: the sweep's kind when the driver named it (``fixed``, ``nested``...).
        trainer: the trainer class as ``"module:Class"``; None: the engine's trainer.
        callbacks: ``(path, kwargs)`` trial-callback factories, each called as
            ``factory(TrialInfo, trainer, **kwargs) -> Callback``.
        report_ahead: ``tune.report`` one epoch behind training (off under ASHA); None:
            ``tune.report_ahead``.
        n_z: the grid point's fixed n_z (the key ``n_z``): what the trainer is built
            with (``Trainer(fixed_n_z=...)``) and what the trial's record keeps as
            :attr:`ald_tune.sweeps.results.TrialRecord.n_z_grid`; None for a trial that
            resizes itself (ALD).
        seed: the trial's ``train.seed``; None when absent.
        lr: the learning rate Optuna sampled (None: the space's).
        beta: the KL weight Optuna sampled (None: the space's).
    """

    space: Mapping[str, Any] | None = None
    mode: str = "ald"
    kind: str | None = None
    trainer: str | None = None
    callbacks: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    report_ahead: bool | None = None
    n_z: int | None = None
    seed: int | None = None
    lr: float | None = None
    beta: float | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrialParams:
        """Read and check a trial's param-space dict (unknown keys are ignored).

        Raises:
            ConfigError: a key holds a value of the wrong type, naming the key and value.
        """
        get = config.get
        space = get(SPACE_KEY)
        if space is not None and not isinstance(space, Mapping):
            raise _bad(SPACE_KEY, space, "a mapping (Config.to_dict())")
        return cls(
            space=space,
            mode=_choice(MODE_KEY, get(MODE_KEY, "ald"), TRIAL_MODES),
            kind=_choice(KIND_KEY, get(KIND_KEY), KINDS),
            trainer=_path(TRAINER_KEY, get(TRAINER_KEY)),
            callbacks=_callbacks(get(CALLBACKS_KEY)),
            report_ahead=_bool(REPORT_AHEAD_KEY, get(REPORT_AHEAD_KEY)),
            n_z=_int(N_Z_KEY, get(N_Z_KEY), low=1),
            seed=_int(SEED_KEY, get(SEED_KEY)),
            lr=_float(LR_KEY, get(LR_KEY)),
            beta=_float(BETA_KEY, get(BETA_KEY)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The param-space dict (the keys with a value, in :data:`SPACE_KEY`... order)."""
        out = {
            SPACE_KEY: self.space,
            MODE_KEY: self.mode,
            KIND_KEY: self.kind,
            TRAINER_KEY: self.trainer,
            CALLBACKS_KEY: [[path, dict(kwargs)] for path, kwargs in self.callbacks],
            REPORT_AHEAD_KEY: self.report_ahead,
            N_Z_KEY: self.n_z,
            SEED_KEY: self.seed,
            LR_KEY: self.lr,
            BETA_KEY: self.beta,
        }
        return {k: v for k, v in out.items() if v is not None}

    def sweep_kind(self, cfg: Config) -> SweepKind:
        """The kind of the sweep the trial belongs to, as its driver wrote it."""
        return SweepKind.for_sweep(self.mode, cfg, self.kind)

    def config(self, cpus: float = 1.0) -> Config:
        """The trial's :class:`Config`: the space plus the trial's ``seed``, sampled
        ``lr``/``beta`` and one torch thread per CPU held.

        Raises:
            ConfigError: the dict has no ``space``.
        """
        if self.space is None:
            raise ConfigError(
                f"trial config: the key {SPACE_KEY!r} is missing. Fix: build the trial's "
                "param space with ald_tune.sweeps.tuner.param_space (it holds the space)."
            )
        cfg = Config.from_dict(self.space, source="trial config")
        train: dict[str, Any] = {
            "seed": int(self.seed if self.seed is not None else cfg.train.seed),
            "threads": max(1, int(cpus)),
        }
        for key, value in ((LR_KEY, self.lr), (BETA_KEY, self.beta)):
            if value is not None:
                train[key] = float(value)
        return cfg.replace(train=train)


def trial_config(config: Mapping[str, Any], cpus: float = 1.0) -> Config:
    """A trial's :class:`Config` from its sweep's param space (:meth:`TrialParams.config`)."""
    return TrialParams.from_config(config).config(cpus)


def _bad(key: str, value: Any, want: str) -> ConfigError:
    return ConfigError(
        f"trial config: {key}={shown(value)} is not {want}. Fix: the param space's "
        f"{key!r} must be {want} (as ald_tune.sweeps.tuner.param_space writes it)."
    )


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> Any:
    if value is not None and value not in allowed:
        raise _bad(key, value, f"one of {', '.join(allowed)}")
    return value


def _path(key: str, value: Any) -> str | None:
    if value is not None and not (isinstance(value, str) and ":" in value):
        raise _bad(key, value, "a 'package.module:name' string")
    return value


def _bool(key: str, value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise _bad(key, value, "true or false")
    return value


def _int(key: str, value: Any, low: int | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _bad(key, value, "an integer")
    if low is not None and value < low:
        raise _bad(key, value, f"an integer >= {low}")
    return int(value)


def _float(key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _bad(key, value, "a number")
    return float(value)


def _callbacks(value: Any) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    if value is None:
        return ()
    want = "a list of ['package.module:factory', {kwargs}] pairs"
    if not isinstance(value, (list, tuple)):
        raise _bad(CALLBACKS_KEY, value, want)
    out = []
    for item in value:
        ok = isinstance(item, (list, tuple)) and len(item) == 2
        if not ok or _path(CALLBACKS_KEY, item[0]) is None or not isinstance(item[1], Mapping):
            raise _bad(CALLBACKS_KEY, value, want)
        out.append((item[0], item[1]))
    return tuple(out)
