"""Bulk pre-annotation vs a plain /predict: tasks per second, template backend, 3,000 short reviews.

(a) plain /predict: what Label Studio's "Retrieve Predictions" does, one ``POST /predict`` carrying
    every task to ``labelzoo serve`` (gunicorn, one worker), timed until the answer is in. Label Studio
    then stores it, which is not counted; and it gives up at 100 s, whatever the batch size.
(b) bulk: a bulk job (what ``labelzoo predict --project`` and ``POST /bulk`` run) in this process against a
    fake Label Studio in another process on 127.0.0.1 (``tests/core/fake_label_studio.py``): list the
    project's tasks, then per chunk of 256 read the tasks, predict and post the predictions, two chunks
    at a time (``BULK_PARALLEL``), without a rate limit (``BULK_RATE_LIMIT=0``).

Agreement: after the last run, the predictions the bulk job posted (read back from the fake Label Studio)
are compared with the plain ``/predict`` answer, task by task: same result, same score.

Both use the same model version: the template trained here on 40 annotated reviews, in one ``MODEL_DIR``.
Runs alternate, best of 5. The bulk path pays for reading tasks and posting predictions over HTTP that
(a) leaves to Label Studio, and in exchange has no time limit, resumes, and spreads over RQ workers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from benchmarks import serving

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "backends" / "template"
TASKS = 3000
REPEATS = 5
PROJECT = 5


def reviews(n: int) -> list[tuple[str, str]]:
    good, bad, things = ("great", "wonderful", "excellent"), ("awful", "terrible", "dreadful"), ("film", "hotel")
    out = []
    for i in range(n):
        words = good if i % 2 else bad
        out.append((f"The {things[i % 2]} number {i} was {words[i % 3]}, really {words[(i + 1) % 3]}.",
                    "Positive" if i % 2 else "Negative"))
    return out


def train(model_dir: Path) -> str:
    """Train the template on 40 annotated reviews; returns the promoted version."""
    from labelzoo.registry import load_backend
    from labelzoo.runtime import Runtime
    from labelzoo.settings import Settings

    runtime = Runtime(load_backend(str(TEMPLATE)), Settings.from_env({"MODEL_DIR": str(model_dir)}))
    runtime.start()
    try:
        annotated = [{"id": i + 1, "data": {"text": text}, "annotations": [{"id": i + 1, "result": [
            {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]}]}
            for i, (text, label) in enumerate(reviews(40))]
        config = (TEMPLATE / "label_config.xml").read_text()
        runtime.training.record_tasks(PROJECT, annotated, config)
        job_id = runtime.training.start_training(str(PROJECT))["id"]
        deadline = time.monotonic() + 120
        while runtime.training.job(job_id)["status"] not in ("succeeded", "failed", "cancelled", "skipped"):
            if time.monotonic() > deadline:
                raise TimeoutError("training the template took over 120 s")
            time.sleep(0.2)
        return runtime.training.current_version(str(PROJECT))
    finally:
        runtime.close()


def serve(model_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO", "REDIS", "BASIC_AUTH"))}
    env.update(MODEL_DIR=str(model_dir), LOG_LEVEL="WARNING", PREDICT_DEADLINE="0")  # one answer with every task
    return serving.start_server(TEMPLATE, env, log, timeout=60)


def fake_label_studio(config: str) -> None:
    """``python -m benchmarks.bench_bulk --fake-ls``: serve the project until stdin closes.

    Prints its URL and token; ``POST /bench/reset`` deletes every prediction between runs.
    """
    from flask import jsonify

    from tests.core.fake_label_studio import FakeLabelStudio

    ls = FakeLabelStudio()

    def reset() -> Any:
        for task in ls.tasks.values():
            task["predictions"].clear()
        return jsonify(ok=True)

    ls.app.add_url_rule("/bench/reset", "bench_reset", reset, methods=["POST"])
    with ls:
        ls.add_project(PROJECT, config)
        ls.add_tasks(PROJECT, [{"text": text} for text, _ in reviews(TASKS)])
        print(ls.url, ls.legacy_token, flush=True)
        sys.stdin.read()


def start_fake_label_studio() -> tuple[subprocess.Popen[str], str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_bulk", "--fake-ls"], cwd=REPO, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url, token = proc.stdout.readline().split()
    return proc, url, token


def plain_predict(url: str, tasks: list[dict[str, Any]], config: str, version: str) -> tuple[float, list[dict]]:
    body = {"tasks": tasks, "label_config": config, "project": f"{PROJECT}.1718900000",
            "params": {"login": None, "password": None, "context": None}}
    started = time.perf_counter()
    answer = requests.post(url + "/predict", json=body, timeout=300).json()
    seconds = time.perf_counter() - started
    results = answer["results"]
    assert len(results) == len(tasks) and all(r.get("result") and r["model_version"] == version for r in results)
    return seconds, results


def agreement(ls_url: str, token: str, tasks: list[dict[str, Any]], served: list[dict]) -> int:
    """Tasks whose bulk-posted prediction has the plain /predict answer's result and score."""
    posted = requests.get(ls_url + "/api/predictions/", params={"project": PROJECT},
                          headers={"Authorization": f"Token {token}"}, timeout=60).json()
    by_task = {p["task"]: p for p in posted}

    def shown(prediction: dict) -> tuple[list[dict], float]:  # region ids are drawn afresh for every prediction
        return [{k: v for k, v in region.items() if k != "id"} for region in prediction["result"]], prediction["score"]

    return sum(task["id"] in by_task and shown(by_task[task["id"]]) == shown(answer)
               for task, answer in zip(tasks, served, strict=True))


