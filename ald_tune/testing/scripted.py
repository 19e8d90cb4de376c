"""A scripted stand-in for :class:`ald_tune.engine.trainer.Trainer`, for fast tests.

:class:`ScriptedTrainer` trains nothing: each epoch it emits an n_z-dependent
metric curve (recon loss and FIDs fall as n_z grows towards ``BEST_N_Z``, then
flatten) and runs the real controller on it, so Ray Tune, MLflow and the
report see exactly the traffic of a real run, in milliseconds. It is in the
package (not in ``tests/``) because Ray workers must be able to import it.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ald_tune.config.schema import Config
from ald_tune.engine.nested_dropout import prefix_sizes
from ald_tune.engine.rules import make_controller
from ald_tune.engine.rules.base import Controller, Decision, History, Probe, select_units
from ald_tune.engine.trainer import EpochIterator, EpochResult

BEST_N_Z = 8


def scripted_metrics(n_z: int, epoch: int, seed: int) -> dict[str, float]:
    """A deterministic curve: better up to BEST_N_Z, then a flat, slightly noisy plateau."""
    gap = max(0, BEST_N_Z - n_z)
    # the same for every n_z at an epoch: a twin and its trial differ by the gap alone
    wobble = 0.01 * math.sin(7 * epoch + 3 * seed)
    recon = 25.0 + 2.0 * gap + 5.0 / (1 + epoch) + wobble
    kl = 6.0 + 0.5 * min(n_z, BEST_N_Z)
    return {
        "recon_loss": recon,
        "kl": kl,
        "neg_elbo": recon + kl,
        "fid_gen": 10.0 + 3 * gap + wobble,
        "fid_recon": 5.0 + 2 * gap + wobble,
        "silhouette": 0.2 + 0.004 * epoch - 0.001 * n_z,
        "accuracy": 0.5,
        "active_units": float(min(n_z, BEST_N_Z)),
    }


def scripted_unit_kl(n_z: int) -> list[float]:
    """Each unit's KL: BEST_N_Z - 1 informative units (a model trained from scratch
    needs one spare), the rest collapsed."""
    return [1.0 + i if i < BEST_N_Z - 1 else 0.001 for i in range(n_z)]


def scripted_curve(cfg: Config, n_z: int, epoch: int) -> dict[str, dict[str, float]]:
    """A nested run's prefix curve (as the engine's last record holds it): the scripted
    metrics at each grid n_z prefix, a little worse than a model trained at that size
    (its units share one decoder)."""
    curve = {}
    for k in prefix_sizes(cfg.grid.n_z, n_z):
        m = scripted_metrics(k, epoch, cfg.train.seed)
        m.update(recon_loss=m["recon_loss"] + 0.5, fid_gen=m["fid_gen"] + 1.0)
        in_use = sum(v >= cfg.ald.kl_threshold for v in scripted_unit_kl(k))
        curve[str(k)] = {**m, "units_in_use": float(in_use), "eval_time_s": 0.001}
    return curve


class _Model:
    def __init__(self, n_z: int) -> None:
        self.n_z = n_z


class ScriptedTrainer(EpochIterator):
    """Same interface as :class:`ald_tune.engine.trainer.Trainer`; no data, no torch training."""

    def __init__(
        self, cfg: Config, *, fixed_n_z: int | None = None, splits=None, controller=None
    ) -> None:
        self.cfg, self.fixed_n_z = cfg, fixed_n_z
        self.model = _Model(fixed_n_z if fixed_n_z is not None else cfg.ald.n_z_init)
        self.controller = controller or make_controller(cfg.ald, fixed_n_z, cfg.train.epochs)
        self.history: list[dict[str, Any]] = []
        self.decisions: list[dict[str, Any]] = []
        self.timing = {"train_s": 0.0, "eval_s": 0.0, "wall_s": 0.0}
        self.tracking_run_id: str | None = None
        self.done = False
        self.device = "cpu"
        self.twin_n_z: int | None = None  # the twin's size during a paired trial

    @classmethod
    def check(cls, cfg: Config) -> None:
        """No data: nothing to check before a sweep."""

    def run_epoch(self) -> EpochResult:
        t0 = time.perf_counter()
        # Tests that must interrupt a sweep mid-way slow the epochs down through the job's env.
        time.sleep(float(os.environ.get("ALD_TUNE_SCRIPTED_EPOCH_S", "0")))
        epoch, n_z = self.epoch, self.model.n_z
        record: dict[str, Any] = {
            "epoch": epoch,
            "n_z": n_z,
            "train_loss": 0.0,
            **scripted_metrics(n_z, epoch, self.cfg.train.seed),
            "train_time_s": 0.001,
            "eval_time_s": 0.0,
            "cpu_time_s": 0.001,
            "gpu_time_s": 0.0,
        }
        unit_kl = scripted_unit_kl(n_z)
        record["units_in_use"] = sum(v >= self.cfg.ald.kl_threshold for v in unit_kl)
        twin_kl = None
        if self.twin_n_z is not None:  # a paired trial: the twin's curve at its size
            twin = scripted_metrics(self.twin_n_z, epoch, self.cfg.train.seed)
            record.update({f"twin.{k}": v for k, v in twin.items()})
            twin_kl = scripted_unit_kl(self.twin_n_z)
        decision = self.decide(
            record, unit_kl, lambda units: [0.0 if n_z > BEST_N_Z else 0.05 for _ in units], twin_kl
        )
        if decision.verdict == "undo" and self.twin_n_z is not None:
            self.model.n_z = self.twin_n_z
        if decision.verdict is not None:
            self.twin_n_z = None
        if decision.twin:
            self.twin_n_z = self.model.n_z
        self.model.n_z += decision.grow
        self.model.n_z -= decision.n_remove
        if self.cfg.train.nested_dropout and self.done:
            record["prefixes"] = scripted_curve(self.cfg, n_z, epoch)
        dt = time.perf_counter() - t0 + 0.001
        self.timing = {k: self.timing[k] + (dt if k != "eval_s" else 0.0) for k in self.timing}
        return EpochResult(epoch, record, decision, self.model.n_z, self.done, self.fid_extractor)

    def checkpoint(self) -> dict[str, Any]:
        return {
            **self.book_state(),
            "image_shape": [1, 4, 4],
            "model": {},
            "optimizer": {},
            "rng": {},
            "twin": None if self.twin_n_z is None else {"n_z": self.twin_n_z},
        }

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], **_: Any) -> ScriptedTrainer:
        self = cls(Config.from_dict(ckpt["config"]), fixed_n_z=ckpt["fixed_n_z"])
        self.model.n_z = int(ckpt["n_z"])
        self.controller.load_state_dict(ckpt["controller"])
        self.load_book(ckpt)
        self.twin_n_z = (ckpt.get("twin") or {}).get("n_z")
        return self

    @property
    def fid_extractor(self) -> str:
        return "scripted"

    def images(self, n: int = 4) -> dict[str, Any]:
        import torch

        shade = int(255 * self.model.n_z / max(1, self.cfg.ald.n_z_init))
        img = torch.full((8, 8, 1), shade, dtype=torch.uint8)
        return {"samples": img, "reconstructions": img}

    def save_outputs(self, out_dir: str) -> dict[str, str]:
        os.makedirs(out_dir, exist_ok=True)
        paths = {
            "history": os.path.join(out_dir, "history.json"),
            "model": os.path.join(out_dir, "model.safetensors"),
        }
        with open(paths["history"], "w", encoding="utf-8") as fh:
            json.dump(self.summary(), fh)
        import torch
        from safetensors.torch import save_file

        save_file(
            {"n_z": torch.tensor([self.model.n_z])},
            paths["model"],
            metadata={"n_z": str(self.model.n_z), "scripted": "true"},
        )
        return paths


class ScriptedController(Controller):
    """For tests: removes ``script[epoch]`` units (or stops when it is 'stop')."""

    rule = "scripted"

    def __init__(self, script: Mapping[int, int | str], how: str = "last") -> None:
        self.script = {int(k): v for k, v in script.items()}
        self.how = how

    def decide(
        self,
        history: History,
        n_z: int,
        unit_kl: Sequence[float] | None = None,
        probe: Probe | None = None,
        twin_kl: Sequence[float] | None = None,
    ) -> Decision:
        action = self.script.get(len(history) - 1)
        if action == "stop":
            return Decision(stop=True, reason="scripted stop")
        if action:
            return Decision(
                units=select_units(n_z, min(int(action), n_z - 1), self.how, unit_kl),
                reason=f"scripted removal of {action}",
            )
        return Decision(reason="scripted wait")

    def state_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "script": {str(k): v for k, v in self.script.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.script = {int(k): v for k, v in state["script"].items()}
