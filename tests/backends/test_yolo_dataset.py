"""YOLO backend: Label Studio annotations → Ultralytics dataset files, checked exactly."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image

from labelzoo import Settings, Task, TrainingExample
from labelzoo.labelconfig import parse_label_config
from labelzoo.media import MediaResolver
from labelzoo.results import mask_to_rle, read_rectangles, rotated_box_corners, rotated_rectangle
from tests.backends.yolo_support import yolo_module

dataset = yolo_module("dataset")
training_data = yolo_module("training_data")
kinds = yolo_module("kinds")
plans_module = yolo_module("plans")
options_module = yolo_module("options")
training = yolo_module("training")

CONFIG = """<View><Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image"><Label value="Red" alias="R"/><Label value="blue"/></RectangleLabels>
  <RectangleLabels name="rotated" toName="image" model_obb="true"><Label value="ship"/></RectangleLabels>
  <PolygonLabels name="poly" toName="image"><Label value="blue"/></PolygonLabels>
  <BrushLabels name="brush" toName="image"><Label value="blue"/></BrushLabels>
  <KeyPointLabels name="kp" toName="image">
    <Label value="head" model_index="0"/><Label value="tail" model_index="1"/>
  </KeyPointLabels>
  <Choices name="colour" toName="image"><Choice value="warm"/><Choice value="cold"/></Choices>
