"""From a zero-shot detector to a YOLO model, with a real Label Studio (docs/auto-labeling.md, "From a zero-shot
model to a fast one"): a first batch annotated by hand, the grounding backend auto-labels the tasks it is sure
of and leaves predictions on the others, a reviewer annotates those, and the YOLO backend connected to the same
project trains from every annotation, the auto-made ones included, and serves the new version there.

The models are small ones built here (OWLv2 and YOLO with random weights): what is checked is the workflow
(which tasks get annotations, what YOLO learns from, what it serves), not the quality of either model.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import requests

pytest.importorskip("transformers")
pytest.importorskip("ultralytics")

from tests.backends.yolo_support import YOLO_DIR, build_model, rectangles, shapes_image, yolo_env
from tests.conftest import REPO
from tests.e2e.project import check_predictions, wait_bulk, wait_for_job

GROUNDING = REPO / "backends" / "grounding"
CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image">
    <Label value="red" background="red"/><Label value="blue" background="blue"/>
  </RectangleLabels>
</View>"""
SIZE = (160, 160)
HAND = 4  # the first batch, annotated by hand before auto-labelling

pytestmark = pytest.mark.slow


def served_scores(url: str, project: int, tasks: list[dict[str, Any]]) -> list[float]:
    """The grounding backend's task scores for the tasks, as /predict answers (Label Studio stores nothing)."""
    body = {"tasks": tasks, "project": str(project), "label_config": CONFIG}
    results = requests.post(url + "/predict", json=body, timeout=120).json()["results"]
    return [item["score"] for item in results if item.get("result")]


def test_auto_labels_of_a_zero_shot_detector_and_their_review_train_a_yolo_version(
        ls_project, serve_for_ls, tiny_owl, tmp_path):
    rng = random.Random(8)
    (tmp_path / "media").mkdir()
    paths, shapes = [], []
    for i in range(16):
        image, found = shapes_image(rng, SIZE)
        paths.append(tmp_path / "media" / f"shapes {i}.png")
        image.save(paths[-1])
        shapes.append(found)
    project = ls_project(CONFIG, title="Distillation")
    uploaded = project.upload(paths)
    ids = [t["id"] for t in uploaded]
    truth = dict(zip(ids, shapes, strict=True))

    # 1. the first batch by hand: the held-out evidence an auto-labelling threshold is measured on
    for task in ids[:HAND]:
        project.annotate(task, rectangles(truth[task], SIZE))

    # 2. the zero-shot detector annotates the tasks scoring at or above a threshold (here: their median score)
    grounding = serve_for_ls(GROUNDING, GROUNDING_MODEL=str(tiny_owl), MODEL_SCORE_THRESHOLD="0.45")
    project.connect(grounding.url, "Grounding")
    scores = sorted(served_scores(grounding.url, project.id, uploaded[HAND:]))
    assert len(scores) >= 4, scores  # enough tasks with boxes to split
    threshold = scores[len(scores) // 2]
    started = requests.post(grounding.url + "/bulk", json={"project": project.id,
                                                           "auto_label": {"threshold": threshold}}, timeout=30)
    assert started.status_code == 201, started.text
    run = wait_bulk(grounding.url, started.json()["id"])
    assert run["status"] == "succeeded", run
    tasks = {t["id"]: t for t in project.tasks()}
    auto = [t for t in ids[HAND:] if tasks[t]["annotations"]]
    review = [t for t in ids[HAND:] if not tasks[t]["annotations"]]
    assert auto and review, (auto, review)
    for task in auto:
        (prediction,) = tasks[task]["predictions"]
        (annotation,) = tasks[task]["annotations"]
        assert prediction["score"] >= threshold and annotation["parent_prediction"] == prediction["id"]
        assert annotation["result"] == prediction["result"]  # the detector's boxes, as it showed them
    stored = check_predictions([p for t in review for p in tasks[t]["predictions"]], [
        t for t in review if tasks[t]["predictions"]], run["model_version"], result_types={"rectanglelabels"})
    assert all(p["score"] < threshold for p in stored.values())

    # 3. a reviewer annotates the unsure part (here: draws the true boxes)
    for task in review:
        project.annotate(task, rectangles(truth[task], SIZE, "box"))

    # 4. YOLO, connected to the same project, trains on every annotation and serves the new version there
    weights = build_model(tmp_path / "weights" / "squares.pt", "detect", ["red", "blue"])
    # its own MODEL_DIR, as each backend's container has its own volume: auto annotations recorded in a store
    # are that store's model's own answers, never learnt from
    yolo = serve_for_ls(YOLO_DIR, **yolo_env(tmp_path, {"detect": weights.name}, YOLO_IMGSZ="160",
                                             YOLO_EPOCHS="2", TRAIN_AFTER_ANNOTATIONS="0", DEVICE="cpu",
                                             MODEL_DIR=str(tmp_path / "yolo-models")))
    base = project.connect(yolo.url, "YOLO")["model_version"]
    project.train()
    job = wait_for_job(yolo.url, project.id, lambda job: job["reason"] == "start_training", timeout=420)
    assert job["status"] == "succeeded" and job["promoted"], job
    assert job["examples"] == len(ids)  # the hand batch, the auto annotations and the reviewed ones
    assert job["version"] != base and job["version"] == project.backend["model_version"]
    answer = requests.post(yolo.url + "/predict", json={"tasks": uploaded[:2], "project": str(project.id),
                                                        "label_config": CONFIG}, timeout=120).json()
    assert {item["model_version"] for item in answer["results"]} == {job["version"]}
