"""YOLO backend: model outputs → Label Studio regions, checked exactly on Results with known contents."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from labelzoo.errors import LabelConfigError
from labelzoo.labelconfig import build_label_map, parse_label_config
from labelzoo.results import mask_outputs, mask_regions, read_rectangles, rle_to_mask
from labelzoo.settings import Settings
from tests.backends.yolo_support import YOLO_DIR, yolo_module

kinds = yolo_module("kinds")
outputs = yolo_module("outputs")
plans_module = yolo_module("plans")
options_module = yolo_module("options")
weights = yolo_module("weights")

from ultralytics.engine.results import Results  # noqa: E402 - after yolo_support set Ultralytics' environment


def plan_for(xml: str, name: str, **env: str) -> object:
    settings = Settings.from_env(env)
    config = parse_label_config(xml)
    plans = plans_module.plan_controls(config, options_module.read_options(settings), settings)
    return next(p for p in plans if p.control.name == name)


def results(size: tuple[int, int], names: dict[int, str], **outputs: object) -> Results:
    width, height = size
    tensors = {k: torch.tensor(np.asarray(v), dtype=torch.float32) for k, v in outputs.items()}
    return Results(np.zeros((height, width, 3), np.uint8), path="image.png", names=names, **tensors)


def geometry(region: dict) -> dict:
    """The region's value without its label list (which pytest.approx cannot compare)."""
    return {k: v for k, v in region["value"].items() if k != region["type"]}


BOXES = """<View><Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image" {attrs}>
    <Label value="Red"/><Label value="Azure" predicted_values="blue"/>
  </RectangleLabels></View>"""


def test_a_box_in_pixels_becomes_percent_of_the_natural_size_with_its_label_and_score() -> None:
    plan = plan_for(BOXES.format(attrs=""), "box")
    names = {0: "red", 1: "blue", 2: "green"}
    res = results((200, 100), names, boxes=[[20, 10, 70, 60, 0.9, 0], [0, 0, 10, 10, 0.2, 1], [5, 5, 9, 9, 0.95, 2]])
    out = kinds.detect.rectangles(res, plan, build_label_map(plan.control, names))

    (region,) = out.regions  # blue is below the 0.25 default threshold, green is not in the config
    assert region["type"] == "rectanglelabels"
    assert (region["from_name"], region["to_name"]) == ("box", "image")
    assert (region["original_width"], region["original_height"]) == (200, 100)
    assert region["value"]["rectanglelabels"] == ["Red"]
    assert geometry(region) == pytest.approx({"x": 10.0, "y": 10.0, "width": 25.0, "height": 50.0, "rotation": 0.0})
    assert region["score"] == pytest.approx(0.9)
    assert out.near_miss == pytest.approx(0.2)
    assert outputs.task_score([out]) == pytest.approx(0.9)


def test_the_control_threshold_and_predicted_values_decide_what_is_kept() -> None:
    names = {0: "red", 1: "blue"}
    res = results((100, 100), names, boxes=[[0, 0, 50, 50, 0.9, 0], [50, 50, 100, 100, 0.3, 1]])
    plan = plan_for(BOXES.format(attrs='model_score_threshold="0.25"'), "box", MODEL_SCORE_THRESHOLD="0.5")
    out = kinds.detect.rectangles(res, plan, build_label_map(plan.control, names))
    assert [r["value"]["rectanglelabels"] for r in out.regions] == [["Red"], ["Azure"]]
    assert outputs.task_score([out]) == pytest.approx(0.6)  # the mean of 0.9 and 0.3
    plan = plan_for(BOXES.format(attrs=""), "box", MODEL_SCORE_THRESHOLD="0.5")
    assert [r["score"] for r in kinds.detect.rectangles(res, plan, build_label_map(plan.control, names)).regions] == [
        pytest.approx(0.9)
    ]


