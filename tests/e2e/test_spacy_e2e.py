"""spaCy NER with a real Label Studio: a small pipeline trained here (``spacy_support.train_pipeline``, labels
PERSON, GPE, ORG) named by SPACY_MODEL, imported text tasks, predictions retrieved through the Data Manager
action as ``labels`` spans whose offsets are code points into the task text (emoji and CRLF included), and an
annotation reaching the backend as a webhook."""

from __future__ import annotations

import pytest

pytest.importorskip("spacy")

from tests.backends.spacy_support import labels_result, sentences, span_f1, train_pipeline
from tests.conftest import REPO
from tests.e2e.project import check_predictions, wait_for_job

SPACY = REPO / "backends" / "spacy"
CONFIG = (SPACY / "configs" / "quickstart.xml").read_text()
NAMES = {"PERSON": "Person", "CITY": "Location", "ORG": "Organization"}  # synthetic label → config <Label>

pytestmark = pytest.mark.slow


def texts_with_entities() -> list:
    """Sentences like the training ones (not the same draws), the last two with CRLF and emoji before entities."""
    plain = [s for s in sentences(40, seed=21) if s.spans and s.text.isascii()][:4]
    tricky = [s for s in sentences(200, seed=5) if s.spans and ("\r\n" in s.text or not s.text.isascii())]
    picked = [*plain, next(s for s in tricky if "\r\n" in s.text), next(s for s in tricky if "🎉" in s.text)]
    assert len(picked) == 6 and all(s.spans for s in picked)
    return picked


def test_spacy_predicts_exact_spans_through_label_studio(label_studio, ls_project, serve_for_ls, tmp_path):
    pipeline = train_pipeline(tmp_path / "synthetic_ner")
    server = serve_for_ls(SPACY, SPACY_MODEL=str(pipeline), TRAIN_AFTER_ANNOTATIONS="1", SPACY_HOLDOUT="0")
    project = ls_project(CONFIG, title="spaCy NER")
    gold = texts_with_entities()
    ids = project.import_tasks({"text": s.text} for s in gold)
    backend = project.connect(server.url, "spaCy")
    version = backend["model_version"]
    assert version == "spacy-en_synthetic_ner-1.0.0", backend

    answer = project.retrieve_predictions()
    assert answer["processed_items"] == len(ids), answer
    by_task = check_predictions(project.predictions(), ids, version, result_types={"labels"})
    results = []
    for task, sentence in zip(ids, gold, strict=True):
        prediction = by_task[task]
        for item in prediction["result"]:
            value = item["value"]
            assert (item["from_name"], item["to_name"]) == ("label", "text"), item
            assert value["labels"][0] in NAMES.values() and len(value["labels"]) == 1, item
            assert 0 <= value["start"] < value["end"] <= len(sentence.text), item
            assert value["text"] == sentence.text[value["start"] : value["end"]], (item, sentence.text)
            assert 0 < item["score"] <= 1, item
        # the task score is the least confident entity's, shown or not (below MODEL_SCORE_THRESHOLD)
        assert 0 < prediction["score"] <= min(i["score"] for i in prediction["result"]), prediction
        results.append(prediction["result"])
    assert span_f1(gold, results, NAMES) >= 0.9, list(zip(gold, results, strict=True))
    # the emoji and CRLF sentences: offsets count code points, as the editor does
    for sentence, result in zip(gold[-2:], results[-2:], strict=True):
        want = {(start, end, NAMES[label]) for start, end, label in sentence.spans}
        assert {(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in result} == want, (
            sentence,
            result,
        )

    # opening a task without predictions makes Label Studio ask the backend for this one task
    (sentence,) = [s for s in sentences(10, seed=22) if s.spans and s.text.isascii()][:1]
    (new,) = project.import_tasks([{"text": sentence.text}])
    (prediction,) = project.open(new)["predictions"]
    assert prediction["model_version"] == version, prediction
    assert all(
        r["value"]["text"] == sentence.text[r["value"]["start"] : r["value"]["end"]] for r in prediction["result"]
    ), prediction
    assert span_f1([sentence], [prediction["result"]], NAMES) >= 0.5, (sentence, prediction)

    # an annotation: Label Studio's ANNOTATION_CREATED webhook reaches the backend, which trains on it
    project.annotate(ids[0], labels_result(gold[0], NAMES))
    job = wait_for_job(server.url, project.id, lambda job: job["reason"] == "annotations", timeout=120)
    assert job["status"] == "succeeded" and job["examples"] == 1, job
    assert label_studio.requests_logged(r'"POST /api/tasks/\d+/annotations/ [^"]*" 201')
