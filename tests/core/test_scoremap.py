"""Task-score maps: fitted on (score, right) pairs, monotone, near the identity on little evidence, stored as JSON."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

import pytest

from labelzoo import Backend, PredictContext, Prediction, Settings, Target, Task
from labelzoo.calibration import expected_calibration_error, reliability
from labelzoo.labelconfig import parse_label_config
from labelzoo.media import MediaResolver
from labelzoo.prediction.predictor import run_backend
from labelzoo.scoremap import FILE_NAME, IDENTITY, MIN_SLOPE, ScoreMap


def overconfident(n: int, seed: int = 0) -> list[tuple[float, bool]]:
    """Scores spread over [0.5, 1) that are right with probability score**4: a model far too sure of itself."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        score = 0.5 + 0.5 * rng.random()
        pairs.append((score, rng.random() < score**4))
    return pairs


def ece(pairs: Sequence[tuple[float, bool]]) -> float:
    return expected_calibration_error(reliability(pairs))


def test_a_map_fitted_on_held_out_tasks_makes_overconfident_scores_probabilities():
    scores = ScoreMap.fit(overconfident(400, seed=1))
    fresh = overconfident(2000, seed=2)  # tasks the map never saw
    mapped = [(scores(s), right) for s, right in fresh]
    assert ece(fresh) > 0.15
    assert ece(mapped) < 0.04
    assert scores.tasks == 400 and 0 < scores.right < 400


def test_the_map_keeps_the_order_of_tasks():
    scores = ScoreMap.fit(overconfident(300))
    grid = [i / 100 for i in range(1, 100)]
    mapped = [scores(s) for s in grid]
    assert mapped == sorted(mapped) and len(set(mapped)) == len(mapped)
    reversed_evidence = [(s, s < 0.7) for s, _ in overconfident(300)]  # higher scores more often wrong
    flat = ScoreMap.fit(reversed_evidence)
    assert flat.a == MIN_SLOPE  # a map may flatten the scores but never ties them or turns them upside down
    flattened = [flat(s) for s in grid]
    assert flattened == sorted(flattened) and len(set(flattened)) == len(flattened)


def test_few_held_out_tasks_move_the_map_little():
    few = ScoreMap.fit([(0.9, False), (0.95, True), (0.8, False)])
    many = ScoreMap.fit([(0.9, False), (0.95, True), (0.8, False)] * 100)
    assert abs(few(0.9) - 0.9) < abs(many(0.9) - 0.9)
    assert abs(few(0.9) - 0.9) < 0.3  # one of three right: 0.9 moves towards 1/3, not all the way
    assert ScoreMap.fit([]) == ScoreMap(1.0, 0.0, 0, 0)


def test_missing_scores_stay_missing_and_the_identity_changes_nothing():
    scores = ScoreMap.fit(overconfident(100))
    assert scores(None) is None
    assert IDENTITY(0.73) == 0.73 and IDENTITY.is_identity


def test_the_map_is_saved_as_json_and_a_bad_file_serves_raw_scores(tmp_path, caplog):
    scores = ScoreMap.fit(overconfident(100))
    scores.save(tmp_path)
    assert set(json.loads((tmp_path / FILE_NAME).read_text())) == {"a", "b", "tasks", "right"}
    assert ScoreMap.read(tmp_path) == scores
    assert ScoreMap.read(tmp_path / "nowhere") is IDENTITY and ScoreMap.read(None) is IDENTITY
    (tmp_path / FILE_NAME).write_text('{"a": "x"}')
    assert ScoreMap.read(tmp_path) is IDENTITY
    (tmp_path / FILE_NAME).write_text('{"a": -1, "b": 0, "tasks": 3, "right": 1}')
    assert ScoreMap.read(tmp_path) is IDENTITY
    assert "serving raw task scores" in caplog.text


class Scored(Backend):
    targets = (Target("Choices", "Text"),)
    batch_size = 2

    def base_version(self) -> str:
        return "scored"

    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
        return [Prediction(result=[{"from_name": "c", "to_name": "t", "type": "choices", "score": 0.9,
                                    "value": {"choices": ["A"]}}], score=0.9) for _ in tasks]


def test_the_core_maps_task_scores_only_and_tells_listeners_the_mapped_score(tmp_path):
    settings = Settings.from_env({"MODEL_DIR": str(tmp_path), "MEDIA_CACHE_DIR": str(tmp_path / "c")})
    config = parse_label_config('<View><Text name="t" value="$t"/><Choices name="c" toName="t">'
                                '<Choice value="A"/></Choices></View>')
    scores = ScoreMap(a=2.0, b=-1.0, tasks=50, right=30)
    ctx = PredictContext(project="1", config=config, media=MediaResolver(settings.media), settings=settings,
                         model_version="scored", task_scores=scores)
    heard: list[float | None] = []
    out = run_backend(Scored(settings), [Task(id=i, data={"t": "x"}) for i in range(3)], ctx,
                      lambda i, p: heard.append(p.score))
    assert [p.score for p in out] == heard == [pytest.approx(scores(0.9))] * 3
    assert all(p.result[0]["score"] == 0.9 for p in out)  # the region's score is the model's
