"""labelzoo.results.mask_outputs: which brush/polygon controls get a mask with which label, and its regions."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from labelzoo import TaskError
from labelzoo.labelconfig import parse_label_config
from labelzoo.results import MaskOutput, mask_outputs, mask_regions, read_brushes, read_polygons, validate_result

CONFIG = parse_label_config(
    '<View><Image name="left" value="$a"/><Image name="right" value="$b"/>'
    '<BrushLabels name="paint" toName="left"><Label value="Road"/><Label value="Sky" alias="S"/></BrushLabels>'
    '<PolygonLabels name="trace" toName="left,right"><Label value="Sky"/><Label value="Tree"/></PolygonLabels>'
    '<BrushLabels name="free" toName="right"/>'
    '<RectangleLabels name="box" toName="left,right"><Label value="Road"/></RectangleLabels></View>'
)


def chosen(obj: str, label: str | None) -> list[tuple[str, str | None]]:
    return [(o.control.name, o.label) for o in mask_outputs(CONFIG, CONFIG.object(obj), label)]


def test_only_the_mask_controls_of_the_object_that_have_the_label_get_it() -> None:
    assert chosen("left", "Sky") == [("paint", "S"), ("trace", "Sky")]  # each control's own key for it
    assert chosen("left", "Road") == [("paint", "Road")]  # RectangleLabels takes no mask
    assert chosen("right", "Tree") == [("trace", "Tree")]


def test_a_label_no_control_has_gives_each_its_first_label_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "labelzoo.results"):
        assert chosen("left", "Boat") == [("paint", "Road"), ("trace", "Sky")]
    assert "'Boat' is in none of BrushLabels 'paint', PolygonLabels 'trace'" in caplog.text
    # a control without labels of its own keeps the label asked for; no label at all stays unlabelled
    assert chosen("right", "Boat") == [("trace", "Sky"), ("free", "Boat")]
    assert chosen("left", None) == [("paint", "Road"), ("trace", "Sky")]


def test_skipped_controls_do_not_count_and_an_object_without_mask_controls_is_a_task_error() -> None:
    config = parse_label_config(
        '<View><Image name="img" value="$a"/>'
        '<BrushLabels name="paint" toName="img" model_skip="true"><Label value="Road"/></BrushLabels></View>'
    )
    with pytest.raises(TaskError, match='no <BrushLabels> or <PolygonLabels> with toName="img"'):
        mask_outputs(config, config.object("img"), "Road")


def ring() -> np.ndarray:
    """A 40 × 30 mask: a square ring (with a hole) and a separate small block."""
    mask = np.zeros((30, 40), bool)
    mask[2:22, 2:22] = True
    mask[8:16, 8:16] = False
    mask[25:29, 30:38] = True
    return mask


def test_a_brush_region_holds_the_whole_mask_and_reads_back_equal() -> None:
    output = MaskOutput(CONFIG.control("paint"), "Road")
    (region,) = mask_regions(output, "left", ring(), 0.75, tolerance_px=0)
    validate_result([region])
    (read,) = read_brushes([region], CONFIG.control("paint"))
    np.testing.assert_array_equal(read.mask, ring())
    assert read.labels == ("Road",) and region["score"] == 0.75


def test_polygons_are_one_per_part_largest_first_with_holes_filled() -> None:
    output = MaskOutput(CONFIG.control("trace"), None)
    regions = mask_regions(output, "left", ring(), None, tolerance_px=0)
    validate_result(regions)
    outlines = read_polygons(regions, CONFIG.control("trace"))
    assert [r.labels for r in outlines] == [(), ()] and "score" not in regions[0]
    big, small = (r.pixels((40, 30)) for r in outlines)
    np.testing.assert_allclose([big.min(axis=0), big.max(axis=0)], [[2.5, 2.5], [21.5, 21.5]])
    np.testing.assert_allclose([small.min(axis=0), small.max(axis=0)], [[30.5, 25.5], [37.5, 28.5]])
    assert len(big) == 4  # the outer outline only: the hole is not traced


def test_an_empty_mask_has_no_regions() -> None:
    output = MaskOutput(CONFIG.control("trace"), "Tree")
    assert mask_regions(output, "left", np.zeros((4, 4), bool), 0.5, tolerance_px=1) == []
