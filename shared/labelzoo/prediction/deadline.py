"""A batch ``/predict`` that answers before Label Studio gives up, and hands the rest to a bulk job.

Label Studio waits 100 s for ``/predict`` (``ML_TIMEOUT_PREDICT``); after that it stores nothing, and
it discards the whole batch when the number of results differs from the number of tasks (P3, P8). So
the batch is predicted in a background thread, backend batch by backend batch, and at
``PREDICT_DEADLINE`` seconds after the request arrived the server answers with every task: those done
carry their prediction (Label Studio stores them), the others an item without ``result`` (skipped).

A task is done when its backend batch returns, or before that when the backend reports it finished
(:mod:`labelzoo.finished`, as :meth:`PredictionBatch.finish <labelzoo.batch.PredictionBatch.finish>` does): a
slow backend that reports task by task (Whisper, 16 tasks a batch) is answered task by task, so a deadline
that falls inside a batch still answers the tasks finished so far.

With Label Studio credentials the thread does not stop there: a bulk job of kind ``tasks`` takes over
the rest (the unanswered tasks of the batch the deadline fell in, then every later batch), and each batch
that finishes after the deadline has those tasks posted through Label Studio's API with the same model
version, so nothing computed is thrown away and Label Studio's dedup then counts the tasks as predicted.
Without credentials the thread stops after its current batch and Label Studio asks for the rest again the
next time ("Retrieve Predictions" skips the tasks it stored).

Tasks a running bulk job has claimed come back without ``result`` at once: the job posts them, and
predicting them here too would store a second prediction; so do the tasks a bulk job of the same version
has posted already (a refresh after a promotion races Label Studio's own "Retrieve Predictions", whose
list of tasks lacking the version may be older than the refresh's posts).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from functools import partial
from typing import Any, Protocol

from labelzoo.backend import Backend, PredictContext, Prediction, Task
from labelzoo.prediction.gate import PredictGate
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
        """Post the items of chunk ``seq``: the tasks of a backend batch that the answer left out, batches
        counted from the one the deadline fell in."""

    def close(self) -> None: ...


class Handoffs(Protocol):
    """What the deadline needs from the bulk service (see :class:`labelzoo.bulk.service.BulkService`)."""

    def reserve(self, project: str, version: str, task_ids: Sequence[int]) -> dict[int, str]:
        """The tasks a job posts or posted a prediction of ``version`` for, with the job's id (not predicted here);
        the others are this request's: no job of ``version`` predicts them."""

    def release(self, project: str, version: str, task_ids: Sequence[int]) -> None:
        """Tasks :meth:`reserve` gave this request that it answers without a prediction."""

    def hand_off(self, project: str, version: str, label_config: str,
                 chunks: Sequence[Sequence[int]]) -> Handoff | None:
        """A running job for the tasks the answer left out, one chunk per backend batch; None without Label Studio."""


