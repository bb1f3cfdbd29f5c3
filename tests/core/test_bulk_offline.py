"""Offline pre-annotation: a task file or a media folder into Label Studio's import format, resumable."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from labelzoo.backend import Task
from labelzoo.bulk.offline import predict_offline
from labelzoo.bulk.progress import ProgressBar
from labelzoo.bulk.sources import load_task_file
from labelzoo.errors import LabelzooError
from labelzoo.prediction.predictor import run_backend, to_json
from tests.conftest import FIXTURES, KEYWORD_BACKEND, base_env
from tests.core.bulk_support import CONFIG, texts
from tests.core.training_support import wait_for

SLOW_BACKEND = FIXTURES / "slow_backend"


def predictor(make_runtime: Callable[..., Any]) -> tuple[Callable[[Sequence[Task]], list[dict[str, Any]]], str]:
    backend, ctx = make_runtime(KEYWORD_BACKEND).prediction.context(None, CONFIG)
    return (lambda tasks: [to_json(p, ctx.model_version) for p in run_backend(backend, tasks, ctx)]), ctx.model_version


def write_tasks(path: Path, tasks: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(tasks))
    return path


def chosen(record: dict[str, Any], version: str) -> list[str]:
    (prediction,) = [p for p in record["predictions"] if p["model_version"] == version]
    return [c for item in prediction["result"] for c in item["value"]["choices"]]


def test_a_task_file_becomes_an_import_file_with_one_prediction_each(tmp_path: Path, make_runtime: Any) -> None:
    predict, version = predictor(make_runtime)
    source = write_tasks(tmp_path / "tasks.json", [
        {"id": 3, "data": {"text": "a cat"}, "predictions": [
            {"model_version": "older", "result": []}, {"model_version": version, "result": [], "score": 0.1}]},
        {"text": "a dog"},  # bare task data, as Label Studio also imports it
    ])
    out = tmp_path / "out" / "predictions.json"
    summary = predict_offline(predict, load_task_file(source), out, model_version=version, label_config=CONFIG,
                              chunk_size=8, stop=threading.Event())
    assert (summary.total, summary.predicted, summary.failed, summary.interrupted) == (2, 2, 0, False)
    records = json.loads(out.read_text())
    assert records[0]["id"] == 3 and records[1]["data"] == {"text": "a dog"}
    assert [p["model_version"] for p in records[0]["predictions"]] == ["older", version]  # same version replaced
    assert chosen(records[0], version) == ["cat"] and chosen(records[1], version) == ["dog"]
    assert not (tmp_path / "out" / "predictions.json.partial").exists()


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path: Path, make_runtime: Any) -> None:
    predict, version = predictor(make_runtime)
    sources = load_task_file(write_tasks(tmp_path / "tasks.json", texts(5)))
    out = tmp_path / "predictions.json"
    stop = threading.Event()
    calls: list[int] = []

    def stopping_after_one_chunk(tasks: Sequence[Task]) -> list[dict[str, Any]]:
        calls.append(len(tasks))
        stop.set()  # as SIGTERM would: the run ends after this chunk
        return predict(tasks)

    first = predict_offline(stopping_after_one_chunk, sources, out, model_version=version, label_config=CONFIG,
                            chunk_size=2, stop=stop)
    assert first.interrupted and calls == [2] and not out.exists()
    journal = tmp_path / "predictions.json.partial"
    with journal.open("a") as f:
        f.write('{"i": 4, "p": {"resu')  # a run killed in the middle of a write

    calls.clear()
    second = predict_offline(lambda tasks: calls.append(len(tasks)) or predict(tasks), sources, out,
                             model_version=version, label_config=CONFIG, chunk_size=2, stop=threading.Event())
    assert (second.resumed, second.predicted, second.interrupted) == (2, 3, False)
    assert calls == [2, 1]
    assert [chosen(r, version) for r in json.loads(out.read_text())] == [["dog"], ["cat"], ["dog"], ["cat"], ["dog"]]
    assert not journal.exists()


def test_a_journal_of_another_run_is_not_resumed(tmp_path: Path, make_runtime: Any) -> None:
    predict, version = predictor(make_runtime)
    sources = load_task_file(write_tasks(tmp_path / "tasks.json", texts(3)))
    out = tmp_path / "predictions.json"
    stop = threading.Event()
    stop.set()
    predict_offline(predict, sources, out, model_version=version, label_config=CONFIG, chunk_size=1, stop=stop)
    with pytest.raises(LabelzooError, match="belongs to another run"):
        predict_offline(predict, sources, out, model_version="another-version", label_config=CONFIG, chunk_size=1,
                        stop=threading.Event())


def labelzoo(*args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "labelzoo.cli", "predict", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_cli_on_a_media_folder(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text("my cat")
    (docs / "sub" / "b.txt").write_text("the dog")
    (docs / ".hidden.txt").write_text("cat")
    config = tmp_path / "config.xml"
    config.write_text(CONFIG.replace('value="$text"', 'value="$text" valueType="url"'))  # files read by path
    out = tmp_path / "predictions.json"
    proc = labelzoo(str(KEYWORD_BACKEND), "--tasks", str(docs), "--label-config", str(config), "--out", str(out),
                    "--data-prefix", "/data/local-files/?d=docs/", **base_env(tmp_path))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    records = json.loads(out.read_text())
    assert [r["data"]["text"] for r in records] == [
        "/data/local-files/?d=docs/a.txt", "/data/local-files/?d=docs/sub/b.txt"]
    assert [chosen(r, "keyword-1") for r in records] == [["cat"], ["dog"]]
    assert "wrote" in err and "2 with a prediction of keyword-1, 0 failed" in err


def test_cli_reports_failed_tasks_and_keeps_them_without_a_prediction(tmp_path: Path) -> None:
    source = write_tasks(tmp_path / "tasks.json", [{"text": "a cat"}, {"text": "FAIL"}])
    config = tmp_path / "config.xml"
    config.write_text(CONFIG)
    out = tmp_path / "predictions.json"
    proc = labelzoo(str(KEYWORD_BACKEND), "--tasks", str(source), "--label-config", str(config), "--out", str(out),
                    **base_env(tmp_path))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    records = json.loads(out.read_text())
    assert chosen(records[0], "keyword-1") == ["cat"] and records[1]["predictions"] == []
    assert "1 failed" in err and "task 1: cannot classify 'FAIL'" in err


def test_cli_stops_on_sigterm_and_the_same_command_goes_on(tmp_path: Path) -> None:
    source = write_tasks(tmp_path / "tasks.json", texts(12))
    config = tmp_path / "config.xml"
    config.write_text(CONFIG)
    out = tmp_path / "predictions.json"
    journal = tmp_path / "predictions.json.partial"
    gate = tmp_path / "gate"
    env = base_env(tmp_path, SLOW_BATCH_SIZE="2", SLOW_GATE=str(gate))
    args = (str(SLOW_BACKEND), "--tasks", str(source), "--label-config", str(config), "--out", str(out),
            "--chunk-size", "2")
    gate.touch()  # the first chunk waits at the gate...
    first = labelzoo(*args, **env)
    wait_for(lambda: journal.exists(), 60, "the journal")
    first.send_signal(signal.SIGTERM)  # ...while SIGTERM arrives, then ends: the run stops after it
    gate.unlink()
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    assert "run the same command again" in err and not out.exists()
    done_before = len(journal.read_text().splitlines()) - 1
    assert done_before == 2

    second = labelzoo(*args, **env)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert f"{done_before} from the earlier run" in err
    records = json.loads(out.read_text())
    assert len(records) == 12 and all(len(r["predictions"]) == 1 for r in records)
    assert not journal.exists()


def test_the_progress_bar_shows_rate_and_time_left() -> None:
    now = [0.0]
    out = io.StringIO()  # not a terminal: a line per draw, at most every 10 s
    bar = ProgressBar(100, "predicting", stream=out, clock=lambda: now[0], done=20)
    now[0] = 10.0
    bar.update(25, note="1 failed")
    bar.update(5)  # within 10 s of the last line: not drawn
    bar.close()
    first, last = out.getvalue().splitlines()
    assert first == "predicting  45% [############................] 45/100 tasks, 2.5/s, 00:10 ETA 00:22 1 failed"
    assert last.startswith("predicting  50% [##############..............] 50/100 tasks, 3.0/s")
