"""Segment Anything through Label Studio's interactive endpoint: an uploaded image, a smart click sent as the
editor's auto-annotation sends it, and the mask Label Studio hands back, equal to SamPredictor's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("segment_anything")

from labelzoo.results.rle import rle_to_mask
from tests.backends.sam_support import (
    SAM_FOLDER,
    TINY_TYPE,
    click,
    reference_mask,
    scene,
    tiny_weights,
    write_image,
)
from tests.e2e.project import check_predictions

TINY_SAM = Path(__file__).parent / "fixtures" / "tiny_sam"
CONFIG = (SAM_FOLDER / "configs" / "smart_brush.xml").read_text()
WIDTH, HEIGHT = 120, 80

pytestmark = pytest.mark.slow


def test_a_click_in_label_studio_comes_back_as_sams_mask(label_studio, ls_project, serve_for_ls, tmp_path):
    import torch

    checkpoint = tmp_path / "sam_tiny.pth"
    torch.save(tiny_weights(), checkpoint)
    pixels = scene(WIDTH, HEIGHT, seed=1)
    image = write_image(tmp_path / "scene.png", pixels)
    server = serve_for_ls(TINY_SAM, SAM_MODEL_TYPE=TINY_TYPE, SAM_CHECKPOINT=str(checkpoint), DEVICE="cpu")

    project = ls_project(CONFIG, title="SAM")
    (task,) = project.upload([image])
    assert task["data"]["image"].startswith(f"/data/upload/{project.id}/"), task
    backend = project.connect(server.url, "SAM", is_interactive=True)
    assert backend["is_interactive"]

    # opening the task: LS asks for ordinary predictions; SAM answers empty and encodes the image meanwhile
    opened = project.open(task["id"])
    version = backend["model_version"]
    check_predictions(opened["predictions"], [task["id"]], version, result_types=None)

    # a click at (25 %, 50 %) with the label "Dog", as the editor's smart keypoint tool sends it
    answer = project.interactive(task["id"], {"result": [click(25, 50, label="Dog", size=(WIDTH, HEIGHT))]})
    assert "errors" not in answer, answer
    (region,) = answer["data"]["result"]
    assert region["type"] == "brushlabels" and region["value"]["brushlabels"] == ["Dog"], region
    assert (region["from_name"], region["to_name"]) == ("mask", "image")
    assert (region["original_width"], region["original_height"]) == (WIDTH, HEIGHT)
    assert answer["data"]["model_version"] == version
    expected, _ = reference_mask(pixels, points=np.array([[30.0, 40.0]]), labels=np.array([1]), multimask=True)
    assert 0 < expected.sum() < expected.size
    np.testing.assert_array_equal(rle_to_mask(region["value"]["rle"], WIDTH, HEIGHT), expected)

    assert label_studio.requests_logged(rf'"GET {task["data"]["image"]} [^"]*" 200')  # fetched with the PAT
    assert len(project.predictions()) == 1  # interactive answers are not stored as predictions
