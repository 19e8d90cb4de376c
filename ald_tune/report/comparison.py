"""A whole comparison: one grid, one ALD sweep per rule, and the baselines run beside them.

``compare`` (:mod:`ald_tune.cli.compare`) builds one from the sweeps it ran; ``ald-tune report``
and the notebook rebuild one from MLflow (:mod:`ald_tune.report.mlflow_rebuild`). Both then
print, write and log it with the same functions here, so the numbers read back later
are the numbers printed at the end of the run:

* :func:`render`: one report per rule (the main rule first), the side-by-side table of
  the rules and the recommended n_z, as Markdown;
* :meth:`Comparison.write`: ``OUT/`` holds the main rule's report and the figures,
  ``OUT/<rule>/`` each rule's, ``OUT/rules.md`` the side-by-side table and
  ``OUT/fig_cost_vs_distance`` every method's n_z against its compute to a trained
  model, the best region and its edge marked;
* :func:`log_comparison`: each ALD parent run gets its own rule's report under
  ``report/`` (and the recommended n_z as a metric and a tag; the plateau edge and how
  many seeds are near it as tags; each seed's and each method's distance to the edge as
  ``report.seed.*``, ``report.nested.seed.*`` and ``report.method.*`` metrics,
  :func:`edge_metrics`); the grid parent gets ``rules.md``, the cost figure and a tag
  linking each ALD parent. No run's files are written by another rule.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from ald_tune.config.tags import (
    ALD_PARENT_TAG,
    BASELINES_TAG,
    EDGE_TAG,
    GRID_PARENT_TAG,
    NEAR_EDGE_TAG,
    RECOMMENDED_TAG,
)
from ald_tune.report.build import build_report, markdown, write_report
from ald_tune.report.figures import plot_cost_vs_distance, svg_path
from ald_tune.report.record import AldSeed, NestedSeed, Report, as_report
from ald_tune.report.tables import side_by_side
from ald_tune.sweeps.results import SweepRecord
from ald_tune.tracking.store import client

RULES_FILE = "rules.md"
RECOMMENDATION_FILE = "recommendation.json"
RECOMMENDED_METRIC = "recommended_n_z"
#: The baselines ``compare`` can run beside ALD (``--baselines``).
BASELINES = ("asha", "units", "id", "nested")
#: Those it runs by default (nested dropout trains one wide run per seed: opt in).
DEFAULT_BASELINES = ("asha", "units", "id")
BASELINE_NAMES = {
    "asha": "grid + ASHA",
    "units": "units in use",
    "id": "intrinsic dimension",
    "nested": "nested dropout",
}
BASELINE_PREFIX = "baseline."  # + estimator + "." + field, metrics on the grid parent
INTRINSIC_FIELDS = ("dimension", "n_z", "cpu_s", "wall_s", "n_samples")
SEED_PREFIX = "report.seed."  # + seed + "." + field, metrics on each ALD parent
METHOD_PREFIX = "report.method."  # + method key + "." + field, metrics on each ALD parent
NESTED_SEED_PREFIX = "report.nested.seed."  # + seed + "." + field: nested dropout's answers
SEED_FIELDS = ("n_z", "in_region", "near_edge", "steps_above_edge", "nz_over_edge")
METHOD_FIELDS = (
    "rank",
    "n_z",
    "in_region",
    "near_edge",
    "steps_above_edge",
    "nz_over_edge",
    "trained_cpu_s",
    "answer_cpu_s",
    "n_seeds",  # ALD and nested dropout: how many of their seeds are in / near
    "n_in_region",
    "n_near_edge",
)


def baselines_from_tag(tag: str | None) -> tuple[str, ...]:
    """The baselines a grid parent's compare showed (all of them when untagged: sweeps
    run apart, or before the tag existed; nested dropout shows only where its sweep is
    found)."""
    if tag is None:
        return BASELINES
    return tuple(b for b in BASELINES if b in tag.split(","))


def intrinsic_from_metrics(metrics: dict[str, float]) -> dict | None:
    """The intrinsic-dimension estimates logged on a grid parent (inverse of the logging
    in :func:`log_comparison`), or None."""
    out: dict[str, dict] = {}
    for key, v in metrics.items():
        if key.startswith(BASELINE_PREFIX) and key.count(".") == 2:
            _, est, k = key.split(".")
            if k in INTRINSIC_FIELDS:
                out.setdefault(est, {})[k] = int(v) if k in ("n_z", "n_samples") else float(v)
    return {e: v for e, v in out.items() if set(v) == set(INTRINSIC_FIELDS)} or None


@dataclass
class Comparison:
    """The sweeps of one comparison and, once built, one report per ALD rule.

    Attributes:
        grid: the grid sweep.
        alds: one ALD sweep per key (the rule, or ``rule (sweep name)`` when two pinned
            sweeps share a rule); the first is the main one.
        asha: the grid + ASHA sweep, when run.
        fixed: the fixed runs at ALD's n_z values, when run.
        nested: the nested-dropout sweep (one wide run per seed), when run.
        dataset: ``data.name``.
        compare: the ``compare`` run that made the sweeps (None for sweeps run apart).
        metric: what ASHA minimised (``tune.metric``).
        reports: key -> the report of that ALD sweep against the grid (:meth:`build`).
        note: how the sweeps were chosen (printed by ``ald-tune report``).
        intrinsic: the intrinsic-dimension estimates of the training split (a baseline;
            logged on the grid parent as ``baseline.<estimator>.<field>`` metrics).
        baselines: the baselines shown (:data:`BASELINES`; tagged on the grid parent).
        out: the folder :meth:`write` last wrote to (None before).
        paths: the files it wrote there, as :meth:`write` returns them.
    """

    grid: SweepRecord
    alds: dict[str, SweepRecord]
    asha: SweepRecord | None = None
    fixed: SweepRecord | None = None
    dataset: str = ""
    compare: str | None = None
    metric: str = "neg_elbo"
    reports: dict[str, Report] = field(default_factory=dict)
    note: str = ""
    intrinsic: dict | None = None
    baselines: tuple[str, ...] = BASELINES
    nested: SweepRecord | None = None
    out: str | None = None
    paths: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def main(self) -> str:
        """The key of the main ALD sweep (the configured rule: its report comes first)."""
        return next(iter(self.alds))

    def build(self, **kwargs: Any) -> Comparison:
        """One report per ALD sweep against the grid (``kwargs`` go to ``build_report``)."""
        wall = {
            "grid": self.grid.wall_s,
            **({"asha": self.asha.wall_s} if self.asha else {}),
            **({"nested": self.nested.wall_s} if self.nested else {}),
        }
        for key, ald in self.alds.items():
            self.reports[key] = build_report(
                self.grid.trials,
                ald.trials,
                asha=self.asha.trials if self.asha else None,
                fixed=self.fixed.trials if self.fixed else None,
                wall={**wall, "ald": ald.wall_s},
                dataset=self.dataset,
                rule=ald.kind.rule,
                metric=self.metric,
                intrinsic=self.intrinsic if "id" in self.baselines else None,
                units_baseline="units" in self.baselines,
                nested=self.nested.trials if self.nested and "nested" in self.baselines else None,
                **kwargs,
            )
        return self

    @property
    def recommendation(self) -> dict[str, Any]:
        """The main rule's recommended n_z (see :func:`ald_tune.report.recommend`), as
        the dict written to ``recommendation.json``."""
        rec = self.reports[self.main].recommendation
        return rec.to_dict() if rec is not None else {}

    def folder(self, key: str) -> str:
        """The sub-folder of one ALD sweep's report (its rule, else its sweep's name)."""
        ald = self.alds[key]
        return ald.kind.rule if key == ald.kind.rule else ald.name

    def write(self, out: str) -> dict[str, dict[str, str]]:
        """Write every report, the rules table and the cost figure; returns the paths
        per key, plus ``"comparison"`` for the files about all rules."""
        out = os.path.abspath(out)
        paths = {
            key: write_report(rep, os.path.join(out, self.folder(key)))
            for key, rep in self.reports.items()
        }
        # The main rule's files again at the top: copied, not drawn a second time (its
        # figures are most of a report's time); the cost figure there shows every rule.
        top = {k: os.path.join(out, os.path.basename(p)) for k, p in paths[self.main].items()}
        for key, path in paths[self.main].items():
            if key != "fig_cost":
                shutil.copyfile(path, top[key])
                if key.startswith("fig_"):
                    shutil.copyfile(svg_path(path), svg_path(top[key]))
        plot_cost_vs_distance(list(self.reports.values()), top["fig_cost"])
        with open(os.path.join(out, RULES_FILE), "w", encoding="utf-8") as fh:
            fh.write(side_by_side(self.reports) + "\n")
        with open(os.path.join(out, RECOMMENDATION_FILE), "w", encoding="utf-8") as fh:
            json.dump(self.recommendation, fh, indent=1)
        paths["comparison"] = {
            **top,
            "rules": os.path.join(out, RULES_FILE),
            "recommendation": os.path.join(out, RECOMMENDATION_FILE),
        }
        self.out, self.paths = out, paths
        return paths


def render(comp: Comparison) -> str:
    """What ``compare`` prints at its end and ``ald-tune report`` prints again: each
    rule's report, the rules side by side, and the recommended n_z."""
    parts = [f"# rule: {key}\n" + markdown(rep) for key, rep in comp.reports.items()]
    parts.append(side_by_side(comp.reports))
    parts.append(recommendation_text(comp.recommendation))
    return "\n\n".join(parts)


