"""Scores from a model's alternative answers: how sure it is of each part it shows, and of the whole answer.

A model that searches (beam search, an n-best list, samples) ends with several complete answers to one
input, each a set of parts (the entities of a text, the boxes of an image) with a probability.
:class:`Alternatives` keeps them, renormalised over the answers, and gives what uncertainty sampling wants:

* a part's **marginal** (:meth:`Alternatives.marginals`): the total probability of the answers that hold
  exactly this part, a region's score: ≈ 1 when every answer agrees, about 0.5 when half of them see it
  otherwise;
* the probability of an **exact answer** (:meth:`Alternatives.probability_of`): the total probability of
  the answers holding exactly the parts shown, the task's score, the probability that the shown
  prediction needs no correction. It is never above the lowest marginal of the parts shown, so one
  doubtful part makes the whole task doubtful; for an answer with no parts it is the probability that
  there is nothing to find.

Parts are any hashable values; reduce each answer to the parts a control can show (drop labels the config
does not have) before building, so alternatives that differ only in hidden parts count as one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

H = TypeVar("H", bound=Hashable)


@dataclass(frozen=True)
class Alternatives(Generic[H]):
    """Answers with their probabilities, summing to 1 (no answers at all when the model gave none with a
    positive total). Build with :meth:`of`."""

    answers: tuple[tuple[float, frozenset[H]], ...]

    @classmethod
    def of(cls, scored: Iterable[tuple[float, Iterable[H]]]) -> Alternatives[H]:
        """``(probability or any positive weight, parts)`` of each answer, renormalised over the answers."""
        given = [(float(weight), frozenset(parts)) for weight, parts in scored]
        total = sum(weight for weight, _ in given)
        if not total > 0:
            return cls(())
        return cls(tuple((weight / total, parts) for weight, parts in given))

    @property
    def best(self) -> frozenset[H]:
        """The most probable answer (the first of equals); empty without answers."""
        return max(self.answers, key=lambda answer: answer[0])[1] if self.answers else frozenset()

    def marginals(self) -> dict[H, float]:
        """Each part of any answer with the total probability of the answers holding it (at most 1)."""
        found: defaultdict[H, float] = defaultdict(float)
        for probability, parts in self.answers:
            for part in parts:
                found[part] += probability
        return {part: min(1.0, total) for part, total in found.items()}

    def probability_of(self, parts: Iterable[H]) -> float:
        """The total probability of the answers that hold exactly ``parts``; 0 without answers."""
        wanted = frozenset(parts)
        return min(1.0, sum((probability for probability, answer in self.answers if answer == wanted), 0.0))
