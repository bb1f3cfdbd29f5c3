"""The server as users run it: ``labelzoo serve`` under gunicorn on a real port, spoken to over HTTP."""

from __future__ import annotations

import concurrent.futures
import signal
import time

import requests

from tests.core.test_server_protocol import predict_body, setup_body


def test_serves_the_protocol_over_http(serve):
    server = serve()
    health = requests.get(server.url + "/health", timeout=1)
    assert health.status_code == 200 and health.json()["ready"] is True
    version = requests.post(server.url + "/setup", json=setup_body(), timeout=3).json()["model_version"]
    response = requests.post(
        server.url + "/predict", json=predict_body("positive", "negative", "FAIL"), timeout=10
    )
    results = response.json()["results"]
    assert [("result" in r) for r in results] == [True, True, False]
    assert {r["model_version"] for r in results} == {version}
    assert "labelzoo_http_requests_total" in requests.get(server.url + "/metrics", timeout=1).text


def test_health_answers_at_once_while_weights_load(serve):
    server = serve(wait=False, KEYWORD_LOAD_SECONDS="4")
    deadline = time.monotonic() + 20
    while True:  # wait for the port, not for the model
        try:
            started = time.perf_counter()
            body = requests.get(server.url + "/health", timeout=1).json()
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
    assert time.perf_counter() - started < 1.0
    assert body["ready"] is False and body["model"]["state"] == "loading"
    assert requests.post(server.url + "/setup", json=setup_body(), timeout=3).status_code == 200
    server.wait_ready()


def test_bad_requests_never_crash_a_worker(serve):
    server = serve()
    for raw in (
        "{",
        "[]",
        '{"tasks": 1}',
        "\x00\xff",
        '{"tasks": [{"data": 5}], "project": "1", "label_config": "<"}',
    ):
        response = requests.post(
            server.url + "/predict",
            data=raw.encode("latin-1"),
            headers={"Content-Type": "application/json"},
            timeout=5,
        )
        assert 400 <= response.status_code < 500 and "message" in response.json()
    assert requests.post(server.url + "/predict", json=predict_body("positive"), timeout=5).status_code == 200
    assert server.proc.poll() is None
    assert "Traceback" not in server.log()


def test_concurrent_requests_on_two_workers(serve):
    server = serve(workers=2, THREADS="12")  # 10 requests let in per worker: gunicorn may route all 8 to one
    body = predict_body(*["positive", "negative"] * 10)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(lambda _: requests.post(server.url + "/predict", json=body, timeout=30), range(16))
        )
    assert all(r.status_code == 200 and len(r.json()["results"]) == 20 for r in responses)


def test_sigterm_stops_the_server_gracefully(serve):
    server = serve()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(30) == 0
