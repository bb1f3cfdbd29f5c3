"""SAM 2 through Label Studio's interactive endpoint, on a tiny random-weight SAM 2: a smart click on an uploaded
image and a box on a frame of an uploaded video (upstream's SAM 2 video config), sent as the editor's
auto-annotation sends them; Label Studio hands back the mask, and the track carried on through the next frames,
equal to what the ``sam2`` package's predictors give on the same file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sam2")

from labelzoo.results.rle import rle_to_mask
from tests.backends.sam2_support import (  # noqa: F401 - fixtures
    SAM2_FOLDER,
    decoded_frames,
    image_reference,
    moving_square,
    tiny_sam2_fixture,
    track,
    video_boxes,
    write_video,
)
from tests.backends.sam_support import click, scene, write_image
from tests.e2e.project import check_predictions

pytestmark = pytest.mark.slow


def test_a_click_in_label_studio_comes_back_as_sam2s_mask(label_studio, ls_project, serve_for_ls, tmp_path,
                                                          tiny_sam2) -> None:
    config, checkpoint = tiny_sam2
    pixels = scene(120, 80, seed=1)
    image = write_image(tmp_path / "scene.png", pixels)
    server = serve_for_ls(SAM2_FOLDER, SAM2_CONFIG=str(config), SAM2_CHECKPOINT=str(checkpoint), DEVICE="cpu")
    project = ls_project((SAM2_FOLDER / "configs" / "smart_brush.xml").read_text(), title="SAM 2")
    (task,) = project.upload([image])
    backend = project.connect(server.url, "SAM 2", is_interactive=True)

    opened = project.open(task["id"])  # LS asks for ordinary predictions: empty, the image encoded meanwhile
    check_predictions(opened["predictions"], [task["id"]], backend["model_version"], result_types=None)
    answer = project.interactive(task["id"], {"result": [click(25, 50, label="Dog", size=(120, 80))]})
    assert "errors" not in answer, answer
    (region,) = answer["data"]["result"]
    assert (region["type"], region["from_name"], region["value"]["brushlabels"]) == ("brushlabels", "mask", ["Dog"])
    expected, _ = image_reference(config, checkpoint)(pixels, point_coords=np.array([[30.0, 40.0]]),
                                                      point_labels=np.array([1]), multimask_output=True)
    assert 0 < expected.sum() < expected.size
    np.testing.assert_array_equal(rle_to_mask(region["value"]["rle"], 120, 80), expected)


def test_a_box_on_a_video_frame_comes_back_as_the_track_sam2_follows(label_studio, ls_project, serve_for_ls,
                                                                     tmp_path: Path, tiny_sam2) -> None:
    config, checkpoint = tiny_sam2
    (tmp_path / "media").mkdir()
    frames, boxes = moving_square(frames=10)
    clip = write_video(tmp_path / "media" / "square.mp4", frames)
    server = serve_for_ls(SAM2_FOLDER, SAM2_CONFIG=str(config), SAM2_CHECKPOINT=str(checkpoint), DEVICE="cpu",
                          SAM2_VIDEO_FRAMES="5")
    project = ls_project((SAM2_FOLDER / "configs" / "video_tracking.xml").read_text(), title="SAM 2 video")
    (task,) = project.upload([clip])
    assert task["data"]["video"].startswith(f"/data/upload/{project.id}/"), task
    project.connect(server.url, "SAM 2", is_interactive=True)

    x, y, w, h = boxes[0]
    drawn = track([{"frame": 1, "x": x / 1.6, "y": y / 1.2, "width": w / 1.6, "height": h / 1.2}], region_id="trk1")
    answer = project.interactive(task["id"], {"result": [drawn]})
    assert "errors" not in answer, answer
    (region,) = answer["data"]["result"]
    assert (region["id"], region["type"], region["from_name"], region["to_name"]) == ("trk1", "videorectangle",
                                                                                     "box", "video")
    assert region["value"]["labels"] == ["Player"]
    sequence = region["value"]["sequence"]
    assert [k["frame"] for k in sequence] == [1, 2, 3, 4, 5, 6]
    expected = video_boxes(config, checkpoint)(decoded_frames(clip)[:6], {0: [x, y, x + w, y + h]},
                                               tmp_path / "frames")
    for keyframe in sequence[1:]:
        bx, by, bw, bh = expected[keyframe["frame"] - 1]
        assert (keyframe["x"], keyframe["y"], keyframe["width"], keyframe["height"]) == pytest.approx(
            (bx / 1.6, by / 1.2, bw / 1.6, bh / 1.2))
    assert label_studio.requests_logged(rf'"GET {task["data"]["video"]} [^"]*" 200')  # fetched with the PAT
