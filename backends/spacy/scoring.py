"""Confidences from the beam: per entity, and per task for uncertainty sampling.

The beam holds up to ``beam_width`` complete parses of a text, each with a probability. For one control,
each parse is first restricted to the entities whose model label maps to one of the control's labels (the
others are never shown, so they must not count); the restricted parses are the
:class:`~labelzoo.alternatives.Alternatives` of the text. Then:

* an entity's ``score`` is its marginal probability: the summed probability of the parses that contain
  it, with the same boundaries and the same config label;
* entities of the best parse scoring below the threshold are left out;
* the task's ``score`` is the probability that what is shown is exactly right: the summed probability
  of the parses whose restricted entity set equals the shown set. A text with no entity shown scores
  the probability that it has none; a text with one doubtful entity scores low even when the others
  are certain, which is what uncertainty sampling should pick first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from spacy.tokens import Doc

from labelzoo.alternatives import Alternatives

from .pipeline import PARSES_KEY

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


def alternatives(doc: Doc, label_of: Callable[[str], str | None]) -> Alternatives[Entity]:
    """The beam's parses of ``doc``, each reduced to the entities whose label maps (to its config label)."""
    return Alternatives.of(
        (prob, ((start, end, key) for start, end, label in ents if (key := label_of(label)) is not None))
        for prob, ents in doc.user_data.get(PARSES_KEY, ())
    )


def score_text(doc: Doc, label_of: Callable[[str], str | None], threshold: float) -> ScoredText:
    """The entities to show for one control, with their marginals and the task-level score.

    The best parse is the one ``doc.ents`` holds (spaCy sets it from the top of the beam).
    """
    parses = alternatives(doc, label_of)
    marginal = parses.marginals()
    shown = sorted((ent, marginal[ent]) for ent in parses.best if marginal[ent] >= threshold)
    spans = []
    for (start, end, label), score in shown:
        span = doc[start:end]
        spans.append(ScoredSpan(span.start_char, span.end_char, label, score))
    return ScoredText(spans=spans, score=parses.probability_of(ent for ent, _ in shown))
