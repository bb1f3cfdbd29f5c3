"""YOLO learns from ``TimelineLabels`` annotations: the frames of each labelled range, with the range's label,
train the control's classifier; the new version is validated on held-out videos and then labels the timeline of
a video it was never shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from labelzoo.backend import Task, TrainingExample
from labelzoo.media import MediaResolver
from labelzoo.results import timeline_labels
from tests.backends.test_yolo_training import wait_for_job
from tests.backends.video_support import write_colour_video
from tests.backends.yolo_support import YOLO_DIR, training_plan, yolo_env, yolo_module

pytest.importorskip("ultralytics")

CONFIG = """<View>
  <Video name="video" value="$video" timelineHeight="120"/>
  <TimelineLabels name="colour" toName="video">
    <Label value="Red"/><Label value="Blue"/>
  </TimelineLabels>
</View>"""


def runs(colours: list[str], names: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The annotation an annotator makes: one timeline region per run of frames of one colour (1-based), labelled
    by ``names`` (default: the colour)."""
    regions, start = [], 1
    for frame in range(2, len(colours) + 2):
        if frame > len(colours) or colours[frame - 1] != colours[start - 1]:
            regions.append(timeline_labels("colour", "video", ranges=[(start, frame - 1)],
                                           labels=[(names or {}).get(colours[start - 1], colours[start - 1].title())]))
            start = frame
    return regions


def main_colour(path: Path) -> str:
    """Red or blue: the colour of the big square in an image file."""
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    red, blue = ((rgb[..., 0] > 180) & (rgb[..., 2] < 90)).sum(), ((rgb[..., 2] > 180) & (rgb[..., 0] < 90)).sum()
    return "Red" if red > blue else "Blue"


def test_the_frames_of_each_range_become_images_of_its_label(tmp_path: Path) -> None:
    training_data = yolo_module("training_data")
    plan, _, settings = training_plan(tmp_path, CONFIG, "colour")
    assert (plan.control.name, plan.kind.name) == ("colour", "classify")
    examples = []
    for n in range(4):
        colours = ["red"] * (6 + n) + ["blue"] * 8
        path = write_colour_video(tmp_path / "media" / f"v{n}.mp4", colours)
        result = runs(colours)
        if n == 3:  # a timeline need not label every frame: the last blue frames are left unlabelled
            result[-1]["value"]["ranges"] = [{"start": 10, "end": 14}]
        examples.append(TrainingExample(Task(id=10 + n, data={"video": str(path)}), result))
    dataset = training_data.build_timeline_dataset(plan, examples, MediaResolver(settings.media), tmp_path / "data",
                                                   frames_per_video=10)
    assert dataset is not None and dataset.classes == ["Red", "Blue"]
    samples = dataset.train + dataset.val
    assert len(samples) == 4 * 10 and {s.task_id for s in samples} == {10, 11, 12, 13}
    assert not {s.task_id for s in dataset.train} & {s.task_id for s in dataset.val}  # a video on one side
    for sample in samples:
        frame = int(sample.image.stem.rsplit("_", 1)[1])
        n = sample.task_id - 10
        assert dataset.classes[sample.label] == ("Red" if frame <= 6 + n else "Blue")
        assert main_colour(sample.image) == dataset.classes[sample.label]  # the image is that frame
        if n == 3:
            assert frame <= 14  # frames no range labels are not used


WARM_COLD = CONFIG.replace('<Label value="Red"/><Label value="Blue"/>', '<Label value="Warm"/><Label value="Cold"/>')
NAMES = {"red": "Warm", "blue": "Cold"}


@pytest.mark.slow
def test_timeline_annotations_train_a_classifier_that_then_labels_a_new_video(make_client: Any, tmp_path: Path,
                                                                            colour_classifier: Path) -> None:
    """The base model tells red from blue but under its own names, which the config's labels (Warm, Cold) do
    not map: it scores 0 on the held-out videos, and learns the config's names from the timelines."""
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "colours.pt").symlink_to(colour_classifier)
    (tmp_path / "media").mkdir()
    annotations = []
    for n in range(8):
        colours = ["red"] * (4 + n) + ["blue"] * (14 - n) if n % 2 else ["blue"] * (5 + n) + ["red"] * (12 - n)
        path = write_colour_video(tmp_path / "media" / f"train{n}.mp4", colours)
        annotations.append({"id": 100 + n, "data": {"video": path.name}, "annotations": [
            {"id": 100 + n, "result": runs(colours, NAMES), "updated_at": "2026-01-01T00:00:00Z"}]})
    client = make_client(YOLO_DIR, **yolo_env(tmp_path, {"classify": "colours.pt"}, YOLO_IMGSZ="64",
                                              YOLO_VIDEO_TRAIN_FRAMES="12", TRAIN_AFTER_ANNOTATIONS="0"))
    body = {"project": "7.1700000000", "label_config": WARM_COLD, "annotations": annotations}
    assert client.post("/train", json=body).status_code in (200, 201, 202)
    job = wait_for_job(client, timeout=420)
    assert job["status"] == "succeeded" and job["promoted"], job
    assert (job["metrics"]["colour.previous_top1"], job["metrics"]["colour.top1"]) == (0.0, 1.0)

    colours = ["red"] * 9 + ["blue"] * 12 + ["red"] * 9
    new = write_colour_video(tmp_path / "media" / "new.mp4", colours)
    predict = {"tasks": [{"id": 1, "data": {"video": new.name}}], "project": "7.1700000000",
               "label_config": WARM_COLD}
    (result,) = client.post("/predict", json=predict).get_json()["results"]
    assert result["model_version"] == job["version"]
    served = [(r["value"]["timelinelabels"], r["value"]["ranges"]) for r in result["result"]]
    assert served == [(["Warm"], [{"start": 1, "end": 9}]), (["Cold"], [{"start": 10, "end": 21}]),
                      (["Warm"], [{"start": 22, "end": 30}])]
