"""A batch ``/predict`` that answers before Label Studio gives up, and hands the rest to a bulk job.

Label Studio waits 100 s for ``/predict`` (``ML_TIMEOUT_PREDICT``); after that it stores nothing, and
it discards the whole batch when the number of results differs from the number of tasks (P3, P8). So
the batch is predicted in a background thread, backend batch by backend batch, and at
``PREDICT_DEADLINE`` seconds after the request arrived the server answers with every task: those done
carry their prediction (Label Studio stores them), the others an item without ``result`` (skipped).

With Label Studio credentials the thread does not stop there: a bulk job of kind ``tasks`` takes over
the rest, and each batch that finishes after the deadline is posted through Label Studio's API with the
same model version, so nothing computed is thrown away and Label Studio's dedup then counts the tasks as
predicted. Without credentials the thread stops after its current batch and Label Studio asks for the
rest again the next time ("Retrieve Predictions" skips the tasks it stored).

Tasks a running bulk job has claimed come back without ``result`` at once: the job posts them, and
predicting them here too would store a second prediction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from labelzoo.backend import Backend, PredictContext, Prediction, Task
from labelzoo.prediction.predictor import run_backend, to_json

log = logging.getLogger("labelzoo.prediction")


class Handoff(Protocol):
    """A job that posts through Label Studio's API what a ``/predict`` computes after its deadline."""

    @property
    def job_id(self) -> str: ...

    @property
    def total(self) -> int:
        """How many tasks the job holds."""

    def wanted(self) -> bool:
        """False once the job is cancelled or the server stops: computing more would be wasted."""

    def post(self, seq: int, tasks: Sequence[Task], items: Sequence[dict[str, Any]]) -> None:
        """Post the items of backend batch ``seq`` (counted from the deadline's cut)."""

    def close(self) -> None: ...


class Handoffs(Protocol):
    """What the deadline needs from the bulk service (see :class:`labelzoo.bulk.service.BulkService`)."""

    def claimed(self, project: str, task_ids: Sequence[int]) -> dict[int, str]:
        """The tasks a running job has claimed, with the job's id: it posts them, so they are not predicted."""

    def hand_off(self, project: str, version: str, label_config: str,
                 chunks: Sequence[Sequence[int]]) -> Handoff | None:
        """A running job for the tasks after the cut, one chunk per backend batch; None without Label Studio."""


