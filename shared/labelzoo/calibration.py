"""How far to trust a model's scores: a reliability table and the expected calibration error.

A score is calibrated when, of the predictions scoring about ``p``, a share ``p`` is right. Given each shown
prediction's score and whether it was right (against gold annotations), :func:`reliability` sorts them into
score buckets and gives each bucket's count, mean score and precision; :func:`expected_calibration_error` is
the gap between mean score and precision, averaged over the buckets weighted by their counts (0: perfectly
calibrated). Benchmarks print both; auto-labelling uses them to choose a threshold that keeps precision.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

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
