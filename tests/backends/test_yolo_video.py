"""YOLO on ``<Video>``: a square moving across the frames, found by a detector trained here on synthetic squares,
stays one track with the right box on every frame; the served regions equal Ultralytics' tracking called
directly; lost stretches and early ends close the track's lifespan; bad configs and files get clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.backends.video_support import FPS, FRAMES, SIDE, iou, truth, write_colour_video, write_video
from tests.backends.yolo_support import YOLO_DIR, yolo_env, yolo_module

pytest.importorskip("ultralytics")
video = yolo_module("video")

CONFIG = """<View>
  <Labels name="videoLabels" toName="video"><Label value="Square" predicted_values="square"/></Labels>
  <Video name="video" value="$video" frameRate="10"/>
  <VideoRectangle name="box" toName="video" model_tracker="{tracker}"/>
</View>"""

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path: Path, square_detector: Path) -> dict[str, str]:
    (tmp_path / "media").mkdir()
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "square.pt").symlink_to(square_detector)
    return yolo_env(tmp_path, {"detect": "square.pt"}, YOLO_IMGSZ=str(SIDE))


def predict(client: Any, path: Path, tracker: str = "bytetrack", config: str = CONFIG) -> dict[str, Any]:
    body = {"tasks": [{"id": 1, "data": {"video": str(path)}}], "project": "1.1700000000",
            "label_config": config.replace("{tracker}", tracker)}
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.get_json()
    (result,) = response.get_json()["results"]
    return result


@pytest.mark.parametrize("tracker", ["bytetrack", "botsort"])
def test_a_moving_square_is_one_track_with_the_right_box_on_every_frame(
    make_client: Any, env: dict[str, str], tmp_path: Path, tracker: str
) -> None:
    path = write_video(tmp_path / "media" / "square.mp4")
    result = predict(make_client(YOLO_DIR, **env), path, tracker)
    (region,) = result["result"]
    value = region["value"]
    assert (region["type"], region["from_name"], region["to_name"]) == ("videorectangle", "box", "video")
    assert value["labels"] == ["Square"] and value["framesCount"] == FRAMES and value["duration"] == FRAMES / FPS
    frames = [k["frame"] for k in value["sequence"]]
    assert frames == list(range(1, FRAMES + 1))
    assert min(iou(k, truth(k["frame"])) for k in value["sequence"]) >= 0.8
    assert all(k["enabled"] for k in value["sequence"])  # seen to the last frame: the lifespan is open
    assert value["sequence"][4]["time"] == pytest.approx(5 / FPS)
    assert result["score"] == pytest.approx(region["score"]) and 0.25 <= region["score"] <= 1


def test_served_tracks_equal_ultralytics_tracking_called_directly(
    make_client: Any, env: dict[str, str], tmp_path: Path, square_detector: Path
) -> None:
    from ultralytics import YOLO

    path = write_video(tmp_path / "media" / "square.mp4")
    served = predict(make_client(YOLO_DIR, **env), path)["result"]
    direct: dict[int, list[tuple[int, list[float]]]] = {}
    results = YOLO(str(square_detector)).track(source=str(path), stream=True, tracker="bytetrack.yaml", conf=0.1,
                                        imgsz=SIDE, verbose=False)
    for frame, result in enumerate(results, start=1):
        for track_id, box in zip(result.boxes.id.int().tolist(), result.boxes.xyxy.tolist(), strict=True):
            direct.setdefault(track_id, []).append((frame, box))
    assert [r["id"] for r in served] == [f"box-track{i}" for i in sorted(direct)]
    for region, track_id in zip(served, sorted(direct), strict=True):
        sequence = region["value"]["sequence"]
        assert [k["frame"] for k in sequence] == [frame for frame, _ in direct[track_id]]
        for keyframe, (_, (x1, y1, x2, y2)) in zip(sequence, direct[track_id], strict=True):
            expected = (x1 / SIDE * 100, y1 / SIDE * 100, (x2 - x1) / SIDE * 100, (y2 - y1) / SIDE * 100)
            got = (keyframe["x"], keyframe["y"], keyframe["width"], keyframe["height"])
            assert got == pytest.approx(expected, abs=1e-6)


def test_a_lost_stretch_and_an_early_end_close_the_lifespan(
    make_client: Any, env: dict[str, str], tmp_path: Path
) -> None:
    path = write_video(tmp_path / "media" / "gap.mp4", hidden=range(12, 15))
    (region,) = predict(make_client(YOLO_DIR, **env), path)["result"]  # one track: ids kept
    sequence = {k["frame"]: k for k in region["value"]["sequence"]}
    assert 11 in sequence and not sequence[11]["enabled"]  # hidden on 12-14: not drawn through the gap
    assert all(frame not in sequence for frame in (12, 13, 14)) and sequence[15]["enabled"]
    early = write_video(tmp_path / "media" / "early.mp4", hidden=range(21, FRAMES + 1))
    (region,) = predict(make_client(YOLO_DIR, **env), early)["result"]
    last = region["value"]["sequence"][-1]
    assert last["frame"] == 20 and not last["enabled"]


def test_a_tracker_setting_from_the_control_reaches_the_tracker(tmp_path: Path) -> None:
    import yaml

    from labelzoo.errors import LabelConfigError
    from labelzoo.labelconfig import parse_label_config

    config = parse_label_config(CONFIG.replace('model_tracker="{tracker}"',
                                               'model_tracker="bytetrack" bytetrack_track_buffer="5"'))
    written = Path(video.tracker_file(config.controls["box"], tmp_path))
    assert yaml.safe_load(written.read_text())["track_buffer"] == 5

    bad = parse_label_config(CONFIG.replace("{tracker}", "kalman"))
    with pytest.raises(LabelConfigError, match='model_tracker="kalman"; use one of'):
        video.tracker_file(bad.controls["box"], tmp_path)
    unknown = parse_label_config(CONFIG.replace("{tracker}", 'bytetrack" bytetrack_speed="3'))
    with pytest.raises(LabelConfigError, match="bytetrack_speed, which bytetrack does not have"):
        video.tracker_file(unknown.controls["box"], tmp_path)


def test_a_video_without_labels_or_an_unreadable_file_fails_the_task_saying_why(
    make_client: Any, env: dict[str, str], tmp_path: Path
) -> None:
    client = make_client(YOLO_DIR, **env)
    broken = tmp_path / "media" / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    assert "cannot be read as a video" in predict(client, broken)["error"]
    no_labels = CONFIG.replace('<Labels name="videoLabels" toName="video"><Label value="Square" '
                               'predicted_values="square"/></Labels>', "")
    path = write_video(tmp_path / "media" / "square.mp4", frames=3)
    assert 'has no <Labels toName="video">' in predict(client, path, config=no_labels)["error"]


def test_setup_reports_the_video_labels_and_refuses_nothing(make_client: Any, env: dict[str, str]) -> None:
    config = CONFIG.replace("{tracker}", 'bytetrack" model_conf="0.3" model_iou="0.6" bytetrack_track_buffer="9')
    answer = make_client(YOLO_DIR, **env).post("/setup", json={"project": "1", "schema": config}).get_json()
    assert not [w for w in answer["warnings"] if "changes nothing" in w or "match" in w], answer


TIMELINE = """<View>
  <Video name="video" value="$video" frameRate="10"/>
  <TimelineLabels name="colour" toName="video" model_score_threshold="0.6">
    <Label value="Red" predicted_values="red"/><Label value="Blue" predicted_values="blue"/>
  </TimelineLabels>
