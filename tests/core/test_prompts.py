"""labelzoo.prompts: the smart regions of params.context → clicks and a box, in percent and in pixels."""

from __future__ import annotations

import numpy as np
import pytest

from labelzoo import TaskError
from labelzoo.errors import LabelConfigError
from labelzoo.labelconfig import parse_label_config
from labelzoo.prompts import Box, Click, ImagePrompt, read_image_prompt


def keypoint(x: float, y: float, **extra: object) -> dict:
    value = {"x": x, "y": y, "width": 0.5, "keypointlabels": ["Car"]}
    return {"from_name": "kp", "to_name": "photo", "type": "keypointlabels", "value": value, **extra}


def rectangle(x: float, y: float, w: float, h: float, **value: object) -> dict:
    fields = {"x": x, "y": y, "width": w, "height": h, "rectanglelabels": ["Car"], **value}
    return {"from_name": "bb", "to_name": "photo", "type": "rectanglelabels", "value": fields}


def test_keypoints_and_a_box_are_read_with_the_newest_regions_names_and_label() -> None:
    items = [
        keypoint(10, 20, is_positive=True),
        keypoint(30, 40, is_positive=False),
        rectangle(1, 2, 3, 4, rectanglelabels=["Truck"]),
    ]
    prompt = read_image_prompt({"result": items, "other": "ignored"})
    assert prompt == ImagePrompt(
        from_name="bb",
        to_name="photo",
        label="Truck",
        clicks=(Click(10.0, 20.0, True), Click(30.0, 40.0, False)),
        box=Box(1.0, 2.0, 3.0, 4.0, 0.0),
    )


def test_plain_keypoints_are_positive_and_labels_fall_back_to_value_labels() -> None:
    item = keypoint(50, 50)
    item["value"] = {"x": 50, "y": 50, "labels": ["Bike"]}
    prompt = read_image_prompt({"result": [item]})
    assert prompt.clicks == (Click(50.0, 50.0, True),) and prompt.label == "Bike"


def test_unlabelled_rectangles_and_items_of_other_types_are_fine() -> None:
    box = {"from_name": "bb", "to_name": "photo", "type": "rectangle", "value": {"x": 0, "y": 0, "width": 50,
                                                                                 "height": 25}}  # fmt: skip
    prompt = read_image_prompt({"result": ["junk", {"type": "choices", "value": {}}, box]})
    assert prompt.label is None and prompt.clicks == ()
    np.testing.assert_allclose(prompt.pixel_box(400, 200), [0, 0, 200, 50])


def test_the_newest_regions_id_is_kept_for_an_answer_about_that_region() -> None:
    items = [{**rectangle(1, 2, 3, 4), "id": "old"}, {**rectangle(5, 6, 7, 8), "id": "drawn"}]
    assert read_image_prompt({"result": items}).region_id == "drawn"
    assert read_image_prompt({"result": [rectangle(1, 2, 3, 4)]}).region_id is None  # the editor always sends one


def test_pixels_scale_with_the_natural_size_and_boxes_are_clipped_to_it() -> None:
    prompt = read_image_prompt({"result": [rectangle(80, -10, 40, 50), keypoint(10, 90, is_positive=False)]})
    np.testing.assert_allclose(prompt.pixel_box(1000, 500), [800, 0, 1000, 200])
    points, labels = prompt.pixel_points(1000, 500)
    np.testing.assert_allclose(points, [[100, 450]])
    assert labels.tolist() == [0]


def test_the_pixels_a_box_covers_survive_the_percent_round_trip() -> None:
    width, height = 486, 156
    on_edges = rectangle(26 * 100 / width, 43 * 100 / height, 417 * 100 / width, 31 * 100 / height)
    assert read_image_prompt({"result": [on_edges]}).pixel_rect(width, height) == (26, 43, 417, 31)
    assert read_image_prompt({"result": [rectangle(10.1, 20.5, 10, 10)]}).pixel_rect(100, 100) == (10, 20, 11, 11)
    assert read_image_prompt({"result": [keypoint(5, 5)]}).pixel_rect(100, 100) is None


def test_a_box_rotated_about_its_top_left_corner_becomes_the_box_around_it() -> None:
    # 100 × 50 px from (100, 100), turned 180°: it lies up-left of the corner.
    prompt = read_image_prompt({"result": [rectangle(25, 25, 25, 12.5, rotation=180)]})
    np.testing.assert_allclose(prompt.pixel_box(400, 400), [0, 50, 100, 100], atol=1e-9)


def test_the_image_the_prompt_is_drawn_on_is_looked_up_in_the_config() -> None:
    config = parse_label_config(
        '<View><Image name="photo" value="$image"/><Text name="text" value="$text"/>'
        '<KeyPointLabels name="kp" toName="photo"><Label value="Car"/></KeyPointLabels></View>'
    )
    prompt = read_image_prompt({"result": [keypoint(1, 1)]})
    assert prompt.image(config) is config.object("photo")
    with pytest.raises(TaskError, match=r"drawn on <Text name='text'>"):
        read_image_prompt({"result": [{**keypoint(1, 1), "to_name": "text"}]}).image(config)
    with pytest.raises(LabelConfigError, match="no object tag named 'nowhere'"):
        read_image_prompt({"result": [{**keypoint(1, 1), "to_name": "nowhere"}]}).image(config)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([], "found region types: none"),
        ([{"type": "polygonlabels", "to_name": "photo", "value": {}}], "found region types: polygonlabels"),
        ([{**keypoint(1, 1), "to_name": None}], "must all point at one image"),
        ([{**keypoint(1, 1), "value": None}], "prompt region 0 .keypointlabels. has no 'value' object"),
        ([keypoint(1, 1), {**keypoint(1, 1), "value": {"x": 1, "y": float("nan")}}], "prompt region 1 has value.y=nan"),
        ([{**keypoint(1, 1), "value": {"x": True, "y": 1}}], "value.x=True"),
        ([rectangle(1, 1, 2, 2, rotation="90")], "value.rotation='90'"),
        ([{**keypoint(1, 1), "is_positive": 1}], "is_positive=1"),
    ],
)
def test_a_malformed_prompt_is_a_task_error_naming_the_region_and_field(items: list, message: str) -> None:
    with pytest.raises(TaskError, match=message):
        read_image_prompt({"result": items})


def test_a_context_without_a_result_list_says_how_to_make_one() -> None:
    with pytest.raises(TaskError, match="got dict; draw a smart keypoint or smart rectangle"):
        read_image_prompt({"result": {"x": 1}})
    with pytest.raises(TaskError, match="got NoneType"):
        read_image_prompt({})
