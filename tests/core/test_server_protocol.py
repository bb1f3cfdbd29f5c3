"""The protocol routes as Label Studio calls them (Flask test client; gunicorn tests are separate)."""

from __future__ import annotations

import base64
import json
import logging
import time

import pytest

CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text"><Choice value="Positive"/><Choice value="Negative"/></Choices>
</View>"""


def predict_body(*texts: str, context: object = None, project: str = "7.1718900000") -> dict:
    return {
        "tasks": [{"id": i + 1, "data": {"text": t}} for i, t in enumerate(texts)],
        "project": project,
        "label_config": CONFIG,
        "params": {"login": None, "password": None, "context": context},
    }


def setup_body(extra_params: object = None) -> dict:
    return {
        "project": "7.1718900000",
        "schema": CONFIG,
        "hostname": "http://localhost:8080",
        "access_token": "abc",
        "extra_params": extra_params,
    }


def test_health_and_setup_tell_the_truth_when_the_model_cannot_load(make_client):
    client = make_client(wait=False, KEYWORD_LOAD_ERROR="no such weights file: /models/missing.pt")
    deadline = time.monotonic() + 10
    while client.get("/health").get_json()["model"]["state"] == "loading" and time.monotonic() < deadline:
        time.sleep(0.05)
    response = client.get("/health")
    body = response.get_json()
    assert response.status_code == 503 and body["status"] == "FAILED", body  # Connect Model and HEALTHCHECK see it
    assert "no such weights file: /models/missing.pt" in body["reason"]
    assert client.get("/").status_code == 503 and client.get("/ready").status_code == 503
    setup = client.post("/setup", json=setup_body()).get_json()
    assert "failed to load" in setup["warnings"][0] and "missing.pt" in setup["warnings"][0]
    assert all("failed to load" in entry["labels"] for entry in setup["labels"])
    assert not any("still loading" in str(entry) for entry in setup["labels"])


def test_health_answers_while_the_model_loads(make_client):
    client = make_client(wait=False, KEYWORD_LOAD_SECONDS="3")
    started = time.perf_counter()
    body = client.get("/health").get_json()
    assert time.perf_counter() - started < 0.5
    assert body["status"] == "UP" and body["ready"] is False and body["model"]["state"] == "loading"
    assert client.get("/").get_json()["model_class"] == "KeywordBackend"
    assert client.get("/ready").status_code == 503
    setup = client.post("/setup", json=setup_body())  # /setup never waits for the model (P2)
    assert setup.status_code == 200 and setup.get_json()["model_version"] == "keyword-1"
    assert time.perf_counter() - started < 1.5


def test_health_shows_the_backends_live_details_and_late_notices(make_client, monkeypatch):
    from labelzoo.registry import load_backend
    from tests.conftest import KEYWORD_BACKEND

    facts = {"engines": {"model.pt": {"engine": "torch"}}, "notices": []}
    monkeypatch.setattr(load_backend(str(KEYWORD_BACKEND)).cls, "health", lambda self: facts)
    client = make_client()
    model = client.get("/health").get_json()["model"]
    assert model["details"] == {"engines": {"model.pt": {"engine": "torch"}}} and model["notices"] == []
    facts["notices"] = ["model.pt stays on torch: the export disagrees"]  # read on every /health
    assert client.get("/health").get_json()["model"]["notices"] == facts["notices"]


def test_setup_and_predictions_share_one_non_null_version(make_client):
    client = make_client()
    version = client.post("/setup", json=setup_body()).get_json()["model_version"]
    assert isinstance(version, str) and version
    results = client.post("/predict", json=predict_body("so positive", "very negative")).get_json()["results"]
    assert [r["model_version"] for r in results] == [version, version]


def test_predict_returns_one_item_per_task_in_order(make_client):
    client = make_client()
    texts = ["positive one", "negative two", "nothing", "Positive again", "NEGATIVE", "neutral", "positive"]
    results = client.post("/predict", json=predict_body(*texts)).get_json()["results"]
    assert len(results) == len(texts)
    picked = [r["result"][0]["value"]["choices"][0] if r["result"] else None for r in results]
    assert picked == ["Positive", "Negative", None, "Positive", "Negative", None, "Positive"]
    assert [r["score"] for r in results] == [0.75, 0.75, 0.0, 0.75, 0.75, 0.0, 0.75]
    item = results[0]["result"][0]
    assert (item["from_name"], item["to_name"], item["type"]) == ("sentiment", "text", "choices")


def test_one_failing_task_never_loses_the_batch(make_client):
    client = make_client()
    texts = ["positive", "negative", "FAIL", "positive", "negative", "positive"]
    results = client.post("/predict", json=predict_body(*texts)).get_json()["results"]
    assert len(results) == 6
    assert "result" not in results[2] and "cannot classify" in results[2]["error"]
    assert all("result" in r for i, r in enumerate(results) if i != 2)


def test_interactive_request_returns_a_dict_with_result_first(make_client):
    client = make_client()
    body = predict_body("positive", context={"result": []})
    results = client.post("/predict", json=body).get_json()["results"]
    assert isinstance(results[0], dict) and isinstance(results[0]["result"], list)
    failing = client.post("/predict", json=predict_body("FAIL", context={"result": []}))
    assert failing.status_code == 422 and "cannot classify" in failing.get_json()["message"]


CREDENTIALS_ONLY = {"project_credentials_login": None, "project_credentials_password": None}


@pytest.mark.parametrize("context", [None, {}, CREDENTIALS_ONLY])
def test_a_batch_whose_context_holds_no_prompt_is_a_batch(make_client, context):
    """Label Studio 1.23 sends ``params.context`` as ``{}`` (or only its credentials) with ordinary batches."""
    client = make_client()
    response = client.post("/predict", json=predict_body("positive", "negative", "FAIL", context=context))
    assert response.status_code == 200, response.get_json()
    results = response.get_json()["results"]
    assert [r["result"][0]["value"]["choices"] for r in results[:2]] == [["Positive"], ["Negative"]]
    assert "result" not in results[2]  # a batch: the failing task costs only itself, no 422


def test_a_prompt_with_several_tasks_is_refused(make_client):
    response = make_client().post("/predict", json=predict_body("a", "b", context={"result": []}))
    assert response.status_code == 400 and "must hold one task" in response.get_json()["message"]


@pytest.mark.parametrize(
    "extra_params",
    [None, {}, {"threshold": 0.3}, json.dumps({"threshold": 0.3}), "", "null"],
)
def test_setup_accepts_extra_params_as_object_string_or_null(make_client, extra_params):
    client = make_client()
    response = client.post("/setup", json=setup_body(extra_params))
    assert response.status_code == 200, response.get_json()


def test_setup_stores_extra_params_for_predictions_of_the_project(make_runtime):
    from labelzoo.protocol import SetupRequest

    runtime = make_runtime()
    runtime.prediction.setup(SetupRequest.from_json(setup_body(json.dumps({"threshold": 0.3}))))
    assert runtime.params.get("7") == {"threshold": 0.3}


def test_setup_reports_a_config_the_backend_cannot_fill(make_client):
    client = make_client()
    body = setup_body()
    body["schema"] = (
        '<View><Image name="img" value="$image"/><RectangleLabels name="b" toName="img">'
        '<Label value="Car"/></RectangleLabels></View>'
    )
    response = client.post("/setup", json=body)
    assert response.status_code == 400
    assert "Choices" in response.get_json()["message"] and "Text" in response.get_json()["message"]


@pytest.mark.parametrize(
    "action",
    [
        "ANNOTATION_CREATED",
        "ANNOTATION_UPDATED",
        "ANNOTATIONS_CREATED",
        "ANNOTATIONS_DELETED",
        "ANNOTATION_DELETED",
        "START_TRAINING",
        "TASKS_CREATED",
        "PROJECT_UPDATED",
        "LABEL_LINK_CREATED",
    ],
)
def test_webhook_accepts_every_event_fast(make_client, action):
    client = make_client()
    project = {"id": 7, "title": "t", "label_config": CONFIG, "created_at": "2025-06-01T09:00:00Z"}
    annotation = {
        "id": 5,
        "task": 1,
        "project": 7,
        "result": [],
        "was_cancelled": False,
        "ground_truth": False,
        "updated_at": "2025-06-01T10:00:00Z",
        "created_at": "2025-06-01T10:00:00Z",
    }
    task = {"id": 1, "data": {"text": "positive"}, "project": 7}
    payloads = {
        "ANNOTATION_CREATED": {"annotation": annotation, "task": task},
        "ANNOTATION_UPDATED": {"annotation": annotation, "task": task},
        "ANNOTATIONS_CREATED": {"annotation": [annotation], "task": [task]},
        "ANNOTATIONS_DELETED": {"annotations": [{"id": 5}]},
        "ANNOTATION_DELETED": {"annotation": annotation, "task": task},
        "TASKS_CREATED": {"tasks": [task] * 1000},
    }
    body = {"action": action, "project": project, **payloads.get(action, {})}
    started = time.perf_counter()
    response = client.post("/webhook", json=body)
    assert time.perf_counter() - started < 1.0
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["status"] == "ok"


def test_versions_route_answers_in_the_shape_label_studio_reads(make_client):
    body = make_client().get("/versions").get_json()
    assert isinstance(body["versions"], list)


def test_metrics_count_requests_errors_and_latency_per_route(make_client):
    client = make_client()
    client.post("/predict", json=predict_body("positive"))
    client.post("/predict", data="{not json", content_type="application/json")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'labelzoo_http_requests_total{method="POST",route="/predict",status="200"} 1.0' in text
    assert 'labelzoo_http_errors_total{route="/predict",status="400"} 1.0' in text
    assert 'labelzoo_http_request_seconds_count{route="/predict"} 2.0' in text
    assert 'labelzoo_predicted_tasks_total{outcome="ok"} 1.0' in text
    assert "labelzoo_model_ready 1.0" in text


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth_guards_every_route_but_the_probes(make_client):
    client = make_client(BASIC_AUTH_USER="ls", BASIC_AUTH_PASS="secret", TRAIN_AFTER_ANNOTATIONS="0")
    for probe in ("/", "/health", "/ready"):  # an orchestrator's probe sends no credentials
        assert client.get(probe).status_code == 200
    denied = client.post("/setup", json=setup_body())
    assert denied.status_code == 401 and denied.headers["WWW-Authenticate"].startswith("Basic")
    assert denied.get_json()["error"] == "unauthorized"
    assert client.post("/setup", json=setup_body(), headers=_basic("ls", "wrong")).status_code == 401
    assert client.post("/setup", json=setup_body(), headers=_basic("ls", "secret")).status_code == 200
    for path in ("/versions", "/jobs", "/metrics"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=_basic("ls", "secret")).status_code == 200
    # never open with basic auth on: without WEBHOOK_TOKEN only Start Training (sent with basic auth) gets in
    body = {"action": "PROJECT_UPDATED", "project": {"id": 7}}
    assert client.post("/webhook", json=body).status_code == 401
    assert client.post("/webhook", json=body, headers=_basic("ls", "secret")).status_code == 201


def test_start_up_refuses_auth_that_would_leave_webhooks_open_or_deaf():
    from labelzoo import Settings
    from labelzoo.options import OptionError

    with pytest.raises(OptionError, match=r"WEBHOOK_TOKEN=.*X-Webhook-Token.*TRAIN_AFTER_ANNOTATIONS=0"):
        Settings.from_env({"BASIC_AUTH_USER": "ls", "BASIC_AUTH_PASS": "secret"})
    with pytest.raises(OptionError, match="BASIC_AUTH_USER is set but BASIC_AUTH_PASS is not"):
        Settings.from_env({"BASIC_AUTH_USER": "ls", "WEBHOOK_TOKEN": "t"})
    with pytest.raises(OptionError, match="BASIC_AUTH_PASS is set but BASIC_AUTH_USER is not"):
        Settings.from_env({"BASIC_AUTH_PASS": "secret"})


def test_secrets_never_show_in_the_settings_repr():
    from labelzoo import Settings

    settings = Settings.from_env({"BASIC_AUTH_USER": "ls", "BASIC_AUTH_PASS": "pass-secret",
                                  "WEBHOOK_TOKEN": "hook-secret", "LABEL_STUDIO_API_KEY": "key-secret",
                                  "REDIS_URL": "redis://:redis-secret@localhost:6379/0"})
    shown = repr(settings)
    assert "Settings(" in shown and "basic_auth_user='ls'" in shown
    for secret in ("pass-secret", "hook-secret", "key-secret", "redis-secret"):
        assert secret not in shown, secret


def test_webhook_token_protects_webhooks(make_client):
    client = make_client(BASIC_AUTH_USER="ls", BASIC_AUTH_PASS="secret", WEBHOOK_TOKEN="hook-token")
    body = {"action": "PROJECT_UPDATED", "project": {"id": 7}}
    assert client.post("/webhook", json=body).status_code == 401
    assert client.post("/webhook", json=body, headers={"X-Webhook-Token": "nope"}).status_code == 401
    assert client.post("/webhook", json=body, headers={"X-Webhook-Token": "hook-token"}).status_code == 201
    assert (
        client.post("/webhook", json=body, headers={"Authorization": "Bearer hook-token"}).status_code == 201
    )
    # START_TRAINING comes through Label Studio's ML API, which sends basic auth
    assert client.post("/webhook", json=body, headers=_basic("ls", "secret")).status_code == 201


def test_a_webhook_token_without_basic_auth_still_guards_webhooks(make_client):
    client = make_client(WEBHOOK_TOKEN="hook-token")
    body = {"action": "PROJECT_UPDATED", "project": {"id": 7}}
    assert client.post("/webhook", json=body).status_code == 401
    assert client.post("/webhook", json=body, headers={"X-Webhook-Token": "hook-token"}).status_code == 201


def test_controls_marked_model_skip_are_left_alone(make_client):
    client = make_client()
    body = predict_body("positive")
    body["label_config"] = CONFIG.replace(
        "</View>",
        '<Choices name="manual" toName="text" model_skip="true"><Choice value="Positive"/></Choices></View>',
    )
    (item,) = client.post("/predict", json=body).get_json()["results"]
    assert [r["from_name"] for r in item["result"]] == ["sentiment"]


def test_setup_reports_label_mismatches_and_logs_them_once_per_config(make_client, caplog):
    client = make_client()
    with caplog.at_level(logging.WARNING, logger="labelzoo.runtime"):
        first = client.post("/setup", json=setup_body()).get_json()
        client.post("/setup", json=setup_body())  # Label Studio calls /setup on every Data Manager load
    (entry,) = first["labels"]
    assert entry["mapping"] == {"positive": "Positive", "negative": "Negative"}
    assert entry["unmapped_model_labels"] == ["neutral"]
    warnings = [r.getMessage() for r in caplog.records if "neutral" in r.getMessage()]
    assert len(warnings) == 1 and "sentiment" in warnings[0]


def test_setup_names_every_model_attribute_the_backend_does_not_read(make_client, caplog):
    client = make_client()
    body = setup_body()
    body["schema"] = CONFIG.replace('toName="text"', 'toName="text" model_skip="false" model_conf="0.4" Model_Foo="x"')
    with caplog.at_level(logging.WARNING, logger="labelzoo.prediction"):
        warnings = client.post("/setup", json=body).get_json()["warnings"]
        client.post("/setup", json=body)
    ignored = [w for w in warnings if "changes nothing" in w]
    assert [w.split(" has ")[1].split("=")[0] for w in ignored] == ["model_conf", "model_foo"]  # not model_skip
    assert ignored[0].startswith('<Choices name="sentiment"> has model_conf="0.4"')
    assert "does not read it" in ignored[0]
    assert sum("changes nothing" in r.getMessage() for r in caplog.records) == 2  # logged once per config


def test_attributes_a_backend_declares_are_not_warned_about() -> None:
    from labelzoo.labelconfig import THRESHOLD_ATTRIBUTES, parse_label_config
    from labelzoo.labelconfig.attributes import attribute_warnings

    config = parse_label_config(CONFIG.replace('toName="text"', 'toName="text" score_threshold="0.2" model_x="1"'))
    control = config.controls["sentiment"]
    reads = lambda c, name: None if name in THRESHOLD_ATTRIBUTES else "no"  # noqa: E731
    (warning,) = attribute_warnings(control, reads)
    assert warning == '<Choices name="sentiment"> has model_x="1", which changes nothing: no'
