"""Result builders (protocol §5): exact values, per-region conventions, validation, JSON safety."""

from __future__ import annotations

import json
import math
import os
import string
from pathlib import Path

import numpy as np
import pytest

from labelzoo.errors import TaskError
from labelzoo.results import (
    Keyframe,
    ResultError,
    audio_segment,
    audio_segment_with_text,
    brush,
    choices,
    json_safe,
    keypoint,
    mask_to_polygons,
    new_region_id,
    polygon,
    prediction,
    read_polygons,
    rectangle,
    relation,
    rle_to_mask,
    rotated_box_corners,
    rotated_rectangle,
    simplify_polygon,
    span,
    textarea,
    timeline_labels,
    video_rectangle,
)

IMAGE = (1000, 500)


def test_rectangle_pixels_to_percent() -> None:
    item = rectangle("label", "image", box=(100, 50, 200, 100), image_size=IMAGE, labels=["Car"], score=0.91)
    assert item == {
        "id": item["id"],
        "from_name": "label",
        "to_name": "image",
        "type": "rectanglelabels",
        "original_width": 1000,
        "original_height": 500,
        "image_rotation": 0,
        "value": {
            "x": 10.0,
            "y": 10.0,
            "width": 20.0,
            "height": 20.0,
            "rotation": 0.0,
            "rectanglelabels": ["Car"],
        },
        "score": 0.91,
    }
    plain = rectangle("box", "image", box=(100, 50, 200, 100), image_size=IMAGE)
    assert plain["type"] == "rectangle"
    assert "rectanglelabels" not in plain["value"]
    assert "score" not in plain
    assert "origin" not in plain


def test_rectangle_is_clipped_to_the_image() -> None:
    value = rectangle("l", "i", box=(-50, -50, 200, 100), image_size=IMAGE)["value"]
    assert (value["x"], value["y"], value["width"], value["height"]) == (0.0, 0.0, 15.0, 10.0)
    value = rectangle("l", "i", box=(900, 450, 300, 300), image_size=IMAGE)["value"]
    assert (value["x"], value["y"], value["width"], value["height"]) == (90.0, 90.0, 10.0, 10.0)


def test_numpy_inputs_give_plain_python_values() -> None:
    item = rectangle(
        "l",
        "i",
        box=np.array([100, 50, 200, 100], np.float32),
        image_size=np.array([1000, 500], np.int64),
        labels=np.array(["Car"]),
        score=np.float32(0.5),
    )
    assert type(item["original_width"]) is int
    assert all(type(item["value"][key]) is float for key in ("x", "y", "width", "height", "rotation"))
    assert type(item["score"]) is float
    assert type(item["value"]["rectanglelabels"][0]) is str
    json.dumps(item, allow_nan=False)


@pytest.mark.parametrize(("rotation", "expected"), [(-90, 270.0), (360, 0.0), (725.5, 5.5), (-1e-20, 0.0)])
def test_rotation_is_normalised(rotation: float, expected: float) -> None:
    item = rectangle("l", "i", box=(100, 100, 10, 10), image_size=IMAGE, rotation=rotation)
    assert item["value"]["rotation"] == pytest.approx(expected)
    assert 0.0 <= item["value"]["rotation"] < 360.0


def test_rotated_rectangle_known_value() -> None:
    item = rotated_rectangle(
        "l", "i", center=(500, 250), size=(200, 100), angle_deg=90, image_size=IMAGE, labels=["Ship"]
    )
    value = item["value"]
    assert value["x"] == pytest.approx(55.0)
    assert value["y"] == pytest.approx(30.0)
    assert (value["width"], value["height"], value["rotation"]) == (20.0, 20.0, 90.0)
    assert item["type"] == "rectanglelabels"


def _ls_rect_corners(value: dict, image_size: tuple[int, int]) -> np.ndarray:
    """The corners Label Studio draws: the rectangle turned clockwise around its (x, y) corner."""
    width, height = image_size
    x, y = value["x"] * width / 100, value["y"] * height / 100
    w, h = value["width"] * width / 100, value["height"] * height / 100
    theta = math.radians(value["rotation"])
    corners = []
    for dx, dy in ((0, 0), (w, 0), (w, h), (0, h)):
        corners.append(
            (x + dx * math.cos(theta) - dy * math.sin(theta), y + dx * math.sin(theta) + dy * math.cos(theta))
        )
    return np.array(corners)


