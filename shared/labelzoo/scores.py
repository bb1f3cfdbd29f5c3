"""Confidence scores in [0, 1] from the numbers models report, for regions and for a task's prediction.

A score drives Label Studio's uncertainty sampling (the least sure tasks first), so it must stay a number in
[0, 1] whatever the model gives back: a NaN or an infinity (random or broken weights), a value just outside
the range (rounding), or nothing at all. These helpers turn such a number into a probability with a stated
fallback instead of letting it poison a sort:

* :func:`probability`: a reported probability, clipped; not a finite number → the fallback;
* :func:`probability_from_logprob`: ``exp(logprob)``, e.g. the geometric mean of the probabilities of the
  tokens a sequence model chose, from their mean log-probability;
* :func:`weighted_mean`: one score for many parts, each weighing by its size (a segment's duration, a
  region's area), so a long bad stretch weighs more than a short one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def _finite(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def _clip(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def probability(value: Any, default: float = 0.0) -> float:
    """A reported probability in [0, 1]; ``default`` when it is not a finite number (by default: no confidence)."""
    return _clip(_finite(value, default))


def probability_from_logprob(logprob: Any) -> float:
    """``exp(logprob)`` in [0, 1]; 0 when ``logprob`` is not a finite number.

    For a mean log-probability over tokens this is their geometric mean probability.
    """
    return math.exp(min(_finite(logprob, -math.inf), 0.0))


def weighted_mean(scores: Sequence[float], weights: Sequence[float], *, empty: float = 0.0) -> float:
    """The mean of ``scores`` weighted by ``weights`` (negative weights count as 0).

    When every weight is 0 (points, zero-length segments) it is the plain mean; ``empty`` when there is no
    score at all (say 0.0 to put a task where the model found nothing first for review).
    """
    if len(scores) != len(weights):
        raise ValueError(f"{len(scores)} scores but {len(weights)} weights")
    if not scores:
        return empty
    clamped = [max(0.0, float(weight)) for weight in weights]
    total = sum(clamped)
    if total <= 0.0:
        return sum(scores) / len(scores)
    return sum(score * weight for score, weight in zip(scores, clamped, strict=True)) / total
