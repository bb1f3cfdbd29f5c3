"""Scores in [0, 1] from what models report: clipped probabilities, exp(log-probability), weighted means."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labelzoo.scores import probability, probability_from_logprob, weighted_mean


def test_a_probability_is_clipped_and_a_broken_number_is_the_fallback() -> None:
    assert probability(0.75) == 0.75 and probability(np.float32(0.5)) == 0.5
    assert probability(1.0000001) == 1.0 and probability(-1e-9) == 0.0
    for broken in (float("nan"), float("inf"), -float("inf"), None, "high"):
        assert probability(broken) == 0.0
        assert probability(broken, default=1.0) == 1.0
    assert probability(None, default=7.0) == 1.0  # the fallback is a probability too


def test_a_probability_from_a_log_probability() -> None:
    assert probability_from_logprob(math.log(0.25)) == pytest.approx(0.25, abs=1e-12)
    assert probability_from_logprob(0.0) == 1.0
    assert probability_from_logprob(0.3) == 1.0 and probability_from_logprob(1e6) == 1.0  # clipped, no overflow
    assert probability_from_logprob(-1e6) == 0.0
    assert probability_from_logprob(float("nan")) == 0.0 and probability_from_logprob(None) == 0.0


def test_a_weighted_mean_weighs_by_size() -> None:
    assert weighted_mean([0.9, 0.2], [9.0, 1.0]) == pytest.approx(0.83, abs=1e-12)
    assert weighted_mean([0.8, 0.4], [0.0, 0.0]) == pytest.approx(0.6, abs=1e-12)  # no sizes: the plain mean
    assert weighted_mean([0.8, 0.4], [-2.0, 1.0]) == pytest.approx(0.4, abs=1e-12)  # a negative size counts as 0
    assert weighted_mean([], []) == 0.0 and weighted_mean([], [], empty=1.0) == 1.0
    with pytest.raises(ValueError, match="2 scores but 1 weights"):
        weighted_mean([0.1, 0.2], [1.0])
