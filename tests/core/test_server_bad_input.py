"""Bad input on every route gets a 4xx JSON error naming the problem, and the server keeps serving."""

from __future__ import annotations

import json

import pytest

from tests.core.test_server_protocol import CONFIG, predict_body, setup_body

BROKEN_XML = "<View><Text name='text' value='$text'><Choices"
BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<View><Text name="text" value="&lol2;"/></View>"""
UNKNOWN_TAGS_ONLY = "<View><Gizmo name='g' toName='x'/><Widget/></View>"


def _with(body: dict, **changes: object) -> dict:
    return {**body, **changes}


CASES = [
    # (route, body or raw string, expected status, words the message must contain)
    ("/setup", "{not json", 400, ["not valid JSON"]),
    ("/setup", "", 400, ["empty"]),
    ("/setup", "[1, 2]", 400, ["JSON object"]),
    ("/setup", "null", 400, ["JSON object"]),
    ("/setup", _with(setup_body(), schema=None), 400, ["schema"]),
    ("/setup", _with(setup_body(), schema=BROKEN_XML), 400, ["label config"]),
    ("/setup", _with(setup_body(), schema=BILLION_LAUGHS), 400, []),
    ("/setup", _with(setup_body(), schema=UNKNOWN_TAGS_ONLY), 400, ["Choices"]),
    ("/setup", _with(setup_body(), project=None), 400, ["project"]),
    ("/setup", _with(setup_body(), project="abc"), 400, ["project"]),
    ("/setup", _with(setup_body(), extra_params="{oops"), 400, ["extra_params"]),
    ("/setup", _with(setup_body(), extra_params=[1]), 400, ["extra_params"]),
    ("/predict", "{not json", 400, ["not valid JSON"]),
    ("/predict", _with(predict_body("x"), tasks=[]), 400, ["tasks"]),
    ("/predict", _with(predict_body("x"), tasks="all"), 400, ["tasks"]),
    ("/predict", _with(predict_body("x"), tasks=[1]), 400, ["tasks[0]"]),
    ("/predict", _with(predict_body("x"), tasks=[{"id": 1}]), 400, ["data"]),
    ("/predict", _with(predict_body("x"), tasks=[{"id": "one", "data": {}}]), 400, ["id"]),
    ("/predict", _with(predict_body("x"), label_config=BROKEN_XML), 400, ["label config"]),
    ("/predict", _with(predict_body("x"), label_config=7), 400, ["label_config"]),
    ("/predict", _with(predict_body("x"), label_config=UNKNOWN_TAGS_ONLY), 400, ["Choices"]),
    ("/predict", _with(predict_body("x"), params="fast"), 400, ["params"]),
    ("/predict", _with(predict_body("x"), params={"context": [1]}), 400, ["context"]),
    ("/predict", _with(predict_body("x", "y"), params={"context": {"result": []}}), 400, ["one task"]),
    ("/predict", _with(predict_body("x"), project=[7]), 400, ["project"]),
    ("/webhook", "{not json", 400, ["not valid JSON"]),
    ("/webhook", "[]", 400, []),
    ("/webhook", {"project": {"id": 7}}, 400, ["action"]),
    ("/webhook", {"action": 5, "project": {"id": 7}}, 400, ["action"]),
    (
        "/webhook",
        {"action": "ANNOTATION_CREATED", "project": {"id": 7}, "annotation": "x", "task": {}},
        400,
        ["annotation"],
    ),
    ("/webhook", {"action": "ANNOTATION_CREATED", "project": "seven"}, 400, ["project"]),
    ("/train", "{not json", 400, ["not valid JSON"]),
    ("/train", "[]", 400, ["JSON object"]),
    *[(route, body, 400, ["deeper than 64 levels"]) for route in ("/setup", "/predict", "/webhook", "/train", "/bulk")
      for body in ("[" * 10_000 + "]" * 10_000, '{"a":' * 100 + "1" + "}" * 100)],
    ("/setup", b"\xff\xfe\x00\xd8", 400, ["not valid JSON"]),
]


@pytest.mark.parametrize(
    ("route", "body", "status", "words"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_bad_input_gets_a_clear_4xx_json_error(make_client, route, body, status, words):
    client = make_client()
    if isinstance(body, str | bytes):
        response = client.post(route, data=body, content_type="application/json")
    else:
        response = client.post(route, json=body)
    assert response.status_code == status, response.get_data(as_text=True)
    payload = response.get_json()
    assert set(payload) == {"error", "message"}, payload
    for word in words:
        assert word in payload["message"], payload["message"]
    assert "Traceback" not in payload["message"]
    assert client.get("/health").get_json()["status"] == "UP"
    assert client.post("/predict", json=predict_body("positive")).status_code == 200


def test_nesting_up_to_the_limit_is_served(make_client):
    body = predict_body("positive")
    body["tasks"][0]["data"]["meta"] = json.loads("[" * 60 + "]" * 60)  # 64 levels with the body's own
    assert make_client().post("/predict", json=body).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nope", 404),
        ("GET", "/predict", 405),
        ("DELETE", "/setup", 405),
        ("GET", "/jobs/doesnotexist", 404),
        ("POST", "/jobs/doesnotexist/cancel", 404),
    ],
)
def test_unknown_routes_and_methods_answer_json(make_client, method, path, status):
    response = make_client().open(path, method=method)
    assert response.status_code == status
    assert set(response.get_json()) == {"error", "message"}


def test_wrong_content_type_still_parses_json(make_client):
    # Label Studio always sends application/json, but curl users often forget the header
    response = make_client().post("/setup", data=json.dumps(setup_body()), content_type="text/plain")
    assert response.status_code == 200


def test_oversized_body_is_refused_with_413(make_client):
    client = make_client()
    client.application.config["MAX_CONTENT_LENGTH"] = 1000
    response = client.post("/predict", json=predict_body("x" * 5000))
    assert response.status_code == 413 and response.get_json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "body", "words"),
    [
        ("GET", "/versions?project=abc", None, "project must be"),
        ("GET", "/jobs?project=-1", None, "project must be"),
        ("GET", "/bulk?project=x", None, "project must be"),
        ("POST", "/bulk", [1], "JSON object"),
        ("POST", "/bulk", {"project": "x"}, "project must be"),
        ("POST", "/bulk", {"project": 5}, "LABEL_STUDIO_URL"),
        ("POST", "/train", {"project": "1", "annotations": "x"}, "annotations must be a list"),
        ("POST", "/train", {"project": "1", "annotations": [{"id": 1}]}, "annotations[0].data"),
    ],
)
def test_query_parameters_and_job_routes_refuse_bad_input_clearly(make_client, method, path, body, words):
    client = make_client()
    response = client.open(path, method=method, json=body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert words in response.get_json()["message"]
    assert client.get("/health").status_code == 200


def test_the_label_config_limit_is_a_setting(make_client):
    small = make_client(LABEL_CONFIG_MAX_MB="0.001")  # 1,048 bytes: not enough for the longer config below
    padded = CONFIG.replace("</View>", "<!--" + "x" * 2000 + "--></View>")
    refused = small.post("/setup", json={**setup_body(), "schema": padded})
    assert refused.status_code == 400 and "LABEL_CONFIG_MAX_MB" in refused.get_json()["message"]
    assert small.post("/predict", json={**predict_body("positive"), "label_config": padded}).status_code == 400
    assert small.post("/setup", json=setup_body()).status_code == 200
    assert make_client().post("/setup", json={**setup_body(), "schema": padded}).status_code == 200
