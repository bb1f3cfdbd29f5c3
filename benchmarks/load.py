"""``make loadtest``: a CPU-bound backend under concurrent load, and whether the cheap routes stay responsive.

The server is ``labelzoo serve backends/yolo`` (gunicorn, one worker, the default threads) on 127.0.0.1
with a YOLO detector built here (random weights, ``yolo11n.yaml``, the head biased so that every image
yields boxes: NMS, result building and all) over 640×480 JPEG files. ``CLIENTS`` threads post ``/predict``
with 1–4 tasks each, back to back (after a 503 "busy", when its ``Retry-After`` says), as many annotators
and "Retrieve predictions" would; two probe threads
ask ``/health`` and ``/setup`` every 0.25 s with Label Studio's own timeouts (1 s and 3 s). The worker's
RSS is sampled every second from /proc.

Printed: per route the count, p50/p95/p99/max latency, timeouts and status codes; 5xx other than the
deliberate 503 "busy" answers; RSS at start, peak, at the end of the load and 20 s after it, and the RSS
curve, one point per 30 s (``make soak`` runs it for 10 minutes).

Everything stays on loopback; the run is bounded by ``--minutes``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import requests

from benchmarks.bench_yolo import shape_photos, start_server
from benchmarks.serving import worker_pids

REPO = Path(__file__).resolve().parents[1]
IMAGES = 24
CLIENTS = 16
PROBE_EVERY = 0.25
TIMEOUTS = {"/health": 1.0, "/setup": 3.0, "/predict": 100.0}  # Label Studio's (ML_TIMEOUT_*)
CONFIG = """<View><Image name="image" value="$image"/>
  <RectangleLabels name="label" toName="image"><Label value="person"/><Label value="car"/></RectangleLabels>
</View>"""


def make_inputs(root: Path) -> tuple[Path, list[str]]:
    """A confident random-weight detector and JPEG files of shapes on noise; their task paths."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.backends.yolo_support import build_model

    model = build_model(root / "weights" / "load-yolo11n.pt", "detect", ["person", "car"], confident=True)
    return model, [str(path) for path in shape_photos(root, IMAGES)]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Record:
    """Latencies, statuses and timeouts per route, from every thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter[str]] = defaultdict(Counter)

    def call(self, route: str, send: Callable[[], requests.Response]) -> requests.Response | None:
        started = time.perf_counter()
        response = None
        try:
            response = send()
            status = str(response.status_code)
        except requests.Timeout:
            status = "timeout"
        except requests.RequestException as exc:
            cause = exc.__context__
            while cause is not None and cause.__context__ is not None:
                cause = cause.__context__
            status = f"{type(exc).__name__}({type(cause).__name__ if cause else ''})"
        elapsed = time.perf_counter() - started
        with self.lock:
            self.latencies[route].append(elapsed)
            self.statuses[route][status] += 1
        return response

    def report(self) -> None:
        for route in ("/health", "/setup", "/predict"):
            times = sorted(self.latencies[route])
            if not times:
                continue
            q = statistics.quantiles(times, n=100, method="inclusive") if len(times) > 1 else times * 99
            print(f"  {route:9} n={len(times):5}  p50 {q[49] * 1000:7.0f} ms  p95 {q[94] * 1000:7.0f} ms  "
                  f"p99 {q[98] * 1000:7.0f} ms  max {times[-1] * 1000:7.0f} ms  "
                  f"statuses {dict(sorted(self.statuses[route].items()))}")
        unexpected = sum(n for counts in self.statuses.values() for status, n in counts.items()
                         if status.startswith("5") and status != "503")
        busy = sum(counts.get("503", 0) for counts in self.statuses.values())
        print(f"  5xx other than 503: {unexpected}; deliberate 503 (busy): {busy}")


def run(minutes: float, extra_env: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="labelzoo-load-") as tmp:
        root = Path(tmp)
        model, paths = make_inputs(root)
        proc, url = start_server(root, model, "load", **extra_env)
        try:
            load(url, proc.pid, paths, minutes)
        finally:
            proc.terminate()
            proc.wait(30)
            errors = [line for line in (root / "server-load.log").read_text(errors="replace").splitlines()
                      if "Error" in line or "WORKER" in line or "Traceback" in line]
            if errors:
                print("  server log: " + "\n              ".join(errors[-10:]))


def load(url: str, master: int, paths: list[str], minutes: float) -> None:
    record = Record()
    stop = threading.Event()
    setup = {"project": "1.1", "schema": CONFIG}
    requests.post(url + "/setup", json=setup, timeout=30)
    requests.post(url + "/predict", json=predict_body(paths[:4], 0), timeout=100)  # warm

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with requests.Session() as session:
            while not stop.is_set():
                body = predict_body(rng.sample(paths, rng.randint(1, 4)), seed)
                response = record.call("/predict", lambda body=body: session.post(
                    url + "/predict", json=body, timeout=TIMEOUTS["/predict"]))
                if response is not None and response.status_code == 503:  # busy: come back when it says, on a
                    session.close()  # new connection (the server drops idle ones after 2 s, gunicorn's keepalive)
                    stop.wait(float(response.headers.get("Retry-After", "1")) + rng.random() / 2)

    def probe(route: str) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                if route == "/health":
                    record.call(route, lambda: session.get(url + route, timeout=TIMEOUTS[route]))
                else:
                    record.call(route, lambda: session.post(url + route, json=setup, timeout=TIMEOUTS[route]))
                stop.wait(PROBE_EVERY)

    pid = worker_pids(master)[0]
    start_rss = rss_mb(pid)
    curve: list[tuple[float, float]] = []
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    threads += [threading.Thread(target=probe, args=(route,), daemon=True) for route in ("/health", "/setup")]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    peak = start_rss
    while time.monotonic() - started < minutes * 60:
        time.sleep(1)
        now = rss_mb(pid)
        peak = max(peak, now)
        if not curve or time.monotonic() - started - curve[-1][0] >= 30:
            curve.append((time.monotonic() - started, now))
    end_rss = rss_mb(pid)
    stop.set()
    for thread in threads:
        thread.join(120)
    time.sleep(20)
    after = rss_mb(pid)
    print(f"YOLO backend, 1 worker; {CLIENTS} clients posting /predict (1-4 images each) for {minutes:g} min, "
          f"/health and /setup probed every {PROBE_EVERY} s")
    record.report()
    print(f"  worker RSS: start {start_rss:.0f} MB, peak {peak:.0f} MB, end of load {end_rss:.0f} MB, "
          f"20 s later {after:.0f} MB")
    if len(curve) > 1:
        print("  RSS curve: " + ", ".join(f"{t / 60:.1f} min {mb:.0f} MB" for t, mb in curve))


def predict_body(paths: list[str], seed: int) -> dict:
    return {"tasks": [{"id": seed * 1000 + i, "data": {"image": p}} for i, p in enumerate(paths)],
            "project": "1.1", "label_config": CONFIG, "params": {"context": None}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra server environment, e.g. --env PREDICT_CONCURRENCY=2")
    args = parser.parse_args()
    run(args.minutes, dict(item.split("=", 1) for item in args.env))


if __name__ == "__main__":
    main()
