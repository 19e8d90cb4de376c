"""Engine benchmark on digits, measured side by side in one run.

Prints:
1. evaluation time per epoch as a share of training time per epoch (target <= 15%);
2. ALD's final validation recon loss against a fixed-size model trained from
   scratch at ALD's final n_z for the same epochs (target: within 5%).

Usage: python benchmarks/bench_engine.py [--space FILE] [--preset P] [--set k=v ...]
"""

from __future__ import annotations

import statistics

from _common import parse


def main(argv=None) -> int:
    from ald_tune.config.schema import load_config
    from ald_tune.engine.trainer import Trainer

    args = parse(__doc__, argv, threads=True)
    cfg = load_config(args.space, args.preset, args.overrides)
    ald = Trainer(cfg)
    for _ in ald:
        pass
    fixed = Trainer(cfg, fixed_n_z=ald.model.n_z)
    for _ in fixed:
        pass
    rows = []
    for name, tr in (("ald", ald), ("fixed", fixed)):
        train = statistics.median(h["train_time_s"] for h in tr.history)
        ev = statistics.median(h["eval_time_s"] for h in tr.history)
        rows.append((name, train, ev))
        print(
            f"{name:6s} epochs {len(tr.history):4d}  train/epoch {train * 1e3:7.1f} ms  "
            f"eval/epoch {ev * 1e3:7.1f} ms  eval share {ev / train:6.1%}"
        )
    a, f = ald.history[-1]["recon_loss"], fixed.history[-1]["recon_loss"]
    print(
        f"ALD final n_z {ald.model.n_z}; final recon loss: ALD {a:.3f}, fixed n_z={ald.model.n_z} "
        f"from scratch {f:.3f}; ratio {a / f:.4f} (target <= 1.05)"
    )
    print(f"eval share (ALD run, median per epoch): {rows[0][2] / rows[0][1]:.1%} (target <= 15%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