def test_an_oriented_box_becomes_a_rectangle_rotated_around_its_corner() -> None:
    xml = """<View><Image name="image" value="$image"/>
      <RectangleLabels name="box" toName="image" model_obb="true"><Label value="ship"/></RectangleLabels></View>"""
    plan = plan_for(xml, "box")
    assert plan.kind.name == "obb"
    names = {0: "ship"}
    res = results((400, 300), names, obb=[[200, 150, 100, 40, math.pi / 6, 0.8, 0]])
    (region,) = kinds.obb.oriented_rectangles(res, plan, build_label_map(plan.control, names)).regions

    value = region["value"]
    assert value["rotation"] == pytest.approx(30.0)
    assert value["width"] == pytest.approx(25.0) and value["height"] == pytest.approx(40 / 3)
    # The rectangle Label Studio draws has exactly the corners Ultralytics reports for the box.
    (read,) = read_rectangles([region], None)
    drawn = read.corners((400, 300))
    reported = res.obb.xyxyxyxy[0].numpy().astype(np.float64)
    assert np.allclose(drawn[np.lexsort(drawn.T)], reported[np.lexsort(reported.T)], atol=1e-3)


def test_a_polygon_is_the_largest_outline_of_the_mask_and_fills_back_to_it() -> None:
    xml = """<View><Image name="image" value="$image"/>
      <PolygonLabels name="poly" toName="image"><Label value="red"/></PolygonLabels></View>"""
    plan = plan_for(xml, "poly")
    mask = np.zeros((48, 64), np.float32)
    mask[8:24, 10:40] = 1  # an L shape: a bar and a leg
    mask[24:40, 10:20] = 1
    mask[2:5, 50:53] = 1  # a speck: not the largest outline
    names = {0: "red"}
    res = results((64, 48), names, boxes=[[10, 2, 53, 40, 0.8, 0]], masks=[mask])
    (region,) = kinds.segment.polygons(res, plan, build_label_map(plan.control, names)).regions

    points = np.array(region["value"]["points"]) * [64 / 100, 48 / 100]
    # The outline through the boundary pixels' centres, one-pixel steps included, collinear points dropped.
    assert points.round(6).tolist() == [
        [10.5, 8.5], [10.5, 39.5], [19.5, 39.5], [19.5, 24.5], [20.5, 23.5], [39.5, 23.5], [39.5, 8.5]
    ]
    filled = np.zeros((48, 64), np.uint8)
    cv2.fillPoly(filled, [np.round(points - 0.5).astype(np.int32)], 1)  # pixel i's centre is i + 0.5
    expected = mask.astype(np.uint8)
    expected[2:5, 50:53] = 0
    assert np.array_equal(filled, expected)


def test_yolo_and_sam_trace_the_same_square_into_the_same_polygon() -> None:
    """Both use the core's mask_to_polygons: once YOLO said x 4.0–13.0 where SAM said x 4.5–13.5."""
    xml = """<View><Image name="image" value="$image"/>
      <PolygonLabels name="poly" toName="image"><Label value="red"/></PolygonLabels></View>"""
    config = parse_label_config(xml)
    mask = np.zeros((20, 20), bool)
    mask[4:14, 4:14] = True
    plan = plan_for(xml, "poly")
    res = results((20, 20), {0: "red"}, boxes=[[4, 4, 14, 14, 0.9, 0]], masks=[mask.astype(np.float32)])
    (from_yolo,) = kinds.segment.polygons(res, plan, build_label_map(plan.control, {0: "red"})).regions
    (output,) = mask_outputs(config, config.object("image"), "red", logging.getLogger("t"))  # SAM's mask outputs
    (from_sam,) = mask_regions(output, "image", mask, 0.9, tolerance_px=0.5)
    square = {(4.5, 4.5), (13.5, 4.5), (13.5, 13.5), (4.5, 13.5)}
    for region in (from_yolo, from_sam):
        assert {(round(x / 5, 6), round(y / 5, 6)) for x, y in region["value"]["points"]} == square
    assert from_yolo["value"]["points"] == from_sam["value"]["points"]


