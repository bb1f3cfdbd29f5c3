"""Batch handling: chunks of the backend's batch size, invalid content caught before Label Studio sees it."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from labelzoo import Backend, PredictContext, Prediction, RequestError, Settings, Target, Task
from labelzoo.batch import PredictionBatch
from labelzoo.labelconfig import parse_label_config
from labelzoo.media import MediaResolver
from labelzoo.prediction.predictor import run_backend, to_json


class Recorder(Backend):
    targets = (Target("Choices", "Text"),)
    batch_size = 3

    def __init__(self, settings: Settings, weights=None, result=None) -> None:
        super().__init__(settings, weights)
        self.chunks: list[list[int]] = []
        self.result = result

    def base_version(self) -> str:
        return "recorder"

    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
        self.chunks.append([t.id for t in tasks])
        return [Prediction(result=self.result if self.result is not None else [], score=0.5) for _ in tasks]


@pytest.fixture
def ctx(tmp_path):
    settings = Settings.from_env({"MODEL_DIR": str(tmp_path), "MEDIA_CACHE_DIR": str(tmp_path / "c")})
    config = parse_label_config('<View><Text name="t" value="$t"/><Choices name="c" toName="t">'
                                '<Choice value="A"/></Choices></View>')
    return PredictContext(project="1", config=config, media=MediaResolver(settings.media), settings=settings,
                          model_version="recorder")


def test_large_batches_reach_the_backend_in_chunks_of_its_batch_size(ctx):
    backend = Recorder(ctx.settings)
    tasks = [Task(id=i, data={"t": "x"}) for i in range(8)]
    assert len(run_backend(backend, tasks, ctx)) == 8
    assert backend.chunks == [[0, 1, 2], [3, 4, 5], [6, 7]]


@pytest.mark.parametrize(
    ("result", "words"),
    [
        ([{"from_name": "c", "to_name": "t", "type": "choices"}], "lacks value"),
        (["not a dict"], "must be a dict"),
        ([{"from_name": "c", "to_name": "t", "type": "Choices!", "value": {}}], "does not know"),
        ([{"from_name": "c", "to_name": "t", "type": "choices", "value": {}, "origin": "model"}], "origin"),
        ([{"from_name": "c", "to_name": "t", "type": "choices", "value": {"x": {1, 2}}}], "set"),
    ],
)
def test_invalid_prediction_content_never_reaches_label_studio(ctx, result, words):
    (prediction,) = run_backend(Recorder(ctx.settings, result=result), [Task(id=1, data={"t": "x"})], ctx)
    item = to_json(prediction, "recorder")
    assert "result" not in item and words in item["error"]
    assert item["model_version"] == "recorder"


def test_numpy_values_and_nan_scores_become_plain_json(ctx):
    import json

    import numpy as np

    result = [{"from_name": "c", "to_name": "t", "type": "choices", "value": {"choices": ["A"]},
               "score": np.float32(0.25)}]
    item = to_json(Prediction(result=result, score=float("nan")), "recorder")
    text = json.dumps(item, allow_nan=False)
    assert json.loads(text) == {"result": [{**result[0], "score": 0.25}], "model_version": "recorder"}


class Reporter(Recorder):
    """Reports each task finished as it goes; a task whose data says ``crash`` raises out of predict()."""

    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
        self.chunks.append([t.id for t in tasks])
        batch = PredictionBatch(tasks)
        for i, task in enumerate(tasks):
            if task.data["t"] == "crash":
                raise RuntimeError("the model crashed")
            batch.add(i, [], 0.1 * (task.id or 0))
            batch.finish(i)
        return batch.predictions()


def test_tasks_reported_finished_are_told_by_their_index_in_the_whole_request(ctx):
    heard: list[tuple[int, float | None]] = []
    tasks = [Task(id=i, data={"t": "x"}) for i in range(5)]
    out = run_backend(Reporter(ctx.settings), tasks, ctx, lambda i, p: heard.append((i, p.score)))
    assert heard == [(i, 0.1 * i) for i in range(5)] == [(i, p.score) for i, p in enumerate(out)]
    silent: list[int] = []
    run_backend(Recorder(ctx.settings), tasks, ctx, lambda i, p: silent.append(i))  # told when each call returns
    assert silent == [0, 1, 2, 3, 4]


def test_a_call_that_fails_after_reporting_tasks_retries_only_the_others(ctx):
    backend = Reporter(ctx.settings)
    tasks = [Task(id=1, data={"t": "x"}), Task(id=2, data={"t": "crash"}), Task(id=3, data={"t": "x"})]
    heard: list[int] = []
    first, crashed, third = run_backend(backend, tasks, ctx, lambda i, p: heard.append(i))
    assert backend.chunks == [[1, 2, 3], [2], [3]]  # task 1 was done: not predicted twice
    assert first.score == 0.1 and third.score == pytest.approx(0.3)
    assert crashed.error == "RuntimeError: the model crashed"
    assert heard == [0, 1, 2]  # each task told once


class SameForAll(Recorder):
    """Fails every call with an error that is the same for each task: a project's bad extra_params value."""

    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
        self.chunks.append([t.id for t in tasks])
        raise RequestError("extra_params.prompts must map labels to prompts")


def test_an_error_the_same_for_every_task_fails_them_all_without_retrying_each(ctx):
    backend = SameForAll(ctx.settings)
    tasks = [Task(id=i, data={"t": "x"}) for i in range(4)]
    heard: list[int] = []
    out = run_backend(backend, tasks, ctx, lambda i, p: heard.append(i))
    assert backend.chunks == [[0, 1, 2], [3]]  # one call per chunk, no task predicted alone
    assert [p.error for p in out] == ["extra_params.prompts must map labels to prompts"] * 4
    assert heard == [0, 1, 2, 3]
