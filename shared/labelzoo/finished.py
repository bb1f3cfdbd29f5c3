"""Tasks a backend reports finished while its ``predict()`` call is still running.

:meth:`Backend.predict <labelzoo.backend.Backend.predict>` returns a whole batch (``batch_size`` tasks) at
once. A slow backend (Whisper: seconds per task) can say earlier that one task is done, by calling
:func:`report_finished` with the task's index in the call's ``tasks`` and the prediction it will return for it;
:meth:`labelzoo.batch.PredictionBatch.finish` does that. Whoever runs the call listens with :func:`listening`:
the ``/predict`` deadline (:mod:`labelzoo.prediction.deadline`) answers a reported task even when its batch is
not over. Outside :func:`listening` (an interactive request, a bulk chunk) a report goes nowhere.

The listener lives in a context variable of the thread that calls ``predict()``: report from that thread. A
thread the backend starts itself does not see it, and its reports are dropped; nothing is lost, the
prediction still comes back with the batch, only later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from labelzoo.backend import Prediction

#: ``on_finished(index, prediction)``: task ``index`` of the ``predict()`` call is done
OnFinished = Callable[[int, Prediction], None]

_listener: ContextVar[OnFinished | None] = ContextVar("labelzoo_finished_listener", default=None)


@contextmanager
def listening(on_finished: OnFinished) -> Iterator[None]:
    """Hear, while inside, of the tasks the ``predict()`` call made in this block reports finished."""
    token = _listener.set(on_finished)
    try:
        yield
    finally:
        _listener.reset(token)


def report_finished(index: int, prediction: Prediction) -> None:
    """Task ``index`` (of the current ``predict()`` call's tasks) is done, and ``prediction`` is what the call
    returns for it. Report a task once; a second report of it is ignored by the core's listeners."""
    on_finished = _listener.get()
    if on_finished is not None:
        on_finished(index, prediction)