class DeadlineRun:
    """Predicts tasks in a thread; :meth:`answer` returns what is done by a deadline, the rest may be handed off."""

    def __init__(self, backend: Backend, tasks: Sequence[Task], ctx: PredictContext) -> None:
        self.backend = backend
        self.tasks = tasks
        self.ctx = ctx
        self.size = max(1, backend.batch_size)
        self._cond = threading.Condition()
        self._done: list[Prediction] = []
        self._cut: int | None = None  # tasks answered when the deadline passed
        self._handoff: Handoff | None = None
        self._handed = threading.Event()
        self._thread = threading.Thread(target=self._work, name="labelzoo-predict-deadline", daemon=True)

    def answer(self, deadline: float) -> list[Prediction]:
        """Predictions for the first tasks, all of them unless ``deadline`` (monotonic) passed first.

        When it did, call :meth:`hand_over` next: the thread waits for it before going on.
        """
        self._thread.start()
        with self._cond:
            self._cond.wait_for(lambda: len(self._done) == len(self.tasks), max(0.0, deadline - time.monotonic()))
            if len(self._done) < len(self.tasks):
                self._cut = len(self._done)
            return list(self._done)

    def remaining_chunks(self) -> list[list[int]]:
        """The ids of the tasks after the cut, one list per backend batch still to come."""
        assert self._cut is not None
        return [[t.id for t in self.tasks[start:start + self.size] if t.id is not None]
                for start in range(self._cut, len(self.tasks), self.size)]

    def hand_over(self, handoff: Handoff | None) -> None:
        """Post the batches finished after the deadline through ``handoff``; None stops the thread."""
        self._handoff = handoff
        self._handed.set()

    def _work(self) -> None:
        try:
            for start in range(0, len(self.tasks), self.size):
                if self._cut is not None and not self._carry_on():
                    return
                batch = self.tasks[start:start + self.size]
                predictions = run_backend(self.backend, batch, self.ctx)
                with self._cond:
                    if self._cut is None:
                        self._done.extend(predictions)
                        self._cond.notify_all()
                        continue
                self._handed.wait()  # a batch finished after the deadline is posted, even if the server stops
                if self._handoff is None:
                    return
                assert self._cut is not None
                items = [to_json(p, self.ctx.model_version) for p in predictions]
                self._handoff.post((start - self._cut) // self.size, batch, items)
        except Exception:
            log.exception("predicting a /predict batch in the background failed")
        finally:
            if self._handoff is not None:
                self._handoff.close()

    def _carry_on(self) -> bool:
        """Whether to compute another batch after the deadline."""
        self._handed.wait()
        return self._handoff is not None and self._handoff.wanted()


def predict_in_time(handoffs: Handoffs | None, backend: Backend, tasks: Sequence[Task], ctx: PredictContext, *,
                    label_config: str, started: float, limit: float) -> list[dict[str, Any]]:
    """The items of a batch ``/predict``: one per task, in order, answered ``limit`` seconds (``PREDICT_DEADLINE``)
    after ``started``; 0 means no deadline. Without ``handoffs`` the tasks past the deadline are only skipped."""
    version = ctx.model_version
    ids = [t.id for t in tasks if t.id is not None]
    claimed = handoffs.claimed(ctx.project, ids) if handoffs is not None else {}
    items: list[dict[str, Any] | None] = [None] * len(tasks)
    todo: list[int] = []
    for i, task in enumerate(tasks):
        if task.id in claimed:
            job = claimed[task.id]
            items[i] = {"model_version": version, "deferred_to": job,
                        "error": f"bulk job {job} is predicting this task and posts its prediction to Label Studio "
                        f"(GET /bulk/{job})"}
        else:
            todo.append(i)
    chosen = [tasks[i] for i in todo]
    handed_to: str | None = None
    done = len(chosen)
    if not limit or not chosen:
        predictions = run_backend(backend, chosen, ctx)
    else:
        run = DeadlineRun(backend, chosen, ctx)
        predictions = run.answer(started + limit)
        done = len(predictions)
        if done < len(chosen):
            message, handed_to = _hand_off(handoffs, run, ctx, label_config, limit)
            predictions += [Prediction.failed(message)] * (len(chosen) - done)
    for n, (i, prediction) in enumerate(zip(todo, predictions, strict=True)):
        items[i] = to_json(prediction, version)
        if handed_to is not None and n >= done:
            items[i]["deferred_to"] = handed_to  # Label Studio skips it (no result); the bulk job posts it
    return [item for item in items if item is not None]


def _hand_off(
    handoffs: Handoffs | None, run: DeadlineRun, ctx: PredictContext, label_config: str, limit: float
) -> tuple[str, str | None]:
    """Start the hand-off job (never raising: /predict must still answer): what happens to the rest, the job id."""
    handoff = None
    try:
        if handoffs is not None:
            handoff = handoffs.hand_off(ctx.project, ctx.model_version, label_config, run.remaining_chunks())
    except Exception:
        log.exception("could not start a bulk job for the tasks past PREDICT_DEADLINE")
    finally:
        run.hand_over(handoff)
    late = f"not predicted within PREDICT_DEADLINE ({limit:g} s; Label Studio gives up at 100 s)"
    if handoff is None:
        return (f"{late}: Label Studio asks for it again next time. With LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY "
                "set, such tasks are posted to Label Studio in the background instead"), None
    log.info("/predict: %d tasks past PREDICT_DEADLINE handed to bulk job %s", handoff.total, handoff.job_id)
    job = handoff.job_id
    return f"{late}: bulk job {job} posts its prediction to Label Studio (GET /bulk/{job})", job
