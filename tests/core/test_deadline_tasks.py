"""PREDICT_DEADLINE answers task by task: a slow backend that reports each task finished (PredictionBatch.finish)
gets every task done by the deadline answered, though its batch is not over, and the rest handed off once."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from labelzoo import Backend, PredictContext, Prediction, Settings, Target, Task
from labelzoo.batch import PredictionBatch
from labelzoo.bulk.store import FINAL
from labelzoo.labelconfig import parse_label_config
from labelzoo.media import MediaResolver
from labelzoo.prediction.deadline import DeadlineRun
from tests.core.bulk_support import PROJECT, fake_ls_fixture, ls_env, texts, versions_per_task  # noqa: F401
from tests.core.fake_label_studio import FakeLabelStudio
from tests.core.test_bulk_deadline import SLOW_BACKEND, only_job, predict_body
from tests.core.training_support import wait_for

# a batch of 16 tasks of 0.2 s each takes 3.2 s: a 1 s deadline falls inside the first batch
SLOW_TASKS = {"SLOW_BATCH_SIZE": "16", "SLOW_TASK_SECONDS": "0.2", "PREDICT_DEADLINE": "1"}


def logged(log: Path) -> list[int]:
    """The ids of the tasks the slow backend predicted, in order, once per prediction."""
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def answered(ids: Sequence[int], results: Sequence[dict[str, Any]]) -> list[int]:
    return [task_id for task_id, item in zip(ids, results, strict=True) if "result" in item]


def test_the_tasks_done_by_the_deadline_are_answered_though_their_batch_is_not(make_client: Any,
                                                                                tmp_path: Path) -> None:
    log = tmp_path / "predicted"
    client = make_client(SLOW_BACKEND, SLOW_LOG=str(log), **SLOW_TASKS)
    ids = list(range(1, 21))  # batches of 16 and 4
    results = client.post("/predict", json=predict_body(ids)).json["results"]
    done = answered(ids, results)
    assert 1 <= len(done) < 16 and done == ids[: len(done)]  # in task order, from inside the first batch
    assert all(item["result"][0]["value"] == {"choices": ["cat"]} for item in results[: len(done)])
    assert all("Label Studio asks for it again next time" in item["error"] for item in results[len(done) :])
    # without credentials the thread finishes the batch it is in, and starts no other
    wait_for(lambda: len(logged(log)) >= 16, 30, "the first batch to end")
    time.sleep(0.5)
    assert logged(log) == ids[:16]


def test_the_rest_of_the_batch_and_the_later_batches_are_posted_once(fake_ls: FakeLabelStudio, make_client: Any,
                                                                    tmp_path: Path) -> None:
    log = tmp_path / "predicted"
    ids = fake_ls.add_tasks(PROJECT, texts(20))
    client = make_client(SLOW_BACKEND, **ls_env(fake_ls, SLOW_LOG=str(log), **SLOW_TASKS))
    results = client.post("/predict", json=predict_body(ids)).json["results"]
    done = answered(ids, results)
    assert 1 <= len(done) < 16 and done == ids[: len(done)]
    job = only_job(client)
    assert job["total"] == 20 - len(done)
    assert all(item["deferred_to"] == job["id"] for item in results[len(done) :])
    final = wait_for(lambda: (j := only_job(client))["status"] in FINAL and j, 30, "the hand-off job")
    assert (final["status"], final["posted"], final["failed"]) == ("succeeded", 20 - len(done), 0), final
    stored = versions_per_task(fake_ls)
    assert {i for i in ids if stored[i]} == set(ids) - set(done)  # the rest, and only the rest, posted
    assert all(len(versions) <= 1 for versions in stored.values())  # once each
    assert sorted(logged(log)) == ids  # every task predicted exactly once


# --- the cut inside a batch, step by step --------------------------------------------------------------------


class Stepped(Backend):
    """Batches of two; task ``n`` finishes once ``open(n)`` is called, and a call returns once ``open(-n)`` is,
    ``n`` being its first task's id (or at once when the test sets nothing for it)."""

    targets = (Target("Choices", "Text"),)
    batch_size = 2

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.gates: dict[int, threading.Event] = {}
        self.predicted: list[int] = []

    def base_version(self) -> str:
        return "stepped"

    def gate(self, key: int) -> threading.Event:
        return self.gates.setdefault(key, threading.Event())

    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
        batch = PredictionBatch(tasks, ctx.logger)
        for i, task in enumerate(tasks):
            assert self.gate(task.id or 0).wait(10)
            self.predicted.append(task.id or 0)
            batch.add(i, [], score=task.id)
            batch.finish(i)
        assert self.gate(-(tasks[0].id or 0)).wait(10)
        return batch.predictions()


class Recording:
    """A hand-off that records what it is given to post."""

    job_id, total = "job-1", 0

    def __init__(self) -> None:
        self.posts: list[tuple[int, list[int], list[float]]] = []
        self.closed = threading.Event()

    def wanted(self) -> bool:
        return True

    def post(self, seq: int, tasks: Sequence[Task], items: Sequence[dict[str, Any]]) -> None:
        self.posts.append((seq, [t.id or 0 for t in tasks], [item["score"] for item in items]))

    def close(self) -> None:
        self.closed.set()


@pytest.fixture
def stepped(tmp_path: Path) -> tuple[Stepped, PredictContext]:
    settings = Settings.from_env({"MODEL_DIR": str(tmp_path), "MEDIA_CACHE_DIR": str(tmp_path / "cache")})
    config = parse_label_config('<View><Text name="t" value="$t"/><Choices name="c" toName="t">'
                                '<Choice value="A"/></Choices></View>')
    ctx = PredictContext(project="1", config=config, media=MediaResolver(settings.media), settings=settings,
                         model_version="stepped")
    return Stepped(settings), ctx


@pytest.mark.parametrize(
    ("opened", "finished", "chunks"),
    [
        # the cut falls inside the second batch: its task 4 is chunk 0, the third batch chunk 1
        ([1, 2, -1, 3], [1, 2, 3], [[4], [5]]),
        # the first batch reported both its tasks but had not returned: nothing of it is posted
        ([1, 2], [1, 2], [[3, 4], [5]]),
    ],
    ids=["inside-a-batch", "batch-reported-not-returned"],
)
def test_a_cut_answers_what_was_reported_and_posts_each_other_task_once(
    stepped: tuple[Stepped, PredictContext], opened: list[int], finished: list[int], chunks: list[list[int]]
) -> None:
    backend, ctx = stepped
    tasks = [Task(id=i, data={"t": "x"}) for i in range(1, 6)]  # batches [1, 2], [3, 4], [5]
    for gate in opened:
        backend.gate(gate).set()
    run = DeadlineRun(backend, tasks, ctx)
    answer = run.answer(time.monotonic() + 1.0)  # the tasks let through finish at once; the others wait
    assert backend.predicted == finished
    assert [p.score if p is not None else None for p in answer] == [*finished, *[None] * (5 - len(finished))]
    assert run.remaining_chunks() == chunks
    handoff = Recording()
    run.hand_over(handoff)
    for gate in range(-5, 6):
        backend.gate(gate).set()
    assert handoff.closed.wait(10)
    assert [(seq, ids) for seq, ids, _ in handoff.posts] == list(enumerate(chunks))
    assert [scores for *_, scores in handoff.posts] == [[float(i) for i in ids] for ids in chunks]
    assert sorted(backend.predicted) == [1, 2, 3, 4, 5]  # none twice
