"""Task scores as probabilities: a monotone map per model version, fitted on the tasks it held out.

A backend's task score orders tasks (the least sure first), but it need not be the probability that the shown
pre-label is right: spaCy's product of token probabilities is overconfident on text unlike what it learnt from.
When a version is trained, the core predicts the tasks its ``fit`` held out, notes each task score and whether
the shown result equals the human annotation (:meth:`Backend.agrees`), and fits

    P(right | score) = sigmoid(a * logit(score) + b)

(Platt scaling on the score's logit). The fit is the most probable ``(a, b)`` under a Gaussian prior centred
on the identity map (``a = 1, b = 0``, precision :data:`PRIOR_PRECISION`): on a few held-out tasks the map
stays close to the raw score, with many the tasks decide. ``a`` is kept at or above :data:`MIN_SLOPE`, so the
map never ties or reverses tasks: uncertainty sampling picks the same tasks within a version; only the numbers
become probabilities. The map changes task scores only; region scores stay the model's own.

The map is stored as JSON beside the version's weights (:data:`FILE_NAME`). A version that never trained on a
project (the base model, and every version of a backend that does not learn) gets a map per project from a
calibration job instead (``POST /bulk`` with ``calibrate``, or "Start Training" on a backend that does not learn:
every human annotation of the project is held out for it), kept in the store (:class:`labelzoo.store.ScoreMaps`).
A project's map of a version wins over the one in its folder, being fitted on more tasks. A version with
neither serves its raw scores.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("labelzoo.scores")

FILE_NAME = "score_map.json"
PRIOR_PRECISION = 2.0  # the prior's inverse variance on a and b, in logits: a few tasks' worth of belief
MIN_SLOPE = 0.05  # a stays above zero: the map may flatten scores, never tie or reverse them
EPSILON = 1e-4  # scores are clipped to [EPSILON, 1 - EPSILON] before their logit
_ITERATIONS = 50


def _logit(score: float) -> float:
    s = min(max(score, EPSILON), 1.0 - EPSILON)
    return math.log(s / (1.0 - s))


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass(frozen=True)
class ScoreMap:
    """``P(right | score) = sigmoid(a * logit(score) + b)``, fitted on ``tasks`` held-out tasks, ``right`` of
    them right."""

    a: float = 1.0
    b: float = 0.0
    tasks: int = 0
    right: int = 0

    def __call__(self, score: float | None) -> float | None:
        """The calibrated task score; None stays None (a task without a score)."""
        if score is None or not math.isfinite(score):
            return score
        if self.is_identity:
            return score
        return _sigmoid(self.a * _logit(score) + self.b)

    @property
    def is_identity(self) -> bool:
        return self.a == 1.0 and self.b == 0.0

    @classmethod
    def fit(cls, pairs: Sequence[tuple[float, bool]], prior_precision: float = PRIOR_PRECISION) -> ScoreMap:
        """The most probable map for ``(task score, right)`` pairs under the prior (Newton's method, ``a >= 0``)."""
        xs = [_logit(score) for score, _ in pairs]
        ys = [1.0 if right else 0.0 for _, right in pairs]
        a, b = 1.0, 0.0
        for _ in range(_ITERATIONS):
            ga, gb = prior_precision * (a - 1.0), prior_precision * b  # gradient of the negative log posterior
            haa = hbb = prior_precision
            hab = 0.0
            for x, y in zip(xs, ys, strict=True):
                p = _sigmoid(a * x + b)
                ga += (p - y) * x
                gb += p - y
                w = p * (1.0 - p)
                haa += w * x * x
                hab += w * x
                hbb += w
            det = haa * hbb - hab * hab
            step_a, step_b = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
            a, b = max(a - step_a, MIN_SLOPE), b - step_b
            if abs(step_a) < 1e-9 and abs(step_b) < 1e-9:
                break
        return cls(a, b, len(pairs), int(sum(ys)))

    def describe(self) -> str:
        return (f"task scores calibrated on {self.tasks} held-out tasks ({self.right} right): "
                f"P(right) = sigmoid({self.a:.3f} * logit(score) {'+' if self.b >= 0 else '-'} {abs(self.b):.3f})")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Any, where: str) -> ScoreMap:
        """The map in ``raw`` (as :meth:`to_json` wrote it); the identity, logged, when it cannot be used: the
        version still serves, with its raw scores. ``where`` names the source in the log line."""
        try:
            found = cls(float(raw["a"]), float(raw["b"]), int(raw["tasks"]), int(raw["right"]))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("%s cannot be read (%s: %s); serving raw task scores", where, type(exc).__name__, exc)
            return IDENTITY
        if not (math.isfinite(found.a) and math.isfinite(found.b)) or found.a < 0:
            log.warning("%s holds no usable map (a=%s, b=%s); serving raw task scores", where, found.a, found.b)
            return IDENTITY
        return found

    def save(self, folder: Path) -> None:
        (folder / FILE_NAME).write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, folder: Path | None) -> ScoreMap:
        """The map stored in a version's folder; the identity without one, or with one that cannot be read."""
        path = None if folder is None else folder / FILE_NAME
        if path is None or not path.is_file():
            return IDENTITY
        try:
            raw: Any = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("%s cannot be read (%s: %s); serving raw task scores", path, type(exc).__name__, exc)
            return IDENTITY
        return cls.from_json(raw, str(path))


IDENTITY = ScoreMap()
