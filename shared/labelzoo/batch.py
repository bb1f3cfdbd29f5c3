"""One :meth:`Backend.predict` call's predictions, built task by task, where a task that fails fails alone.

A backend fills several controls of several object tags for a batch of tasks; each task gathers result
items and scores along the way, and may fail anywhere: its media (a 404, a file the decoder rejects), the
model on its input, the result building. :class:`PredictionBatch` keeps that bookkeeping::

    batch = PredictionBatch(tasks, ctx.logger, model="Whisper")
    for obj in objects:
        for i, audio in batch.ready(ctx.media.per_task(tasks, obj, open_stream)):
            with audio, batch.guard(i):
                batch.add(i, items_for(audio), score)
            if obj is objects[-1]:
                batch.finish(i)  # task i has all its items: the /predict deadline may answer it now
    return batch.predictions()

* :meth:`ready` passes on the values of ``per_task`` for the tasks still standing: an error fails its task,
  and a value fetched for a task that failed already (on another object) is closed and skipped;
* :meth:`guard` fails its task alone when the work inside raises: a
  :class:`~labelzoo.errors.LabelzooError` with its message, anything else with a message naming the model
  and the error, its traceback logged;
* :meth:`finish` says a task is done before the call returns (:mod:`labelzoo.finished`), so a slow backend's
  batch is answered task by task when a ``/predict`` reaches its deadline; a task that fails is reported at
  once. Optional: a backend that never calls it is answered batch by batch;
* :meth:`predictions` gives one :class:`~labelzoo.backend.Prediction` per task, in order: the failed ones
  carry their first error and no result (Label Studio predicts them again later), the others their items
  and, by default, the lowest of their scores (the least sure control speaks for the task).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from labelzoo.backend import Prediction, Task
from labelzoo.errors import LabelzooError
from labelzoo.finished import report_finished

T = TypeVar("T")


class PredictionBatch:
    """The result items, scores and first error of each task of one predict call; see the module docstring."""

    def __init__(
        self, tasks: Sequence[Task], logger: logging.Logger | None = None, *, model: str = "the model",
        combine: Callable[[Sequence[float]], float] = min,
    ) -> None:
        self.tasks = tasks
        self.logger = logger or logging.getLogger("labelzoo.backend")
        self.model = model  # how messages call the model: "task 7: Whisper failed (...)"
        self.combine = combine  # a task's score of its scores
        self._items: list[list[dict[str, Any]]] = [[] for _ in tasks]
        self._scores: list[list[float]] = [[] for _ in tasks]
        self._errors: list[str | None] = [None for _ in tasks]
        self._finished: set[int] = set()

    def add(self, index: int, items: Iterable[dict[str, Any]], score: float | None = None) -> None:
        """Result items of task ``index`` and, unless None, a score they count with; a failed task keeps none."""
        if self.failed(index):
            return
        self._items[index].extend(items)
        if score is not None:
            self._scores[index].append(score)

    def fail(self, index: int, error: BaseException) -> None:
        """Fail task ``index`` with ``error``, unless it failed already (the first error is the one shown)."""
        if self.failed(index):
            return
        task = self.tasks[index]
        if isinstance(error, LabelzooError):
            named = error.message.startswith(f"task {task.id}")  # media errors name their task already
            self.logger.warning("%s", error.message if named else f"task {task.id}: {error.message}")
            self._errors[index] = error.message
        else:
            self.logger.error("task %s: %s failed", task.id, self.model, exc_info=error)
            self._errors[index] = f"task {task.id}: {self.model} failed ({type(error).__name__}: {error})"
        self.finish(index)  # nothing can change a failed task any more

    def failed(self, index: int) -> bool:
        return self._errors[index] is not None

    def ready(self, values: Iterable[tuple[int, T | LabelzooError]]) -> Iterator[tuple[int, T]]:
        """``(index, value)`` for the tasks not failed, from ``(index, value or error)`` pairs such as
        :meth:`MediaResolver.per_task` yields; errors fail their tasks, values of failed tasks are closed."""
        for index, value in values:
            if isinstance(value, LabelzooError):
                self.fail(index, value)
            elif self.failed(index):
                close = getattr(value, "close", None)
                if callable(close):
                    close()
            else:
                yield index, value

    @contextmanager
    def guard(self, index: int) -> Iterator[None]:
        """Run task ``index``'s work: an exception inside fails that task alone, and the batch goes on."""
        try:
            yield
        except Exception as exc:
            self.fail(index, exc)

    def finish(self, index: int) -> None:
        """Task ``index`` has all its items: report its prediction now (:mod:`labelzoo.finished`), once; after
        this, :meth:`add` must not give it more."""
        if index not in self._finished:
            self._finished.add(index)
            report_finished(index, self.prediction(index))

    def prediction(self, index: int) -> Prediction:
        """Task ``index``'s prediction: its first error, or its items and ``combine`` of its scores."""
        error, scores = self._errors[index], self._scores[index]
        if error is not None:
            return Prediction.failed(error)
        return Prediction(result=list(self._items[index]), score=self.combine(scores) if scores else None)

    def predictions(self) -> list[Prediction]:
        """One prediction per task, in task order."""
        return [self.prediction(i) for i in range(len(self.tasks))]
