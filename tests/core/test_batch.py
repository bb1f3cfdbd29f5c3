"""A predict call's predictions built task by task: a task that fails fails alone, with its first error."""

from __future__ import annotations

import logging

import pytest

from labelzoo import MediaError, Prediction, Task, TaskError
from labelzoo.batch import PredictionBatch
from labelzoo.finished import listening

LOG = logging.getLogger("test.batch")


def tasks(n: int) -> list[Task]:
    return [Task(id=i, data={}) for i in range(1, n + 1)]


class Closable:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    def close(self) -> None:
        self.closed = True


def item(name: str) -> dict:
    return {"id": name, "from_name": "c", "to_name": "o", "type": "choices", "value": {"choices": [name]}}


def test_items_and_scores_gather_per_task_and_the_lowest_score_speaks_for_it() -> None:
    batch = PredictionBatch(tasks(3), LOG)
    batch.add(0, [item("a")], 0.9)
    batch.add(0, [item("b")], 0.4)
    batch.add(1, [item("c")])  # items without a score
    first, second, third = batch.predictions()
    assert first == Prediction(result=[item("a"), item("b")], score=0.4)
    assert second == Prediction(result=[item("c")], score=None)
    assert third == Prediction(result=[], score=None)
    highest = PredictionBatch(tasks(1), LOG, combine=max)
    highest.add(0, [item("a")], 0.9)
    highest.add(0, [item("b")], 0.4)
    assert highest.predictions()[0].score == 0.9


def test_a_failed_task_keeps_its_first_error_and_no_result(caplog: pytest.LogCaptureFixture) -> None:
    batch = PredictionBatch(tasks(2), LOG)
    batch.add(0, [item("a")], 0.9)
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        batch.fail(0, TaskError("task 1's audio 'audio': 404 from https://x/a.wav"))
        batch.fail(0, TaskError("a later error"))
    batch.add(0, [item("b")], 0.1)  # a failed task takes nothing more
    failed, fine = batch.predictions()
    assert failed == Prediction.failed("task 1's audio 'audio': 404 from https://x/a.wav")
    assert fine == Prediction(result=[], score=None)
    assert batch.failed(0) and not batch.failed(1)
    assert [r.getMessage() for r in caplog.records] == ["task 1's audio 'audio': 404 from https://x/a.wav"]


def test_guard_fails_its_task_alone(caplog: pytest.LogCaptureFixture) -> None:
    batch = PredictionBatch(tasks(3), LOG, model="Whisper")
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        for i in range(3):
            with batch.guard(i):
                if i == 0:
                    raise TaskError("cannot decode this one")
                if i == 1:
                    raise RuntimeError("CUDA out of memory")
                batch.add(i, [item("ok")], 0.5)
    known, unexpected, fine = batch.predictions()
    assert known.error == "cannot decode this one"
    assert unexpected.error == "task 2: Whisper failed (RuntimeError: CUDA out of memory)"
    assert fine == Prediction(result=[item("ok")], score=0.5)
    logged = {r.getMessage(): r for r in caplog.records}
    assert logged["task 2: Whisper failed"].exc_info is not None  # the traceback of the unexpected one
    assert logged["task 1: cannot decode this one"].exc_info is None


def test_ready_passes_on_values_of_tasks_still_standing_and_closes_the_others() -> None:
    batch = PredictionBatch(tasks(4), LOG)
    batch.fail(2, TaskError("failed on another object"))
    values = [Closable(f"v{i}") for i in range(4)]
    fetched = [(0, values[0]), (1, MediaError("task 2's audio 'audio': 404")), (2, values[2]), (3, values[3])]
    handed = list(batch.ready(fetched))
    assert handed == [(0, values[0]), (3, values[3])]
    assert values[2].closed and not values[0].closed and not values[3].closed
    assert [p.error for p in batch.predictions()] == [None, "task 2's audio 'audio': 404", "failed on another object",
                                                      None]  # fmt: skip
    assert list(batch.ready([(2, "a value without close()")])) == []


def test_finished_and_failed_tasks_are_reported_once_with_the_prediction_returned_for_them() -> None:
    heard: list[tuple[int, Prediction]] = []
    batch = PredictionBatch(tasks(4), LOG)
    with listening(lambda index, prediction: heard.append((index, prediction))):
        batch.add(1, [item("b")], 0.7)
        batch.finish(1)
        batch.finish(1)  # once only
        batch.fail(3, TaskError("task 4's audio 'audio': 404"))  # a failed task is final: told at once
        batch.fail(3, TaskError("a later error"))
        with batch.guard(2):
            raise RuntimeError("boom")
        batch.add(0, [item("a")], 0.2)
        batch.finish(0)
    batch.finish(0)  # outside listening() a report goes nowhere
    predictions = batch.predictions()
    assert [index for index, _ in heard] == [1, 3, 2, 0]
    assert all(prediction == predictions[index] for index, prediction in heard)
    assert predictions[1] == Prediction(result=[item("b")], score=0.7)
    assert predictions[3] == Prediction.failed("task 4's audio 'audio': 404")
