"""Overhead of the engine inside Ray Tune with MLflow logging, against the plain loop.

Same data, config, seed and epochs, one torch thread, one ALD trial (1 CPU) in
set-ups that add one cost at a time:
  ``tune``: ``tune.report`` every epoch, no MLflow, no checkpoint but the last;
  ``+mlflow``: plus MLflow on SQLite (metrics every epoch, image grids every
  ``eval.image_every`` epochs, sent at the end only, as no checkpoint comes before);
  ``default``: plus a ``tune.Checkpoint`` (each after an MLflow send) every
  ``tune.checkpoint_every`` epochs, at least ``tune.checkpoint_min_s`` apart: what
  ``ald-tune ald`` runs;
  ``every-n``: the default without the floor (``tune.checkpoint_min_s=0``), a
  checkpoint every ``tune.checkpoint_every`` epochs however short they are;
  ``synchronous``: the default with ``tune.report_ahead=false``, every report made in
  the training thread, waiting for the driver.

Two measurements of each, from the same trials:
1. **paired, in one process** (the target's measure): the trial runs
   :class:`ald_tune.testing.paired.PairedTrainer`, which after each epoch trains the same
   epoch again on a plain twin (same config and seed, reports nothing) and times
   both, a fraction of a second apart; the trial's time includes everything it does
   for the epoch (MLflow, checkpoint, report, waiting for Tune). The ratio of the
   summed times is the extra wall time per epoch, free of the machine's drift (these
   shared 2-core machines drift by 10-30% within seconds to minutes, in CPU time as
   much as in wall time); its spread over 10-epoch blocks is printed. It leaves out
   what slows the whole trial process alike (Ray's own threads), which measurement 2
   includes.
2. **against the plain loop in its own process**: the trial's epochs
   against ``Trainer`` run in this process before the first set-up and after each,
   compared with the mean of the runs just before and after; noisy, so the whole
   sequence is repeated ``--rounds`` times and the median is printed.

Usage: python benchmarks/bench_tune_overhead.py [--space FILE] [--preset P] [--set k=v ...]
       [--rounds N]
"""

from __future__ import annotations

import statistics
import tempfile
import time

from _common import parse, start_ray, timed_epochs

NEVER = 100_000  # tune.checkpoint_every past the last epoch: only the final checkpoint
SETUPS = (
    ("tune", False, {"checkpoint_every": NEVER}),
    ("+mlflow", True, {"checkpoint_every": NEVER}),
    ("default", True, {}),
    ("every-n", True, {"checkpoint_min_s": 0.0}),
    ("synchronous", True, {"report_ahead": False}),
)


def plain_run(cfg) -> float:
    """Wall seconds per epoch of the plain loop, epoch 0 (first batches, caches) left out."""
    from ald_tune.engine.trainer import Trainer

    return statistics.fmean(timed_epochs(Trainer(cfg))[1:])


def paired_run(cfg, tmp: str, label: str, tracking: bool) -> dict:
    """One paired ALD trial: the trial's and its twin's seconds per epoch, summed, and
    their ratio over each 10 epochs (epoch 0, first batches and caches, is left out)."""
    from ald_tune.sweeps.backfill import read_trials
    from ald_tune.sweeps.run import DEFAULT_TRACKING, run_sweep
    from ald_tune.sweeps.tuner import SweepOptions
    from ald_tune.testing import PAIRED

    t0 = time.perf_counter()
    result = run_sweep(
        cfg,
        SweepOptions(mode="ald", run_dir=tmp, verbose=False, trainer=PAIRED, label=label),
        DEFAULT_TRACKING if tracking else None,
    )
    (trial_rows,) = read_trials(result.path)  # Tune's own rows: they hold the paired timings
    rows = [r for _, r in sorted(trial_rows.by_epoch().items())][1:]
    trial, twin = ([h[k] for h in rows] for k in ("paired_trial_s", "paired_plain_s"))
    per_block = [
        sum(trial[i : i + 10]) / sum(twin[i : i + 10]) - 1 for i in range(0, len(rows), 10)
    ]
    return {
        "trial": statistics.fmean(trial),
        "twin": statistics.fmean(twin),
        "per_block": per_block,
        "sweep": time.perf_counter() - t0,
    }


