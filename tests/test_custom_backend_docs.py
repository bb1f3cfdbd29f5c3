"""The complete backend of docs/custom-backend.md, exactly as the page shows it: its own test passes, and it learns
new keywords through webhooks and serves them."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from labelzoo.testing import backend_client

REPO = Path(__file__).resolve().parents[1]
PROJECT = {"id": 5, "label_config": None}


def page_code() -> tuple[str, str]:
    section = (REPO / "docs" / "custom-backend.md").read_text().split("## The whole file", 1)[1]
    model, test = re.findall(r"```python\n(.*?)```", section, flags=re.S)[:2]
    return model, test


def write_backend(folder: Path) -> Path:
    model, test = page_code()
    folder.mkdir()
    (folder / "model.py").write_text(model)
    (folder / "test_keywords.py").write_text(test)
    return folder


def test_the_pages_backend_passes_its_own_test(tmp_path: Path) -> None:
    folder = write_backend(tmp_path / "keywords")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def webhook(i: int, text: str, choice: str, config: str) -> dict:
    task = {"id": 100 + i, "data": {"text": text}, "project": 5}
    result = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": [choice]}}]
    annotation = {"id": 900 + i, "task": task["id"], "project": 5, "result": result, "was_cancelled": False,
                  "ground_truth": False, "created_at": "2026-11-02T10:00:00Z", "updated_at": "2026-11-02T10:00:00Z"}
    return {"action": "ANNOTATION_CREATED", "annotation": annotation, "task": task,
            "project": {"id": 5, "label_config": config}}


def test_the_pages_backend_learns_keywords_from_annotations(tmp_path: Path) -> None:
    folder = write_backend(tmp_path / "keywords")
    config = re.search(r'CONFIG = """(.*?)"""', page_code()[1], flags=re.S).group(1)
    texts = [("A splendid meal, simply splendid.", "Positive"), ("Dreary rooms, a dreary stay.", "Negative")]
    env = {"MODEL_DIR": str(tmp_path / "models"), "TRAIN_AFTER_ANNOTATIONS": "24"}
    with backend_client(folder, env) as client:
        body = {"tasks": [{"id": 1, "data": {"text": "Splendid."}}], "label_config": config, "project": 5}
        assert client.post("/predict", json=body).get_json()["results"][0]["result"] == []  # not a keyword yet
        for i in range(24):
            text, choice = texts[i % 2]
            assert client.post("/webhook", json=webhook(i, text, choice, config)).status_code == 201
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            jobs = client.get("/jobs", query_string={"project": 5}).get_json()["jobs"]
            if jobs and jobs[0]["status"] not in ("queued", "running"):
                break
            time.sleep(0.2)
        assert jobs[0]["status"] == "succeeded" and jobs[0]["version"], jobs
        answer = client.post("/predict", json={**body, "tasks": [{"id": 2, "data": {"text": "So dreary."}},
                                                               {"id": 3, "data": {"text": "Splendid!"}}]})
    picked = [item["result"][0]["value"]["choices"] for item in answer.get_json()["results"]]
    assert picked == [["Negative"], ["Positive"]]
