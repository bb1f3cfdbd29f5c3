"""What the YOLO backend serves for a photo is what Ultralytics' own ``predict`` gives, for every kind of control.

The reference is Ultralytics as a user calls it: ``YOLO(path).predict(files, conf=<the control's threshold>,
iou=0.7, imgsz=<YOLO_IMGSZ>)`` on each of the image files the tasks name (``/data/local-files/?d=...``). The
photos differ in size and are served in one request with ``YOLO_BATCH=2``: the server puts images of one size
through the model together, so each photo must get what Ultralytics gives it alone, whichever tasks share its
request. The models are random-weight,
calibrated on the photos so that what they find depends on the image (``yolo_support.calibrate``); the
comparison itself is ``yolo_support.differences``, which the benchmark uses too.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.backends.yolo_support import (
    YOLO_DIR,
    Control,
    build_model,
    differences,
    direct_decisions,
    image_size_of,
    label_studio_can_hold,
    served_instances,
    ultralytics_assets,
    yolo_env,
)

ASSETS = ultralytics_assets()
PHOTOS = (ASSETS / "bus.jpg", ASSETS / "zidane.jpg")  # 810x1080 and 1280x720
IMGSZ = 320
IOU = 0.7  # Ultralytics' default NMS overlap, which the backend keeps without model_iou
MODELS = {"detect": "det.pt", "obb": "obb.pt", "segment": "seg.pt", "pose": "pose.pt", "classify": "cls.pt"}
NAMES = {"pose": ["person"], "classify": ["person", "bus", "tie"]}  # the other models': person and bus
KEYPOINTS = ((0, "nose"), (1, "left_eye"), (2, "right_eye"), (5, "left_shoulder"), (10, "right_wrist"))
PERSON_BOX = ('<RectangleLabels name="person_box" toName="image" model_skip="true"><Label value="person"/>'
              "</RectangleLabels>")  # fmt: skip
TAGS = {"detect": "RectangleLabels", "obb": "RectangleLabels", "brush": "BrushLabels", "polygon": "PolygonLabels"}
# the model kind behind each control kind
SERVES = {"detect": "detect", "obb": "obb", "brush": "segment", "polygon": "segment", "pose": "pose",
          "classify": "classify"}  # fmt: skip

# the thresholds differ, so that a control judged by another's threshold shows
DETECT = Control("box", "detect", 0.5)
OBB = Control("rotated", "obb", 0.55)
BRUSH = Control("brush", "brush", 0.6)
POLYGON = Control("poly", "polygon", 0.65)
POSE = Control("kp", "pose", 0.55, keypoints=KEYPOINTS, point_threshold=0.6, boxes="person_box")
CHOICE = Control("object", "classify", 0.3)
CHOICES = Control("objects", "classify", 0.4, multiple=True)

Direct = Callable[..., list[Any]]


def control_xml(control: Control) -> str:
    """The control's tag in the label config, with the settings ``control`` names."""
    names = NAMES.get(SERVES[control.kind], ["person", "bus"])
    threshold = f'model_score_threshold="{control.threshold}"'
    if control.kind == "classify":
        multiple = ' choice="multiple"' if control.multiple else ""
        options = "".join(f'<Choice value="{n}"/>' for n in names)
        return f'<Choices name="{control.name}" toName="image" {threshold}{multiple}>{options}</Choices>'
    if control.kind == "pose":
        labels = "".join(f'<Label value="{label}" model_index="{i}"/>' for i, label in control.keypoints)
        return (f'<KeyPointLabels name="{control.name}" toName="image" {threshold} '
                f'model_point_threshold="{control.point_threshold}">{labels}</KeyPointLabels>{PERSON_BOX}')
    obb = ' model_obb="true"' if control.kind == "obb" else ""
    labels = "".join(f'<Label value="{n}"/>' for n in names)
    tag = TAGS[control.kind]
    return f'<{tag} name="{control.name}" toName="image" {threshold}{obb}>{labels}</{tag}>'


def label_config(controls: list[Control]) -> str:
    return f'<View><Image name="image" value="$image"/>{"".join(map(control_xml, controls))}</View>'


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("yolo-fidelity-weights")
    for kind, file in MODELS.items():
        build_model(folder / file, kind, NAMES.get(kind, ["person", "bus"]), calibrate_on=PHOTOS, imgsz=IMGSZ)
    return folder


