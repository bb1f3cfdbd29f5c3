"""YOLO backend: one recipe per kind of control, and how each kind scores a model on held-out images."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from labelzoo.labelconfig import parse_label_config
from labelzoo.metrics import average_precision
from labelzoo.results import mask_to_rle
from labelzoo.settings import Settings
from tests.backends.yolo_support import yolo_backend, yolo_module

kinds = yolo_module("kinds")
dataset = yolo_module("dataset")
evaluate = yolo_module("evaluate")
plans_module = yolo_module("plans")
options_module = yolo_module("options")

from ultralytics.engine.results import Results  # noqa: E402 - after yolo_support set Ultralytics' environment

CONFIG = """<View><Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image"><Label value="red"/></RectangleLabels>
  <RectangleLabels name="turned" toName="image" model_obb="true"><Label value="ship"/></RectangleLabels>
  <PolygonLabels name="poly" toName="image"><Label value="red"/></PolygonLabels>
  <BrushLabels name="brush" toName="image"><Label value="red"/></BrushLabels>
  <KeyPointLabels name="kp" toName="image">
    <Label value="nose" model_index="0"/><Label value="tail" model_index="16"/>
  </KeyPointLabels>
  <Choices name="colour" toName="image"><Choice value="red"/></Choices>
</View>"""


def plans() -> dict[str, object]:
    settings = Settings.from_env({})
    options = options_module.read_options(settings)
    return {p.control.name: p for p in plans_module.plan_controls(parse_label_config(CONFIG), options, settings)}


def results(size: tuple[int, int], names: dict[int, str], **outputs: object) -> Results:
    width, height = size
    tensors = {k: torch.tensor(np.asarray(v), dtype=torch.float32) for k, v in outputs.items()}
    return Results(np.zeros((height, width, 3), np.uint8), path="image.png", names=names, **tensors)


def test_each_control_is_filled_by_one_kind_and_each_kind_has_its_model_setting() -> None:
    found = {name: plan.kind for name, plan in plans().items()}
    assert found == {"box": kinds.DETECT, "turned": kinds.OBB, "poly": kinds.SEGMENT, "brush": kinds.SEGMENT,
                     "kp": kinds.POSE, "colour": kinds.CLASSIFY}  # fmt: skip
    assert [(t.control, t.object) for t in yolo_backend().cls.targets] == [
        *((tag, "Image") for tag in kinds.CONTROL_TAGS), ("VideoRectangle", "Video"), ("TimelineLabels", "Video")]
    declared = {option.name: option.default for option in options_module.OPTIONS}
    for kind in kinds.KINDS:
        assert kind.name in kind.served_by  # a model of the kind's own task always serves it
        assert declared[f"YOLO_MODEL_{kind.name.upper()}"] == kind.default_model
    assert [kind.metric for kind in kinds.KINDS] == ["mAP50-95"] * 4 + ["top1"]


def test_the_core_average_precision_gives_ultralytics_numbers() -> None:
    """The held-out metrics moved from Ultralytics' ap_per_class to labelzoo.metrics without changing."""
    from ultralytics.utils.metrics import ap_per_class

    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(1, 60))
        right = rng.random((n, 10)) < np.linspace(0.8, 0.2, 10)
        confidences = rng.random(n)
        predicted = rng.integers(0, 4, n)
        truth = rng.integers(0, 3, int(rng.integers(1, 40)))
        expected = ap_per_class(right, confidences, predicted, truth)[5]
        assert average_precision(right, confidences, predicted, truth) == pytest.approx(expected, abs=1e-9)


def test_a_traced_brush_mask_scores_a_mask_iou_of_one_against_the_same_mask() -> None:
    """Outline vertices sit at boundary pixels' centres; filling them back for the IoU gives the same pixels."""
    size = (64, 48)
    mask = np.zeros((48, 64), bool)
    mask[10:31, 8:40] = True
    mask[31:40, 8:15] = True
    item = {
        "from_name": "brush",
        "to_name": "image",
        "type": "brushlabels",
        "original_width": 64,
        "original_height": 48,
        "value": {"format": "rle", "rle": mask_to_rle(mask), "brushlabels": ["red"]},
    }
    control = parse_label_config(CONFIG).control("brush")
    lines = kinds.segment.brush_lines([item], {"red": 0}, control, size)
    rows = evaluate.truth_rows(dataset.Sample(1, Path("x.png"), size, lines))
    res = results(size, {0: "red"}, boxes=[[8, 10, 40, 40, 0.9, 0]], masks=[mask.astype(np.float32)])
    assert kinds.segment.mask_ious(rows, res, np.array([True]), size) == pytest.approx(np.ones((1, 1)))


def test_every_keypoint_of_a_skeleton_with_gaps_is_scored() -> None:
    """nose is keypoint 0 and tail keypoint 16 of a COCO model: a wrong tail costs half the similarity."""
    plan = plans()["kp"]
    model = SimpleNamespace(keypoint_names=[str(i) for i in range(17)])
    index = kinds.pose.training_keypoints(plan.control, model.keypoint_names)
    assert index == {"nose": 0, "tail": 16}  # the model's skeleton is kept
    size = (100, 100)
    keypoints = [{"from_name": "kp", "to_name": "image", "type": "keypointlabels",
                  "value": {"x": x, "y": y, "width": 0.5, "keypointlabels": [label]}}
                 for label, x, y in (("nose", 30, 30), ("tail", 60, 70))]  # fmt: skip
    classes: dict[str, int] = {}
    lines = kinds.pose.pose_lines(plan.control, keypoints, [], index, classes, size)
    rows = evaluate.truth_rows(dataset.Sample(1, Path("x.png"), size, lines))
    held_out = dataset.Dataset(Path("."), "", list(classes), index, [], [], 64)
    compare = kinds.POSE.comparer(plan, model, held_out)

    def predicted(tail: tuple[float, float]) -> Results:
        points = np.zeros((1, 17, 3))
        points[0, 0], points[0, 16] = [30, 30, 0.9], [*tail, 0.9]
        return results(size, {0: "object"}, boxes=[[20, 20, 70, 80, 0.9, 0]], keypoints=points)

    assert compare(rows, predicted((60, 70)), np.array([True]), size) == pytest.approx(np.ones((1, 1)), abs=1e-6)
    assert compare(rows, predicted((5, 5)), np.array([True]), size) == pytest.approx(np.full((1, 1), 0.5), abs=1e-3)
