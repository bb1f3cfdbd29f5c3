"""Confidence scores from Whisper's own numbers, so uncertainty sampling shows the worst transcripts first.

* A segment: ``exp(avg_logprob) × (1 − no_speech_prob)``, in [0, 1]. ``exp(avg_logprob)`` is the
  geometric mean of the probabilities Whisper gave the tokens it chose; ``1 − no_speech_prob``
  discounts text decoded over what Whisper itself thinks is silence (a typical hallucination).
* A word (``model_granularity="word"``): Whisper's word probability.
* A transcript (the task's score): the mean of its segment scores weighted by segment duration, so a
  long bad stretch weighs more than a short one; ``0.0`` when nothing was transcribed (silence, or
  speech Whisper could not put into words), which puts such tasks first for review.

A number Whisper reports as NaN or infinite (random or broken weights) counts as no confidence (0), as
:mod:`labelzoo.scores` has it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labelzoo.scores import probability, probability_from_logprob, weighted_mean


def segment_score(segment: Mapping[str, Any]) -> float:
    """``exp(avg_logprob) × (1 − no_speech_prob)`` in [0, 1]; an unknown no-speech probability counts as silence."""
    speech = 1.0 - probability(segment.get("no_speech_prob"), default=1.0)
    return probability_from_logprob(segment.get("avg_logprob")) * speech


def word_score(word: Mapping[str, Any]) -> float:
    return probability(word.get("probability"))


def transcript_score(segments: Sequence[Mapping[str, Any]]) -> float:
    """Duration-weighted mean of the segment scores (plain mean if every segment has zero length)."""
    durations = [float(s["end"]) - float(s["start"]) for s in segments]
    return weighted_mean([segment_score(s) for s in segments], durations, empty=0.0)
