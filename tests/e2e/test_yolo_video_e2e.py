"""YOLO tracking with a real Label Studio: upstream's video config (Labels + Video + VideoRectangle with
``model_tracker``, ``model_conf``, ``model_iou``), an uploaded MP4 of a moving square, a detector trained here, and
the prediction stored by Label Studio as one track whose box follows the square on every frame."""

from __future__ import annotations

import pytest
import requests

pytest.importorskip("ultralytics")

from tests.backends.video_support import FRAMES, iou, truth, write_colour_video, write_video
from tests.backends.yolo_support import YOLO_DIR, yolo_env
from tests.e2e.project import check_predictions

CONFIG = """<View>
   <Labels name="videoLabels" toName="video" allowEmpty="true">
     <Label value="Square" predicted_values="square" background="red"/>
     <Label value="Other" background="green"/>
   </Labels>
   <Video name="video" value="$video" framerate="10.0"/>
   <VideoRectangle name="box" toName="video" smart="true" model_tracker="botsort" model_conf="0.25"
                   model_iou="0.7"/>
</View>"""

pytestmark = pytest.mark.slow


def test_yolo_tracks_an_uploaded_video(label_studio, ls_project, serve_for_ls, tmp_path, square_detector):
    (tmp_path / "media").mkdir()
    clip = write_video(tmp_path / "media" / "square.mp4")
    server = serve_for_ls(YOLO_DIR, **yolo_env(tmp_path, YOLO_MODEL_DETECT=str(square_detector), YOLO_IMGSZ="160",
                                               DEVICE="cpu"))
    project = ls_project(CONFIG, title="YOLO video")
    (task,) = project.upload([clip])
    assert task["data"]["video"].startswith(f"/data/upload/{project.id}/"), task
    backend = project.connect(server.url, "YOLO")
    setup = requests.post(server.url + "/setup", json={"project": f"{project.id}.1", "schema": CONFIG}, timeout=30)
    assert not [w for w in setup.json()["warnings"] if "changes nothing" in w], setup.json()  # every attribute read

    answer = project.retrieve_predictions()
    assert answer["processed_items"] == 1, answer
    by_task = check_predictions(project.predictions(), [task["id"]], backend["model_version"],
                                result_types={"videorectangle"})
    (region,) = by_task[task["id"]]["result"]
    assert (region["from_name"], region["to_name"], region["value"]["labels"]) == ("box", "video", ["Square"])
    sequence = region["value"]["sequence"]
    assert [k["frame"] for k in sequence] == list(range(1, FRAMES + 1))
    assert min(iou(k, truth(k["frame"])) for k in sequence) >= 0.8
    assert label_studio.requests_logged(rf'"GET {task["data"]["video"]} [^"]*" 200')  # fetched with the PAT


TIMELINE = """<View>
  <TimelineLabels name="videoLabels" toName="video">
    <Label value="Red" predicted_values="red"/>
    <Label value="Blue" predicted_values="blue"/>
  </TimelineLabels>
  <Video name="video" value="$video" timelineHeight="200"/>
</View>"""


def test_yolo_labels_an_uploaded_video_on_its_timeline(ls_project, serve_for_ls, tmp_path, colour_classifier):
    (tmp_path / "media").mkdir()
    clip = write_colour_video(tmp_path / "media" / "colours.mp4", ["blue"] * 12 + ["red"] * 18)
    server = serve_for_ls(YOLO_DIR, **yolo_env(tmp_path, YOLO_MODEL_CLASSIFY=str(colour_classifier),
                                               YOLO_IMGSZ="64", DEVICE="cpu"))
    project = ls_project(TIMELINE, title="YOLO timeline")
    (task,) = project.upload([clip])
    backend = project.connect(server.url, "YOLO")
    project.retrieve_predictions()
    by_task = check_predictions(project.predictions(), [task["id"]], backend["model_version"],
                                result_types={"timelinelabels"})
    stored = [(r["value"]["timelinelabels"], r["value"]["ranges"]) for r in by_task[task["id"]]["result"]]
    assert stored == [(["Blue"], [{"start": 1, "end": 12}]), (["Red"], [{"start": 13, "end": 30}])]