@pytest.mark.parametrize("angle", [0, 17.5, 45, 90, 135, 180, 250, 359, -30])
def test_rotated_rectangle_round_trip(angle: float) -> None:
    image_size = (1280, 720)
    center, size = (640.0, 360.0), (300.0, 120.0)
    item = rotated_rectangle("l", "i", center=center, size=size, angle_deg=angle, image_size=image_size)
    # The oriented box's corners, worked out independently: centre + R(angle) · (±w/2, ±h/2).
    theta = math.radians(angle)
    expected = [
        (
            center[0] + dx * math.cos(theta) - dy * math.sin(theta),
            center[1] + dx * math.sin(theta) + dy * math.cos(theta),
        )
        for dx, dy in ((-150, -60), (150, -60), (150, 60), (-150, 60))
    ]
    np.testing.assert_allclose(_ls_rect_corners(item["value"], image_size), expected, atol=1e-9)
    np.testing.assert_allclose(rotated_box_corners(center, size, angle), expected, atol=1e-9)


@pytest.mark.parametrize(("center", "size", "angle"), [
    ((20.0, 30.0), (300.0, 120.0), 10.0),  # its top-left corner falls left of the image
    ((1270.0, 700.0), (200.0, 90.0), 200.0),  # reaching past the bottom-right corner
    ((640.0, 360.0), (1000.0, 700.0), 80.0),  # 1000 px wide: only the spelling turned by 90° fits
])
def test_a_rotated_box_past_the_image_keeps_its_corners_in_a_spelling_label_studio_accepts(
    center: tuple[float, float], size: tuple[float, float], angle: float,
) -> None:
    image_size = (1280, 720)
    item = rotated_rectangle("l", "i", center=center, size=size, angle_deg=angle, image_size=image_size)
    value = item["value"]
    assert all(value[key] <= 100 for key in ("x", "y", "width", "height"))  # label_studio_sdk's RectangleValue
    served = _ls_rect_corners(value, image_size)
    expected = rotated_box_corners(center, size, angle)
    assert sorted(map(tuple, np.round(served, 6))) == sorted(map(tuple, np.round(expected, 6)))


def test_polygon_points_in_percent() -> None:
    item = polygon(
        "poly", "image", points=[(100, 50), (300, 50), (200, 250)], image_size=IMAGE, labels=["Roof"]
    )
    assert item["type"] == "polygonlabels"
    assert item["value"] == {
        "points": [[10.0, 10.0], [30.0, 10.0], [20.0, 50.0]],
        "closed": True,
        "polygonlabels": ["Roof"],
    }
    assert (item["original_width"], item["original_height"], item["image_rotation"]) == (1000, 500, 0)
    clamped = polygon("p", "i", points=np.array([[-10, 50], [1200, 50], [200, 600]]), image_size=IMAGE)
    assert clamped["type"] == "polygon"
    assert clamped["value"]["points"] == [[0.0, 10.0], [100.0, 10.0], [20.0, 100.0]]
    open_line = polygon("p", "i", points=[(0, 0), (500, 250)], image_size=IMAGE, closed=False)
    assert open_line["value"] == {"points": [[0.0, 0.0], [50.0, 50.0]], "closed": False}


def test_polygon_rejects_bad_points() -> None:
    with pytest.raises(ResultError, match="3 or more"):
        polygon("p", "i", points=[(0, 0), (1, 1)], image_size=IMAGE)
    with pytest.raises(ResultError, match="finite"):
        polygon("p", "i", points=[(0, 0), (1, float("nan")), (2, 2)], image_size=IMAGE)
    with pytest.raises(ResultError, match="numeric"):
        polygon("p", "i", points=[(0, 0), (1,), (2, 2)], image_size=IMAGE)


