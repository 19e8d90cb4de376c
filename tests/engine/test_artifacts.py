"""What a run leaves on disk and shows: the image grids' caption band."""

from __future__ import annotations

import torch

from ald_tune.engine.artifacts import captioned


def test_a_caption_band_goes_on_top_and_the_grid_is_unchanged_below():
    for channels in (1, 3):
        grid = torch.randint(0, 256, (40, 90, channels), dtype=torch.uint8)
        out = captioned(grid, "epoch 12, n_z 9")
        assert out.shape == (52, 90, channels) and out.dtype == torch.uint8
        assert torch.equal(out[12:], grid)
        band = out[:12]
        assert int(band.min()) < 100 and (band == 255).float().mean() > 0.7  # dark text on white
    blank = captioned(torch.zeros(40, 90, 1, dtype=torch.uint8), "")
    assert bool((blank[:12] == 255).all())  # no text, no marks


def test_the_history_plot_leaves_the_callers_matplotlib_backend_alone(tmp_path):
    # A notebook trains with its own (inline) backend: writing history.png must not switch
    # it to Agg or leave a pyplot figure open.
    import matplotlib
    import matplotlib.pyplot as plt

    from ald_tune.engine.artifacts import plot_history

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        history = [{"epoch": e, "n_z": 8 - e // 2, "recon_loss": 10.0 - e} for e in range(6)]
        path = plot_history(history, str(tmp_path / "history.png"), title="run")
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
        assert matplotlib.get_backend() == "svg" and plt.get_fignums() == []
    finally:
        matplotlib.use(before)
