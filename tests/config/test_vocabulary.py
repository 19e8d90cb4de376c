"""The metric vocabulary: every list of names derives from one table."""

from __future__ import annotations

from ald_tune.config import vocabulary as v


def test_every_derived_list_names_known_metrics_with_their_direction():
    assert set(v.RANKED) <= set(v.DIRECTIONS) and set(v.CRITERION) <= set(v.DIRECTIONS)
    assert set(v.TUNE_METRICS) <= set(v.MINIMISED) and set(v.VOTING) <= set(v.METRICS)
    assert v.DIRECTIONS["silhouette"] == "max" and v.DIRECTIONS["recon_loss"] == "min"
    assert "kl" not in v.DIRECTIONS  # a lower KL is not a better model
    assert {"n_z", *v.METRICS} <= set(v.TRACKED)


def test_axis_labels_say_which_way_is_better():
    assert v.axis_label("fid_gen").endswith("(lower is better)")
    assert v.axis_label("silhouette").endswith("(higher is better)")
    assert v.axis_label("n_z") == "n_z (latent units)" and v.axis_label("other") == "other"