class DeadlineRun:
    """Predicts tasks in a thread; :meth:`answer` returns what is done by a deadline, the rest may be handed off."""

    def __init__(self, backend: Backend, tasks: Sequence[Task], ctx: PredictContext,
                 gate: PredictGate | None = None) -> None:
        self.backend = backend
        self.tasks = tasks
        self.ctx = ctx
        self.gate = gate
        self.size = max(1, backend.batch_size)
        self._cond = threading.Condition()
        self._done: list[Prediction | None] = [None] * len(tasks)
        self._answered: list[Prediction | None] | None = None  # the answer, once the deadline cut it short
        self._handoff: Handoff | None = None
        self._handed = threading.Event()
        self._thread = threading.Thread(target=self._work, name="labelzoo-predict-deadline", daemon=True)

    def answer(self, deadline: float) -> list[Prediction | None]:
        """One entry per task, in order: its prediction, or None for a task not done when ``deadline``
        (monotonic) passed. When there is a None, call :meth:`hand_over` next: the thread waits for it before
        going on past its current batch."""
        self._thread.start()
        with self._cond:
            self._cond.wait_for(self._all_done, max(0.0, deadline - time.monotonic()))
            answer = list(self._done)
            if not self._all_done():
                self._answered = answer
            return answer

    def remaining_chunks(self) -> list[list[int]]:
        """The ids of the tasks the answer left without a prediction, one list per backend batch from the one
        the deadline fell in (chunk ``seq`` 0) to the last."""
        return [[task_id for i in self._late(start) if (task_id := self.tasks[i].id) is not None]
                for start in range(self._first_late_batch() * self.size, len(self.tasks), self.size)]

    def hand_over(self, handoff: Handoff | None) -> None:
        """Post the tasks finished after the deadline through ``handoff``; None stops the thread."""
        self._handoff = handoff
        self._handed.set()

    def _all_done(self) -> bool:
        return all(p is not None for p in self._done)

    def _late(self, start: int) -> list[int]:
        """The indices of the tasks of the batch at ``start`` that the answer left without a prediction."""
        assert self._answered is not None
        return [i for i in range(start, min(start + self.size, len(self.tasks))) if self._answered[i] is None]

    def _first_late_batch(self) -> int:
        """The batch the deadline fell in: the first with a task left out of the answer (all before are whole)."""
        assert self._answered is not None
        return next(i for i, p in enumerate(self._answered) if p is None) // self.size

    def _finished(self, start: int, index: int, prediction: Prediction) -> None:
        """Task ``index`` of the batch at ``start`` is done: it goes into the answer, unless that was given."""
        with self._cond:
            if self._answered is None:
                self._done[start + index] = prediction
                self._cond.notify_all()

    def _work(self) -> None:
        try:
            for start in range(0, len(self.tasks), self.size):
                if self._answered is not None and not self._carry_on():
                    return
                batch = self.tasks[start:start + self.size]
                predictions = run_backend(self.backend, batch, self.ctx, partial(self._finished, start),
                                          gate=self.gate)
                with self._cond:
                    if self._answered is None:
                        self._done[start:start + len(batch)] = predictions
                        self._cond.notify_all()
                        continue
                if not self._post_late(start, predictions):
                    return
        except Exception:
            log.exception("predicting a /predict batch in the background failed")
        finally:
            if self._handoff is not None:
                self._handoff.close()

    def _post_late(self, start: int, predictions: Sequence[Prediction]) -> bool:
        """Post the batch at ``start``'s tasks that the answer left out; False when there is no hand-off."""
        late = self._late(start)
        if not late:
            return True  # all of it was answered (reported done before the deadline; it returned after)
        self._handed.wait()  # a batch finished after the deadline is posted, even if the server stops
        if self._handoff is None:
            return False
        items = [to_json(predictions[i - start], self.ctx.model_version) for i in late]
        self._handoff.post(start // self.size - self._first_late_batch(), [self.tasks[i] for i in late], items)
        return True

    def _carry_on(self) -> bool:
        """Whether to compute another batch after the deadline."""
        self._handed.wait()
        return self._handoff is not None and self._handoff.wanted()


def predict_in_time(handoffs: Handoffs | None, backend: Backend, tasks: Sequence[Task], ctx: PredictContext, *,
                    label_config: str, started: float, limit: float, gate: PredictGate | None = None
                    ) -> list[dict[str, Any]]:  # fmt: skip
    """The items of a batch ``/predict``: one per task, in order, answered ``limit`` seconds (``PREDICT_DEADLINE``)
    after ``started``; 0 means no deadline. Without ``handoffs`` the tasks past the deadline are only skipped.
    Backend calls wait for the ``gate``'s compute slots; the wait counts towards the deadline."""
    version = ctx.model_version
    ids = [t.id for t in tasks if t.id is not None]
    claimed = handoffs.reserve(ctx.project, version, ids) if handoffs is not None else {}
    items: list[dict[str, Any] | None] = [None] * len(tasks)
    todo: list[int] = []
    for i, task in enumerate(tasks):
        if task.id in claimed:
            job = claimed[task.id]
            items[i] = {"model_version": version, "deferred_to": job,
                        "error": f"bulk job {job} is predicting this task (or has) and posts its prediction of "
                        f"{version} to Label Studio (GET /bulk/{job})"}
        else:
            todo.append(i)
    chosen = [tasks[i] for i in todo]
    predictions: list[Prediction | None]
    message = ""  # what happens to the tasks the deadline left out
    handed_to: str | None = None  # the bulk job that posts them
    if not limit or not chosen:
        predictions = list(run_backend(backend, chosen, ctx, gate=gate))
    else:
        run = DeadlineRun(backend, chosen, ctx, gate)
        predictions = run.answer(started + limit)
        if any(p is None for p in predictions):
            message, handed_to = _hand_off(handoffs, run, ctx, label_config, limit)
    for i, prediction in zip(todo, predictions, strict=True):
        items[i] = to_json(prediction if prediction is not None else Prediction.failed(message), version)
        if prediction is None and handed_to is not None:
            items[i]["deferred_to"] = handed_to  # Label Studio skips it (no result); the bulk job posts it
    unanswered = [task.id for task, item in zip(tasks, items, strict=True)
                  if task.id is not None and item is not None and "result" not in item and "deferred_to" not in item]
    if handoffs is not None and unanswered:
        handoffs.release(ctx.project, version, unanswered)  # Label Studio stores nothing for them: a job may
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
