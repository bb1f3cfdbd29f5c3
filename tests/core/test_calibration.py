from __future__ import annotations

import random

import pytest

from labelzoo.calibration import Bucket, expected_calibration_error, reliability


def test_buckets_count_mean_score_and_precision_and_hold_their_edges() -> None:
    scored = [(0.2, False), (0.4, True), (0.75, True), (0.75, False), (1.0, True), (0.995, True)]
    buckets = reliability(scored, edges=(0.0, 0.5, 0.9, 1.0))
    assert buckets == [Bucket(0.0, 0.5, 2, pytest.approx(0.3), 0.5), Bucket(0.5, 0.9, 2, 0.75, 0.5),
                       Bucket(0.9, 1.0, 2, pytest.approx(0.9975), 1.0)]
    assert expected_calibration_error(buckets) == pytest.approx((2 * 0.2 + 2 * 0.25 + 2 * 0.0025) / 6)
    assert "n=    2" in buckets[0].row()


def test_a_calibrated_model_has_a_small_error_and_an_overconfident_one_a_large_one() -> None:
    rng = random.Random(0)
    scores = [rng.random() for _ in range(20_000)]
    calibrated = [(s, rng.random() < s) for s in scores]
    overconfident = [(min(1.0, s + 0.3), right) for s, right in calibrated]
    assert expected_calibration_error(reliability(calibrated)) < 0.02
    assert expected_calibration_error(reliability(overconfident)) > 0.2
    assert expected_calibration_error([]) == 0.0


def test_edges_must_rise() -> None:
    with pytest.raises(ValueError, match="must rise"):
        reliability([(0.5, True)], edges=(0.0, 0.5, 0.5, 1.0))