</View>"""


def test_a_timeline_labels_each_run_of_frames_the_classifier_gives_one_label(
    make_client: Any, tmp_path: Path, colour_classifier: Path
) -> None:
    from ultralytics import YOLO

    (tmp_path / "media").mkdir()
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "colour.pt").symlink_to(colour_classifier)
    env = yolo_env(tmp_path, {"classify": "colour.pt"}, YOLO_IMGSZ="64")
    colours = ["red"] * 10 + ["blue"] * 10 + ["red"] * 10
    path = write_colour_video(tmp_path / "media" / "colours.mp4", colours)
    served = predict(make_client(YOLO_DIR, **env), path, config=TIMELINE)["result"]
    assert [(r["value"]["timelinelabels"], r["value"]["ranges"]) for r in served] == [
        (["Red"], [{"start": 1, "end": 10}]), (["Blue"], [{"start": 11, "end": 20}]),
        (["Red"], [{"start": 21, "end": 30}])]
    assert all(r["type"] == "timelinelabels" and r["to_name"] == "video" for r in served)
    # the same as the classifier called directly, frame by frame
    direct = [(r.names[int(r.probs.top1)], float(r.probs.top1conf)) for r in
              YOLO(str(colour_classifier)).predict(source=str(path), stream=True, imgsz=64, verbose=False)]
    first = [p for name, p in direct[:10]]
    assert served[0]["score"] == pytest.approx(sum(first) / len(first), abs=1e-6)
    assert [name for name, _ in direct] == colours


def test_each_video_is_reported_done_as_soon_as_it_is_tracked(
    make_runtime: Any, env: dict[str, str], tmp_path: Path
) -> None:
    """So that a /predict deadline inside a batch of videos answers those tracked so far."""
    from labelzoo import Task
    from labelzoo.finished import listening

    runtime = make_runtime(YOLO_DIR, **env)
    backend, ctx = runtime.prediction.context("1", CONFIG.replace("{tracker}", "bytetrack"))
    tasks = [Task(id=i, data={"video": str(write_video(tmp_path / "media" / f"{i}.mp4", frames=4))}) for i in (1, 2)]
    tasks.append(Task(id=3, data={"video": str(tmp_path / "media" / "missing.mp4")}))
    heard: list[tuple[int, Any]] = []
    with listening(lambda index, prediction: heard.append((index, prediction))):
        returned = backend.predict(tasks, ctx)
    assert [index for index, _ in heard] == [0, 1, 2]
    assert [prediction for _, prediction in heard] == list(returned)
    assert returned[0].result and returned[2].error
