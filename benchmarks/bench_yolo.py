"""YOLO: 32 images through the served ``/predict`` vs Ultralytics called directly on the same files.

Both sides use the same weights: ``yolo11n.yaml`` built with random weights, calibrated on some of the images
so that it finds boxes that depend on the image (``tests.backends.yolo_support.calibrate``), and saved as a
``.pt`` (no downloads); the images are 32 synthetic 640×480 JPEG files. The server is ``labelzoo serve
backends/yolo`` (gunicorn, one worker, no prediction deadline) on 127.0.0.1; a served run is one ``POST
/predict`` carrying the 32 tasks (local file paths) for a ``RectangleLabels`` config, answered with regions
and task scores as Label Studio gets them. The direct run is ``model.predict`` in this process over the same
chunks of 8 files with the confidence floor the server uses (``YOLO_BATCH=8``; a quarter of the 0.25
threshold). Served and direct runs take turns, best of 3, in wall time and in CPU time (the server worker's,
read from /proc, vs this process's); on a shared machine the CPU ratio is the steadier one.

(a) served / direct: what HTTP, JSON, media resolution, EXIF-aware decoding and result building add to
    Ultralytics' own batched inference. Target: at most 1.10.
(b) one image per ``predict`` call, as upstream's example backend does, vs served: what batching and
    overlapping the loading with inference buy.
(c) agreement: the images whose served regions and task score are exactly what Ultralytics' own ``predict``
    at the control's threshold gives for the same chunk of files (``yolo_support.differences``, the
    comparison of ``tests/backends/test_yolo_fidelity.py``).
(d) the default engine (``YOLO_ENGINE=auto``: an OpenVINO or ONNX Runtime export, switched to in the background
    once it agrees with PyTorch) vs PyTorch (``YOLO_ENGINE=torch``, which (a)–(c) measure), both served by a
    server of their own, timed once the default one's export has settled; and the images whose predictions
    agree within the backend's tolerance (``yolo_support.engine_differences``). Target: at most 0.5 on a CPU
    with bf16 units (AMX); without them the ratio is what OpenVINO in f32 gives.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import requests

from benchmarks import serving

if TYPE_CHECKING:
    from ultralytics import YOLO

REPO = Path(__file__).resolve().parents[1]
YOLO_FOLDER = REPO / "backends" / "yolo"
IMAGES = 32
REPEATS = 3
BATCH = 8
THRESHOLD = 0.25  # the served control's: the backend's default
CONF = THRESHOLD / 4  # the backend asks for candidates down to a quarter of the threshold
CALIBRATION_IMAGES = 8
IMGSZ = 640  # the model's training size, which both servers predict at
#: trained detection weights (a .pt file) to measure instead, on Ultralytics' bus.jpg: ``BENCH_YOLO_WEIGHTS``
TRAINED = os.environ.get("BENCH_YOLO_WEIGHTS")


def label_config(names: list[str]) -> str:
    labels = "".join(f'<Label value="{name}"/>' for name in names)
    return f'<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">{labels}' \
           "</RectangleLabels></View>"


def trained_inputs(root: Path, weights: Path) -> tuple[Path, list[Path]]:
    """``weights`` copied under ``root``, and 32 copies of Ultralytics' ``bus.jpg`` (one size, so that the direct
    batches letterbox as the server does)."""
    from ultralytics.utils import ASSETS

    model = root / "weights" / weights.name
    model.parent.mkdir(parents=True)
    shutil.copyfile(weights, model)
    paths = []
    for i in range(IMAGES):
        path = root / "media" / f"{i:02d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(ASSETS) / "bus.jpg", path)
        paths.append(path)
    return model, paths


def shape_photos(root: Path, count: int) -> list[Path]:
    """``count`` 640×480 JPEG files under ``root/media`` of random shapes on noise (the same for a count)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        image = Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(5):
            x, y = int(rng.integers(0, 560)), int(rng.integers(0, 400))
            draw.rectangle((x, y, x + 80, y + 80), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        path = root / "media" / f"{i:02d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, quality=90)
        paths.append(path)
    return paths


def make_inputs(root: Path) -> tuple[Path, list[Path]]:
    """The model file, calibrated on the first images, and 32 JPEG files of random shapes on noise."""
    from tests.backends.yolo_support import build_model

    paths = shape_photos(root, IMAGES)
    model = build_model(root / "weights" / "bench-yolo11n.pt", "detect", ["person", "car"],
                        calibrate_on=paths[:CALIBRATION_IMAGES], imgsz=640)  # fmt: skip
    return model, paths


def chunks(paths: list[Path]) -> list[list[str]]:
    """The files as the server puts them through the model: ``YOLO_BATCH`` at a time, in task order."""
    return [[str(p) for p in paths[i : i + BATCH]] for i in range(0, len(paths), BATCH)]


def agreement(model: YOLO, paths: list[Path], predictions: list[dict[str, Any]]) -> int:
    """How many served predictions are exactly what Ultralytics' own ``predict`` at the control's threshold
    gives for the same chunk of files."""
    from tests.backends.yolo_support import Control, differences

    control = Control("label", "detect", THRESHOLD)
    direct = [r for chunk in chunks(paths) for r in model.predict(chunk, conf=THRESHOLD, device="cpu", verbose=False)]
    return sum(not differences(p, [(control, r)]) for p, r in zip(predictions, direct, strict=True))


def start_server(root: Path, model: Path, name: str, **settings: str) -> tuple[subprocess.Popen[bytes], str]:
    """``labelzoo serve backends/yolo`` (one worker, no deadline) on loopback with ``model`` as its detector,
    ``settings`` on top; its log is ``root/server-<name>.log``. Returns once it is ready."""
    env = {
        **os.environ,
        "MODEL_DIR": str(root / "models"), "MODEL_ROOT": str(model.parent), "MEDIA_CACHE_DIR": str(root / "cache"),
        "MEDIA_LOCAL_ROOTS": str(root / "media"), "YOLO_MODEL_DETECT": model.name,
        "YOLO_CONFIG_DIR": str(root / "ultralytics"), "LOG_LEVEL": "WARNING", "DEVICE": "cpu",
        "PREDICT_DEADLINE": "0", **settings,
    }  # fmt: skip
    return serving.start_server(YOLO_FOLDER, env, root / f"server-{name}.log")


def settled_engines(url: str, timeout: float = 300) -> dict[str, Any]:
    """The served engine of each model, once no export is being prepared any more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        engines = requests.get(f"{url}/health", timeout=5).json()["model"].get("details", {}).get("engines", {})
        if engines and all(status.get("state") != "preparing" for status in engines.values()):
            return engines
        time.sleep(0.5)
    raise TimeoutError("the export did not settle")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children so far, from /proc (Linux)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(int(child)) for child in children)


def main() -> None:
    if str(REPO) not in sys.path:  # tests.backends.yolo_support builds the model and compares the answers
        sys.path.insert(0, str(REPO))
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "false")
    with tempfile.TemporaryDirectory(prefix="bench-yolo-") as tmp:
        root = Path(tmp)
        os.environ.setdefault("YOLO_CONFIG_DIR", str(root / "ultralytics"))
        model_path, paths = trained_inputs(root, Path(TRAINED)) if TRAINED else make_inputs(root)
        from ultralytics import YOLO

        from tests.backends.yolo_support import engine_differences

        model = YOLO(str(model_path))
        config = label_config(list(model.names.values()))
        proc, url = start_server(root, model_path, "torch", YOLO_BATCH=str(BATCH), YOLO_ENGINE="torch")
        default_proc, default_url = start_server(root, model_path, "auto", YOLO_BATCH=str(BATCH), YOLO_ENGINE="auto")
        try:
            body = {"tasks": [{"id": i, "data": {"image": str(p)}} for i, p in enumerate(paths)], "project": "1",
                    "label_config": config}

            def post(to: str) -> list[dict[str, Any]]:
                response = requests.post(f"{to}/predict", json=body, timeout=300)
                response.raise_for_status()
                results = response.json()["results"]
                assert len(results) == IMAGES and all("result" in r for r in results), results[:1]
                return results

            def served() -> list[dict[str, Any]]:
                return post(url)

            def served_default() -> list[dict[str, Any]]:
                return post(default_url)

            def direct() -> None:
                out = [r for chunk in chunks(paths) for r in model.predict(chunk, conf=CONF, device="cpu",
                                                                           verbose=False)]  # fmt: skip
                assert len(out) == IMAGES

            def one_by_one() -> None:
                for p in paths:
                    model.predict(str(p), conf=CONF, device="cpu", verbose=False)

            runs = {"served": served, "direct": direct, "one_by_one": one_by_one, "default": served_default}
            warm_ups = {name: run() for name, run in runs.items()}  # model loading, first-call setup, file caches
            engines = settled_engines(default_url)  # the default engine's export, in the background, then checked
            warm_ups["default"] = served_default()  # the first call on the switched engine compiles it
            predictions = warm_ups["served"]
            regions, agree = sum(len(p["result"]) for p in predictions), agreement(model, paths, predictions)
            pairs = zip(predictions, warm_ups["default"], strict=True)
            same = sum(not engine_differences(a, b, IMGSZ) for a, b in pairs)
            best = dict.fromkeys(runs, float("inf"))
            cpu = dict.fromkeys(runs, float("inf"))
            for _ in range(REPEATS):
                for name, run in runs.items():
                    started, cpu_started = time.perf_counter(), time.process_time() + cpu_seconds(proc.pid)
                    run()
                    best[name] = min(best[name], time.perf_counter() - started)
                    cpu[name] = min(cpu[name], time.process_time() + cpu_seconds(proc.pid) - cpu_started)
        finally:
            for server in (proc, default_proc):
                server.terminate()
                server.wait(30)
    what = f"{Path(TRAINED).name} on Ultralytics' bus.jpg" if TRAINED else "640x480, yolo11n (random, calibrated)"
    print(f"   {IMAGES} images {what}, CPU, best of {REPEATS}")
    print(f"   served /predict {best['served']:.2f} s | Ultralytics direct, batch {BATCH} {best['direct']:.2f} s | "
          f"one image per call {best['one_by_one']:.2f} s")
    print(f"   CPU seconds: served {cpu['served']:.2f} | direct {cpu['direct']:.2f} | "
          f"one by one {cpu['one_by_one']:.2f}")
    print(f"   (a) served / direct = {best['served'] / best['direct']:.2f} wall, "
          f"{cpu['served'] / cpu['direct']:.2f} CPU  (target <= 1.10)")
    print(f"   (b) one-by-one / served = {best['one_by_one'] / best['served']:.2f} wall")
    print(f"   (c) agreement: {agree}/{IMAGES} images served exactly Ultralytics' own predict at conf={THRESHOLD} "
          f"({regions} regions)")
    (status,) = engines.values()
    print(f"   (d) default engine {status['engine']} ({status['state']}"
          f"{', refused: ' + '; '.join(status['refused']) if status.get('refused') else ''}): served "
          f"{best['default']:.2f} s = {best['default'] / best['served']:.2f} x PyTorch-served {best['served']:.2f} s "
          f"(target <= 0.5 with bf16 units; {'AMX' if amx() else 'no AMX'} here); Ultralytics direct (PyTorch) "
          f"{best['direct']:.2f} s; {same}/{IMAGES} images agree with PyTorch-served within the tolerance")


def amx() -> bool:
    """Whether this CPU has AMX bf16 units (Linux)."""
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.exists() and "amx_bf16" in cpuinfo.read_text()


if __name__ == "__main__":
    main()
