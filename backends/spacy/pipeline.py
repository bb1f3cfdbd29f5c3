"""Which spaCy pipeline a version serves, and how its entity recognizer runs with confidences.

A version's pipeline comes from, in this order: the trained version's folder (``<weights>/pipeline``),
``SPACY_MODEL`` (an installed package such as ``en_core_web_sm``, or a pipeline folder), or a blank
``SPACY_LANG`` pipeline that has no entity recognizer until annotations teach it one.

Serving runs the pipeline as ``spacy.load`` gives it, with one change: the recognizer's own component is
switched off and :class:`ScoredEntities` takes its place. That component makes the recognizer's own
greedy decisions (the recognizer's ``transition_states`` picks each move, exactly as ``nlp.pipe`` does)
while reading the probability the model gave each move, so ``doc.ents`` is the pipeline's own and every
token carries the probabilities :mod:`.scoring` turns into span and task scores. Components after the
recognizer that cannot change entities (tagger, parser, lemmatizer, text classifiers…) are switched off;
everything before it stays on, since sentence boundaries, norms and rulers there shape what it predicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import spacy
from spacy.language import Language
from spacy.pipeline import EntityRecognizer
from spacy.tokens import Doc
from spacy.util import get_package_version, load_meta, minibatch

from labelzoo.pretrained import local_folder
from labelzoo.settings import Settings

PIPELINE_DIR = "pipeline"  # a trained version's pipeline: <version folder>/pipeline
SCORED_COMPONENT = "labelzoo_scored_ner"
PROBABILITIES_KEY = "labelzoo_move_probabilities"  # doc.user_data key: a MoveProbabilities
RULER_FACTORIES = frozenset({"entity_ruler"})
NOT_WRITING_ENTITIES = frozenset({  # spaCy's factories that never set doc.ents: switched off after the recognizer
    "tagger", "morphologizer", "parser", "senter", "sentencizer", "lemmatizer", "trainable_lemmatizer",
    "textcat", "textcat_multilabel", "tok2vec", "transformer", "spancat", "spancat_singlelabel",
})


class PipelineError(RuntimeError):
    """SPACY_MODEL names nothing that loads; the message says what to install or set."""


def load_source(model: str | None, lang: str, settings: Settings) -> Language:
    """The base pipeline: SPACY_MODEL (a folder, under MODEL_ROOT first when relative, else a package name)
    when set, else a blank pipeline for SPACY_LANG."""
    if model is None:
        try:
            return spacy.blank(lang)
        except ImportError as exc:
            raise PipelineError(f"SPACY_LANG={lang!r} is not a language spaCy knows: {exc}") from exc
    try:
        return spacy.load(local_folder(model, settings) or model)
    except OSError as exc:
        raise PipelineError(
            f"SPACY_MODEL={model!r} is neither an installed spaCy pipeline package nor a pipeline folder "
            f"(with config.cfg); install it (python -m spacy download {model}) or point SPACY_MODEL at a "
            f"folder. spaCy said: {exc}"
        ) from exc


def source_name(model: str | None, lang: str, settings: Settings) -> str:
    """A stable name for the base pipeline, without loading it: ``spacy-blank-en``,
    ``spacy-en_core_web_sm-3.8.0``, or ``spacy-<lang>_<name>-<version>`` from a folder's meta.json."""
    if model is None:
        return f"spacy-blank-{lang}"
    folder = local_folder(model, settings)
    if folder is not None:
        meta_path = folder / "meta.json"
        if meta_path.is_file():
            meta = load_meta(meta_path)
            return f"spacy-{meta.get('lang', 'xx')}_{meta.get('name', folder.name)}-{meta.get('version', '0')}"
        return f"spacy-{folder.name}"
    version = get_package_version(model)
    return f"spacy-{model}-{version}" if version else f"spacy-{model}"


def find_ner(nlp: Language) -> str | None:
    """The name of the pipeline's entity recognizer (``ner`` first, else any EntityRecognizer)."""
    names = [name for name in nlp.component_names if isinstance(nlp.get_pipe(name), EntityRecognizer)]
    return "ner" if "ner" in names else (names[0] if names else None)


