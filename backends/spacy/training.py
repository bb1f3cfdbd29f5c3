"""Training the entity recognizer: schedule, updates with early stopping, F1.

* Split (the core's :func:`labelzoo.learning.split_held_out`, in ``model.py``): a fixed share of tasks
  (``SPACY_HOLDOUT`` percent, by a hash of the task id) never trains and validates every version, so the
  current and the new model are compared on data neither has seen.
* Schedule (:mod:`labelzoo.schedule`, whose ``run_passes`` runs the passes): about 1,500 example updates
  (5 to 30 passes) so a few dozen sentences converge in seconds; with a held-out set, training stops (after
  at least half the passes) once 3 passes brought no F1 as good as the best, and keeps the last pass with
  the best F1.
* F1 is exact-span entity F1 (:mod:`labelzoo.metrics`), counting only the labels being trained (the
  entities a control shows); tokens whose label the reference leaves unknown count neither way.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import compounding, fix_random_seed, minibatch

from labelzoo.metrics import SpanCounts, count_spans
from labelzoo.schedule import EarlyStopping, PassesRun, passes_for, run_passes
from labelzoo.textspans import AnnotatedText, CharSpan

from .pipeline import RULER_FACTORIES, needed_components

SEED = 0
UPDATES_PER_FIT = 1500
MIN_EPOCHS, MAX_EPOCHS = 5, 30
PATIENCE = 3
DROPOUT = 0.2


def epochs_for(n_train: int, incremental: bool) -> int:
    epochs = passes_for(UPDATES_PER_FIT, per_pass=n_train, low=MIN_EPOCHS, high=MAX_EPOCHS)
    return max(3, epochs // 2) if incremental else epochs


def decode(nlp: Language, ner_name: str, texts: Iterable[str]) -> list[Doc]:
    """Greedy entities from the recognizer and what it needs, whatever is switched on in ``nlp``."""
    docs = [nlp.make_doc(text) for text in texts]
    for name in [*needed_components(nlp, ner_name), ner_name]:
        docs = list(nlp.get_pipe(name).pipe(docs))
    return docs


def pseudo_labels(
    nlp: Language, ner_name: str, texts: Sequence[AnnotatedText], rehearse: set[str]
) -> list[list[CharSpan]]:
    """Rehearsal: the pipeline's own entities with ``rehearse`` labels on each training text, so learning
    the config's labels does not make it forget the ones the annotators were never asked about (none to
    rehearse: no spans, and nothing decoded)."""
    if not rehearse:
        return [[] for _ in texts]
    return [char_spans(doc.ents, rehearse) for doc in decode(nlp, ner_name, (text.text for text in texts))]


def char_spans(ents: Iterable[Span], labels: set[str] | None = None) -> list[CharSpan]:
    """Entities as code-point spans, those with ``labels`` only (all without)."""
    return [(ent.start_char, ent.end_char, ent.label_) for ent in ents if labels is None or ent.label_ in labels]


def entity_f1(nlp: Language, ner_name: str, gold: Sequence[Doc], labels: set[str]) -> float:
    """Entity F1 on ``gold`` for ``labels`` only; 1.0 when neither side has any entity."""
    if not gold:
        return 0.0
    counts = SpanCounts()
    for predicted, reference in zip(decode(nlp, ner_name, (doc.text for doc in gold)), gold, strict=True):
        unknown = [(token.idx, token.idx + len(token)) for token in reference if token.ent_iob == 0]
        counts += count_spans(char_spans(reference.ents), char_spans(predicted.ents, labels), unknown=unknown)
    return counts.f1


def train(
    nlp: Language,
    ner_name: str,
    examples: Sequence[Example],
    dev: Sequence[Doc],
    labels: set[str],
    *,
    epochs: int,
    report: Callable[..., None],
    cancelled: Callable[[], bool],
) -> PassesRun:
    """Update the recognizer (and an embedding layer it listens to) in place; with ``dev``, stop early
    and restore the pass with the best F1."""
    fix_random_seed(SEED)
    rng = random.Random(SEED)
    ner = nlp.get_pipe(ner_name)
    trained = [n for n in needed_components(nlp, ner_name) if nlp.get_pipe_meta(n).factory not in RULER_FACTORIES]
    trained.append(ner_name)
    if ner.labels:
        for label in sorted(labels - set(ner.labels)):
            ner.add_label(label)
    else:
        ner.initialize(lambda: examples, nlp=nlp)
    optimizer = nlp.create_optimizer()
    order = list(examples)

    def one_pass() -> dict[str, float]:
        rng.shuffle(order)
        losses: dict[str, float] = {}
        with nlp.select_pipes(enable=trained):
            for batch in minibatch(order, size=compounding(4.0, 32.0, 1.001)):
                nlp.update(batch, sgd=optimizer, drop=DROPOUT, losses=losses)
        return {"loss": float(losses.get(ner_name, 0.0))}

    def restore(kept: dict[str, bytes]) -> None:
        for name, data in kept.items():
            nlp.get_pipe(name).from_bytes(data)

    return run_passes(
        epochs, one_pass, evaluate=(lambda: entity_f1(nlp, ner_name, dev, labels)) if dev else None,
        keep=lambda: {name: nlp.get_pipe(name).to_bytes() for name in trained}, restore=restore,
        stopping=EarlyStopping(PATIENCE, min_passes=epochs // 2), report=report, cancelled=cancelled,
        score_name="f1",
    )  # fmt: skip