def test_simplify_polygon() -> None:
    # A 100 px square with extra points on its edges and a 0.5 px bump: only the corners survive.
    ring = [(0, 0), (50, 0), (100, 0), (100, 50), (100.0, 100), (50, 100.5), (0, 100), (0, 50)]
    np.testing.assert_array_equal(simplify_polygon(ring, 1.0), [(0, 0), (100, 0), (100, 100), (0, 100)])
    np.testing.assert_array_equal(
        simplify_polygon(ring, 0.1), [(0, 0), (100, 0), (100, 100), (50, 100.5), (0, 100)]
    )
    # A repeated closing point is dropped, the result is the same.
    np.testing.assert_array_equal(simplify_polygon([*ring, (0, 0)], 1.0), simplify_polygon(ring, 1.0))
    # Open chains keep both ends.
    zigzag = [(0, 0), (10, 1), (20, -1), (30, 0), (40, 10)]
    np.testing.assert_array_equal(simplify_polygon(zigzag, 2.0, closed=False), [(0, 0), (30, 0), (40, 10)])
    np.testing.assert_array_equal(simplify_polygon(zigzag, 0.5, closed=False), zigzag)
    with pytest.raises(ResultError):
        simplify_polygon([(0, 0, 0)], 1.0)


def test_simplify_polygon_of_a_noisy_circle_stays_close() -> None:
    angles = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    rng = np.random.default_rng(0)
    radius = 100 + rng.uniform(-0.4, 0.4, angles.size)
    circle = np.stack([200 + radius * np.cos(angles), 150 + radius * np.sin(angles)], axis=1)
    simple = simplify_polygon(circle, 2.0)
    assert 10 < len(simple) < 60
    # Every kept point is an original point, in the original order.
    indices = [int(np.flatnonzero((circle == point).all(axis=1))[0]) for point in simple]
    assert indices == sorted(indices)


def test_keypoint_has_width_and_no_height() -> None:
    item = keypoint("kp", "image", point=(450, 300), image_size=IMAGE, labels=["nose"], score=0.88)
    assert item["type"] == "keypointlabels"
    assert item["value"] == {"x": 45.0, "y": 60.0, "width": 0.5, "keypointlabels": ["nose"]}
    assert "height" not in item["value"]
    grouped = keypoint("kp", "image", point=(0, 0), image_size=IMAGE, width=1.5, parent_id="person1")
    assert grouped["type"] == "keypoint"
    assert grouped["value"]["width"] == 1.5
    assert grouped["parentID"] == "person1"
    with pytest.raises(ResultError, match="width"):
        keypoint("kp", "image", point=(0, 0), image_size=IMAGE, width=0)


def test_brush_rle_decodes_to_the_mask() -> None:
    rng = np.random.default_rng(3)
    mask = rng.random((23, 37)) < 0.3
    item = brush("brush", "image", mask=mask, labels=["Cat"], score=0.95, image_size=(37, 23))
    assert item["type"] == "brushlabels"
    assert (item["original_width"], item["original_height"], item["image_rotation"]) == (37, 23, 0)
    assert item["value"]["format"] == "rle"
    assert item["value"]["brushlabels"] == ["Cat"]
    np.testing.assert_array_equal(rle_to_mask(item["value"]["rle"], 37, 23), mask)
    assert brush("b", "i", mask=mask)["type"] == "brush"
    spec = brush("b", "i", mask=np.array([[0, 255, 255], [255, 255, 0]], np.uint8))
    assert spec["value"]["rle"] == [0, 0, 0, 24, 57, 27, 252, 96, 23, 255, 227, 0]


def test_brush_rejects_a_mask_of_another_size() -> None:
    with pytest.raises(ResultError, match="natural image size"):
        brush("b", "i", mask=np.zeros((20, 30), bool), image_size=(40, 30))
    with pytest.raises(ResultError, match="threshold"):
        brush("b", "i", mask=np.zeros((20, 30), np.float32))


def test_span_offsets_are_code_points() -> None:
    text = "Café 🎉 in Zürich\r\nBerlin"
    start = text.index("Berlin")
    assert start == 18  # é, 🎉 and ü are one code point each, \r\n is two
    item = span("label", "text", text=text, start=start, end=start + 6, labels=["LOC"], score=0.99)
    assert item["type"] == "labels"
    assert item["value"] == {"start": 18, "end": 24, "text": "Berlin", "labels": ["LOC"]}
    emoji = span("label", "text", text=text, start=np.int64(5), end=np.int64(6), labels=["EMOJI"])
    assert emoji["value"]["text"] == "🎉"
    assert type(emoji["value"]["start"]) is int


@pytest.mark.parametrize(("start", "end"), [(3, 3), (5, 2), (-1, 2), (0, 25), (1.0, 2)])
def test_span_rejects_bad_offsets(start: object, end: object) -> None:
    with pytest.raises(ResultError) as info:
        span("label", "text", text="Café 🎉 in Zürich\r\nBerlin", start=start, end=end, labels=["X"])  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, TaskError)


