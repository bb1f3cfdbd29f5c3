"""YOLO_ENGINE: an OpenVINO or ONNX Runtime export serves PyTorch's answers, within the backend's tolerance.

The models are random-weight, calibrated on Ultralytics' photos (``yolo_support.calibrate``), a detector and a
segmenter at 320 px; each photo is served once by PyTorch (``YOLO_ENGINE=torch``) and once by the export, and
the two predictions are compared region by region (``yolo_support.engine_differences``). ``auto`` exports in
the background, checks the export and only then switches, which ``/health`` reports; a failing check keeps
PyTorch and says why; the export is cached by the weights' content, so another backend with the same weights
elsewhere does not export again.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.backends.yolo_support import (
    YOLO_DIR,
    build_model,
    engine_differences,
    ultralytics_assets,
    yolo_env,
    yolo_module,
)

ASSETS = ultralytics_assets()
PHOTOS = (ASSETS / "bus.jpg", ASSETS / "zidane.jpg")
MODELS = {"detect": "det.pt", "segment": "seg.pt"}
IMGSZ = 320
CONFIG = ('<View><Image name="image" value="$image"/>'
          '<RectangleLabels name="box" toName="image" model_score_threshold="0.5">'
          '<Label value="person"/><Label value="bus"/></RectangleLabels>'
          '<BrushLabels name="brush" toName="image" model_score_threshold="0.6">'
          '<Label value="person"/><Label value="bus"/></BrushLabels></View>')  # fmt: skip

engines = yolo_module("engines")


def needs(engine: str) -> None:
    if not engines.installed(engine):
        pytest.skip(f"{engine} is not installed")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("yolo-engine-weights")
    for kind, file in MODELS.items():
        build_model(folder / file, kind, ["person", "bus"], calibrate_on=PHOTOS, imgsz=IMGSZ)
    return folder


@pytest.fixture
def serve(make_client: Any, tmp_path: Path, model_dir: Path) -> Callable[..., Any]:
    """A client for the backend on ``engine``, its weights copied under ``folder`` (the same content each time)."""

    def make(engine: str, folder: str = "weights", **settings: str) -> Any:
        weights = tmp_path / folder
        if not weights.exists():
            shutil.copytree(model_dir, weights)
        env = yolo_env(tmp_path, MODELS, YOLO_IMGSZ=str(IMGSZ), MEDIA_LOCAL_ROOTS=str(ASSETS), YOLO_ENGINE=engine,
                       MODEL_ROOT=str(weights), **settings)  # fmt: skip
        client = make_client(YOLO_DIR, **env)
        client.weights = weights
        return client

    return make


def predict(client: Any) -> list[dict]:
    tasks = [{"id": i + 1, "data": {"image": f"/data/local-files/?d={p.name}"}} for i, p in enumerate(PHOTOS)]
    response = client.post("/predict", json={"tasks": tasks, "project": "1.1700000000", "label_config": CONFIG})
    assert response.status_code == 200, response.get_json()
    predictions = response.get_json()["results"]
    assert all("error" not in p for p in predictions), predictions
    return predictions


def served_engines(client: Any) -> dict[str, dict[str, Any]]:
    """``/health``'s engine per model file name, for this client's models (a process reports all of its own,
    and the tests' processes hold the models of earlier tests too)."""
    details = client.get("/health").get_json()["model"].get("details", {})
    return {Path(source).name: status for source, status in details.get("engines", {}).items()
            if Path(source).parent == client.weights}  # fmt: skip


def settled(client: Any, timeout: float = 120) -> dict[str, dict[str, Any]]:
    """The engines once every background export has been checked (switched or kept)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = served_engines(client)
        if len(found) < len(MODELS):
            time.sleep(0.2)
            continue
        if found and all(status.get("state") != "preparing" for status in found.values()):  # waiting counts
            return found
        time.sleep(0.2)
    raise AssertionError(f"the exports did not settle: {served_engines(client)}")


def without_ids(predictions: list[dict]) -> list[dict]:
    """Predictions without their regions' ids, which are random."""
    return [{**p, "result": [{k: v for k, v in r.items() if k != "id"} for r in p["result"]]} for p in predictions]


def assert_same(reference: list[dict], candidate: list[dict]) -> None:
    for photo, a, b in zip(PHOTOS, reference, candidate, strict=True):
        assert a["result"], f"PyTorch shows nothing on {photo.name}: nothing compared"
        assert engine_differences(a, b, IMGSZ) == [], photo.name


@pytest.mark.parametrize("engine", ["openvino", "onnx"])
def test_an_export_serves_what_pytorch_serves(serve: Any, engine: str) -> None:
    needs(engine)
    reference = predict(serve("torch"))
    client = serve(engine)
    candidate = predict(client)
    assert {status["engine"].split("-")[0] for status in served_engines(client).values()} == {engine}
    assert_same(reference, candidate)


def test_auto_switches_after_the_background_check_and_reuses_the_cached_export(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs("openvino")
    reference = predict(serve("torch"))
    client = serve("auto")
    assert_same(reference, predict(client))  # served by PyTorch or already by the export, the same answers
    statuses = settled(client)
    assert {s["state"] for s in statuses.values()} == {"switched"}, statuses
    assert all(s["engine"].startswith("openvino") for s in statuses.values()), statuses
    assert_same(reference, predict(client))

    from ultralytics.engine.model import Model

    exports: list[Any] = []
    monkeypatch.setattr(Model, "export", lambda self, **kwargs: exports.append(kwargs))
    again = serve("auto", folder="same-weights-elsewhere")  # same content, another path: another model load
    predict(again)
    assert {s["state"] for s in settled(again).values()} == {"switched"}
    assert exports == []  # found in MODEL_DIR/engines by the weights' content


def test_an_export_that_disagrees_leaves_pytorch_serving_and_says_why(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs("openvino")
    monkeypatch.setattr(engines, "check", lambda model, candidate, options: "boxes moved by 3 px")
    client = serve("auto")
    reference = predict(client)
    statuses = settled(client)
    assert {s["engine"] for s in statuses.values()} == {"torch"}
    assert all(s["state"] == "kept" for s in statuses.values())
    notices = client.get("/health").get_json()["model"]["notices"]
    for file in MODELS.values():  # both variants were tried and refused
        assert f"{file} stays on torch: openvino: boxes moved by 3 px; openvino-f32: boxes moved by 3 px" in notices
    assert without_ids(predict(client)) == without_ids(reference)  # still PyTorch's answers, exactly


def test_a_forced_engine_that_is_not_installed_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "installed", lambda engine: False)
    from labelzoo.errors import LabelzooError

    with pytest.raises(LabelzooError, match="YOLO_ENGINE=onnx needs onnx and onnxruntime installed"):
        engines.chosen_engine("onnx", "cpu")
    assert engines.chosen_engine("auto", "cpu") == "torch"
    assert engines.chosen_engine("auto", "cuda") == "torch"


def test_a_model_that_finds_nothing_on_the_check_photos_switches_after_its_first_useful_prediction(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model trained on other data sees nothing in Ultralytics' photos: its check waits for served images."""
    needs("openvino")
    reference = predict(serve("torch", folder="reference"))
    monkeypatch.setattr(engines, "CHECK_PHOTOS", ())  # as if the model found nothing on them
    client = serve("auto", YOLO_PRELOAD="detect,segment")  # loaded, and checked, before any prediction
    statuses = settled(client)
    assert {s["state"] for s in statuses.values()} == {"waiting"}, statuses
    assert all("found nothing" in s["waiting_for"] for s in statuses.values())
    assert_same(reference, predict(client))  # PyTorch's answers; the photos it found something on are kept
    statuses = settled(client)
    assert {s["state"] for s in statuses.values()} == {"switched"}, statuses
    assert_same(reference, predict(client))


OTHER_MODELS = {"obb": "obb.pt", "pose": "pose.pt", "classify": "cls.pt"}
OTHER_CONFIG = ('<View><Image name="image" value="$image"/>'
                '<RectangleLabels name="rotated" toName="image" model_obb="true" model_score_threshold="0.5">'
                '<Label value="person"/><Label value="bus"/></RectangleLabels>'
                '<KeyPointLabels name="kp" toName="image" model_score_threshold="0.5" model_point_threshold="0.5">'
                '<Label value="nose" model_index="0"/><Label value="left_shoulder" model_index="5"/>'
                '<Label value="right_wrist" model_index="10"/></KeyPointLabels>'
                '<RectangleLabels name="person_box" toName="image" model_skip="true"><Label value="person"/>'
                '</RectangleLabels>'
                '<Choices name="object" toName="image" model_score_threshold="0.3">'
                '<Choice value="person"/><Choice value="bus"/><Choice value="tie"/></Choices></View>')  # fmt: skip


@pytest.mark.parametrize("engine", ["openvino", "onnx"])
def test_exports_of_rotated_box_pose_and_classify_models_serve_what_pytorch_serves(
    make_client: Any, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, engine: str
) -> None:
    needs(engine)
    weights = tmp_path / "weights"
    names = {"obb": ["person", "bus"], "pose": ["person"], "classify": ["person", "bus", "tie"]}
    for kind, file in OTHER_MODELS.items():
        build_model(weights / file, kind, names[kind], calibrate_on=PHOTOS, imgsz=IMGSZ)
    tasks = [{"id": i + 1, "data": {"image": f"/data/local-files/?d={p.name}"}} for i, p in enumerate(PHOTOS)]
    served = {}
    for name in ("torch", engine):
        env = yolo_env(tmp_path, OTHER_MODELS, YOLO_IMGSZ=str(IMGSZ), MEDIA_LOCAL_ROOTS=str(ASSETS),
                       YOLO_ENGINE=name, MODEL_DIR=str(tmp_path / f"models-{name}"))  # fmt: skip
        client = make_client(YOLO_DIR, **env)
        body = {"tasks": tasks, "project": "1.1700000000", "label_config": OTHER_CONFIG}
        served[name] = client.post("/predict", json=body).get_json()["results"]
        if name != "torch":
            statuses = client.get("/health").get_json()["model"]["details"]["engines"]
            ours = {Path(s).name: v["engine"] for s, v in statuses.items() if Path(s).parent == weights}
            assert {e.split("-")[0] for e in ours.values()} == {engine} and len(ours) == len(OTHER_MODELS), ours
    for photo, reference, candidate in zip(PHOTOS, served["torch"], served[engine], strict=True):
        kinds = {r["type"] for r in reference["result"]}
        assert {"rectanglelabels", "keypointlabels", "choices"} <= kinds, f"nothing compared on {photo.name}"
        assert any(r["value"].get("rotation") for r in reference["result"] if r["from_name"] == "rotated")
        assert engine_differences(reference, candidate, IMGSZ) == [], photo.name
