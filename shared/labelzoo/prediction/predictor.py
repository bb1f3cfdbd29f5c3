"""Run a backend over a /predict batch: chunks, per-task isolation, JSON that Label Studio accepts.

Label Studio matches results to tasks by position and discards the whole batch when the count is
wrong (P3), so this module always returns exactly one item per task. A task that fails becomes an item
without ``result``: Label Studio skips it (and predicts it again later) while the rest are stored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from labelzoo import results
from labelzoo.backend import Backend, PredictContext, Prediction, Task
from labelzoo.errors import LabelConfigError, LabelzooError, RequestError
from labelzoo.finished import OnFinished, listening
from labelzoo.prediction.gate import PredictGate
from labelzoo.scoremap import ScoreMap

log = logging.getLogger("labelzoo.predict")


def run_backend(
    backend: Backend, tasks: Sequence[Task], ctx: PredictContext, on_finished: OnFinished | None = None, *,
    gate: PredictGate | None = None,
) -> list[Prediction]:
    """Predict every task, ``backend.batch_size`` per call; a failing call is retried task by task so one bad
    task costs only itself, unless it raised :class:`~labelzoo.errors.RequestError` or a label config error
    (the same for every task): then all its tasks not yet reported fail with that message. With a ``gate``,
    each call waits for one of the process's compute slots and runs on that slot's thread.

    ``on_finished(index, prediction)`` hears of each task (``index`` in ``tasks``) as soon as it is done: when the
    backend reports it before its call returns (:mod:`labelzoo.finished`), else when the call returns. A call
    that fails after reporting tasks keeps their predictions and retries only the others.
    """
    out: list[Prediction] = []
    size = max(1, backend.batch_size)
    for start in range(0, len(tasks), size):
        call = partial(_run_call, backend, tasks[start : start + size], ctx, _from(start, on_finished))
        out.extend(call() if gate is None else gate.run(call, interactive=ctx.interactive))
    return out


def _from(start: int, on_finished: OnFinished | None) -> OnFinished:
    """``on_finished`` for a call whose tasks are those from index ``start`` on."""
    if on_finished is None:
        return _ignore
    return lambda index, prediction: on_finished(start + index, prediction)


def _run_call(backend: Backend, tasks: Sequence[Task], ctx: PredictContext, on_finished: OnFinished
              ) -> list[Prediction]:  # fmt: skip
    """One ``backend.predict`` call, each task told to ``on_finished`` once, with its task score mapped by
    ``ctx.task_scores``."""
    reported: dict[int, Prediction] = {}
    mapped = partial(_mapped, ctx.task_scores)

    def heard(index: int, prediction: Prediction) -> None:
        if 0 <= index < len(tasks) and index not in reported:
            reported[index] = prediction
            on_finished(index, mapped(prediction))

    try:
        with listening(heard):
            predictions = list(backend.predict(tasks, ctx))
        if len(predictions) != len(tasks):
            raise LabelzooError(
                f"{type(backend).__name__}.predict returned {len(predictions)} predictions for {len(tasks)} tasks"
            )
    except (RequestError, LabelConfigError) as exc:  # wrong for every task: retrying them one by one cannot help
        log.warning("%d tasks failed: %s", len(tasks) - len(reported), exc.message)
        predictions = [reported[i] if i in reported else Prediction.failed(exc.message) for i in range(len(tasks))]
    except Exception as exc:
        if len(tasks) == 1 and not reported:
            _log_failure(tasks[0], exc)
            predictions = [Prediction.failed(describe(exc))]
        else:
            log.warning("a batch of %d tasks failed (%s); predicting the %d not done one by one",
                        len(tasks), describe(exc), len(tasks) - len(reported))
            predictions = []
            for i, task in enumerate(tasks):
                predictions.append(reported[i] if i in reported else _predict_one(backend, task, ctx))
                heard(i, predictions[-1])
    for i, prediction in enumerate(predictions):
        heard(i, prediction)
    return [mapped(p) for p in predictions]


def _mapped(scores: ScoreMap, prediction: Prediction) -> Prediction:
    """``prediction`` with its task score mapped; its regions' scores are the model's own."""
    if scores.is_identity or prediction.score is None:
        return prediction
    return replace(prediction, score=scores(prediction.score))


def _predict_one(backend: Backend, task: Task, ctx: PredictContext) -> Prediction:
    try:
        with listening(_ignore):  # its one task is told when the call returns
            (prediction,) = backend.predict([task], ctx)
    except Exception as exc:
        _log_failure(task, exc)
        prediction = Prediction.failed(describe(exc))
    return prediction


def _ignore(index: int, prediction: Prediction) -> None:
    """No one listens."""


def describe(exc: BaseException) -> str:
    if isinstance(exc, LabelzooError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


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