def test_textarea_always_a_list() -> None:
    item = textarea("transcription", "audio", text="Hello world", score=0.9)
    assert item["type"] == "textarea"
    assert item["value"] == {"text": ["Hello world"]}
    assert textarea("t", "a", text=("one", "two"))["value"] == {"text": ["one", "two"]}
    with pytest.raises(ResultError):
        textarea("t", "a", text=[])
    with pytest.raises(ResultError):
        textarea("t", "a", text=[1, 2])  # type: ignore[list-item]


def test_per_region_textarea_shares_id_and_geometry() -> None:
    items = audio_segment_with_text(
        "speaker",
        "transcription",
        "audio",
        start=0.0,
        end=2.48,
        labels=["Speech"],
        text="Hello world",
        score=0.9,
    )
    segment, text = items
    assert segment["type"] == "labels"  # the region comes first (P15)
    assert text["type"] == "textarea"
    assert text["id"] == segment["id"]
    assert segment["value"] == {"start": 0.0, "end": 2.48, "channel": 0, "labels": ["Speech"]}
    assert text["value"] == {"start": 0.0, "end": 2.48, "channel": 0, "text": ["Hello world"]}
    assert segment["score"] == 0.9
    assert "score" not in text

    box = rectangle("label", "image", box=(100, 50, 200, 100), image_size=IMAGE, labels=["Car"])
    note = textarea("note", "image", text="red car", region=box)
    assert note["id"] == box["id"]
    assert note["value"] == {
        "x": 10.0,
        "y": 10.0,
        "width": 20.0,
        "height": 20.0,
        "rotation": 0.0,
        "text": ["red car"],
    }
    assert (note["original_width"], note["original_height"], note["image_rotation"]) == (1000, 500, 0)

    entity = span("label", "text", text="in Berlin", start=3, end=9, labels=["LOC"])
    comment = textarea("comment", "text", text="capital", region=entity)
    assert comment["value"] == {"start": 3, "end": 9, "text": ["capital"]}


def test_per_region_textarea_errors() -> None:
    entity = span("label", "text", text="in Berlin", start=3, end=9, labels=["LOC"])
    with pytest.raises(ResultError, match="to_name"):
        textarea("comment", "other", text="x", region=entity)
    with pytest.raises(ResultError, match="differs"):
        textarea("comment", "text", text="x", region=entity, region_id="nope")
    with pytest.raises(ResultError, match="id and a value"):
        textarea("comment", "text", text="x", region={"value": {}})


def test_choices() -> None:
    item = choices("sentiment", "text", choices=["Positive"], score=0.87)
    assert item["type"] == "choices"
    assert item["value"] == {"choices": ["Positive"]}
    assert item["score"] == 0.87
    with pytest.raises(ResultError, match=r"pass \['Positive'\]"):
        choices("sentiment", "text", choices="Positive")  # type: ignore[arg-type]
    with pytest.raises(ResultError):
        choices("sentiment", "text", choices=[])


def test_audio_segment_validation() -> None:
    item = audio_segment("speaker", "audio", start=np.float32(1.5), end=3, labels=["A"], channel=1)
    assert item["value"] == {"start": 1.5, "end": 3.0, "channel": 1, "labels": ["A"]}
    for start, end in ((3, 1), (-1, 2), (0, float("inf"))):
        with pytest.raises(ResultError):
            audio_segment("speaker", "audio", start=start, end=end, labels=["A"])
    with pytest.raises(ResultError, match="channel"):
        audio_segment("speaker", "audio", start=0, end=1, labels=["A"], channel=-1)