def entity_labels(nlp: Language) -> tuple[str, ...]:
    """The labels the switched-on pipeline can give entities: its recognizers' and its entity rulers'."""
    found: dict[str, None] = {}
    for name, component in nlp.pipeline:
        if isinstance(component, EntityRecognizer) or nlp.get_pipe_meta(name).factory in RULER_FACTORIES:
            found.update(dict.fromkeys(component.labels))
        elif isinstance(component, ScoredEntities):
            found.update(dict.fromkeys(component.ner.labels))
    return tuple(found)


def needed_components(nlp: Language, ner_name: str) -> list[str]:
    """What the entity recognizer needs besides itself, in pipeline order: the embedding components it
    listens to (a shared ``tok2vec``/``transformer``) and entity rulers placed before it."""
    ner = nlp.get_pipe(ner_name)
    upstream = {node.upstream_name for node in ner.model.walk() if hasattr(node, "upstream_name")}
    names = list(nlp.component_names)
    before = names[: names.index(ner_name)]
    return [
        name for name in before
        if name in upstream or nlp.get_pipe_meta(name).factory in RULER_FACTORIES
    ]


@dataclass(frozen=True)
class MoveProbabilities:
    """What the recognizer believed at each token of a doc (each of its moves consumes one token).

    ``chosen[i]``: the probability of the move it made at token ``i`` (softmax over the moves valid there);
    ``label_mass[i, j]``: the total probability of the moves at token ``i`` that put it in an entity of
    ``labels[j]`` (begin, inside, last or unit), whichever was chosen; ``entities``: the ``(start token,
    end token, label)`` of the entities these moves made.
    """

    labels: tuple[str, ...]
    chosen: np.ndarray
    label_mass: np.ndarray
    entities: frozenset[tuple[int, int, str]]


class ValidMoves:
    """Which of the recognizer's moves spaCy allows a state, asked of spaCy (``moves.is_valid``) once per
    situation rather than for every move at every token.

    On a doc without preset entities, spaCy's rules for its BILUO moves read only: whether an entity is
    open and with which label, whether the token is the last, whether the next token starts a sentence, and
    whether the token is whitespace. That is the situation (:meth:`DocReading.situation`) the answers are
    kept under; a doc with entities preset by a component before the recognizer has none and is asked
    about every move.
    """

    def __init__(self, moves: Any, names: Sequence[str]) -> None:
        self.moves, self.names = moves, list(names)
        self._known: dict[tuple[Any, ...], np.ndarray] = {}

    def mask(self, state: Any, situation: tuple[Any, ...] | None) -> np.ndarray:
        if situation is not None and (known := self._known.get(situation)) is not None:
            return known
        mask = np.fromiter((self.moves.is_valid(state, name) for name in self.names), bool, len(self.names))
        if situation is not None:
            self._known[situation] = mask
        return mask


class DocReading:
    """One doc's moves as the greedy loop makes them (one per token), with their probabilities."""

    def __init__(self, doc: Doc) -> None:
        self.preset = any(token.ent_iob for token in doc)
        self.last = len(doc) - 1
        self.sentence_next = [i < self.last and doc[i + 1].is_sent_start is True for i in range(len(doc))]
        self.space = [token.is_space for token in doc]
        self.open_label: str | None = None
        self.chosen: list[float] = []
        self.per_move: list[np.ndarray] = []

    def situation(self, state: Any) -> tuple[Any, ...] | None:
        """What spaCy's move rules read at this state's token, or None on a doc with preset entities."""
        if self.preset:
            return None
        i = len(self.chosen)
        return state.entity_is_open(), self.open_label, i == self.last, self.sentence_next[i], self.space[i]

    def record(self, move: str, probability: float, probabilities: np.ndarray) -> None:
        action, _, label = move.partition("-")
        self.open_label = label if action in ("B", "I") else None
        self.chosen.append(probability)
        self.per_move.append(probabilities)


