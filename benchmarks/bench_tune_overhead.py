"""Overhead of the engine inside Ray Tune with MLflow logging, against the plain loop.

Same data, config, seed and epochs, one torch thread each, measured in one run:
1. the plain engine loop (``Trainer``), wall time per epoch, run before the first
   Tune set-up and after each one: every set-up is compared with the mean of the
   plain runs just before and just after it (a shared machine drifts by several
   percent within minutes; the plain runs' spread is printed);
2. one ALD trial under Ray Tune (1 CPU), in set-ups that add one cost at a time:
   ``tune``: ``tune.report`` every epoch, no MLflow, no checkpoint but the last;
   ``+mlflow``: plus MLflow on SQLite (metrics every epoch, image grids every
   ``eval.image_every`` epochs, sent at the end only, as no checkpoint comes before);
   ``+checkpoints``: plus a ``tune.Checkpoint`` every ``tune.checkpoint_every`` epochs,
   each after an MLflow send (the default set-up, what ``ald-tune ald`` runs);
   ``synchronous``: the default set-up with ``tune.report_ahead=false``, every report
   and send made in the training thread (what ald-tune did before report-ahead).
3. the whole sequence is repeated ``--rounds`` times; each set-up's extra is the
   median over rounds.

The per-epoch wall time of a trial is the interval between its reports (the
``reported_at`` field), not Tune's ``time_this_iter_s``: a function trainable waits at
each ``tune.report`` until the driver has processed the result and asks for the next
one, and ``time_this_iter_s`` leaves that wait out. The trial's own engine time (its
records' ``train_time_s + eval_time_s``) is printed beside the plain loop's, which shows
how much the reporting slows the training itself (CPU and GIL sharing). Prints each
set-up's extra wall time per epoch (target for the default: at most 5%); the one-off
start-up cost of a sweep (Ray start, trial launch) is reported separately.

Usage: python benchmarks/bench_tune_overhead.py [--space FILE] [--preset P] [--set k=v ...]
       [--rounds N]
"""

from __future__ import annotations

import statistics
import tempfile
import time

from _common import parse, start_ray, timed_epochs

NEVER = 10 ** 6  # tune.checkpoint_every past the last epoch: only the final checkpoint


def engine_s(record: dict) -> float:
    return record["train_time_s"] + record["eval_time_s"]


def plain_run(cfg) -> tuple[float, float]:
    """(wall, engine) seconds per epoch of the plain loop; epoch 0 (first batches,
    caches) is left out, as the intervals between a trial's reports start at epoch 1."""
    from ald_tune.loop import Trainer

    trainer = Trainer(cfg)
    walls = timed_epochs(trainer)[1:]
    return statistics.fmean(walls), statistics.fmean(map(engine_s, trainer.history[1:]))


def trial_run(cfg, tmp: str, label: str, tracking: bool) -> dict[str, float]:
    """One ALD trial under Tune: wall (between reports), in-trial and engine s/epoch."""
    from ald_tune.tuners import SweepOptions, run_sweep

    t0 = time.perf_counter()
    result = run_sweep(cfg, SweepOptions(mode="ald", run_dir=tmp, verbose=False,
                                         tracking=tracking, label=label))
    history = result.trials[0]["history"][1:]
    stamps = [h["reported_at"] for h in result.trials[0]["history"]]
    return {"wall": (stamps[-1] - stamps[0]) / (len(stamps) - 1),
            "in_trial": statistics.fmean(h["time_this_iter_s"] for h in history),
            "engine": statistics.fmean(map(engine_s, history)),
            "sweep": time.perf_counter() - t0}


def main(argv=None) -> int:
    args = parse(__doc__, argv, rounds=3)
    import ray

    from ald_tune.config import load_config

    cfg = load_config(args.space, args.preset, ["tune.num_samples=1", "tune.cpus_per_trial=1",
                                                "train.threads=1", *args.overrides])
    every = cfg.tune.checkpoint_every
    setups = (("tune", False, {"checkpoint_every": NEVER}),
              ("+mlflow", True, {"checkpoint_every": NEVER}),
              ("+checkpoints", True, {}),
              ("synchronous", True, {"report_ahead": False}))
    start_ray()
    rows: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in setups}
    plains: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            plains.append(plain_run(cfg))
            for label, tracking, tune_set in setups:
                row = trial_run(cfg.replace(tune=tune_set), tmp, label.strip("+"), tracking)
                plains.append(plain_run(cfg))
                before, after = plains[-2], plains[-1]
                row["plain"] = (before[0] + after[0]) / 2
                row["plain_engine"] = (before[1] + after[1]) / 2
                rows[label].append(row)
    ray.shutdown()
    walls = [w for w, _ in plains]
    print(f"{cfg.train.epochs} epochs, {args.rounds} round(s); plain loop, before the first "
          "set-up and after each: " + " / ".join(f"{w * 1e3:.1f}" for w in walls) +
          f" ms/epoch (spread {max(walls) / min(walls) - 1:.1%})")
    print("per epoch: wall = interval between the trial's reports (what a user waits); "
          "in-trial = Tune's time_this_iter_s; engine = the trial's own train+eval time "
          "against the plain loop's")
    extra = {}
    for label, _, tune_set in setups:
        rs = rows[label]
        ratios = [r["wall"] / r["plain"] - 1 for r in rs]
        extra[label] = statistics.median(ratios)
        wall, plain = (statistics.median(r[k] for r in rs) for k in ("wall", "plain"))
        eng = statistics.median(r["engine"] / r["plain_engine"] - 1 for r in rs)
        ck = "final only" if tune_set.get("checkpoint_every") == NEVER else f"every {every} epochs"
        print(f"{label:13s} (checkpoints {ck:15s}): wall {wall * 1e3:7.1f} ms/epoch vs plain "
              f"{plain * 1e3:6.1f}, extra {extra[label]:+6.1%} (rounds: "
              + ", ".join(f"{x:+.1%}" for x in ratios) + f"), {(wall - plain) * 1e3:+6.1f} ms; "
              f"engine {eng:+6.1%}; in-trial "
              f"{statistics.median(r['in_trial'] for r in rs) * 1e3:7.1f} ms; sweep wall "
              f"{statistics.median(r['sweep'] for r in rs):.1f} s")
    print(f"extra wall time per epoch, default set-up: {extra['+checkpoints']:+.1%} "
          f"(target <= +5%); the same with every report made synchronously: "
          f"{extra['synchronous']:+.1%}")
    print(f"one-off: plain run {walls[0] * cfg.train.epochs:.1f} s of epochs; the sweep walls "
          f"above add Ray start-up, trial launch and the final artifacts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