def test_brush_rle_decodes_back_to_each_instance_mask() -> None:
    xml = """<View><Image name="image" value="$image"/>
      <BrushLabels name="brush" toName="image"><Label value="red"/><Label value="blue"/></BrushLabels></View>"""
    plan = plan_for(xml, "brush")
    rng = np.random.default_rng(0)
    masks = (rng.random((2, 30, 50)) > 0.6).astype(np.float32)
    names = {0: "red", 1: "blue"}
    res = results((50, 30), names, boxes=[[0, 0, 50, 30, 0.9, 0], [0, 0, 50, 30, 0.8, 1]], masks=masks)
    regions = kinds.segment.brushes(res, plan, build_label_map(plan.control, names)).regions

    assert [r["value"]["brushlabels"] for r in regions] == [["red"], ["blue"]]
    for region, mask in zip(regions, masks, strict=True):
        assert region["value"]["format"] == "rle"
        assert (region["original_width"], region["original_height"]) == (50, 30)
        assert np.array_equal(rle_to_mask(region["value"]["rle"], 50, 30), mask > 0.5)


def test_masks_at_the_model_input_size_are_unletterboxed_to_the_natural_size() -> None:
    xml = """<View><Image name="image" value="$image"/>
      <BrushLabels name="brush" toName="image"><Label value="red"/></BrushLabels>
      <PolygonLabels name="poly" toName="image"><Label value="red"/></PolygonLabels></View>"""
    # A 320x240 image letterboxed into 160x160: scale 0.5, 20 rows of padding above and below.
    mask = np.zeros((160, 160), np.float32)
    mask[30:50, 20:60] = 1
    expected = np.zeros((240, 320), bool)
    expected[20:60, 40:120] = True
    names = {0: "red"}
    res = results((320, 240), names, boxes=[[40, 20, 120, 60, 0.9, 0]], masks=[mask])

    brush_plan = plan_for(xml, "brush")
    (brush,) = kinds.segment.brushes(res, brush_plan, build_label_map(brush_plan.control, names)).regions
    assert np.array_equal(rle_to_mask(brush["value"]["rle"], 320, 240), expected)

    poly_plan = plan_for(xml, "poly")
    (poly,) = kinds.segment.polygons(res, poly_plan, build_label_map(poly_plan.control, names)).regions
    points = np.array(poly["value"]["points"]) * [3.2, 2.4]
    assert len(points) == 4
    # the centres of the 2 × 2 natural-pixel blocks under the boundary mask pixels: half a mask pixel inside
    assert np.allclose(points.min(axis=0), [41, 21]) and np.allclose(points.max(axis=0), [119, 59])


POSE = """<View><Image name="image" value="$image"/>
  {box}
  <KeyPointLabels name="kp" toName="image" {attrs}>
    <Label value="nose" model_index="0"/><Label value="left_eye"/><Label value="tail" model_index="2"/>
  </KeyPointLabels></View>"""
PERSON_BOX = (
    '<RectangleLabels name="person_box" toName="image" model_skip="true"><Label value="person"/></RectangleLabels>'
)


def pose_results() -> Results:
    keypoints = [[[30, 40, 0.95], [35, 45, 0.2], [40, 50, 0.8]], [[1, 1, 0.9], [2, 2, 0.9], [3, 3, 0.9]]]
    return results((100, 200), {0: "person"}, boxes=[[10, 20, 60, 120, 0.9, 0], [0, 0, 5, 5, 0.2, 0]],
                   keypoints=keypoints)


def test_keypoints_are_grouped_under_their_instance_box_with_their_own_confidence() -> None:
    config = parse_label_config(POSE.format(box=PERSON_BOX, attrs=""))
    plan = plan_for(POSE.format(box=PERSON_BOX, attrs=""), "kp")
    points = kinds.pose.keypoint_map(plan.control, ["0", "1", "2"])
    assert points == {0: "nose", 2: "tail"}
    parent_control = config.control("person_box")
    parent = (parent_control, build_label_map(parent_control, {0: "person"}))
    out = kinds.pose.poses(pose_results(), plan, points, parent)

    box, nose, tail = out.regions  # the second instance is below the threshold; left_eye has no index
    assert box["from_name"] == "person_box" and box["value"]["rectanglelabels"] == ["person"]
    assert geometry(box) == pytest.approx({"x": 10.0, "y": 10.0, "width": 50.0, "height": 50.0, "rotation": 0.0})
    assert [nose["value"]["keypointlabels"], tail["value"]["keypointlabels"]] == [["nose"], ["tail"]]
    assert geometry(nose) == pytest.approx({"x": 30.0, "y": 20.0, "width": 0.5})
    assert geometry(tail) == pytest.approx({"x": 40.0, "y": 25.0, "width": 0.5})
    assert nose["parentID"] == tail["parentID"] == box["id"]
    assert (nose["score"], tail["score"]) == pytest.approx((0.95, 0.8))
    assert out.scores == pytest.approx([0.9]) and out.near_miss == pytest.approx(0.2)


