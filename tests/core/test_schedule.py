"""labelzoo.schedule: passes by data size, and early stopping on a held-out score."""

from __future__ import annotations

import pytest

from labelzoo.schedule import EarlyStopping, passes_for


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