def edge_metrics(rep: Report | dict) -> dict[str, float]:
    """The per-seed and per-method distances to the edge of one report, as the metrics an
    ALD parent run holds (:data:`SEED_PREFIX`, :data:`METHOD_PREFIX`,
    :data:`NESTED_SEED_PREFIX`; booleans as 0/1; ALD's and nested dropout's per-seed lists
    are under their seeds; missing values are left out)."""
    rep = as_report(rep)
    out: dict[str, float] = {}
    groups: list[tuple[str, list[AldSeed | NestedSeed]]] = [
        (SEED_PREFIX, list(rep.ald.seeds)),
        (NESTED_SEED_PREFIX, list(rep.nested.seeds) if rep.nested else []),
    ]
    for prefix, seeds in groups:
        for i, s in enumerate(seeds):
            seed = s.seed if s.seed is not None else i
            out.update({f"{prefix}{seed}.{k}": getattr(s, k) for k in SEED_FIELDS})
    for m in rep.methods:
        out.update({f"{METHOD_PREFIX}{m.key}.{k}": getattr(m, k) for k in METHOD_FIELDS})
    return {
        k: float(v)
        for k, v in out.items()
        if isinstance(v, (int, float)) and math.isfinite(float(v))
    }


def _edge_text(rec: dict[str, Any]) -> str:
    """Where the recommended n_z lies against the grid's edge (empty without a grid)."""
    edge, steps = rec.get("plateau_edge"), rec.get("steps_above_edge")
    if edge is None or steps is None:
        return ""
    if steps == 0:
        return f", at its edge {edge} (the grid's optimum)"
    n, x = (f"{v:.2f}".rstrip("0").rstrip(".") for v in (abs(steps), rec["nz_over_edge"]))
    return (
        f", {'near' if rec.get('near_edge') else 'not near'} its edge {edge}: {n} grid "
        f"step{'' if abs(steps) == 1 else 's'} {'above' if steps > 0 else 'below'} it, "
        f"{x}x the edge"
    )