class ScoredEntities:
    """Runs an entity recognizer in its place, greedily as spaCy does, keeping each move's probability.

    The loop is the one spaCy's ``greedy_parse`` runs in C (score the unfinished states, apply the best
    valid move), written with the recognizer's Python methods so that the scores can be read on the way.
    """

    def __init__(self, ner: EntityRecognizer) -> None:
        self.ner = ner
        self._index_moves()

    def _index_moves(self) -> None:
        """The recognizer's moves by name and by label (again whenever it has gained a label)."""
        moves = self.ner.moves
        self.names = [moves.get_class_name(i) for i in range(moves.n_moves)]
        self.labels = tuple(self.ner.labels)
        # move_labels[i, j] is 1 where move i puts its token in an entity of labels[j]
        move_label = [name.partition("-")[2] for name in self.names]  # "B-PERSON" → "PERSON", "O" → ""
        self.move_labels = np.array([[found == label for label in self.labels] for found in move_label],
                                    dtype="f").reshape(len(self.names), len(self.labels))  # fmt: skip
        self.valid = ValidMoves(self.ner.moves, self.names)

    def __call__(self, doc: Doc) -> Doc:
        self.annotate([doc])
        return doc

    def pipe(self, docs: Iterable[Doc], batch_size: int = 128) -> Iterator[Doc]:
        for batch in minibatch(docs, size=batch_size):
            self.annotate(batch)
            yield from batch

    def annotate(self, docs: list[Doc]) -> None:
        states, steps = self._greedy_parse(docs)
        self.ner.set_annotations(docs, states)
        for doc, (chosen, valid_probabilities) in zip(docs, steps, strict=True):
            doc.user_data[PROBABILITIES_KEY] = self._probabilities(doc, chosen, valid_probabilities)

    def _greedy_parse(self, docs: list[Doc]) -> tuple[list[Any], list[tuple[list[float], list[np.ndarray]]]]:
        ner, moves = self.ner, self.ner.moves
        ner._ensure_labels_are_added(docs)  # as spaCy's greedy_parse does: labels of entities preset by a ruler
        if moves.n_moves != len(self.names):
            self._index_moves()
        model = ner.model.predict(docs)
        states = moves.init_batch(docs)
        reading = {id(state): DocReading(doc) for state, doc in zip(states, docs, strict=True)}
        unfinished = [state for state in states if not state.is_final()]
        try:
            while unfinished:
                scores = model.predict(unfinished)
                for state, row in zip(unfinished, scores, strict=True):
                    doc_reading = reading[id(state)]
                    masked = np.where(self.valid.mask(state, doc_reading.situation(state)), row, -np.inf)
                    probabilities = np.exp(masked - masked.max())
                    probabilities /= probabilities.sum()
                    move = int(np.argmax(masked))  # the move spaCy's transition_states takes
                    doc_reading.record(self.names[move], float(probabilities[move]), probabilities)
                unfinished = ner.transition_states(unfinished, scores)
        finally:
            model.clear_memory()
        return states, [(reading[id(s)].chosen, reading[id(s)].per_move) for s in states]

    def _probabilities(self, doc: Doc, chosen: list[float], per_move: list[np.ndarray]) -> MoveProbabilities:
        mass = np.stack(per_move) @ self.move_labels if per_move else np.zeros((0, len(self.labels)), dtype="f")
        entities = frozenset((ent.start, ent.end, ent.label_) for ent in doc.ents)
        return MoveProbabilities(self.labels, np.asarray(chosen, dtype="f8"), np.clip(mass, 0.0, 1.0), entities)


@Language.factory(SCORED_COMPONENT, default_config={"ner_name": "ner"})
def make_scored_entities(nlp: Language, name: str, ner_name: str) -> ScoredEntities:
    return ScoredEntities(nlp.get_pipe(ner_name))


def serve_with_scores(nlp: Language) -> EntityRecognizer | None:
    """Switch ``nlp`` to scored NER and turn off what runs after the recognizer without touching entities;
    the recognizer, or ``None`` when the pipeline has no trained one (a blank pipeline before annotations)."""
    ner_name = find_ner(nlp)
    if ner_name is None or not nlp.get_pipe(ner_name).labels:
        return None
    nlp.add_pipe(SCORED_COMPONENT, after=ner_name, config={"ner_name": ner_name})
    names = list(nlp.pipe_names)
    for name in names[names.index(ner_name) + 1 :]:
        if nlp.get_pipe_meta(name).factory in NOT_WRITING_ENTITIES:
            nlp.disable_pipe(name)
    nlp.disable_pipe(ner_name)
    return nlp.get_pipe(ner_name)


def strip_for_saving(nlp: Language, ner_name: str) -> None:
    """Remove what NER does not need, so a trained version holds a lean, standard spaCy pipeline."""
    keep = {*needed_components(nlp, ner_name), ner_name}
    for name in list(nlp.component_names):
        if name not in keep:
            nlp.remove_pipe(name)
