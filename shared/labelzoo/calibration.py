"""How far to trust a model's scores: a reliability table and the expected calibration error.

A score is calibrated when, of the predictions scoring about ``p``, a share ``p`` is right. Given each shown
prediction's score and whether it was right (against gold annotations), :func:`reliability` sorts them into
score buckets and gives each bucket's count, mean score and precision; :func:`expected_calibration_error` is
the gap between mean score and precision, averaged over the buckets weighted by their counts (0: perfectly
calibrated). Benchmarks print both.

Auto-labelling trusts the tasks scoring at or above a threshold: :func:`at_threshold` says what precision and
coverage a threshold gives on held-out tasks, :func:`choose_threshold` picks the lowest threshold whose
precision reaches a target *with a stated confidence*: the lower end of the one-sided Wilson interval at that
confidence (0.9 by default) must reach the target, so that the few held-out tasks a project has do not promise
more than they show (20 right of 20 is not evidence of 0.95). Only thresholds with at least ``min_support``
held-out tasks at or above them count. Each estimate carries its 95 % Wilson interval.

The evidence for all of it, and for the task-score maps of :mod:`labelzoo.scoremap`, is the same:
:func:`held_out_pairs` predicts tasks a version did not learn from and pairs each task score with whether the
shown result equals the human one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from labelzoo.results import restricted

if TYPE_CHECKING:
    from labelzoo.backend import Task

MIN_SUPPORT = 20  # held-out tasks at or above a threshold before its precision counts
Z95 = 1.959964  # the normal quantile of a two-sided 95 % interval
CONFIDENCE = 0.9  # how sure a chosen threshold's precision is to reach the target

EDGES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)  # where most scores of a decent model fall, finely at the top


@dataclass(frozen=True)
class Bucket:
    low: float
    high: float  # a bucket holds low <= score < high; the last one holds its high end too
    count: int
    mean_score: float
    precision: float

    def row(self) -> str:
        """The bucket as one line of a printed table."""
        return (f"{self.low:4.2f}-{self.high:4.2f}  n={self.count:5d}  mean score {self.mean_score:.3f}  "
                f"precision {self.precision:.3f}")


def reliability(scored: Iterable[tuple[float, bool]], edges: Sequence[float] = EDGES) -> list[Bucket]:
    """The non-empty buckets between consecutive ``edges`` of ``(score, right)`` pairs, in score order."""
    if len(edges) < 2 or any(b <= a for a, b in pairwise(edges)):
        raise ValueError(f"bucket edges must rise: {list(edges)}")
    pairs = list(scored)
    buckets = []
    for i, (low, high) in enumerate(pairwise(edges)):
        last = i == len(edges) - 2
        inside = [(s, right) for s, right in pairs if low <= s < high or (last and s == high)]
        if inside:
            buckets.append(Bucket(low, high, len(inside), sum(s for s, _ in inside) / len(inside),
                                  sum(right for _, right in inside) / len(inside)))
    return buckets


def expected_calibration_error(buckets: Sequence[Bucket]) -> float:
    """The count-weighted mean of ``|mean score - precision|`` over ``buckets``; 0.0 without any."""
    total = sum(bucket.count for bucket in buckets)
    if not total:
        return 0.0
    return sum(bucket.count * abs(bucket.mean_score - bucket.precision) for bucket in buckets) / total


@dataclass(frozen=True)
class Estimate:
    """What trusting the tasks scoring at or above ``threshold`` gives on held-out tasks."""

    threshold: float | None  # None: no threshold reaches the target
    precision: float | None  # of the held-out tasks at or above it; None when there are none
    interval: tuple[float, float] | None  # 95 % Wilson interval of that precision
    support: int  # held-out tasks at or above it
    held_out: int  # held-out tasks in all
    target: float | None = None  # the precision asked for, when the threshold was chosen
    confidence: float | None = None  # how sure the chosen threshold reaches it

    @property
    def coverage(self) -> float:
        """The share of held-out tasks at or above the threshold."""
        return self.support / self.held_out if self.held_out else 0.0

    def describe(self) -> str:
        """One sentence a user reads before anything is written."""
        if self.threshold is None:
            return (f"no task-score threshold reaches precision {self.target:.2f} with {self.confidence:.0%} "
                    f"confidence on the {self.held_out} held-out tasks: nothing would be auto-labelled (more "
                    "human annotations, or a lower target, may find one)")
        if self.precision is None or self.interval is None:
            return f"threshold {self.threshold:.3f}: none of the {self.held_out} held-out tasks score at or above it"
        low, high = self.interval
        return (f"threshold {self.threshold:.3f}: precision {self.precision:.3f} (95 % interval {low:.3f}-"
                f"{high:.3f}) and coverage {self.coverage:.3f} on {self.support} of {self.held_out} held-out tasks")

    def to_json(self) -> dict[str, object]:
        return {"threshold": self.threshold, "target_precision": self.target, "confidence": self.confidence,
                "expected_precision": self.precision,
                "precision_interval": None if self.interval is None else list(self.interval),
                "coverage": self.coverage, "held_out_tasks": self.held_out, "held_out_above": self.support,
                "summary": self.describe()}


def wilson_interval(right: int, count: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``right / count`` (``(0, 1)`` for no observations)."""
    if count <= 0:
        return 0.0, 1.0
    p = right / count
    centre = (p + z * z / (2 * count)) / (1 + z * z / count)
    half = z * math.sqrt(p * (1 - p) / count + z * z / (4 * count * count)) / (1 + z * z / count)
    return max(0.0, centre - half), min(1.0, centre + half)


