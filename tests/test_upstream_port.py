"""The ported model of docs/upstream.md, exactly as the page shows it, learns from webhooks and predicts over HTTP;
and an upstream user's settings are read: aliases apply, settings labelzoo does not use are named."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

from labelzoo.testing import backend_client
from labelzoo.upstream import resolve_aliases
from tests.core.test_learning_e2e import annotation_webhook, predict_body, review

REPO = Path(__file__).resolve().parents[1]


def ported_model() -> str:
    page = (REPO / "docs" / "upstream.md").read_text()
    section = page.split("## Porting a model", 1)[1]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def test_the_ported_model_of_the_docs_learns_and_predicts(tmp_path: Path) -> None:
    folder = tmp_path / "sentiment"
    folder.mkdir()
    (folder / "model.py").write_text(ported_model())
    env = {"MODEL_DIR": str(tmp_path / "models"), "MEDIA_CACHE_DIR": str(tmp_path / "cache"),
           "START_TRAINING_EACH_N_UPDATES": "20"}  # the upstream name of TRAIN_AFTER_ANNOTATIONS
    rng = random.Random(3)
    with backend_client(folder, env) as client:
        assert client.post("/predict", json=predict_body(["The meal was great."])).get_json()["results"][0][
            "result"] == []
        for i in range(20):
            positive = i % 2 == 0
            body = annotation_webhook(i, review(rng, positive), "Positive" if positive else "Negative")
            assert client.post("/webhook", json=body).status_code == 201
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            jobs = client.get("/jobs", query_string={"project": 3}).get_json()["jobs"]
            if jobs and jobs[0]["status"] not in ("queued", "running"):
                break
            time.sleep(0.2)
        assert jobs[0]["status"] == "succeeded" and jobs[0]["version"], jobs
        texts = [review(rng, True), review(rng, False)]
        answer = client.post("/predict", json={**predict_body(texts), "project": "3"}).get_json()
    assert [item["result"][0]["value"]["choices"] for item in answer["results"]] == [["Positive"], ["Negative"]]
    assert all(item["model_version"] == jobs[0]["version"] for item in answer["results"])


def test_upstream_settings_are_read_as_aliases_and_unused_ones_are_named() -> None:
    env, notes = resolve_aliases({
        "LABEL_STUDIO_HOST": "http://ls:8080", "LABEL_STUDIO_ACCESS_TOKEN": "pat",
        "ML_SERVER_BASIC_AUTH_USER": "u", "ML_SERVER_BASIC_AUTH_PASS": "p", "START_TRAINING_EACH_N_UPDATES": "5",
        "CACHE_TYPE": "redis", "BASIC_AUTH_USER": "mine",
    })
    assert (env["LABEL_STUDIO_URL"], env["LABEL_STUDIO_API_KEY"], env["TRAIN_AFTER_ANNOTATIONS"]) == (
        "http://ls:8080", "pat", "5")
    assert (env["BASIC_AUTH_USER"], env["BASIC_AUTH_PASS"]) == ("mine", "p")  # the labelzoo name wins
    assert any("ML_SERVER_BASIC_AUTH_USER is ignored: BASIC_AUTH_USER is set too" in n for n in notes)
    assert any(n.startswith("CACHE_TYPE") and "labelzoo.sqlite3" in n for n in notes)
    assert any("reading LABEL_STUDIO_HOST as LABEL_STUDIO_URL" in n for n in notes)
