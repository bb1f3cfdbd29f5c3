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


def test_every_bad_span_is_reported_and_skipped_and_good_ones_kept() -> None:
    gold = gold_module()
    annotated = gold.AnnotatedText(7, TEXT)
    result = [
        item(0, 12, "Person", "Anna Schmidt"),
        item(22, 500, "City"),  # past the end
        item("22", 28, "City"),  # not an integer
        item(22, 28, "City", "Berlim"),  # its text is not the task's text there
        item(39, 48, "Animal"),  # not a label of the control
        item(5, 20, "Person"),  # overlaps Anna Schmidt
        item(39, 48, "Person", "Tom Baker"),
        item(52, 58, "Firm"),  # by value while the config aliases it: stored as the alias
        item(0, 4, "Mood", from_name="other"),  # another control: not this one's business
    ]
    issues = gold.add_spans(annotated, result, CONFIG.control("label"), "text")
    assert annotated.spans == [(0, 12, "Person"), (39, 48, "Person"), (52, 58, "ORG")]
    reasons = {(issue.start, issue.end): issue.reason for issue in issues}
    assert reasons.keys() == {(22, 500), ("22", 28), (22, 28), (39, 48), (5, 20)}
    assert "out of bounds: the text has 59 characters" in reasons[(22, 500)]
    assert "integer character offsets" in reasons[("22", 28)]
    assert "'Berlim' differs from the task text there ('Berlin')" in reasons[(22, 28)]
    assert "'Animal'" in reasons[(39, 48)] and "not in <Labels name='label'>" in reasons[(39, 48)]
    assert "overlaps [0, 12) 'Person'" in reasons[(5, 20)]
    assert all(str(issue).startswith("task 7: span [") for issue in issues)
    # spans with offsets that can be trusted leave their tokens unknown rather than "no entity"
    assert sorted(annotated.unknown) == [(5, 20), (39, 48)]


def test_reference_docs_leave_skipped_and_misaligned_tokens_unknown() -> None:
    gold = gold_module()
    nlp = spacy.blank("en")
    annotated = gold.AnnotatedText(3, TEXT, spans=[(0, 12, "Person"), (23, 28, "City"), (52, 58, "ORG")],
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
    annotated = gold.AnnotatedText(1, "Visit Oslo now", spans=[(5, 11, "City")])
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