def test_video_rectangle() -> None:
    keyframes = [
        Keyframe(frame=40, box=(180, 110, 80, 60), enabled=False),
        Keyframe(frame=1, box=(100, 100, 80, 60)),
        Keyframe(frame=25, box=np.array([140, 105, 80, 60]), enabled=True),
    ]
    item = video_rectangle(
        "box",
        "video",
        keyframes=keyframes,
        frame_size=IMAGE,
        fps=25,
        frames_count=750,
        labels=["Car"],
        score=0.8,
    )
    assert item["type"] == "videorectangle"
    assert "original_width" not in item
    value = item["value"]
    assert (value["framesCount"], value["duration"], value["labels"]) == (750, 30.0, ["Car"])
    assert value["sequence"] == [
        {
            "frame": 1,
            "enabled": True,
            "rotation": 0,
            "x": 10.0,
            "y": 20.0,
            "width": 8.0,
            "height": 12.0,
            "time": 0.04,
        },
        {
            "frame": 25,
            "enabled": True,
            "rotation": 0,
            "x": 14.0,
            "y": 21.0,
            "width": 8.0,
            "height": 12.0,
            "time": 1.0,
        },
        {
            "frame": 40,
            "enabled": False,
            "rotation": 0,
            "x": 18.0,
            "y": 22.0,
            "width": 8.0,
            "height": 12.0,
            "time": 1.6,
        },
    ]
    unlabeled = video_rectangle(
        "box", "video", keyframes=keyframes[1:2], frame_size=IMAGE, fps=24, frames_count=10
    )
    assert "labels" not in unlabeled["value"]


@pytest.mark.parametrize(
    ("keyframes", "message"),
    [
        ([Keyframe(frame=0, box=(0, 0, 1, 1))], "1-based"),
        ([Keyframe(frame=11, box=(0, 0, 1, 1))], "outside"),
        ([Keyframe(frame=2, box=(0, 0, 1, 1)), Keyframe(frame=2, box=(1, 1, 1, 1))], "two keyframes"),
        ([], "at least one"),
        ([Keyframe(frame=1, box=(0, 0, -1, 1))], ">= 0"),
    ],
)
def test_video_rectangle_errors(keyframes: list[Keyframe], message: str) -> None:
    with pytest.raises(ResultError, match=message):
        video_rectangle("box", "video", keyframes=keyframes, frame_size=IMAGE, fps=25, frames_count=10)


def test_relation() -> None:
    assert relation("r1", "r2", labels=["owns"], direction="bi") == {
        "type": "relation",
        "from_id": "r1",
        "to_id": "r2",
        "direction": "bi",
        "labels": ["owns"],
    }
    assert relation("r1", "r2")["labels"] == []
    with pytest.raises(ResultError, match="direction"):
        relation("r1", "r2", direction="up")
    with pytest.raises(ResultError, match="two different"):
        relation("r1", "r1")


def test_prediction_is_json_safe() -> None:
    region = rectangle("label", "image", box=(1, 2, 3, 4), image_size=IMAGE, labels=["Car"])
    region["meta"] = {"raw": np.array([1.5, np.nan]), "path": Path("/tmp/x.jpg")}
    out = prediction([region], score=np.float32(0.25), model_version="yolo-1")
    assert list(out) == ["result", "score", "model_version"]
    assert out["score"] == 0.25 and type(out["score"]) is float
    assert out["result"][0]["meta"] == {"raw": [1.5, None], "path": "/tmp/x.jpg"}
    json.dumps(out, allow_nan=False)
    assert "score" not in prediction([], score=None, model_version="v1")
    assert prediction((relation("a", "b"),), score=1, model_version="v1")["result"][0]["type"] == "relation"
    assert "score" not in prediction([], score=float("nan"), model_version="v1")


@pytest.mark.parametrize(
    ("result", "model_version", "message"),
    [
        ([], "", "model_version"),
        ([], None, "model_version"),
        (None, "v1", "list"),
        (["x"], "v1", r"result\[0\] must be a dict"),
        ([{"type": "bbox", "value": {}}], "v1", "type 'bbox'"),
        (
            [{"type": "choices", "from_name": "c", "to_name": "t", "value": {}, "origin": "model"}],
            "v1",
            "origin",
        ),
        ([{"type": "choices", "from_name": "c", "value": {}}], "v1", r"\(choices\) lacks to_name"),
        ([{"type": "relation", "from_id": "a"}], "v1", r"\(relation\) lacks to_id"),
    ],
)
def test_prediction_errors(result: object, model_version: object, message: str) -> None:
    with pytest.raises(ResultError, match=message):
        prediction(result, score=0.5, model_version=model_version)  # type: ignore[arg-type]


