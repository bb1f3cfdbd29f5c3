"""labelzoo.schedule: passes by data size, early stopping on a held-out score, and the loop around both."""

from __future__ import annotations

from typing import Any

import pytest

from labelzoo.schedule import EarlyStopping, PassesRun, passes_for, run_passes


def test_passes_aim_at_the_work_within_bounds() -> None:
    assert passes_for(1500, per_pass=40, low=5, high=30) == 30  # 38 wanted
    assert passes_for(1500, per_pass=100, low=5, high=30) == 15
    assert passes_for(1500, per_pass=101, low=5, high=30) == 15  # rounded up: at least the work
    assert passes_for(1500, per_pass=1000, low=5, high=30) == 5
    assert passes_for(1500, per_pass=0, low=5, high=30) == 30  # no data counts as one item
    with pytest.raises(ValueError, match="low <= high"):
        passes_for(10, per_pass=1, low=6, high=5)


def test_early_stopping_waits_for_patience_after_the_best_pass() -> None:
    stopping = EarlyStopping(patience=3)
    scores = [0.2, 0.5, 0.4, 0.5, 0.3, 0.3, 0.3]
    stopped = None
    for number, score in enumerate(scores, start=1):
        best = stopping.record(number, score)
        assert best == (number in (1, 2, 4))  # a tie with the best counts: it is more trained
        if stopping.should_stop(number):
            stopped = number
            break
    assert stopped == 7 and (stopping.best, stopping.best_pass) == (0.5, 4)


def test_early_stopping_never_stops_before_min_passes_or_without_scores() -> None:
    stopping = EarlyStopping(patience=1, min_passes=4)
    assert not stopping.should_stop(10)  # nothing recorded: training without a held-out set runs on
    stopping.record(1, 0.9)
    assert [stopping.should_stop(n) for n in (2, 3, 4)] == [False, False, True]
    assert not stopping.record(2, 0.8) and stopping.best_pass == 1


class Model:
    """A model whose weights are the number of the pass that last trained it, scored by a table per pass."""

    def __init__(self, scores: list[float]) -> None:
        self.weights, self.scores = 0, scores
        self.restored: list[int] = []
        self.reports: list[tuple[float, str, dict[str, Any]]] = []

    def one_pass(self) -> dict[str, float]:
        self.weights += 1
        return {"loss": 1.0 / self.weights}

    def run(self, passes: int, *, held_out: bool, patience: int = 2, stop_before: int = 0) -> PassesRun:
        def restore(weights: int) -> None:
            self.restored.append(weights)
            self.weights = weights

        return run_passes(
            passes, self.one_pass, evaluate=(lambda: self.scores[self.weights - 1]) if held_out else None,
            keep=lambda: self.weights, restore=restore, stopping=EarlyStopping(patience, min_passes=2),
            report=lambda fraction, message, **metrics: self.reports.append((fraction, message, metrics)),
            cancelled=lambda: self.weights + 1 == stop_before, score_name="f1",
        )  # fmt: skip


def test_passes_stop_early_and_the_best_pass_comes_back() -> None:
    model = Model([0.2, 0.6, 0.5, 0.6, 0.4, 0.3, 0.9])
    run = model.run(7, held_out=True)
    assert run == PassesRun(passes=6, best=0.6, cancelled=False)  # pass 7 (0.9) never ran: 4 was the last best
    assert model.restored == [4] and model.weights == 4  # the tie at pass 4 beat pass 2: more trained
    assert model.reports[0] == (1 / 7, "pass 1/7", {"loss": 1.0, "f1": 0.2})
    assert [message for _, message, _ in model.reports] == [f"pass {n}/7" for n in range(1, 7)]


def test_without_a_held_out_set_every_pass_runs_and_the_last_weights_stay() -> None:
    model = Model([])
    run = model.run(5, held_out=False)
    assert run == PassesRun(passes=5, best=None, cancelled=False)
    assert model.restored == [] and model.weights == 5
    assert model.reports[-1] == (1.0, "pass 5/5", {"loss": 0.2})


def test_a_cancelled_run_stops_before_the_next_pass_and_restores_nothing() -> None:
    model = Model([0.5, 0.4, 0.3, 0.2])
    run = model.run(4, held_out=True, patience=5, stop_before=3)
    assert run == PassesRun(passes=2, best=None, cancelled=True)
    assert model.weights == 2 and model.restored == [] and len(model.reports) == 2