def bulk(runtime: Any, ls_url: str, version: str) -> float:
    requests.post(ls_url + "/bench/reset", timeout=30).raise_for_status()
    started = time.perf_counter()
    job = runtime.bulk.run_here(PROJECT)
    seconds = time.perf_counter() - started
    assert (job["status"], job["posted"], job["model_version"]) == ("succeeded", TASKS, version), job
    return seconds


def main() -> None:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from labelzoo.registry import load_backend
    from labelzoo.runtime import Runtime
    from labelzoo.settings import Settings

    config = (TEMPLATE / "label_config.xml").read_text()
    texts = [text for text, _ in reviews(TASKS)]
    tasks = [{"id": i + 1, "data": {"text": text}, "meta": {}, "annotations": [], "predictions": [],
              "project": PROJECT, "is_labeled": False} for i, text in enumerate(texts)]  # the fake's tasks
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as tmp:
        model_dir = Path(tmp) / "models"
        version = train(model_dir)
        ls, ls_url, token = start_fake_label_studio()
        server, url = serve(model_dir, Path(tmp) / "server.log")
        runtime = Runtime(load_backend(str(TEMPLATE)), Settings.from_env({
            "MODEL_DIR": str(model_dir), "LABEL_STUDIO_URL": ls_url, "LABEL_STUDIO_API_KEY": token,
            "BULK_RATE_LIMIT": "0", "LOG_LEVEL": "WARNING"}))
        runtime.models.start()
        try:
            plain_predict(url, tasks[:100], config, version)  # warm-up: the server loads the version
            bulk(runtime, ls_url, version)  # warm-up: this process loads it
            plain, chunked = [], []
            for _ in range(REPEATS):
                seconds, served = plain_predict(url, tasks, config, version)
                plain.append(seconds)
                chunked.append(bulk(runtime, ls_url, version))
            agreeing = agreement(ls_url, token, tasks, served)
        finally:
            runtime.close()
            for proc in (server, ls):
                proc.terminate()
                proc.wait(30)
    a, b = TASKS / min(plain), TASKS / min(chunked)
    print(f"   model version {version}, {TASKS} tasks, best of {REPEATS}")
    print(f"   (a) plain /predict, one request: {a:8.0f} tasks/s ({min(plain):.2f} s; Label Studio stops waiting "
          f"at 100 s, about {int(a * 100):,} tasks at this speed, less its own overhead)")
    print(f"   (b) bulk job, chunks of 256:     {b:8.0f} tasks/s ({min(chunked):.2f} s, reading and posting "
          "through the API included; no time limit)")
    print(f"   bulk / plain: {b / a:.2f}")
    print(f"   agreement: {agreeing}/{TASKS} tasks posted by the bulk job exactly as /predict answered them")


if __name__ == "__main__":
    if sys.argv[1:] == ["--fake-ls"]:
        fake_label_studio((TEMPLATE / "label_config.xml").read_text())
    else:
        main()