def recommendation_text(rec: dict[str, Any]) -> str:
    """One line: the recommended n_z, the rule, the per-seed values and why."""
    if rec.get("n_z") is None:
        return f"recommended n_z: none ({rec.get('reason')})"
    where = {
        True: "; inside the grid's best region",
        False: "; outside the grid's best region",
        None: "",
    }[rec.get("in_region")]
    return (
        f"recommended n_z = {rec['n_z']} (rule {rec.get('rule')!r}, per seed "
        f"{rec['per_seed']}: {rec['reason']}{where}{_edge_text(rec)})"
    )


def log_comparison(uri: str, comp: Comparison, paths: dict[str, dict[str, str]]) -> None:
    """Each sweep's parent run gets what belongs to it (see the module docstring)."""
    c, now = client(uri), int(time.time() * 1000)
    grid_parent = comp.grid.parent_run_id
    for key, ald in comp.alds.items():
        if ald.parent_run_id:
            _log_ald_parent(c, key, ald.parent_run_id, comp.reports[key], paths[key], now)
            if grid_parent:
                _link_to_grid(c, key, ald.parent_run_id, grid_parent)
    if grid_parent:
        _log_grid_parent(c, comp, grid_parent, paths["comparison"], now)


def _log_ald_parent(c, key: str, run_id: str, rep: Report, files: dict[str, str], now: int) -> None:
    """An ALD sweep's parent run: its report files, headline metrics and edge tags."""
    from mlflow.entities import Metric

    _log_files(c, run_id, files.values())
    nums = {
        f"report.{k}": v
        for k, v in rep.headline.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    nums.update(edge_metrics(rep))
    rec = rep.recommendation.n_z if rep.recommendation else None
    if rec is not None:
        nums[RECOMMENDED_METRIC] = rec
        c.set_tag(run_id, RECOMMENDED_TAG, str(rec))
    edge = rep.criterion.plateau_edge
    if edge is not None:
        c.set_tag(run_id, EDGE_TAG, str(edge))
        c.set_tag(run_id, NEAR_EDGE_TAG, f"{rep.ald.n_near_edge}/{len(rep.ald.seeds)}")
    c.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in sorted(nums.items())])


