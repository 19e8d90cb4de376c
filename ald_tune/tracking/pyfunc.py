"""A trial's final model as an MLflow pyfunc, with its weights kept as safetensors.

MLflow's "models from code": the logged model holds ``pyfunc_code.py`` (a few lines that
import :class:`VAEPyfunc` and call ``mlflow.models.set_model``) and the run's
``model.safetensors`` as an artifact; nothing is pickled. ``mlflow.pyfunc.load_model``
runs that code file (so ald-tune must be installed where it loads), and
:meth:`VAEPyfunc.load_context` reads the weights with ald-tune's own safe loader.
``ald_tune.load_model("models:/<id>")`` reads the safetensors file directly and runs no
code file at all (:mod:`ald_tune.tracking.models`).

Imported only by MLflow when it loads a logged model (this module imports MLflow).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from mlflow.pyfunc import PythonModel

from ald_tune.engine.artifacts import MODEL_FILE, load_model
from ald_tune.tracking.models import WEIGHTS


class VAEPyfunc(PythonModel):
    """An ald-tune VAE behind MLflow's pyfunc interface: ``predict`` encodes.

    ``predict(x)`` returns the latent means, an ``(N, n_z)`` float32 array, one row per
    sample. ``x`` is ``N`` samples as the model was trained on them, flattened or not:
    an ``(N, C*H*W)`` or ``(N, C, H, W)`` array (or DataFrame) of pixels in [0, 1], or
    ``(N, features)`` raw feature vectors, which are standardised with the training
    split's mean and sd stored in the model file first.

    Example:
        >>> m = mlflow.pyfunc.load_model("models:/m-0123...")     # doctest: +SKIP
        >>> m.predict(images).shape                                 # doctest: +SKIP
        (16, 7)
    """

    model: Any = None
    shape: tuple[int, ...] = ()  # one sample's shape, from the model file's metadata

    def load_context(self, context: Any) -> None:
        """Rebuild the net from the logged safetensors file (ald-tune's loader: no pickle)."""
        from safetensors import safe_open

        path = context.artifacts[WEIGHTS]
        if os.path.isdir(path):
            path = os.path.join(path, MODEL_FILE)
        self.model = load_model(path).eval()
        with safe_open(path, framework="pt") as fh:
            self.shape = tuple(json.loads((fh.metadata() or {})["image_shape"]))

    # np.ndarray: a hint MLflow infers no input schema from (and converts nothing by)
    def predict(self, context: Any, model_input: np.ndarray, params: Any = None) -> np.ndarray:
        """The latent means of ``model_input``: ``(N, n_z)`` float32 (see the class)."""
        import torch

        x = torch.as_tensor(np.asarray(model_input, dtype=np.float32))
        x = x.reshape(len(x), *self.shape)  # (N, *sample shape)
        stats = self.model.stats
        if stats is not None:  # feature vectors: standardise as the training split was
            mean, std = (torch.tensor(stats[k]).reshape(self.shape) for k in ("mean", "std"))
            x = (x - mean) / std
        with torch.no_grad():
            mu, _ = self.model.encode(x)  # (N, n_z)
        return mu.numpy().astype(np.float32)