</View>"""
SIZE = (200, 100)


def control(name: str) -> object:
    return parse_label_config(CONFIG).control(name)


def rect(name: str, label: str, x: float, y: float, w: float, h: float, rotation: float = 0.0, **extra: object) -> dict:
    value = {"x": x, "y": y, "width": w, "height": h, "rotation": rotation, "rectanglelabels": [label]}
    return {"from_name": name, "to_name": "image", "type": "rectanglelabels", "value": value, **extra}


def point(label: str, x: float, y: float, **extra: object) -> dict:
    value = {"x": x, "y": y, "width": 0.5, "keypointlabels": [label]}
    return {"from_name": "kp", "to_name": "image", "type": "keypointlabels", "value": value, **extra}


def numbers(line: str) -> list[float]:
    return [float(v) for v in line.split()]


def test_a_rectangle_in_percent_becomes_a_centre_box_and_aliases_resolve() -> None:
    classes = {"R": 0, "blue": 1}
    items = [rect("box", "Red", 10, 20, 30, 40), rect("box", "blue", 50, 0, 50, 100), rect("box", "green", 0, 0, 5, 5)]
    lines = kinds.detect.box_lines(items, classes, control("box"), SIZE)
    assert [numbers(line) for line in lines] == [[0, 0.25, 0.4, 0.3, 0.4], [1, 0.75, 0.5, 0.5, 1.0]]


def test_a_rotated_rectangle_gives_its_corners_for_obb_and_its_hull_for_detection() -> None:
    size = (400, 300)
    item = rotated_rectangle("rotated", "image", center=(200, 150), size=(100, 40), angle_deg=30, image_size=size,
                             labels=["ship"])
    (read,) = read_rectangles([item], None)
    corners = read.corners(size)
    expected = rotated_box_corners((200, 150), (100, 40), 30)
    assert np.allclose(corners, expected)  # the builder and the reader agree: corner-anchored rotation
    (obb,) = kinds.obb.corner_lines([item], {"ship": 0}, control("rotated"), size)
    assert np.allclose(numbers(obb)[1:], (expected / size).ravel(), atol=1e-6)
    (box,) = kinds.detect.box_lines([item], {"ship": 0}, control("rotated"), size)
    lo, hi = expected.min(axis=0) / size, expected.max(axis=0) / size
    assert np.allclose(numbers(box)[1:], [*(lo + hi) / 2, *(hi - lo)], atol=1e-6)


def test_polygon_points_are_normalised_as_drawn() -> None:
    item = {"from_name": "poly", "to_name": "image", "type": "polygonlabels",
            "value": {"points": [[10, 20], [50, 20], [30, 90]], "polygonlabels": ["blue"]}}
    (line,) = kinds.segment.polygon_lines([item], {"blue": 0}, control("poly"), SIZE)
    assert numbers(line) == [0, 0.1, 0.2, 0.5, 0.2, 0.3, 0.9]


def test_a_brush_mask_is_traced_into_one_polygon_per_blob_that_fills_back_to_it() -> None:
    width, height = 60, 40
    mask = np.zeros((height, width), bool)
    mask[5:15, 5:25] = True
    mask[20:35, 30:55] = True
    mask[25:35, 30:40] = False  # a notch, not a hole
    item = {"from_name": "brush", "to_name": "image", "type": "brushlabels", "original_width": width,
            "original_height": height, "value": {"format": "rle", "rle": mask_to_rle(mask), "brushlabels": ["blue"]}}
    lines = kinds.segment.brush_lines([item], {"blue": 0}, control("brush"), (width, height))
    assert len(lines) == 2
    filled = np.zeros((height, width), np.uint8)
    for line in lines:
        points = np.array(numbers(line)[1:]).reshape(-1, 2) * (width, height)
        cv2.fillPoly(filled, [points.astype(np.int32)], 1)  # truncated, as Ultralytics' polygon2mask does
    assert np.array_equal(filled.astype(bool), mask)


def test_keypoints_form_instances_by_parent_by_containment_or_alone() -> None:
    rects = [rect("animals", "cat", 0, 0, 50, 100, id="A"), rect("animals", "dog", 50, 0, 50, 100, id="B")]
    points = [
        point("head", 10, 10, parentID="A"),
        point("tail", 40, 90, parentID="A"),
        point("head", 60, 50),  # no parent: the rectangle around it (B)
        point("tail", 99, 99, parentID="gone"),  # unknown parent, inside B
    ]
    classes: dict[str, int] = {}
    lines = kinds.pose.pose_lines(control("kp"), points, rects, {"head": 0, "tail": 1}, classes, SIZE)
    assert classes == {"cat": 0, "dog": 1}
    assert [numbers(line) for line in lines] == [
        pytest.approx([0, 0.25, 0.5, 0.5, 1.0, 0.1, 0.1, 2, 0.4, 0.9, 2]),
        pytest.approx([1, 0.75, 0.5, 0.5, 1.0, 0.6, 0.5, 2, 0.99, 0.99, 2]),
    ]
    classes = {}
    (alone,) = kinds.pose.pose_lines(control("kp"), [point("head", 40, 40)], [], {"head": 0, "tail": 1}, classes, SIZE)
    assert classes == {"object": 0}
    assert numbers(alone) == pytest.approx([0, 0.4, 0.4, 0.1, 0.1, 0.4, 0.4, 2, 0, 0, 0])  # boxed with 5 % margins


def test_the_held_out_split_is_deterministic_and_stable_as_the_project_grows() -> None:
    def samples(ids: range) -> list:
        return [dataset.Sample(i, Path(f"{i}.png"), (10, 10)) for i in ids]

    train, val = dataset.held_out(samples(range(100)))
    assert len(train) + len(val) == 100 and 10 <= len(val) <= 30
    val_ids = {s.task_id for s in val}
    _, val_later = dataset.held_out(samples(range(150)))
    assert val_ids <= {s.task_id for s in val_later}  # a held-out task stays held out
    _, tiny = dataset.held_out(samples(range(5)))
    assert len(tiny) == 2


def test_training_settings_follow_the_dataset_size() -> None:
    settings = Settings.from_env({})
    options = options_module.read_options(settings)
    small = training.train_settings(kinds.DETECT, 32, 160, options)
    assert small | {"epochs": None} == small | {
        "batch": 2, "nbs": 2, "mosaic": 0.0, "warmup_epochs": 1, "optimizer": "AdamW", "lr0": 0.004, "workers": 0,
        "plots": False, "amp": False, "seed": 0, "deterministic": True, "imgsz": 160, "epochs": None,
    }
    assert small["epochs"] == 12  # 16 steps an epoch, ~180 steps
    medium = training.train_settings(kinds.POSE, 400, 640, options)
    assert (medium["batch"], medium["nbs"], "mosaic" in medium, medium["fliplr"]) == (8, 16, False, 0.0)
    large = training.train_settings(kinds.DETECT, 5000, 640, options)
    assert (large["batch"], "nbs" in large, large["epochs"]) == (16, False, 10)
    fixed = options_module.read_options(Settings.from_env({"YOLO_EPOCHS": "3"}))
    assert training.train_settings(kinds.DETECT, 32, 160, fixed)["epochs"] == 3
    served_at = options_module.read_options(Settings.from_env({"YOLO_IMGSZ": "64"}))
    assert training.train_settings(kinds.CLASSIFY, 32, 160, served_at)["imgsz"] == 64  # trained as it is served
    assert dataset.choose_imgsz([(160, 120), (200, 100), (150, 150)]) == 160
    assert dataset.choose_imgsz([(4000, 3000)] * 3) == 640


@pytest.fixture
def media(tmp_path: Path) -> MediaResolver:
    settings = Settings.from_env({"MEDIA_LOCAL_ROOTS": str(tmp_path), "MEDIA_CACHE_DIR": str(tmp_path / "cache")})
    return MediaResolver(settings.media)


def examples(tmp_path: Path, results: list[list[dict]]) -> list[TrainingExample]:
    out = []
    for i, result in enumerate(results):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", SIZE, (i, i, i)).save(path)
        out.append(TrainingExample(task=Task(id=100 + i, data={"image": str(path)}), result=result, annotation_id=i))
    return out


def plan(name: str) -> object:
    settings = Settings.from_env({})
    options = options_module.read_options(settings)
    return next(p for p in plans_module.plan_controls(parse_label_config(CONFIG), options, settings)
                if p.control.name == name)


def test_a_detection_dataset_is_written_with_its_split_and_yaml(tmp_path: Path, media: MediaResolver) -> None:
    rng = random.Random(0)
    results = [[rect("box", rng.choice(["Red", "blue"]), 10, 10, 20, 30)] for _ in range(9)] + [[]]
    built = training_data.build_dataset(plan("box"), examples(tmp_path, results), media, tmp_path / "ds",
                                  max_pixels=10**8)
    assert built.classes == ["R", "blue"] and built.imgsz == 224
    assert len(built.train) + len(built.val) == 10 and len(built.val) >= 2
    config = yaml.safe_load(Path(built.data).read_text())
    assert config["names"] == {0: "R", 1: "blue"} and config["train"] == "train/images"
    for split, samples in (("train", built.train), ("val", built.val)):
        for sample in samples:
            assert sample.image.parent == tmp_path / "ds" / split / "images"
            label = tmp_path / "ds" / split / "labels" / f"{sample.image.stem}.txt"
            assert label.read_text().splitlines() == sample.lines
    assert sum(not s.lines for s in built.train + built.val) == 1  # the empty annotation is a negative image


def test_choices_become_class_folders(tmp_path: Path, media: MediaResolver) -> None:
    def choice(value: str) -> list[dict]:
        return [{"from_name": "colour", "to_name": "image", "type": "choices", "value": {"choices": [value]}}]

    results = [choice("warm" if i % 2 else "cold") for i in range(8)] + [[]]
    built = training_data.build_dataset(plan("colour"), examples(tmp_path, results), media, tmp_path / "ds",
                                  max_pixels=10**8)
    assert built.data == str(tmp_path / "ds") and built.classes == ["warm", "cold"]
    assert len(built.train) + len(built.val) == 8  # the task without a choice is left out
    for sample in built.train + built.val:
        assert sample.image.parent.name == f"{sample.label:04d}"


def test_too_few_annotations_train_nothing(tmp_path: Path, media: MediaResolver) -> None:
    results = [[rect("box", "blue", 10, 10, 20, 30)] for _ in range(3)]
    assert training_data.build_dataset(plan("box"), examples(tmp_path, results), media, tmp_path / "ds",
                                 max_pixels=10**8) is None