def _link_to_grid(c, key: str, run_id: str, grid_parent: str) -> None:
    """Tag an ALD parent run and the grid's parent run with each other's run id."""
    c.set_tag(run_id, GRID_PARENT_TAG, grid_parent)
    c.set_tag(
        grid_parent,
        ALD_PARENT_TAG + key.replace(" ", "_").replace("(", "").replace(")", ""),
        run_id,
    )


def _log_grid_parent(c, comp: Comparison, grid_parent: str, top: dict[str, str], now: int) -> None:
    """The grid's parent run: the baselines, the intrinsic estimates, the comparison's
    own files; the other sweeps' parent runs point to it."""
    from mlflow.entities import Metric

    c.set_tag(grid_parent, BASELINES_TAG, ",".join(comp.baselines) or "none")
    if comp.intrinsic:
        c.log_batch(
            grid_parent,
            metrics=[
                Metric(f"{BASELINE_PREFIX}{est}.{k}", float(v), now, 0)
                for est, vals in sorted(comp.intrinsic.items())
                for k, v in sorted(vals.items())
                if k in INTRINSIC_FIELDS and v is not None
            ],
        )
    _log_files(c, grid_parent, [top["rules"], top["recommendation"], top["fig_cost"]])
    for sweep in (comp.asha, comp.fixed, comp.nested):
        if sweep is not None and sweep.parent_run_id:
            c.set_tag(sweep.parent_run_id, GRID_PARENT_TAG, grid_parent)


def _log_files(c, run_id: str, files) -> None:
    for p in files:
        c.log_artifact(run_id, p, artifact_path="report")
        if p.endswith(".png") and os.path.exists(svg_path(p)):
            c.log_artifact(run_id, svg_path(p), artifact_path="report")
