"""Run a backend over a /predict batch: chunks, per-task isolation, JSON that Label Studio accepts.

Label Studio matches results to tasks by position and discards the whole batch when the count is
wrong (P3), so this module always returns exactly one item per task. A task that fails becomes an item
without ``result``: Label Studio skips it (and predicts it again later) while the rest are stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from labelzoo import results
from labelzoo.backend import Backend, PredictContext, Prediction, Task
from labelzoo.errors import LabelzooError

log = logging.getLogger("labelzoo.predict")

def _chunks(tasks: Sequence[Task], size: int) -> Iterator[Sequence[Task]]:
    for start in range(0, len(tasks), max(1, size)):
        yield tasks[start : start + size]


def describe(exc: BaseException) -> str:
    if isinstance(exc, LabelzooError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def run_backend(backend: Backend, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
    """Predict every task; a failing chunk is retried task by task so one bad task costs only itself."""
    out: list[Prediction] = []
    for chunk in _chunks(tasks, backend.batch_size):
        try:
            predictions = list(backend.predict(chunk, ctx))
            if len(predictions) != len(chunk):
                raise LabelzooError(
                    f"{type(backend).__name__}.predict returned {len(predictions)} predictions for {len(chunk)} tasks"
                )
        except Exception as exc:
            if len(chunk) == 1:
                _log_failure(chunk[0], exc)
                predictions = [Prediction.failed(describe(exc))]
            else:
                log.warning("a batch of %d tasks failed (%s); predicting them one by one", len(chunk), describe(exc))
                predictions = run_backend_one_by_one(backend, chunk, ctx)
        out.extend(predictions)
    return out


def run_backend_one_by_one(backend: Backend, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
    out = []
    for task in tasks:
        try:
            (prediction,) = backend.predict([task], ctx)
        except Exception as exc:
            _log_failure(task, exc)
            prediction = Prediction.failed(describe(exc))
        out.append(prediction)
    return out


def _log_failure(task: Task, exc: BaseException) -> None:
    if isinstance(exc, LabelzooError):
        log.warning("task %s: %s", task.id, exc.message)
    else:
        log.error("task %s failed", task.id, exc_info=exc)


def to_json(prediction: Prediction, model_version: str) -> dict[str, Any]:
    """One item of /predict's ``results``: a stored prediction, or a skipped one carrying its error."""
    if prediction.error is None:
        try:
            return results.prediction(prediction.result, score=prediction.score, model_version=model_version)
        except (LabelzooError, TypeError) as exc:  # the backend built something Label Studio would reject (P7)
            log.error("backend produced an invalid prediction: %s", describe(exc))
            prediction = Prediction.failed(describe(exc))
    return {"model_version": model_version, "error": prediction.error}
