"""Confidences from the recognizer's own moves: per entity, and per task for uncertainty sampling.

spaCy's recognizer labels a text token by token, each move (begin, inside, last or unit of an entity of
some label, or outside) chosen as the most probable of the moves valid there; :mod:`.pipeline` keeps the
probability of every move. The entities shown are exactly ``doc.ents``; the scores never change them:

* an entity's ``score`` is the probability of the moves that made it, one per token: that the model,
  having reached its first token, labels exactly these tokens as one entity of this label;
* the task's ``score`` is the probability that what one control shows is exactly right: the product, over
  the tokens, of the probability of the chosen move inside a shown entity, and outside shown entities of
  every move that shows nothing for this control (outside, or a label the control does not map). It is
  never above the lowest entity score; a text whose tokens are all clearly outside scores ≈ 1.

Entities from components after the recognizer (an ``entity_ruler`` placed after ``ner``) carry no
probability of the model's: they are shown unscored and leave the task score alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from spacy.tokens import Doc

from .pipeline import PROBABILITIES_KEY, MoveProbabilities


@dataclass(frozen=True)
class ScoredSpan:
    start: int  # code-point offsets into the text, end exclusive
    end: int
    label: str  # the config label key
    score: float | None  # None: an entity the recognizer did not make


@dataclass(frozen=True)
class ScoredText:
    spans: list[ScoredSpan]
    score: float


def score_text(doc: Doc, label_of: Callable[[str], str | None], threshold: float) -> ScoredText:
    """The entities of ``doc.ents`` one control shows, with their scores and the task score; entities
    scoring below ``threshold`` are left out (an unscored one is kept)."""
    moves: MoveProbabilities = doc.user_data[PROBABILITIES_KEY]
    shown_labels = np.array([label_of(label) is not None for label in moves.labels], dtype=bool)
    nothing_shown = 1.0 - moves.label_mass[:, shown_labels].sum(axis=1)  # per token
    per_token = np.clip(nothing_shown, 0.0, 1.0)
    spans = []
    for ent in doc.ents:
        key = label_of(ent.label_)
        if key is None:
            continue
        made = (ent.start, ent.end, ent.label_) in moves.entities
        score = float(np.prod(moves.chosen[ent.start : ent.end])) if made else None
        if score is not None and score < threshold:
            continue
        spans.append(ScoredSpan(ent.start_char, ent.end_char, key, score))
        per_token[ent.start : ent.end] = moves.chosen[ent.start : ent.end] if score is not None else 1.0
    return ScoredText(spans=spans, score=float(np.prod(per_token)))

