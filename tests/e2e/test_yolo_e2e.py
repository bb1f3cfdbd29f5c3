"""YOLO detection with a real Label Studio: uploaded PNG/JPEG images, a locally built detector (random weights,
class biases raised so every anchor fires, see ``yolo_support.build_model``), predictions retrieved through the
Data Manager action and stored as rectangles in percent of the image."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("ultralytics")

from tests.backends.yolo_support import YOLO_DIR, build_model, shapes_image, yolo_env
from tests.e2e.project import check_predictions

CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="label" toName="image">
    <Label value="Red" predicted_values="red" background="red"/>
    <Label value="Blue" predicted_values="blue" background="blue"/>
  </RectangleLabels>
</View>"""
SIZES = [(160, 160), (200, 120), (120, 180), (160, 100)]  # width, height

pytestmark = pytest.mark.slow


def check_box(item: dict, size: tuple[int, int]) -> None:
    assert (item["from_name"], item["to_name"]) == ("label", "image"), item
    assert (item["original_width"], item["original_height"]) == size, item
    value = item["value"]
    assert value["rectanglelabels"] in (["Red"], ["Blue"]), item
    assert 0 <= value["x"] < 100 and 0 <= value["y"] < 100, item
    assert 0 < value["width"] <= 100 and 0 < value["height"] <= 100, item
    assert value["x"] + value["width"] <= 100 + 1e-6 and value["y"] + value["height"] <= 100 + 1e-6, item
    assert 0 < item["score"] <= 1, item


def test_yolo_predicts_uploaded_images(label_studio, ls_project, serve_for_ls, tmp_path):
    weights = build_model(tmp_path / "weights" / "squares.pt", "detect", ["red", "blue"], confident=True)
    rng = random.Random(3)
    images = []
    for i, size in enumerate([*SIZES, (140, 140)]):
        image, _ = shapes_image(rng, size)
        path = tmp_path / "media" / f"shapes {i}.{'jpg' if i % 2 else 'png'}"
        path.parent.mkdir(exist_ok=True)
        image.save(path)
        images.append(path)
    env = yolo_env(
        tmp_path,
        YOLO_MODEL_DETECT=str(weights),
        YOLO_PRELOAD="detect",
        YOLO_IMGSZ="160",
        MODEL_SCORE_THRESHOLD="0.3",
        DEVICE="cpu",
    )
    server = serve_for_ls(YOLO_DIR, **env)

    project = ls_project(CONFIG, title="YOLO")
    tasks = project.upload(images[:4])
    prefix = f"/data/upload/{project.id}/"
    assert all(t["data"]["image"].startswith(prefix) for t in tasks), tasks
    ids = [t["id"] for t in tasks]
    backend = project.connect(server.url, "YOLO")
    version = backend["model_version"]
    assert version.startswith("squares"), version  # /setup: named after the detection model

    answer = project.retrieve_predictions()
    assert answer["processed_items"] == len(ids), answer
    by_task = check_predictions(project.predictions(), ids, version, result_types={"rectanglelabels"})
    for task, size in zip(ids, SIZES, strict=True):
        prediction = by_task[task]
        for item in prediction["result"]:
            check_box(item, size)
        # the task score (the Data Manager sorts by it) is the mean of its boxes' scores
        box_scores = [i["score"] for i in prediction["result"]]
        assert prediction["score"] == pytest.approx(sum(box_scores) / len(box_scores)), prediction
    # the backend fetched every image from Label Studio with the PAT, never without it
    for task in tasks:
        assert label_studio.requests_logged(rf'"GET {task["data"]["image"]} [^"]*" 200'), task
    assert not label_studio.requests_logged(rf'"GET {prefix}[^"]*" 40[13]')

    # same version again: nothing new is stored
    project.retrieve_predictions()
    assert len(project.predictions()) == len(ids)

    # opening a task without predictions makes Label Studio ask the backend for it
    (new,) = project.upload(images[4:])
    opened = project.open(new["id"])
    (prediction,) = opened["predictions"]
    assert prediction["model_version"] == version and prediction["result"], prediction
    for item in prediction["result"]:
        check_box(item, (140, 140))
    assert len(project.predictions(version)) == len(ids) + 1