def test_without_a_box_control_keypoints_share_an_instance_tag_and_take_the_point_size() -> None:
    xml = POSE.format(box="", attrs='model_point_size="2" model_point_threshold="0.1"')
    plan = plan_for(xml, "kp")
    points = kinds.pose.keypoint_map(plan.control, ["0", "1", "2"])
    regions = kinds.pose.poses(pose_results(), plan, points, None).regions
    assert [r["value"]["keypointlabels"] for r in regions] == [["nose"], ["tail"]]
    assert all(r["meta"] == {"text": ["instance 1"]} and "parentID" not in r for r in regions)
    assert all(r["value"]["width"] == pytest.approx(2.0) for r in regions)  # 2 px of a 100 px wide image


def test_keypoint_labels_match_by_model_index_then_by_name() -> None:
    config = parse_label_config("""<View><Image name="image" value="$image"/>
      <KeyPointLabels name="kp" toName="image">
        <Label value="Left Eye"/><Label value="beak" model_index="0"/><Label value="wing"/>
      </KeyPointLabels></View>""")
    control = config.control("kp")
    assert kinds.pose.keypoint_map(control, list(weights.COCO_KEYPOINTS)) == {0: "beak", 1: "Left Eye"}
    assert kinds.pose.keypoint_labels(control, ["nose", "left_eye", "right_eye"]) == ["beak", "Left Eye", "right_eye"]
    # Training keeps a model's skeleton when it names every label, else starts a new one in label order.
    assert kinds.pose.training_keypoints(control, ["beak", "left_eye", "wing"]) == {"beak": 0, "Left Eye": 1, "wing": 2}
    assert kinds.pose.training_keypoints(control, list(weights.COCO_KEYPOINTS)) == {
        "Left Eye": 1, "beak": 0, "wing": 2
    }
    assert kinds.pose.training_keypoints(control, ["0", "1"]) == {"Left Eye": 1, "beak": 0, "wing": 2}
    bad = parse_label_config("""<View><Image name="image" value="$image"/>
      <KeyPointLabels name="kp" toName="image"><Label value="a" model_index="first"/></KeyPointLabels></View>""")
    with pytest.raises(LabelConfigError, match="model_index"):
        kinds.pose.keypoint_map(bad.control("kp"), ["0"])


CHOICES = """<View><Image name="image" value="$image"/>
  <Choices name="animal" toName="image" {attrs}>
    <Choice value="Cat" predicted_values="tabby,tiger_cat"/><Choice value="Car" predicted_values="jeep,cab"/>
  </Choices></View>"""


def test_classification_sums_the_model_classes_of_each_choice() -> None:
    names = {0: "tabby", 1: "tiger_cat", 2: "jeep", 3: "cab"}
    res = results((10, 10), names, probs=[0.3, 0.25, 0.35, 0.1])

    plan = plan_for(CHOICES.format(attrs=""), "animal")
    (single,) = kinds.classify.classification(res, plan, build_label_map(plan.control, names)).regions
    assert single["value"] == {"choices": ["Cat"]} and single["score"] == pytest.approx(0.55)

    plan = plan_for(CHOICES.format(attrs='choice="multiple" model_score_threshold="0.4"'), "animal")
    (multiple,) = kinds.classify.classification(res, plan, build_label_map(plan.control, names)).regions
    assert multiple["value"] == {"choices": ["Cat", "Car"]} and multiple["score"] == pytest.approx(0.45)

    plan = plan_for(CHOICES.format(attrs='model_score_threshold="0.6"'), "animal")
    unsure = kinds.classify.classification(res, plan, build_label_map(plan.control, names))
    assert unsure.regions == [] and outputs.task_score([unsure]) == pytest.approx(0.55)


