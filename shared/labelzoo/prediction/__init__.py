"""The prediction layer: loaded model versions, the context of a request, running a backend, the deadline.

It knows nothing of training or bulk jobs: it asks a :class:`~labelzoo.prediction.service.VersionSource`
which version a project is on, and hands the tasks a ``/predict`` could not finish in time to a
:class:`~labelzoo.prediction.deadline.Handoffs` (the bulk service, wired in by :mod:`labelzoo.runtime`).
"""

from labelzoo.prediction.models import LoadState, ModelPool
from labelzoo.prediction.predictor import run_backend, to_json
from labelzoo.prediction.service import PredictionService, VersionSource

__all__ = ["LoadState", "ModelPool", "PredictionService", "VersionSource", "run_backend", "to_json"]
