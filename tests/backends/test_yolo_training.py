"""YOLO backend learning: annotations in, a better model out, through the webhook path and directly.

The learning test posts Label Studio ANNOTATION_CREATED webhooks for 40 synthetic images of coloured
squares to the server, which trains after 40 annotations in a background job; the promoted version must
then find the squares of 12 held-out images far better than the random-weight model it started from.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from labelzoo import FitContext, PredictContext, Settings, Task, TrainingData, TrainingExample
from labelzoo.labelconfig import parse_label_config
from labelzoo.media import MediaResolver
from labelzoo.results import mask_to_rle
from tests.backends.yolo_support import (
    YOLO_DIR,
    box_value,
    build_model,
    mean_best_iou,
    rectangles,
    shapes_image,
    yolo_backend,
    yolo_env,
    yolo_module,
)

SIZE = (160, 160)
CONFIG = """<View><Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image"><Label value="red"/><Label value="blue"/></RectangleLabels>
</View>"""


def webhook(ann_id: int, task: dict, result: list[dict]) -> dict[str, Any]:
    annotation = {"id": ann_id, "task": task["id"], "project": 7, "result": result, "was_cancelled": False,
                  "ground_truth": False, "created_at": "2026-01-01T10:00:00Z", "updated_at": "2026-01-01T10:00:00Z",
                  "completed_by": 1, "lead_time": 4.2}
    project = {"id": 7, "title": "Squares", "label_config": CONFIG}
    return {"action": "ANNOTATION_CREATED", "annotation": annotation, "task": {**task, "project": 7},
            "project": project}


def wait_for_job(client: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = client.get("/jobs?project=7").get_json()["jobs"]
        if jobs and jobs[0]["status"] in {"succeeded", "failed", "cancelled", "skipped"}:
            return jobs[0]
        time.sleep(0.5)
    raise AssertionError(f"no finished job after {timeout}s: {client.get('/jobs').get_json()}")


def test_annotations_posted_as_webhooks_train_a_version_that_finds_the_shapes(
    make_client: Any, tmp_path: Path
) -> None:
    import torch

    torch.manual_seed(0)  # the random-weight start, whatever tests ran before (some starts learn slower)
    build_model(tmp_path / "weights" / "squares.pt", "detect", ["red", "blue"])
    (tmp_path / "media").mkdir()
    rng = random.Random(0)
    tasks, held_out = [], []
    for i in range(52):
        image, shapes = shapes_image(rng, SIZE)
        image.save(tmp_path / "media" / f"{i}.png")
        task = {"id": 1000 + i, "data": {"image": f"{i}.png"}}
        (tasks if i < 40 else held_out).append((task, shapes))
    env = yolo_env(tmp_path, {"detect": "squares.pt"}, TRAIN_AFTER_ANNOTATIONS="40")
    client = make_client(YOLO_DIR, **env)
    base = client.post("/setup", json={"project": "7.1700000000", "schema": CONFIG}).get_json()["model_version"]

    def held_out_iou() -> tuple[float, list[dict]]:
        body = {"tasks": [t for t, _ in held_out], "project": "7.1700000000", "label_config": CONFIG}
        results = client.post("/predict", json=body).get_json()["results"]
        ious = [mean_best_iou(r["result"], shapes, SIZE) for r, (_, shapes) in zip(results, held_out, strict=True)]
        return float(np.mean(ious)), results

    before, _ = held_out_iou()
    for i, (task, shapes) in enumerate(tasks):
        answer = client.post("/webhook", json=webhook(i + 1, task, rectangles(shapes, SIZE))).get_json()
    assert answer["job"] is not None  # the 40th annotation queued a training job

    job = wait_for_job(client, timeout=420)
    assert job["status"] == "succeeded", job
    assert job["metrics"]["box.mAP50"] > job["metrics"]["box.previous_mAP50"]
    log = Path(job["log_path"]).read_text()
    assert "epoch 1/" in log and "mAP50=" in log  # progress by epoch with its metric, in the job's log

    version = client.post("/setup", json={"project": "7.1700000000", "schema": CONFIG}).get_json()["model_version"]
    assert version != base and version == job["version"]
    after, results = held_out_iou()
    assert {r["model_version"] for r in results} == {version}
    print(f"held-out mean IoU {before:.3f} -> {after:.3f}; job metrics {job['metrics']}")  # shown with -s
    assert before < 0.05 and after > 0.6, (before, after)
    assert all(0.0 < r["score"] <= 1.0 for r in results)
    listed = {v["version"]: v for v in client.get("/versions", query_string={"project": "7"}).get_json()["versions"]}
    engines = listed[version]["model"]["engines"]  # the loaded version's own fine-tuned model, on its engine
    assert listed[version]["loaded"] and [Path(source).parent.name for source in engines] == [version]
    assert all(status["engine"] for status in engines.values())


ALL_KINDS = """<View><Image name="image" value="$image"/>
  <RectangleLabels name="turned" toName="image" model_obb="true">
    <Label value="red"/><Label value="blue"/>
  </RectangleLabels>
  <PolygonLabels name="poly" toName="image"><Label value="red"/><Label value="blue"/></PolygonLabels>
  <BrushLabels name="brush" toName="image"><Label value="red"/><Label value="blue"/></BrushLabels>
  <RectangleLabels name="thing" toName="image" model_skip="true"><Label value="square"/></RectangleLabels>
  <KeyPointLabels name="corner" toName="image"><Label value="top_left"/><Label value="bottom_right"/></KeyPointLabels>
  <Choices name="colour" toName="image"><Choice value="red"/><Choice value="blue"/></Choices>
