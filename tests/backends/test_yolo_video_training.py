"""YOLO learns from ``VideoRectangle`` annotations: frames of the annotated videos, with the tracks' boxes as the
editor plays them (keyframes interpolated, gaps after a disabled keyframe), train the control's detector; the
new version is validated on held-out videos and then tracks a square it was never shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from labelzoo.backend import Task, TrainingExample
from labelzoo.media import MediaResolver
from labelzoo.results import Keyframe, video_rectangle
from tests.backends.test_yolo_training import wait_for_job
from tests.backends.video_support import FPS, SIDE, SQUARE, iou, square_frame
from tests.backends.yolo_support import YOLO_DIR, build_model, training_plan, yolo_env, yolo_module

pytest.importorskip("ultralytics")

CONFIG = """<View>
  <Labels name="videoLabels" toName="video"><Label value="Square" predicted_values="square"/></Labels>
  <Video name="video" value="$video" frameRate="10"/>
  <VideoRectangle name="box" toName="video" model_tracker="bytetrack"/>
</View>"""
FRAMES = 30


def position(start: tuple[int, int], step: tuple[int, int], frame: int) -> tuple[int, int]:
    return start[0] + (frame - 1) * step[0], start[1] + (frame - 1) * step[1]


def write_moving(path: Path, start: tuple[int, int], step: tuple[int, int], hidden: range = range(0)) -> Path:
    """A square moving in a straight line from ``start`` by ``step`` pixels a frame."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (SIDE, SIDE))
    for frame in range(1, FRAMES + 1):
        writer.write(square_frame(*position(start, step, frame), visible=frame not in hidden))
    writer.release()
    return path


def track(start: tuple[int, int], step: tuple[int, int], hidden: range = range(0)) -> dict[str, Any]:
    """The annotation an annotator makes: keyframes where the straight path starts and ends (and around a gap:
    the last frame before it, disabled, and the first after it)."""
    frames = [1, FRAMES] if not hidden else [1, hidden.start - 1, hidden.stop, FRAMES]
    keyframes = [Keyframe(f, (*position(start, step, f), SQUARE, SQUARE), enabled=f != hidden.start - 1)
                 for f in frames]
    return video_rectangle("box", "video", keyframes=keyframes, frame_size=(SIDE, SIDE), fps=FPS,
                           frames_count=FRAMES, labels=["Square"])


def red_box(path: Path) -> tuple[int, int, int, int] | None:
    """The pixel box of the red square in an image file."""
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    red = (rgb[..., 0] > 180) & (rgb[..., 2] < 90)
    if not red.any():
        return None
    ys, xs = np.nonzero(red)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def test_the_frames_of_a_track_become_images_with_its_interpolated_boxes(tmp_path: Path) -> None:
    training_data = yolo_module("training_data")
    plan, config, settings = training_plan(tmp_path, CONFIG, "box")
    moves = [((6, 40), (4, 1), range(0)), ((120, 10), (-3, 3), range(12, 18)), ((10, 120), (3, -2), range(0)),
             ((60, 60), (2, 2), range(0))]
    examples = []
    for n, (start, step, hidden) in enumerate(moves):
        path = write_moving(tmp_path / "media" / f"v{n}.mp4", start, step, hidden)
        examples.append(TrainingExample(Task(id=10 + n, data={"video": str(path)}), [track(start, step, hidden)]))
    dataset = training_data.build_video_dataset(plan, config.control("videoLabels"), examples,
                                                MediaResolver(settings.media), tmp_path / "data", frames_per_video=8)
    assert dataset is not None and dataset.classes == ["Square"]
    samples = dataset.train + dataset.val
    assert len(samples) == 4 * 8 and {s.task_id for s in samples} == {10, 11, 12, 13}
    assert not {s.task_id for s in dataset.train} & {s.task_id for s in dataset.val}  # a video on one side
    for sample in samples:
        n = sample.task_id - 10
        frame = int(sample.image.stem.rsplit("_", 1)[1])
        start, step, hidden = moves[n]
        assert frame not in hidden  # frames without a visible track are not sampled
        x, y = position(start, step, frame)
        (line,) = sample.lines
        assert [float(v) for v in line.split()] == pytest.approx(
            [0, (x + SQUARE / 2) / SIDE, (y + SQUARE / 2) / SIDE, SQUARE / SIDE, SQUARE / SIDE], abs=1e-6)
        found = red_box(sample.image)  # the image is that frame of the video
        assert found is not None and np.abs(np.subtract(found, (x, y, SQUARE, SQUARE))).max() <= 2


@pytest.mark.slow
def test_video_annotations_train_a_detector_that_then_tracks_a_new_square(make_client: Any, tmp_path: Path) -> None:
    build_model(tmp_path / "weights" / "squares.pt", "detect", ["square"])
    (tmp_path / "media").mkdir()
    moves = [((6, 40), (4, 1)), ((120, 10), (-3, 3)), ((10, 120), (3, -2)), ((60, 20), (2, 3)),
             ((130, 130), (-4, -3)), ((20, 80), (4, -1)), ((90, 40), (-2, 2)), ((40, 10), (1, 4))]
    annotations = []
    for n, (start, step) in enumerate(moves):
        path = write_moving(tmp_path / "media" / f"train{n}.mp4", start, step)
        annotations.append({"id": 100 + n, "data": {"video": path.name}, "annotations": [
            {"id": 100 + n, "result": [track(start, step)], "updated_at": "2026-01-01T00:00:00Z"}]})
    client = make_client(YOLO_DIR, **yolo_env(tmp_path, {"detect": "squares.pt"}, YOLO_IMGSZ=str(SIDE),
                                              YOLO_VIDEO_TRAIN_FRAMES="10", TRAIN_AFTER_ANNOTATIONS="0"))
    body = {"project": "7.1700000000", "label_config": CONFIG, "annotations": annotations}
    assert client.post("/train", json=body).status_code in (200, 201, 202)
    job = wait_for_job(client, timeout=420)
    assert job["status"] == "succeeded" and job["promoted"], job
    assert job["metrics"]["box.mAP50"] > job["metrics"]["box.previous_mAP50"]
    assert "training on 70 images, validating on 10" in Path(job["log_path"]).read_text()  # 10 frames a video

    new = write_moving(tmp_path / "media" / "new.mp4", (30, 100), (3, -2))
    predict = {"tasks": [{"id": 1, "data": {"video": new.name}}], "project": "7.1700000000", "label_config": CONFIG}
    (result,) = client.post("/predict", json=predict).get_json()["results"]
    assert result["model_version"] == job["version"]
    (region,) = result["result"]  # one track
    boxes = {k["frame"]: k for k in region["value"]["sequence"]}
    truth = {f: tuple(v / SIDE * 100 for v in (*position((30, 100), (3, -2), f), SQUARE, SQUARE))
             for f in range(1, FRAMES + 1)}
    matched = [f for f in truth if f in boxes and iou(boxes[f], truth[f]) >= 0.5]
    assert len(matched) >= 0.8 * FRAMES, (len(matched), sorted(boxes))