def test_region_ids_are_unique_and_editor_like() -> None:
    ids = {rectangle("l", "i", box=(1, 1, 1, 1), image_size=IMAGE)["id"] for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(i) == 10 and set(i) <= set(string.ascii_letters + string.digits) for i in ids)
    assert len({new_region_id() for _ in range(1000)} & ids) == 0
    assert rectangle("l", "i", box=(1, 1, 1, 1), image_size=IMAGE, region_id="mine")["id"] == "mine"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_workers_do_not_repeat_ids() -> None:
    """Workers forked from one parent (gunicorn) must not replay the parent's id sequence."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its ids and leave without running any pytest teardown
        os.write(write_end, " ".join(new_region_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end) as pipe:
        child = set(pipe.read().split())
    assert len(child) == 100
    assert not child & {new_region_id() for _ in range(100)}


def test_score_handling() -> None:
    assert rectangle("l", "i", box=(1, 1, 1, 1), image_size=IMAGE, score=np.float64(0.75))["score"] == 0.75
    assert "score" not in rectangle("l", "i", box=(1, 1, 1, 1), image_size=IMAGE, score=float("nan"))
    with pytest.raises(ResultError, match="score"):
        rectangle("l", "i", box=(1, 1, 1, 1), image_size=IMAGE, score="high")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": (0, 500)}, "image_size"),
        ({"image_size": (1000.5, 500)}, "whole pixels"),
        ({"image_size": (1000,)}, "2 numbers"),
        ({"box": (1, 2, 3)}, "4 numbers"),
        ({"box": (1, 2, float("nan"), 4)}, "finite"),
        ({"box": (1, 2, -3, 4)}, ">= 0"),
        ({"labels": "Car"}, r"pass \['Car'\]"),
        ({"labels": []}, "non-empty"),
        ({"labels": [1]}, "strings"),
        ({"region_id": ""}, "region_id"),
    ],
)
def test_rectangle_rejects_invalid_input(kwargs: dict, message: str) -> None:
    args = {"box": (1, 2, 3, 4), "image_size": IMAGE, **kwargs}
    with pytest.raises(ResultError, match=message):
        rectangle("l", "i", **args)


def test_names_must_be_strings() -> None:
    with pytest.raises(ResultError, match="from_name"):
        choices("", "text", choices=["A"])
    with pytest.raises(ResultError, match="to_name"):
        choices("c", None, choices=["A"])  # type: ignore[arg-type]


def test_json_safe_nested_numpy() -> None:
    data = {
        "array": np.arange(3, dtype=np.int16),
        "matrix": np.array([[0.5, np.inf], [-np.inf, np.nan]], np.float32),
        "scalars": (np.int64(7), np.float16(0.5), np.bool_(True), np.str_("s")),
        np.int32(4): [Path("a/b"), None, float("nan"), {"deep": np.uint8(255)}],
        "list_of_ints": [1, 2, 3],
    }
    out = json_safe(data)
    assert out == {
        "array": [0, 1, 2],
        "matrix": [[0.5, None], [None, None]],
        "scalars": [7, 0.5, True, "s"],
        "4": ["a/b", None, None, {"deep": 255}],
        "list_of_ints": [1, 2, 3],
    }
    assert type(out["scalars"][2]) is bool and type(out["scalars"][3]) is str
    json.dumps(out, allow_nan=False)
    with pytest.raises(TypeError, match="set"):
        json_safe({1, 2})


# --- masks traced into polygons ------------------------------------------------------------------


def _star(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A random star-shaped blob (no holes) filled into a (height, width) mask."""
    import cv2

    width, height = size
    mask = np.zeros((height, width), np.uint8)
    centre = rng.uniform((20, 15), (width - 20, height - 15))
    angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(4, 12)))
    radii = rng.uniform(3, 14, len(angles))
    points = centre + np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def test_a_square_is_outlined_through_its_boundary_pixel_centres() -> None:
    mask = np.zeros((20, 20), bool)
    mask[4:14, 4:14] = True  # pixels 4..13, i.e. [4, 14) in image coordinates
    (outline,) = mask_to_polygons(mask)
    assert {tuple(p) for p in outline.tolist()} == {(4.5, 4.5), (13.5, 4.5), (13.5, 13.5), (4.5, 13.5)}


