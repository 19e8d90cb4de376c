"""Layer 3, the engine: one training run that resizes its VAE while it trains.

The VAE nets and latent surgery (``model``, ``surgery``), the latent-layer protocol a
user's own model follows (``protocol``) and the one wrapper around the user's code
(``user_code``), the decoder's likelihoods (``likelihood``), sizes weighed against the
device's free memory before anything is built (``budget``), the own-loop pruner
(``pruner``), the stop rules in their own folder (``rules``: the controller base, one
module per rule and the factory by name; the paired trial's ``twin``), metrics and FID
features (``metrics``, the networks in ``extractors``, the scorer in ``features``), the
per-epoch evaluation (``evaluate``), the trainer with its epochs, callbacks and cadence
(``trainer``, ``epochs``, ``callbacks``), nested (tail) dropout training and its prefix
curve (``nested_dropout``), the versioned checkpoint (``checkpoint``) and what a run
leaves on disk (``artifacts``).

May import: :mod:`ald_tune.config`, :mod:`ald_tune.data`. Imports no Ray, MLflow or
Optuna: trackers and drivers plug in as callbacks.
"""