</View>"""


def every_kind(shapes: list, size: tuple[int, int]) -> list[dict]:
    """One annotation holding every region type for the shapes of an image."""
    width, height = size
    result = rectangles(shapes, size, "turned")
    for i, s in enumerate(shapes):
        x, y, w, h = s.box
        corners = [[x, y], [x + w - 1, y], [x + w - 1, y + h - 1], [x, y + h - 1]]
        result.append({"from_name": "poly", "to_name": "image", "type": "polygonlabels",
                       "value": {"points": [[px * 100 / width, py * 100 / height] for px, py in corners],
                                 "polygonlabels": [s.label]}})
        mask = np.zeros((height, width), bool)
        mask[y : y + h, x : x + w] = True
        result.append({"from_name": "brush", "to_name": "image", "type": "brushlabels", "original_width": width,
                       "original_height": height,
                       "value": {"format": "rle", "rle": mask_to_rle(mask), "brushlabels": [s.label]}})
        parent = {"id": f"thing{i}", "from_name": "thing", "to_name": "image", "type": "rectanglelabels",
                  "value": {**box_value(s, size), "rotation": 0, "rectanglelabels": ["square"]}}
        result.append(parent)
        for label, (px, py) in (("top_left", (x, y)), ("bottom_right", (x + w, y + h))):
            value = {"x": px * 100 / width, "y": py * 100 / height, "width": 0.5, "keypointlabels": [label]}
            result.append({"from_name": "corner", "to_name": "image", "type": "keypointlabels",
                           "parentID": parent["id"], "value": value})
    result.append({"from_name": "colour", "to_name": "image", "type": "choices",
                   "value": {"choices": [shapes[0].label]}})
    return result


def test_fit_trains_every_kind_of_control_and_the_new_version_serves_them(tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    for kind, names in (("obb", ["red", "blue"]), ("segment", ["red", "blue"]), ("pose", ["square"]),
                        ("classify", ["red", "blue"])):
        build_model(weights / f"{kind}.pt", kind, names)
    (tmp_path / "media").mkdir()
    rng = random.Random(3)
    examples = []
    for i in range(8):
        image, shapes = shapes_image(rng, (64, 64))
        image.save(tmp_path / "media" / f"{i}.png")
        task = Task(id=i, data={"image": f"{i}.png"})
        examples.append(TrainingExample(task=task, result=every_kind(shapes, (64, 64))))
    env = yolo_env(tmp_path, {k: f"{k}.pt" for k in ("obb", "segment", "pose", "classify")},
                   YOLO_EPOCHS="1", MODEL_DIR=str(tmp_path / "models"), MEDIA_CACHE_DIR=str(tmp_path / "cache"))
    settings = Settings.from_env(env)
    config = parse_label_config(ALL_KINDS)
    backend_cls = yolo_backend().cls
    current = backend_cls(settings)
    current.load()
    reports: list[tuple[float, str, dict]] = []
    out = tmp_path / "v1"
    out.mkdir()
    fitted = current.fit(
        TrainingData(project="1", config=config, examples=examples),
        FitContext(output_dir=out, media=MediaResolver(settings.media), settings=settings,
                   report=lambda progress, message="", **metrics: reports.append((progress, message, metrics))),
    )

    trained = json.loads((out / "yolo.json").read_text())["controls"]
    assert {name: entry["kind"] for name, entry in trained.items()} == {
        "turned": "obb", "poly": "segment", "brush": "segment", "corner": "pose", "colour": "classify",
    }
    assert fitted.promote
    for name in ("turned", "poly", "brush", "corner"):
        assert 0.0 <= fitted.metrics[f"{name}.mAP50-95"] <= 1.0
    assert 0.0 <= fitted.metrics["colour.top1"] <= 1.0
    dataset = yolo_module("dataset")
    _, val = dataset.held_out([dataset.Sample(e.task.id, Path(f"{e.task.id}.png"), (64, 64)) for e in examples])
    assert val and set(fitted.held_out) == {s.task_id for s in val}  # each control held out the same images
    progress = [p for p, _, _ in reports]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert any("epoch 1/1" in message for _, message, _ in reports)

    new = backend_cls(settings, weights=out)
    new.load()
    assert new.trained["colour"].model.names == {0: "red", 1: "blue"}
    assert new.trained["corner"].model.keypoint_names == ["top_left", "bottom_right"]
    ctx = PredictContext(project="1", config=config, media=MediaResolver(settings.media), settings=settings,
                         model_version="v1")
    (prediction,) = new.predict([examples[0].task], ctx)
    assert prediction.error is None and prediction.score is not None


def test_a_cancelled_training_stops_and_promotes_nothing(tmp_path: Path) -> None:
    build_model(tmp_path / "weights" / "det.pt", "detect", ["red", "blue"])
    (tmp_path / "media").mkdir()
    rng = random.Random(4)
    examples = []
    for i in range(6):
        image, shapes = shapes_image(rng, (64, 64))
        image.save(tmp_path / "media" / f"{i}.png")
        examples.append(TrainingExample(task=Task(id=i, data={"image": f"{i}.png"}),
                                        result=rectangles(shapes, (64, 64))))
    env = yolo_env(tmp_path, {"detect": "det.pt"}, MODEL_DIR=str(tmp_path / "models"),
                   MEDIA_CACHE_DIR=str(tmp_path / "cache"))
    settings = Settings.from_env(env)
    backend = yolo_backend().cls(settings)
    backend.load()
    out = tmp_path / "v1"
    out.mkdir()
    checks: list[int] = []

    def cancelled() -> bool:  # asked after every batch: the first answer is "yes"
        checks.append(1)
        return True

    fitted = backend.fit(TrainingData(project="1", config=parse_label_config(CONFIG), examples=examples),
                         FitContext(output_dir=out, media=MediaResolver(settings.media), settings=settings,
                                    cancelled=cancelled))
    assert not fitted.promote and fitted.summary == "cancelled"
    assert len(checks) == 1 and not (out / "yolo.json").exists()
