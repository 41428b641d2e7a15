"""deployment: take a trained model to production.

The package grows one part at a time, each with its notebook:

====  =========================  ==========================================
part  module                     notebook
====  =========================  ==========================================
1     serialization              notebooks/01_train_and_serialize.ipynb
2     inference (+ server)       notebooks/02_inference_api.ipynb
3     monitoring                 notebooks/03_monitoring_and_drift.ipynb
4     registry                   notebooks/04_model_registry.ipynb
5     ab_testing                 notebooks/05_ab_testing.ipynb
====  =========================  ==========================================

Given code (models, data, errors, the HTTP server, the load generator)
is complete; the parts are yours to write.
"""

from .errors import (
    AuthenticationError,
    DeploymentError,
    ModelFormatError,
    ModelNotFoundError,
    RateLimitError,
    ValidationError,
)
from .models import LinearRegression, LogisticRegression, Pipeline, StandardScaler
from .data import Dataset, load_dataset
from .versions import validate_version, version_key

# The parts: each module's __all__ lists its public names.
from .serialization import *  # Part 1: SerializedModel, save_model, load_model, load_serialized
from .inference import *  # Part 2: APIConfig, InferenceAPI
from .monitoring import *  # Part 3: ModelMonitor, drift_over_time
from .registry import *  # Part 4: ModelRegistry
from .ab_testing import *  # Part 5: TrafficRouter, ABTest, CanaryRollout, ...

__version__ = "0.1.0"


def __getattr__(name: str):
    # The HTTP layer imports FastAPI, so it loads only when asked for.
    if name == "create_app":
        from .server import create_app

        return create_app
    raise AttributeError(f"module 'deployment' has no attribute {name!r}")
