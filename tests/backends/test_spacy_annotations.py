"""Annotations → spaCy training docs: bad spans are reported with their task and skipped, never crash."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import spacy

from labelzoo import FitContext, Settings, Task, TrainingData, TrainingExample
from labelzoo.labelconfig import parse_label_config
from labelzoo.media import MediaResolver
from labelzoo.registry import load_backend
from labelzoo.textspans import AnnotatedText
from tests.backends.spacy_support import labels_result, sentences
from tests.conftest import REPO

SPACY = REPO / "backends" / "spacy"
CONFIG = parse_label_config("""<View>
  <Text name="text" value="$text"/>
  <Labels name="label" toName="text">
    <Label value="Person"/><Label value="City"/><Label value="Firm" alias="ORG"/>
  </Labels>
  <Labels name="other" toName="text"><Label value="Mood"/></Labels>
</View>""")
NAMES = {"PERSON": "Person", "CITY": "City", "ORG": "ORG"}


def gold_module():  # the backend's modules import under the registry's package name
    load_backend(str(SPACY))
    from labelzoo_backends.spacy import gold

    return gold


def item(start: object, end: object, label: str, text: str | None = None, from_name: str = "label") -> dict:
    value: dict = {"start": start, "end": end, "labels": [label]}
    if text is not None:
        value["text"] = text
    return {"from_name": from_name, "to_name": "text", "type": "labels", "value": value}


TEXT = "Anna Schmidt moved to Berlin.\r\nShe met Tom Baker at Globex."


def test_reference_docs_leave_skipped_and_misaligned_tokens_unknown() -> None:
    gold = gold_module()
    nlp = spacy.blank("en")
    annotated = AnnotatedText(3, TEXT, spans=[(0, 12, "Person"), (23, 28, "City"), (52, 58, "ORG")],
                              unknown=[(5, 20)])
    doc, issues = gold.reference_doc(nlp, annotated, {"Person": "PERSON", "City": "GPE", "ORG": "ORG"},
                                     extra=[(39, 48, "NORP"), (0, 4, "NORP")])
    # "erlin" ends inside the token "Berlin": skipped, reported, its token unknown
    assert [(i.start, i.end, i.reason) for i in issues] == [
        (23, 28, "does not fall on token boundaries (its tokens are 'Berlin')")
    ]
    tags = {t.text: (t.ent_iob_, t.ent_type_) for t in doc}
    assert tags["Anna"] == ("B", "PERSON") and tags["Schmidt"] == ("I", "PERSON")
    assert tags["moved"] == tags["to"] == ("", "")  # unknown where the overlapping span was skipped
    assert tags["Berlin"] == ("", "") and tags["She"] == ("O", "")
    # rehearsal spans fill the gaps the annotation leaves, never its spans
    assert tags["Tom"] == ("B", "NORP") and tags["Baker"] == ("I", "NORP")
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("Anna Schmidt", "PERSON"), ("Tom Baker", "NORP"), ("Globex", "ORG")
    ]


def test_trailing_whitespace_in_a_selection_is_trimmed_silently() -> None:
    gold = gold_module()
    annotated = AnnotatedText(1, "Visit Oslo now", spans=[(5, 11, "City")])
    doc, issues = gold.reference_doc(spacy.blank("en"), annotated, {"City": "GPE"})
    assert issues == [] and [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [(6, 10, "GPE")]


def test_fit_reports_bad_spans_by_task_and_learns_from_the_rest(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.from_env({"MODEL_DIR": str(tmp_path / "m"), "MEDIA_CACHE_DIR": str(tmp_path / "c")})
    backend = load_backend(str(SPACY)).cls(settings)
    backend.load()
    examples = [
        TrainingExample(task=Task(id=i + 1, data={"text": s.text}), result=labels_result(s, NAMES))
        for i, s in enumerate(sentences(24, seed=2))
    ]
    bad = Task(id=900, data={"text": TEXT})
    examples.append(TrainingExample(task=bad, result=[item(22, 500, "City"), item(5, 20, "Person"),
                                                      item(0, 12, "Person"), item(23, 28, "City")]))
    examples.append(TrainingExample(task=Task(id=901, data={"body": "no text"}), result=[item(0, 3, "City")]))
    out = tmp_path / "v1"
    out.mkdir()
    with caplog.at_level(logging.WARNING, logger="labelzoo.training"):
        fitted = backend.fit(TrainingData(project="1", config=CONFIG, examples=examples),
                             FitContext(output_dir=out, media=MediaResolver(settings.media), settings=settings))
    assert fitted.promote and (out / "pipeline" / "ner").is_dir()
    assert fitted.metrics["skipped_spans"] == 3 and "3 annotated spans skipped" in fitted.summary
    warnings = [r.getMessage() for r in caplog.records]
    assert any(w.startswith("task 900: span [22, 500) 'City' skipped: out of bounds") for w in warnings)
    assert any(w.startswith("task 900: span [5, 20) 'Person' skipped: overlaps [0, 12)") for w in warnings)
    assert any(w.startswith("task 900: span [23, 28) 'City' skipped: does not fall on token") for w in warnings)
    assert any(w.startswith("task 901: not used for training") and "'text'" in w for w in warnings)


def test_fit_without_any_usable_span_declines(tmp_path: Path) -> None:
    settings = Settings.from_env({"MODEL_DIR": str(tmp_path / "m"), "MEDIA_CACHE_DIR": str(tmp_path / "c")})
    backend = load_backend(str(SPACY)).cls(settings)
    backend.load()
    examples = [TrainingExample(task=Task(id=1, data={"text": TEXT}), result=[item(22, 500, "City")])]
    fitted = backend.fit(TrainingData(project="1", config=CONFIG, examples=examples),
                         FitContext(output_dir=tmp_path, media=MediaResolver(settings.media), settings=settings))
    assert not fitted.promote and "no usable" in fitted.summary


def test_held_out_f1_is_spacys_entity_f1_with_unknown_tokens_left_out(tmp_path: Path) -> None:
    from spacy.scorer import get_ner_prf
    from spacy.training import Example

    from tests.backends.spacy_support import train_pipeline

    load_backend(str(SPACY))
    from labelzoo_backends.spacy.training import decode, entity_f1

    gold = gold_module()
    nlp = spacy.load(train_pipeline(tmp_path / "p", n=60, epochs=3))
    dev = []
    for i, s in enumerate(sentences(30, seed=4, names={"PERSON": "PERSON", "CITY": "GPE", "ORG": "ORG"})):
        kept = [span for j, span in enumerate(s.spans) if (i + j) % 3]
        unknown = [(a, b) for j, (a, b, _) in enumerate(s.spans) if not (i + j) % 3 and i % 2]
        dev.append(gold.reference_doc(nlp, AnnotatedText(i, s.text, spans=kept, unknown=unknown),
                                      {"PERSON": "PERSON", "GPE": "GPE", "ORG": "ORG"})[0])
    for labels in ({"PERSON", "GPE", "ORG"}, {"PERSON"}):
        predicted = decode(nlp, "ner", (doc.text for doc in dev))
        for doc in predicted:
            doc.ents = [ent for ent in doc.ents if ent.label_ in labels]
        spacys = get_ner_prf([Example(p, r) for p, r in zip(predicted, dev, strict=True)])["ents_f"]
        assert 0.0 < spacys < 1.0
        assert entity_f1(nlp, "ner", dev, labels) == pytest.approx(spacys, abs=1e-12)