def at_threshold(scored: Iterable[tuple[float, bool]], threshold: float) -> Estimate:
    """Precision and coverage on the held-out ``(score, right)`` pairs of trusting scores ``>= threshold``."""
    pairs = list(scored)
    above = [right for score, right in pairs if score >= threshold]
    if not above:
        return Estimate(threshold, None, None, 0, len(pairs))
    return Estimate(threshold, sum(above) / len(above), wilson_interval(sum(above), len(above)), len(above),
                    len(pairs))


def choose_threshold(scored: Iterable[tuple[float, bool]], target: float, *, min_support: int = MIN_SUPPORT,
                     confidence: float = CONFIDENCE) -> Estimate:
    """The lowest threshold whose precision on the held-out ``(score, right)`` pairs reaches ``target`` with
    ``confidence`` (0.5: the measured precision itself reaches it).

    The candidates are the held-out scores themselves; a candidate counts only with ``min_support`` pairs or more
    at or above it. Without one, the estimate's threshold is None.
    """
    if not 0.0 < target <= 1.0:
        raise ValueError(f"the target precision must be in (0, 1], got {target!r}")
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"the confidence must be in [0.5, 1), got {confidence!r}")
    z = NormalDist().inv_cdf(confidence)
    pairs = sorted(scored, key=lambda pair: -pair[0])
    right = 0
    chosen: Estimate | None = None
    for count, (score, ok) in enumerate(pairs, start=1):
        right += ok
        tied = count < len(pairs) and pairs[count][0] == score
        if tied or count < min_support:
            continue  # a threshold takes every pair of its score
        if wilson_interval(right, count, z)[0] >= target - 1e-12:
            chosen = Estimate(score, right / count, wilson_interval(right, count), count, len(pairs), target,
                              confidence)
    return chosen or Estimate(None, None, None, 0, len(pairs), target, confidence)


# --- evidence: held-out tasks, predicted ---------------------------------------------------------------------

#: ``agrees(shown result, human result)`` on the controls the backend fills
Agrees = Callable[[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]], bool]
#: tasks → their predictions as ``/predict`` items (``result`` and ``score``, or ``error``)
Predict = Callable[[Sequence["Task"]], Sequence[Mapping[str, Any]]]


@dataclass(frozen=True)
class HeldOut:
    """A task the model version did not learn from, and its human annotation's result."""

    task: Task
    human: Sequence[Mapping[str, Any]]


def task_score(item: Mapping[str, Any]) -> float:
    """A predicted item's task score; 0 without one (never sure)."""
    score = item.get("score")
    return float(score) if isinstance(score, int | float) and math.isfinite(score) else 0.0


def held_out_pairs(held_out: Sequence[HeldOut], predict: Predict, agrees: Agrees, controls: Collection[str],
                   batch: int = 64, *, shown_only: bool = True) -> list[tuple[float, bool]]:
    """``(task score, shown result equals the human one)`` for each held-out task that was predicted with a
    result that says something: only such a task can be auto-labelled (:func:`labelzoo.bulk.autolabel.sure`), so
    only such tasks say
    how precise a threshold is (a task shown nothing goes to review whatever its score). ``shown_only=False``
    (calibration): every task predicted with a score, an empty result being right when the human's is empty."""
    pairs = []
    for start in range(0, len(held_out), batch):
        part = held_out[start:start + batch]
        for example, item in zip(part, predict([h.task for h in part]), strict=True):
            if "result" not in item or (not shown_only and item.get("score") is None):
                continue  # a task the backend could not predict, or did not score, is no evidence either way
            shown = restricted(item["result"], controls)
            if shown or not shown_only:
                pairs.append((task_score(item), agrees(shown, restricted(example.human, controls))))
    return pairs
