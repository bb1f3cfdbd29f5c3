"""Confidence scores from Whisper's own numbers, so uncertainty sampling shows the worst transcripts first.

* A segment: ``exp(avg_logprob) × (1 − no_speech_prob)``, clipped to [0, 1]. ``exp(avg_logprob)`` is
  the geometric mean of the probabilities Whisper gave the tokens it chose; ``1 − no_speech_prob``
  discounts text decoded over what Whisper itself thinks is silence (a typical hallucination).
* A word (``model_granularity="word"``): Whisper's word probability.
* A transcript (the task's score): the mean of its segment scores weighted by segment duration, so a
  long bad stretch weighs more than a short one; ``0.0`` when nothing was transcribed (silence, or
  speech Whisper could not put into words), which puts such tasks first for review.

A number Whisper reports as NaN or infinite (random or broken weights) counts as no confidence (0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def _finite(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def _clip(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def segment_score(segment: Mapping[str, Any]) -> float:
    """``exp(avg_logprob) × (1 − no_speech_prob)`` in [0, 1]."""
    avg_logprob = _finite(segment.get("avg_logprob"), -math.inf)
    no_speech = _clip(_finite(segment.get("no_speech_prob"), 1.0))
    return _clip(math.exp(avg_logprob) * (1.0 - no_speech))


def word_score(word: Mapping[str, Any]) -> float:
    return _clip(_finite(word.get("probability"), 0.0))


def transcript_score(segments: Sequence[Mapping[str, Any]]) -> float:
    """Duration-weighted mean of the segment scores (plain mean if every segment has zero length)."""
    if not segments:
        return 0.0
    scores = [segment_score(s) for s in segments]
    weights = [max(0.0, float(s["end"]) - float(s["start"])) for s in segments]
    total = sum(weights)
    if total <= 0.0:
        return sum(scores) / len(scores)
    return sum(score * weight for score, weight in zip(scores, weights, strict=True)) / total
