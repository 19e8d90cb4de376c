"""The console progress of a sweep: one line per trial result, from a Tune callback."""

from __future__ import annotations

import io
from types import SimpleNamespace

from ald_tune.sweeps.progress import ProgressCallback


def test_one_line_per_result_and_per_trial_end():
    out = io.StringIO()
    cb = ProgressCallback(stream=out)
    grid = SimpleNamespace(
        trial_id="t_1",
        config={"n_z": 8, "seed": 0},
        last_result={"final_n_z": 8, "training_iteration": 3},
    )
    ald = SimpleNamespace(trial_id="t_2", config={"seed": 1}, last_result={})
    cb.on_trial_result(
        0,
        [],
        grid,
        {
            "epoch": 2,
            "n_z": 8,
            "recon_loss": 20.5,
            "fid_gen": float("nan"),
            "decision": "fixed n_z=8",
        },
    )
    cb.on_trial_result(0, [], ald, {"epoch": 0, "n_z": 64, "silhouette": 0.3})
    cb.on_trial_complete(0, [], grid)
    cb.on_trial_error(0, [], ald)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[t_1 nz=8 seed=0] epoch    2  n_z   8  recon   20.500  fid_gen nan")
    assert lines[0].endswith("| fixed n_z=8") and lines[1].startswith("[t_2 ald seed=1]")
    assert lines[2] == "[t_1] done: final n_z 8 after 3 epochs" and "FAILED" in lines[3]
    quiet = io.StringIO()
    ProgressCallback(verbose=False, stream=quiet).on_trial_complete(0, [], grid)
    assert quiet.getvalue() == ""