@pytest.mark.parametrize("seed", range(5))
def test_outlines_built_into_polygons_fill_back_to_the_same_pixels(seed: int) -> None:
    """mask → outlines → polygon results in percent → read back → filled: a pixel is inside when its centre
    (i + 0.5) is inside the polygon or on its edge, i.e. cv2.fillPoly of the points shifted by -0.5."""
    import cv2

    rng = np.random.default_rng(seed)
    size = (97, 61)
    mask = _star(rng, size) | _star(rng, size) | _star(rng, size)
    outlines = mask_to_polygons(mask)
    items = [polygon("poly", "image", points=points, image_size=size, labels=["x"]) for points in outlines]
    filled = np.zeros(mask.shape, np.uint8)
    for read in read_polygons(items, None):
        cv2.fillPoly(filled, [np.round(read.pixels() - 0.5).astype(np.int32)], 1)
    solid = np.zeros_like(filled)  # the mask with any holes its overlapping stars left filled
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(solid, contours, -1, 1, thickness=-1)
    assert np.array_equal(filled, solid)


def test_outlines_come_largest_first_and_can_be_limited() -> None:
    mask = np.zeros((40, 60), bool)
    mask[2:6, 2:6] = True  # 4 × 4: outline area 9
    mask[10:30, 10:40] = True  # the largest
    mask[35:37, 50:52] = True  # 2 × 2: outline area 1
    mask[20, 50:58] = True  # a one-pixel line: no area, no polygon
    areas = [_shoelace(p) for p in mask_to_polygons(mask)]
    assert areas == [19 * 29, 9, 1]
    assert [_shoelace(p) for p in mask_to_polygons(mask, min_area_px=4)] == [19 * 29, 9]
    (largest,) = mask_to_polygons(mask, largest_only=True)
    assert _shoelace(largest) == 19 * 29
    assert mask_to_polygons(np.zeros((5, 5), bool)) == []


def test_simplification_is_in_output_pixels() -> None:
    yy, xx = np.mgrid[:80, :80]
    disc = (xx - 40) ** 2 + (yy - 40) ** 2 < 30**2
    exact, loose = mask_to_polygons(disc)[0], mask_to_polygons(disc, tolerance_px=2.0)[0]
    assert len(loose) < len(exact) / 3
    assert np.allclose(simplify_polygon(exact, 2.0), loose)


def test_a_mask_at_model_resolution_is_scaled_to_the_natural_size() -> None:
    mask = np.zeros((10, 10), bool)
    mask[2:5, 1:4] = True
    (outline,) = mask_to_polygons(mask, scale=(4.0, 2.0))  # a 40 × 20 image
    # each vertex is the centre of the natural-size area its mask pixel covers: (i + 0.5) × scale
    assert {tuple(p) for p in outline.tolist()} == {(6.0, 5.0), (14.0, 5.0), (14.0, 9.0), (6.0, 9.0)}
    assert mask_to_polygons(mask, scale=3.0)[0].max(axis=0).tolist() == [10.5, 13.5]
    assert mask_to_polygons(mask, min_area_px=33.0, scale=(4.0, 2.0)) == []  # area 8 × 4 in natural pixels


@pytest.mark.parametrize(
    ("mask", "kwargs", "message"),
    [
        (np.zeros((4, 4), np.float32), {}, "threshold it first"),
        (np.zeros((2, 4, 4), bool), {}, "2-D"),
        (np.zeros((4, 4), bool), {"scale": 0}, "scale"),
        (np.zeros((4, 4), bool), {"tolerance_px": -1.0}, "tolerance_px"),
        (np.zeros((4, 4), bool), {"min_area_px": float("nan")}, "min_area_px"),
    ],
)
def test_mask_to_polygons_rejects_invalid_input(mask: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ResultError, match=message):
        mask_to_polygons(mask, **kwargs)


def _shoelace(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


def test_timeline_labels_are_frame_ranges_one_based_and_checked() -> None:
    region = timeline_labels("clip", "video", ranges=[(1, 12), (20, 20)], labels=["Goal"], score=0.8, region_id="g")
    assert region == {"id": "g", "from_name": "clip", "to_name": "video", "type": "timelinelabels", "score": 0.8,
                      "value": {"ranges": [{"start": 1, "end": 12}, {"start": 20, "end": 20}],
                                "timelinelabels": ["Goal"]}}
    for ranges, message in (([], "at least one range"), ([(0, 3)], "1 <= start <= end"), ([(5, 4)], "5..4"),
                            ([(1.5, 3)], "must be an integer")):
        with pytest.raises(ResultError, match=message):
            timeline_labels("clip", "video", ranges=ranges, labels=["Goal"])
