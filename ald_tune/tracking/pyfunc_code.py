"""The code file of every logged ald-tune model (MLflow "models from code"): it only
names the model class; the weights are the model's safetensors artifact."""

import mlflow.models

from ald_tune.tracking.pyfunc import VAEPyfunc

mlflow.models.set_model(VAEPyfunc())
