"""Confidences from the beam: per entity, and per task for uncertainty sampling.

The beam holds up to ``beam_width`` complete parses of a text, each with a probability (normalised over
the beam). For one control, each parse is first restricted to the entities whose model label maps to
one of the control's labels (the others are never shown, so they must not count). Then:

* an entity's ``score`` is its marginal probability: the summed probability of the parses that contain
  it, with the same boundaries and the same config label;
* entities of the best parse scoring below the threshold are left out;
* the task's ``score`` is the probability that what is shown is exactly right: the summed probability
  of the parses whose restricted entity set equals the shown set. A text with no entity shown scores
  the probability that it has none; a text with one doubtful entity scores low even when the others
  are certain, which is what uncertainty sampling should pick first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from spacy.tokens import Doc

from .pipeline import PARSES_KEY, Parse

Entity = tuple[int, int, str]  # token start, token end, config label


@dataclass(frozen=True)
class ScoredSpan:
    start: int  # code-point offsets into the text, end exclusive
    end: int
    label: str  # the config label key
    score: float


@dataclass(frozen=True)
class ScoredText:
    spans: list[ScoredSpan]
    score: float


def restrict(parses: Sequence[Parse], label_of: Callable[[str], str | None]) -> list[tuple[float, frozenset[Entity]]]:
    """Each parse with its probability renormalised over the beam, keeping only mapped entities."""
    total = sum(prob for prob, _ in parses)
    if total <= 0:
        return []
    out = []
    for prob, ents in parses:
        mapped = ((start, end, label_of(label)) for start, end, label in ents)
        out.append((prob / total, frozenset((s, e, key) for s, e, key in mapped if key is not None)))
    return out


def score_text(doc: Doc, label_of: Callable[[str], str | None], threshold: float) -> ScoredText:
    """The entities to show for one control, with their marginals and the task-level score.

    The best parse is the one ``doc.ents`` holds (spaCy sets it from the top of the beam).
    """
    parses = restrict(doc.user_data.get(PARSES_KEY, ()), label_of)
    if not parses:
        return ScoredText(spans=[], score=0.0)
    marginal: defaultdict[Entity, float] = defaultdict(float)
    for prob, ents in parses:
        for ent in ents:
            marginal[ent] += prob
    best = max(parses, key=lambda parse: parse[0])[1]
    shown = sorted((ent, min(1.0, marginal[ent])) for ent in best if marginal[ent] >= threshold)
    chosen = frozenset(ent for ent, _ in shown)
    task_score = min(1.0, sum(prob for prob, ents in parses if ents == chosen))
    spans = []
    for (start, end, label), score in shown:
        span = doc[start:end]
        spans.append(ScoredSpan(span.start_char, span.end_char, label, score))
    return ScoredText(spans=spans, score=task_score)
