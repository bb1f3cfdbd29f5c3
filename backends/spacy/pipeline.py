"""Which spaCy pipeline a version serves, and how its entity recognizer runs with beam search.

A version's pipeline comes from, in this order: the trained version's folder (``<weights>/pipeline``),
``SPACY_MODEL`` (an installed package such as ``en_core_web_sm``, or a pipeline folder), or a blank
``SPACY_LANG`` pipeline that has no entity recognizer until annotations teach it one.

Serving replaces the greedy ``ner`` in the pipeline by :class:`BeamEntities`, which parses with beam
search over the same weights, sets ``doc.ents`` from the best parse and keeps every parse with its
probability in ``doc.user_data`` for :mod:`.scoring`. Components the entity recognizer does not need
(tagger, parser, lemmatizer…) are switched off; a ``tok2vec``/``transformer`` it listens to and
``entity_ruler`` components before it stay on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.pipeline import EntityRecognizer
from spacy.tokens import Doc
from spacy.util import get_package_version, load_meta, minibatch

PIPELINE_DIR = "pipeline"  # a trained version's pipeline: <version folder>/pipeline
BEAM_COMPONENT = "labelzoo_beam_ner"
PARSES_KEY = "labelzoo_beam_parses"  # doc.user_data key: ((probability, ((start, end, label), ...)), ...)
RULER_FACTORIES = frozenset({"entity_ruler"})


class PipelineError(RuntimeError):
    """SPACY_MODEL names nothing that loads; the message says what to install or set."""


def resolve_model(model: str, model_root: Path | None) -> str | Path:
    """A pipeline folder (relative paths are looked up under MODEL_ROOT first) or a package name."""
    path = Path(model).expanduser()
    if not path.is_absolute() and model_root is not None and (model_root / path).exists():
        return model_root / path
    return path if path.exists() else model


def load_source(model: str | None, lang: str, model_root: Path | None) -> Language:
    """The base pipeline: SPACY_MODEL when set, else a blank pipeline for SPACY_LANG."""
    if model is None:
        try:
            return spacy.blank(lang)
        except ImportError as exc:
            raise PipelineError(f"SPACY_LANG={lang!r} is not a language spaCy knows: {exc}") from exc
    source = resolve_model(model, model_root)
    try:
        return spacy.load(source)
    except OSError as exc:
        raise PipelineError(
            f"SPACY_MODEL={model!r} is neither an installed spaCy pipeline package nor a pipeline folder "
            f"(with config.cfg); install it (python -m spacy download {model}) or point SPACY_MODEL at a "
            f"folder. spaCy said: {exc}"
        ) from exc


def source_name(model: str | None, lang: str, model_root: Path | None) -> str:
    """A stable name for the base pipeline, without loading it: ``spacy-blank-en``,
    ``spacy-en_core_web_sm-3.8.0``, or ``spacy-<lang>_<name>-<version>`` from a folder's meta.json."""
    if model is None:
        return f"spacy-blank-{lang}"
    source = resolve_model(model, model_root)
    if isinstance(source, Path):
        meta_path = source / "meta.json"
        if meta_path.is_file():
            meta = load_meta(meta_path)
            return f"spacy-{meta.get('lang', 'xx')}_{meta.get('name', source.name)}-{meta.get('version', '0')}"
        return f"spacy-{source.name}"
    version = get_package_version(source)
    return f"spacy-{source}-{version}" if version else f"spacy-{source}"


def find_ner(nlp: Language) -> str | None:
    """The name of the pipeline's entity recognizer (``ner`` first, else any EntityRecognizer)."""
    names = [name for name in nlp.component_names if isinstance(nlp.get_pipe(name), EntityRecognizer)]
    return "ner" if "ner" in names else (names[0] if names else None)


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


class BeamEntities:
    """Runs an entity recognizer with beam search in its place (spaCy's ``beam_parse`` on its weights).

    Each doc gets ``doc.ents`` from the best parse and, under ``doc.user_data[PARSES_KEY]``, every
    finished parse of the beam with its probability (the beam's scores normalised over its parses).
    """

    def __init__(self, ner: EntityRecognizer, beam_width: int, beam_density: float) -> None:
        self.ner = ner
        self.beam_width = beam_width
        self.beam_density = beam_density

    def __call__(self, doc: Doc) -> Doc:
        self.annotate([doc])
        return doc

    def pipe(self, docs: Iterable[Doc], batch_size: int = 128) -> Iterator[Doc]:
        for batch in minibatch(docs, size=batch_size):
            self.annotate(batch)
            yield from batch

    def annotate(self, docs: list[Doc]) -> None:
        for doc in docs:
            if not len(doc):  # an empty text: certainly no entity
                doc.user_data[PARSES_KEY] = ((1.0, ()),)
        parsed = [doc for doc in docs if len(doc)]
        if not parsed:
            return
        beams = self.ner.beam_parse(parsed, beam_width=self.beam_width, beam_density=self.beam_density)
        self.ner.set_annotations(parsed, beams)
        for doc, beam in zip(parsed, beams, strict=True):
            doc.user_data[PARSES_KEY] = tuple(
                (float(prob), tuple(ents)) for prob, ents in self.ner.moves.get_beam_parses(beam)
            )


@Language.factory(BEAM_COMPONENT, default_config={"ner_name": "ner", "beam_width": 16, "beam_density": 0.0001})
def make_beam_entities(nlp: Language, name: str, ner_name: str, beam_width: int, beam_density: float) -> BeamEntities:
    return BeamEntities(nlp.get_pipe(ner_name), beam_width, beam_density)


def serve_with_beam(nlp: Language, beam_width: int, beam_density: float) -> EntityRecognizer | None:
    """Switch ``nlp`` to beam-scored NER and turn off what NER does not need; the recognizer, or
    ``None`` when the pipeline has no trained one (a blank pipeline before any annotation)."""
    ner_name = find_ner(nlp)
    if ner_name is None or not nlp.get_pipe(ner_name).labels:
        return None
    keep = set(needed_components(nlp, ner_name))
    nlp.add_pipe(
        BEAM_COMPONENT,
        after=ner_name,
        config={"ner_name": ner_name, "beam_width": beam_width, "beam_density": beam_density},
    )
    for name in list(nlp.pipe_names):
        if name not in keep and name != BEAM_COMPONENT:
            nlp.disable_pipe(name)
    return nlp.get_pipe(ner_name)


def strip_for_saving(nlp: Language, ner_name: str) -> None:
    """Remove what NER does not need, so a trained version holds a lean, standard spaCy pipeline."""
    keep = {*needed_components(nlp, ner_name), ner_name}
    for name in list(nlp.component_names):
        if name not in keep:
            nlp.remove_pipe(name)