def test_the_task_score_is_the_mean_confidence_or_else_the_nearest_miss() -> None:
    Out = outputs.ControlOutput
    assert outputs.task_score([Out(scores=[0.9, 0.7]), Out(scores=[0.6])]) == pytest.approx(0.7333333)
    assert outputs.task_score([Out(near_miss=0.2), Out(near_miss=0.4)]) == pytest.approx(0.4)
    assert outputs.task_score([Out(), Out()]) == 0.0


def test_custom_model_paths_need_permission_and_stay_under_the_model_root(tmp_path: Path) -> None:
    xml = """<View><Image name="image" value="$image"/>
      <RectangleLabels name="box" toName="image" model_path="mine.pt"><Label value="a"/></RectangleLabels>
      <Choices name="skipped" toName="image" model_skip="true"><Choice value="x"/></Choices></View>"""
    with pytest.raises(LabelConfigError, match="ALLOW_CUSTOM_MODEL_PATH=true"):
        plan_for(xml, "box")
    plan = plan_for(xml, "box", ALLOW_CUSTOM_MODEL_PATH="true", MODEL_SCORE_THRESHOLD="0.3")
    assert (plan.model_name, plan.custom, plan.threshold) == ("mine.pt", True, 0.3)
    assert weights.resolve_model_path("mine.pt", tmp_path, custom=True) == (tmp_path / "mine.pt").resolve()
    for escape in ("../elsewhere.pt", "/etc/passwd"):
        with pytest.raises(LabelConfigError, match="relative to MODEL_ROOT"):
            weights.resolve_model_path(escape, tmp_path, custom=True)
    settings = Settings.from_env({"ALLOW_CUSTOM_MODEL_PATH": "true"})
    config = parse_label_config(xml)
    options = options_module.read_options(settings)
    names = [p.control.name for p in plans_module.plan_controls(config, options, settings)]
    assert names == ["box"]  # model_skip leaves the Choices alone


def official_names(dataset_yaml: str, section: str = "names") -> list[str]:
    """Class names of an official model, from the Ultralytics dataset YAML it was trained on."""
    import yaml
    from ultralytics.utils import ROOT

    data = yaml.safe_load((ROOT / "cfg" / "datasets" / dataset_yaml).read_text())
    return [str(v) for v in data[section].values()]


@pytest.mark.parametrize("path", sorted((YOLO_DIR / "configs").glob("*.xml")), ids=lambda p: p.stem)
def test_example_configs_map_every_label_onto_the_official_models(path: Path) -> None:
    settings = Settings.from_env({})
    config = parse_label_config(path.read_text())
    plans = plans_module.plan_controls(config, options_module.read_options(settings), settings)
    tracked, timelines = config.pairs("VideoRectangle", "Video"), config.pairs("TimelineLabels", "Video")
    assert plans or tracked or timelines
    for _, obj in tracked:  # a video's labels come from its <Labels>, the detection model's classes
        labels = yolo_module("video").video_labels(config, obj, dict(enumerate(official_names("coco8.yaml"))))
        assert not labels.unfed_config_labels, labels.report()
    for control, _ in timelines:  # the classification model's classes, as for Choices
        labels = build_label_map(control, official_names("ImageNet.yaml"))
        assert not labels.unfed_config_labels, labels.report()
    vocabularies = {
        "detect": [official_names("coco8.yaml")],
        "segment": [official_names("coco8-seg.yaml")],
        "obb": [official_names("dota8.yaml")],
        "classify": [official_names("ImageNet.yaml"), official_names("ImageNet.yaml", "map")],  # both spellings
    }
    for plan in plans:
        if plan.kind.name == "pose":
            points = kinds.pose.keypoint_map(plan.control, list(weights.COCO_KEYPOINTS))
            assert set(points.values()) == set(plan.control.label_keys)
            continue
        for names in vocabularies[plan.kind.name]:
            labels = build_label_map(plan.control, names)
            assert not labels.unfed_config_labels, (plan.where, labels.report())