@pytest.fixture(scope="module")
def direct(model_dir: Path) -> Direct:
    """Ultralytics called directly on each photo file: one result per photo from a kind's model at a confidence."""

    from ultralytics import YOLO

    @cache
    def predict(kind: str, conf: float) -> list[Any]:
        model = YOLO(str(model_dir / MODELS[kind]))
        return [r for p in PHOTOS for r in model.predict(str(p), conf=conf, iou=IOU, imgsz=IMGSZ, verbose=False)]

    return predict


@pytest.fixture
def serve(make_client: Any, tmp_path: Path, model_dir: Path) -> Callable[[list[Control]], list[dict]]:
    """POST /predict with one task per photo, named as Label Studio names local files; the predictions."""
    (tmp_path / "weights").symlink_to(model_dir)
    env = yolo_env(tmp_path, MODELS, YOLO_IMGSZ=str(IMGSZ), YOLO_BATCH=str(len(PHOTOS)), MEDIA_LOCAL_ROOTS=str(ASSETS))
    client = make_client(YOLO_DIR, **env)

    def post(controls: list[Control]) -> list[dict]:
        tasks = [{"id": i + 1, "data": {"image": f"/data/local-files/?d={p.name}"}} for i, p in enumerate(PHOTOS)]
        response = client.post("/predict", json={"tasks": tasks, "project": "1.1700000000",
                                                 "label_config": label_config(controls)})  # fmt: skip
        assert response.status_code == 200, response.get_json()
        predictions = response.get_json()["results"]
        assert len(predictions) == len(PHOTOS) and all("error" not in p for p in predictions), predictions
        return predictions

    return post


def check(predictions: list[dict], controls: list[Control], results: Callable[[Control], list[Any]]) -> None:
    """Every photo's prediction agrees with the direct results of each control's model (one per photo)."""
    for n, prediction in enumerate(predictions):
        assert differences(prediction, [(c, results(c)[n]) for c in controls]) == [], PHOTOS[n].name


@pytest.mark.parametrize(
    "control",
    [DETECT, OBB, BRUSH, POLYGON, POSE, CHOICE, CHOICES],
    ids=lambda c: c.name,
)  # fmt: skip
def test_each_control_serves_exactly_what_ultralytics_predicts(serve: Any, direct: Direct, control: Control) -> None:
    predictions = serve([control])
    results = direct(SERVES[control.kind], control.threshold)
    check(predictions, [control], lambda c: results)
    for prediction, result in zip(predictions, results, strict=True):  # both sides show something on every photo
        assert direct_decisions(control, result).instances, result.path
        assert served_instances(control, prediction["result"], image_size_of(result)), result.path
    if control.kind == "pose":  # some keypoints are shown, some are below model_point_threshold
        shown = [len(i.shape[1]) for r in results for i in direct_decisions(control, r).instances]
        assert 0 < sum(shown) < len(shown) * len(KEYPOINTS)
    if control.kind == "obb":  # most rotated boxes fit Label Studio's limits, so they were compared exactly
        held = [label_studio_can_hold(i.shape, image_size_of(r)) for r in results
                for i in direct_decisions(control, r).instances]
        assert sum(held) > len(held) / 2, f"{sum(held)} of {len(held)} rotated boxes can be written exactly"
    if control.multiple:  # choice="multiple" shows more than one choice somewhere
        assert any(len(r["value"]["choices"]) > 1 for p in predictions for r in p["result"])


def test_all_controls_in_one_config_agree_and_the_task_score_is_the_mean_of_all(serve: Any, direct: Direct) -> None:
    """Five models over the same photos, seven controls in one config. The pose comes first: its instance boxes go
    to the first RectangleLabels that takes its classes (kinds/pose.py)."""
    controls = [POSE, DETECT, OBB, BRUSH, POLYGON, CHOICE, CHOICES]
    check(serve(controls), controls, lambda c: direct(SERVES[c.kind], c.threshold))


def test_a_task_with_nothing_shown_scores_its_nearest_miss(serve: Any, direct: Direct) -> None:
    """The near misses come from direct results asked down to a quarter of the threshold, where the backend asks
    for its candidates (plans.py); at the threshold neither side has anything."""
    controls = [Control("box", "detect", 1.0), Control("object", "classify", 0.9)]
    predictions = serve(controls)
    assert all(p["result"] == [] and p["score"] > 0 for p in predictions)
    check(predictions, controls, lambda c: direct(SERVES[c.kind], c.threshold / 4))