def quartiles(xs: list[float]) -> str:
    q1, _, q3 = statistics.quantiles(xs, n=4) if len(xs) > 1 else (xs[0], 0, xs[0])
    return f"{q1:+.1%}..{q3:+.1%}"


def checkpoints(cfg, tune_set: dict) -> str:
    t = cfg.replace(tune=tune_set).tune
    if t.checkpoint_every >= cfg.train.epochs:
        return "checkpoint at the end"
    floor = f", >= {t.checkpoint_min_s:g} s apart" if t.checkpoint_min_s else ""
    return f"every {t.checkpoint_every} epochs{floor}"


def main(argv=None) -> int:
    args = parse(__doc__, argv, rounds=3)
    import ray

    from ald_tune.config.schema import load_config

    cfg = load_config(
        args.space,
        args.preset,
        ["tune.num_samples=1", "tune.cpus_per_trial=1", "train.threads=1", *args.overrides],
    )
    start_ray()
    rows: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in SETUPS}
    plains: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            plains.append(plain_run(cfg))
            for label, tracking, tune_set in SETUPS:
                row = paired_run(cfg.replace(tune=tune_set), tmp, label.strip("+"), tracking)
                plains.append(plain_run(cfg))
                row["plain"] = (plains[-2] + plains[-1]) / 2
                rows[label].append(row)
    ray.shutdown()
    report(cfg, args.rounds, rows, plains)
    return 0


def report(cfg, rounds: int, rows: dict[str, list[dict[str, float]]], plains: list[float]) -> None:
    print(
        f"{cfg.train.epochs} epochs, {rounds} round(s); plain loop in its own process, before "
        "the first set-up and after each: "
        + " / ".join(f"{w * 1e3:.1f}" for w in plains)
        + f" ms/epoch (drift {max(plains) / min(plains) - 1:.1%})"
    )
    print(
        "per epoch: paired = the trial's epochs against its plain twin's, same process, "
        "interleaved (drift-free); own process = the trial against the plain loop run "
        "before and after it (median over rounds)"
    )
    paired, own = {}, {}
    for label, _, tune_set in SETUPS:
        rs = rows[label]
        trial, twin = sum(r["trial"] for r in rs), sum(r["twin"] for r in rs)
        paired[label] = trial / twin - 1
        own[label] = statistics.median(r["trial"] / r["plain"] - 1 for r in rs)
        blocks = [b for r in rs for b in r["per_block"]]
        print(
            f"{label:12s} ({checkpoints(cfg, tune_set):24s}): paired "
            f"{trial / len(rs) * 1e3:6.1f} vs {twin / len(rs) * 1e3:6.1f} ms/epoch, extra "
            f"{paired[label]:+6.1%} ({(trial - twin) / len(rs) * 1e3:+5.1f} ms; median block "
            f"{statistics.median(blocks):+.1%}, quartiles {quartiles(blocks)} over "
            f"{len(blocks)} blocks of 10 epochs); own process {own[label]:+6.1%} "
            "(rounds: "
            + ", ".join(f"{r['trial'] / r['plain'] - 1:+.1%}" for r in rs)
            + f"); sweep wall {statistics.median(r['sweep'] for r in rs):.1f} s"
        )
    print(
        f"extra wall time per epoch, default set-up: {paired['default']:+.1%} paired "
        f"(target <= +5%), {own['default']:+.1%} against the plain loop in its own process; "
        f"checkpoints every {cfg.tune.checkpoint_every} epochs however short: "
        f"{paired['every-n']:+.1%}; every report synchronous: {paired['synchronous']:+.1%}"
    )
    print(
        "one-off per sweep (not per epoch): Ray start-up, trial launch, the final artifacts; "
        "sweep walls above include the twin's epochs"
    )


if __name__ == "__main__":
    raise SystemExit(main())
