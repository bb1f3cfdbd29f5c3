"""labelzoo: Label Studio ML backends on a shared core.

The public face for backend authors is small: subclass :class:`Backend`, declare :class:`Target` pairs,
build result items with :mod:`labelzoo.results`, and serve with ``labelzoo serve <folder>``.
"""

from labelzoo.backend import (
    Backend,
    FitContext,
    FitResult,
    PredictContext,
    Prediction,
    Target,
    Task,
    TrainingData,
    TrainingExample,
)
from labelzoo.errors import LabelzooError, MediaError, RequestError, TaskError
from labelzoo.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "FitContext",
    "FitResult",
    "LabelzooError",
    "MediaError",
    "PredictContext",
    "Prediction",
    "RequestError",
    "Settings",
    "Target",
    "Task",
    "TaskError",
    "TrainingData",
    "TrainingExample",
    "__version__",
]
