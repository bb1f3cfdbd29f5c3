"""The SAM backend's parts without a model: embedding cache keys, prompts and mask outputs."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from labelzoo import TaskError
from labelzoo.embeddings import ImageEmbeddings, content_key
from labelzoo.labelconfig import parse_label_config
from labelzoo.prompts import read_image_prompt
from labelzoo.results import mask_outputs, mask_regions, mask_to_polygons, rle_to_mask
from tests.backends.sam_support import BRUSH_CONFIG, click, rect, sam_module

segmenter = sam_module("segmenter")

# --- the embedding cache's keys (the cache itself: tests/core/test_caching.py) -----------------------


def test_cache_keys_follow_the_file_content() -> None:
    data = b"\x89PNG fake image bytes"
    assert content_key(data) == content_key(bytes(bytearray(data)))
    assert content_key(data) != content_key(data + b"\0")


def test_the_embedding_cache_is_bounded_by_the_bytes_of_the_embeddings() -> None:
    # two (1, 4, 8, 8) float32 embeddings
    cache = ImageEmbeddings(lambda pixels: None, max_bytes=2 * 4 * 8 * 8 * 4, entry_nbytes=4 * 8 * 8 * 4).lru
    for key in "abc":
        cache.get_or_compute(key, lambda: segmenter.Embedding(torch.zeros((1, 4, 8, 8)), (10, 20), (8, 16)))
    assert cache.keys() == ["b", "c"] and cache.stats().nbytes == 2 * 4 * 8 * 8 * 4


# --- prompts -------------------------------------------------------------------------------------


def test_keypoints_become_pixels_with_positive_and_negative_labels() -> None:
    prompt = read_image_prompt({"result": [click(25, 50), click(90, 10, positive=False, label="Dog")]})
    points, labels = prompt.pixel_points(200, 100)
    np.testing.assert_allclose(points, [[50, 50], [180, 10]])
    assert labels.tolist() == [1, 0]
    assert (prompt.to_name, prompt.from_name, prompt.label, prompt.box) == ("image", "click", "Dog", None)
    assert prompt.pixel_box(200, 100) is None


def test_clicks_on_the_border_stay_inside_the_image() -> None:
    points, _ = read_image_prompt({"result": [click(100, 100), click(-1, 0)]}).pixel_points(64, 48)
    np.testing.assert_allclose(points, [[64, 48], [0, 0]])


def test_a_rectangle_becomes_a_pixel_box() -> None:
    prompt = read_image_prompt({"result": [rect(10, 20, 30, 40, label="Dog")]})
    np.testing.assert_allclose(prompt.pixel_box(200, 100), [20, 20, 80, 60])
    assert prompt.pixel_points(200, 100) == (None, None)
    assert prompt.label == "Dog"


def test_a_rotated_rectangle_becomes_the_box_around_it() -> None:
    # Corner (100, 10) px, 40 × 10 px, turned 90° clockwise about that corner: it hangs down-left of it.
    prompt = read_image_prompt({"result": [rect(50, 10, 20, 10, rotation=90)]})
    np.testing.assert_allclose(prompt.pixel_box(200, 100), [90, 10, 100, 50], atol=1e-9)


def test_the_newest_of_several_rectangles_is_the_box_and_clicks_can_join_it() -> None:
    items = [rect(0, 0, 10, 10), {**rect(50, 50, 20, 20), "id": "r2"}, click(60, 60)]
    prompt = read_image_prompt({"result": items})
    np.testing.assert_allclose(prompt.pixel_box(100, 100), [50, 50, 70, 70])
    np.testing.assert_allclose(prompt.pixel_points(100, 100)[0], [[60, 60]])


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"result": None}, "must be a list"),
        ({"result": [{"type": "brushlabels", "to_name": "image", "value": {}}]}, "found region types: brushlabels"),
        ({"result": [click(1, 1), {**click(2, 2), "to_name": "other"}]}, "one image"),
        ({"result": [{**click(1, 1), "value": {"x": "1", "y": 2}}]}, "value.x='1'"),
        ({"result": [{**click(1, 1), "is_positive": "yes"}]}, "is_positive='yes'"),
        ({"result": [{**rect(1, 1, 2, 2), "value": {"x": 1, "y": 1, "width": 2}}]}, "value.height=None"),
    ],
)
def test_malformed_prompts_name_the_problem(context: dict, message: str) -> None:
    with pytest.raises(TaskError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_image_prompt(context)


# --- outputs -------------------------------------------------------------------------------------


def two_squares() -> np.ndarray:
    mask = np.zeros((50, 80), bool)
    mask[10:30, 10:30] = True  # 20 × 20 px
    mask[35:45, 60:70] = True  # 10 × 10 px
    return mask


def test_each_disjoint_part_gets_an_outline_through_its_boundary_pixel_centres() -> None:
    outlines = mask_to_polygons(two_squares(), tolerance_px=1.0)  # what outputs uses
    assert len(outlines) == 2
    expected = [
        {(10.5, 10.5), (29.5, 10.5), (29.5, 29.5), (10.5, 29.5)},
        {(60.5, 35.5), (69.5, 35.5), (69.5, 44.5), (60.5, 44.5)},
    ]
    assert [set(map(tuple, o.tolist())) for o in outlines] == expected  # largest part first


def test_polygon_output_has_one_region_per_part_in_percent() -> None:
    config = parse_label_config(
        '<View><Image name="image" value="$image"/>'
        '<PolygonLabels name="outline" toName="image"><Label value="Cat"/></PolygonLabels></View>'
    )
    (output,) = mask_outputs(config, config.object("image"), "Cat", logging.getLogger("t"))
    regions = mask_regions(output, "image", two_squares(), 0.8, tolerance_px=1.0)
    assert [r["type"] for r in regions] == ["polygonlabels", "polygonlabels"]
    first = regions[0]
    assert (first["from_name"], first["to_name"], first["original_width"], first["original_height"]) == (
        "outline",
        "image",
        80,
        50,
    )
    assert first["value"]["polygonlabels"] == ["Cat"] and first["score"] == 0.8
    pixels = {(round(x * 80 / 100, 6), round(y * 50 / 100, 6)) for x, y in first["value"]["points"]}
    assert pixels == {(10.5, 10.5), (29.5, 10.5), (29.5, 29.5), (10.5, 29.5)}
    assert regions[0]["id"] != regions[1]["id"]


def test_brush_output_holds_every_part_in_one_rle_mask() -> None:
    (output,) = mask_outputs(BRUSH_CONFIG, BRUSH_CONFIG.object("image"), "Dog", logging.getLogger("t"))
    (region,) = mask_regions(output, "image", two_squares(), 0.5, tolerance_px=1.0)
    assert (region["type"], region["from_name"], region["value"]["brushlabels"]) == ("brushlabels", "mask", ["Dog"])
    assert (region["original_width"], region["original_height"], region["value"]["format"]) == (80, 50, "rle")
    np.testing.assert_array_equal(rle_to_mask(region["value"]["rle"], 80, 50), two_squares())


def test_an_empty_mask_gives_no_region() -> None:
    (output,) = mask_outputs(BRUSH_CONFIG, BRUSH_CONFIG.object("image"), "Cat", logging.getLogger("t"))
    assert mask_regions(output, "image", np.zeros((5, 5), bool), 0.5, tolerance_px=1.0) == []


MIXED = parse_label_config(
    '<View><Image name="image" value="$image"/>'
    '<BrushLabels name="mask" toName="image"><Label value="Cat" alias="C"/><Label value="Dog"/></BrushLabels>'
    '<PolygonLabels name="outline" toName="image"><Label value="Building"/></PolygonLabels>'
    '<PolygonLabels name="skipped" toName="image" model_skip="true"><Label value="Cat"/></PolygonLabels>'
    '<KeyPointLabels name="click" toName="image" smart="true"><Label value="Cat"/><Label value="Horse"/>'
    "</KeyPointLabels></View>"
)


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Cat", [("mask", "C")]),  # the alias is what the brush control's results carry
        ("C", [("mask", "C")]),
        ("Building", [("outline", "Building")]),
        ("Horse", [("mask", "C"), ("outline", "Building")]),  # nobody has it: each control's first label
    ],
)
def test_the_mask_goes_to_the_controls_that_have_the_prompt_label(
    label: str, expected: list, caplog: pytest.LogCaptureFixture
) -> None:
    log = logging.getLogger("labelzoo.test.sam")
    chosen = mask_outputs(MIXED, MIXED.object("image"), label, log)
    assert [(o.control.name, o.label) for o in chosen] == expected
    assert ("is in none of" in caplog.text) == (label == "Horse")


def test_a_config_without_brush_or_polygon_for_the_image_is_a_task_error() -> None:
    config = parse_label_config(
        '<View><Image name="image" value="$image"/>'
        '<KeyPointLabels name="click" toName="image"><Label value="Cat"/></KeyPointLabels></View>'
    )
    with pytest.raises(TaskError, match=r'<BrushLabels name="mask" toName="image">'):
        mask_outputs(config, config.object("image"), "Cat", logging.getLogger("t"))
