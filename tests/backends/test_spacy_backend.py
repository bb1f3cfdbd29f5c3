"""The spaCy NER backend predicting: versions, label mapping, exact offsets, confidences, media, errors.

The "pretrained" pipeline is trained here on synthetic sentences with plain spaCy (labels PERSON, GPE,
ORG, like an official English pipeline) and named through SPACY_MODEL as a folder: no downloads.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest

from labelzoo import Backend, PredictContext, Settings, Task
from labelzoo.labelconfig import parse_label_config
from labelzoo.media import MediaResolver
from labelzoo.registry import load_backend
from tests.backends.spacy_support import AMBIGUOUS, sentences, span_f1, train_pipeline
from tests.conftest import REPO
from tests.core.fake_label_studio import FakeFileHost

SPACY = REPO / "backends" / "spacy"
MAPPED = """<View>
  <Text name="text" value="$text"/>
  <Labels name="label" toName="text">
    <Label value="Person"/>
    <Label value="Place" predicted_values="GPE, LOC"/>
    <Label value="Product"/>
  </Labels>
</View>"""
MODEL_NAMES = {"PERSON": "PERSON", "CITY": "GPE", "ORG": "ORG"}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_pipeline(tmp_path_factory.mktemp("spacy") / "synthetic_ner")


def settings_for(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"MODEL_DIR": str(tmp_path / "models"), "MEDIA_CACHE_DIR": str(tmp_path / "cache"),
                              **env})


def loaded(tmp_path: Path, weights: Path | None = None, **env: str) -> Backend:
    backend = load_backend(str(SPACY)).cls(settings_for(tmp_path, **env), weights)
    backend.load()
    return backend


def context(backend: Backend, config: str = MAPPED) -> PredictContext:
    settings = backend.settings
    return PredictContext(project="1", config=parse_label_config(config), media=MediaResolver(settings.media),
                          settings=settings, model_version="test")


def predict(backend: Backend, texts: list[str], config: str = MAPPED) -> list[Any]:
    tasks = [Task(id=i + 1, data={"text": text}) for i, text in enumerate(texts)]
    return list(backend.predict(tasks, context(backend, config)))


def spans(prediction: Any) -> set[tuple[int, int, str]]:
    return {(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in prediction.result}


def test_base_versions_are_stable_names_and_a_missing_model_says_what_to_do(tmp_path: Path, pretrained: Path) -> None:
    cls = load_backend(str(SPACY)).cls
    assert cls(settings_for(tmp_path)).base_version() == "spacy-blank-en"
    assert cls(settings_for(tmp_path, SPACY_LANG="de")).base_version() == "spacy-blank-de"
    assert cls(settings_for(tmp_path, SPACY_MODEL=str(pretrained))).base_version() == "spacy-en_synthetic_ner-1.0.0"
    relative = cls(settings_for(tmp_path, SPACY_MODEL=pretrained.name, MODEL_ROOT=str(pretrained.parent)))
    assert relative.base_version() == "spacy-en_synthetic_ner-1.0.0"
    relative.load()
    assert relative.ner is not None and set(relative.ner.labels) == {"PERSON", "GPE", "ORG"}
    missing = cls(settings_for(tmp_path, SPACY_MODEL="xx_no_such_pipeline"))
    assert missing.base_version() == "spacy-xx_no_such_pipeline"
    with pytest.raises(RuntimeError, match="python -m spacy download xx_no_such_pipeline"):
        missing.load()


def test_a_blank_pipeline_predicts_nothing_and_has_no_labels_to_report(tmp_path: Path) -> None:
    blank = loaded(tmp_path)
    config = parse_label_config(MAPPED)
    assert blank.model_labels(config.control("label"), config.object("text")) is None
    (prediction,) = predict(blank, ["Anna Schmidt moved to Berlin last year."])
    assert prediction.result == [] and prediction.score is None and prediction.error is None


def test_a_blank_pipeline_says_it_predicts_nothing_until_trained(tmp_path: Path, pretrained: Path, caplog) -> None:
    from labelzoo.testing import backend_client

    env = {"MODEL_DIR": str(tmp_path / "models"), "MEDIA_CACHE_DIR": str(tmp_path / "cache")}
    with caplog.at_level("WARNING"), backend_client(SPACY, env) as client:
        health = client.get("/health").get_json()
        setup = client.post("/setup", json={"project": 1, "schema": MAPPED}).get_json()
    (notice,) = health["model"]["notices"]
    assert "spacy-blank-en" in notice and "predicts nothing until" in notice and "SPACY_MODEL" in notice
    assert setup["warnings"][0] == notice  # Label Studio shows /setup's warnings when connecting
    assert any(notice in r.getMessage() for r in caplog.records)
    with backend_client(SPACY, {**env, "SPACY_MODEL": str(pretrained)}) as client:
        assert client.get("/health").get_json()["model"]["notices"] == []


def test_model_labels_map_to_config_labels_and_unmapped_ones_are_never_emitted(
    tmp_path: Path, pretrained: Path
) -> None:
    backend = loaded(tmp_path, SPACY_MODEL=str(pretrained), MODEL_SCORE_THRESHOLD="0")
    gold = sentences(40, seed=7, names=MODEL_NAMES)  # the sentences the pipeline learned from
    predictions = predict(backend, [s.text for s in gold])
    emitted = [r["value"]["labels"] for p in predictions for r in p.result]
    assert emitted and {label for labels in emitted for label in labels} == {"Person", "Place"}
    assert all(len(labels) == 1 for labels in emitted)
    assert span_f1(gold, [p.result for p in predictions], {"PERSON": "Person", "GPE": "Place"}) >= 0.95
    # the model does find the companies: it is the config that leaves them out
    assert any(ent.label_ == "ORG" for doc in backend.nlp.pipe([s.text for s in gold]) for ent in doc.ents)


def test_setup_reports_the_label_mismatch(make_client: Any, pretrained: Path) -> None:
    client = make_client(SPACY, SPACY_MODEL=str(pretrained))
    body = {"project": "3.1718900000", "schema": MAPPED, "hostname": "http://localhost:8080", "access_token": "x"}
    answer = client.post("/setup", json=body).get_json()
    assert answer["model_version"] == "spacy-en_synthetic_ner-1.0.0"
    (report,) = answer["labels"]
    assert report["mapping"] == {"GPE": "Place", "PERSON": "Person"}
    assert report["unmapped_model_labels"] == ["ORG"]
    assert report["unfed_config_labels"] == ["Product"]
    assert "ORG" in report["report"] and "Product" in report["report"]


def test_offsets_are_code_points_into_the_exact_text(tmp_path: Path, pretrained: Path) -> None:
    backend = loaded(tmp_path, SPACY_MODEL=str(pretrained), MODEL_SCORE_THRESHOLD="0")
    cases = [
        ("🎉 José Álvarez won a prize in Zürich.", [("José Álvarez", "Person"), ("Zürich", "Place")]),
        ("Dear Zoë Müller,\r\nwelcome to Kraków! 🎉", [("Zoë Müller", "Person"), ("Kraków", "Place")]),
        ("We visited São Paulo with Olga Petrova.\r\nIt rained.", [("São Paulo", "Place"), ("Olga Petrova", "Person")]),
        ("Café owner Ahmed Khan (née Dupont) left Málaga for Gdańsk.",
         [("Ahmed Khan", "Person"), ("Málaga", "Place"), ("Gdańsk", "Place")]),
        ("Li Wei lives in Québec 🏠 and cycles to work.", [("Li Wei", "Person"), ("Québec", "Place")]),
    ]
    predictions = predict(backend, [text for text, _ in cases])
    for (text, entities), prediction in zip(cases, predictions, strict=True):
        want = {(text.index(name), text.index(name) + len(name), label) for name, label in entities}
        assert spans(prediction) == want, text
        for item in prediction.result:
            assert item["value"]["text"] == text[item["value"]["start"] : item["value"]["end"]]
            assert (item["from_name"], item["to_name"], item["type"]) == ("label", "text", "labels")
    # the first case would be off by one in UTF-16 code units, which is what a JS string counts
    first = cases[0][0]
    assert len(first[: first.index("José")].encode("utf-16-le")) // 2 == first.index("José") + 1


def test_scores_are_beam_marginals_low_where_the_model_is_torn(tmp_path: Path, pretrained: Path) -> None:
    backend = loaded(tmp_path, SPACY_MODEL=str(pretrained), MODEL_SCORE_THRESHOLD="0")
    clear = predict(backend, [s.text for s in sentences(30, seed=7, names=MODEL_NAMES)])
    torn = predict(backend, [text for text, _, _ in AMBIGUOUS])  # taught both as a person and as a city
    for prediction in clear + torn:
        assert 0.0 < prediction.score <= 1.0
        for item in prediction.result:
            assert 0.0 < item["score"] <= 1.0
            # the task score is the probability of exactly this set of spans: never above a span's own
            assert prediction.score <= item["score"] + 1e-9
    assert min(p.score for p in clear) >= 0.95
    for (text, start, end), prediction in zip(AMBIGUOUS, torn, strict=True):
        (item,) = prediction.result
        assert (item["value"]["start"], item["value"]["end"]) == (start, end), text
        assert 0.35 <= item["score"] <= 0.85, text  # the other label holds the rest of the beam
        assert prediction.score <= 0.85
    assert statistics.mean(p.score for p in clear) - statistics.mean(p.score for p in torn) >= 0.25


def test_an_empty_text_is_certainly_empty_and_the_threshold_hides_doubtful_spans(
    tmp_path: Path, pretrained: Path
) -> None:
    backend = loaded(tmp_path, SPACY_MODEL=str(pretrained), MODEL_SCORE_THRESHOLD="0")
    empty, = predict(backend, [""])
    assert empty.result == [] and empty.score == 1.0
    texts = ["Globex Berlin Anna Tom Lima", "ok so Porto Oslo Baker Lind Stone or maybe not"]
    everything = predict(backend, texts)
    strict_config = MAPPED.replace('<Labels name="label"', '<Labels name="label" model_score_threshold="0.9"')
    strict = predict(backend, texts, strict_config)
    shown_all = [s for p in everything for s in p.result]
    shown_strict = [s for p in strict for s in p.result]
    assert any(s["score"] < 0.9 for s in shown_all)
    assert all(s["score"] >= 0.9 for s in shown_strict)
    assert {(s["value"]["start"], s["value"]["labels"][0]) for s in shown_strict} == {
        (s["value"]["start"], s["value"]["labels"][0]) for s in shown_all if s["score"] >= 0.9
    }


def test_texts_behind_urls_come_through_the_media_layer_and_bad_tasks_fail_alone(
    tmp_path: Path, pretrained: Path
) -> None:
    config = MAPPED.replace('value="$text"/>', 'value="$text" valueType="url"/>')
    text = "Dear Zoë Müller,\r\nwelcome to Kraków! 🎉"
    with FakeFileHost() as host:
        host.files["/letters/1.txt"] = text.encode("utf-8")
        backend = loaded(tmp_path, SPACY_MODEL=str(pretrained), MEDIA_ALLOWED_HOSTS="127.0.0.1")
        tasks = [
            Task(id=1, data={"text": f"{host.origin}/letters/1.txt"}),
            Task(id=2, data={"text": f"{host.origin}/letters/missing.txt"}),
            Task(id=3, data={"body": "no text field"}),
        ]
        good, missing, no_field = backend.predict(tasks, context(backend, config))
    assert spans(good) == {(5, 15, "Person"), (29, 35, "Place")}  # "\r\n" counts as two
    assert good.result[0]["value"]["text"] == "Zoë Müller"
    assert missing.error and "404" in missing.error and "/letters/missing.txt" in missing.error
    assert no_field.error and "'text'" in no_field.error


def test_sentences_the_batch_shares_are_predicted_as_one_by_one(tmp_path: Path, pretrained: Path) -> None:
    backend = loaded(tmp_path, SPACY_MODEL=str(pretrained))
    texts = [s.text for s in sentences(12, seed=3, names=MODEL_NAMES)] + [""]
    together = predict(backend, texts)
    alone = [predict(backend, [text])[0] for text in texts]
    assert [spans(p) for p in together] == [spans(p) for p in alone]
    assert [p.score for p in together] == pytest.approx([p.score for p in alone], abs=1e-6)

