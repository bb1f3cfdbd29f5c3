"""YOLO backend through the server: every control kind from real (random-weight) models, batching, bad media."""

from __future__ import annotations

import functools
import http.server
import logging
import math
import random
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from labelzoo.results import rle_to_mask
from tests.backends.yolo_support import (
    YOLO_DIR,
    build_model,
    data_uri,
    png_bytes,
    shapes_image,
    yolo_env,
    yolo_module,
)
from tests.conftest import free_port

weights = yolo_module("weights")

MODELS = {"detect": "det.pt", "segment": "seg.pt", "pose": "pose.pt", "obb": "obb.pt", "classify": "cls.pt"}
CONFIG = """<View><Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image"><Label value="red"/><Label value="blue"/></RectangleLabels>
  <RectangleLabels name="rotated" toName="image" model_obb="true"><Label value="red"/></RectangleLabels>
  <PolygonLabels name="poly" toName="image"><Label value="red"/><Label value="blue"/></PolygonLabels>
  <BrushLabels name="brush" toName="image"><Label value="red"/><Label value="blue"/></BrushLabels>
  <RectangleLabels name="person_box" toName="image" model_skip="true"><Label value="person"/></RectangleLabels>
  <KeyPointLabels name="kp" toName="image" model_point_threshold="0">
    <Label value="nose" model_index="0"/><Label value="left_eye" model_index="1"/>
  </KeyPointLabels>
  <Choices name="colour" toName="image"><Choice value="red"/><Choice value="blue"/></Choices>
</View>"""
IMAGE_TYPES = {"rectanglelabels", "polygonlabels", "brushlabels", "keypointlabels"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("yolo-weights")
    names = {"pose": ["person"]}
    for kind, file in MODELS.items():
        build_model(folder / file, kind, names.get(kind, ["red", "blue"]), confident=True)
    build_model(folder / "animals-cls.pt", "classify", ["cat", "dog"])
    return folder


@pytest.fixture
def env(tmp_path: Path, model_dir: Path) -> dict[str, str]:
    (tmp_path / "media").mkdir()
    (tmp_path / "weights").symlink_to(model_dir)
    return yolo_env(tmp_path, MODELS, YOLO_IMGSZ="160", YOLO_BATCH="4", MEDIA_ALLOWED_HOSTS="127.0.0.1")


@pytest.fixture
def web(tmp_path: Path) -> Iterator[str]:
    """A static file server on 127.0.0.1 for tmp_path/media."""
    handler = functools.partial(QuietHandler, directory=str(tmp_path / "media"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[tuple[int, ...]]]]:
    """Records every forward pass: the model file and the shapes of the images in it."""
    calls: list[tuple[str, list[tuple[int, ...]]]] = []
    original = weights.YoloModel.predict

    def predict(self: Any, images: list[np.ndarray], **kwargs: Any) -> Any:
        calls.append((Path(self.source).name, [image.shape for image in images]))
        return original(self, images, **kwargs)

    monkeypatch.setattr(weights.YoloModel, "predict", predict)
    return calls


def post_predict(client: Any, tasks: list[dict], config: str = CONFIG) -> list[dict]:
    response = client.post("/predict", json={"tasks": tasks, "project": "1.1700000000", "label_config": config})
    assert response.status_code == 200, response.get_json()
    results = response.get_json()["results"]
    assert len(results) == len(tasks)
    return results


def test_every_control_kind_is_predicted_in_batches_from_every_media_source(
    make_client: Any, env: dict[str, str], tmp_path: Path, web: str, spy: list
) -> None:
    rng = random.Random(1)
    images = [shapes_image(rng, (160, 120))[0] for _ in range(6)]
    for i, image in enumerate(images):
        image.save(tmp_path / "media" / f"{i}.png")
    sources = [str(tmp_path / "media" / "0.png"), "1.png", data_uri(images[2]), data_uri(images[3]),
               f"{web}/4.png", f"{web}/5.png"]  # an absolute path, a path under the media root, data:, http
    client = make_client(YOLO_DIR, **env)
    setup = client.post("/setup", json={"project": "1.1700000000", "schema": CONFIG}).get_json()

    results = post_predict(client, [{"id": i, "data": {"image": s}} for i, s in enumerate(sources)])

    for item in results:
        assert "error" not in item, item
        assert item["model_version"] == setup["model_version"]
        assert 0.0 < item["score"] <= 1.0
        kinds = Counter((r["from_name"], r["type"]) for r in item["result"])
        assert set(kinds) == {
            ("box", "rectanglelabels"), ("rotated", "rectanglelabels"), ("poly", "polygonlabels"),
            ("brush", "brushlabels"), ("person_box", "rectanglelabels"), ("kp", "keypointlabels"),
            ("colour", "choices"),
        }
        assert kinds[("colour", "choices")] == 1
        for region in item["result"]:
            if region["type"] in IMAGE_TYPES:
                assert (region["original_width"], region["original_height"]) == (160, 120)
                value = region["value"]
                low = -math.inf if value.get("rotation") else 0.0  # a rotated box's corner may lie outside
                assert all(low <= value[k] <= 100.0 for k in ("x", "y", "width", "height") if k in value)
                assert 0.0 <= region["score"] <= 1.0
            if region["type"] == "keypointlabels":
                assert region["parentID"] in {r["id"] for r in item["result"] if r["from_name"] == "person_box"}
            if region["type"] == "brushlabels":
                assert rle_to_mask(region["value"]["rle"], 160, 120).any()
    # Each model saw the six images in forward passes of at most YOLO_BATCH=4 images, not one by one.
    per_model: dict[str, list[int]] = {}
    for model, shapes in spy:
        per_model.setdefault(model, []).append(len(shapes))
    assert set(per_model) == set(MODELS.values())
    for sizes in per_model.values():
        assert sum(sizes) == 6 and max(sizes) <= 4 and len(sizes) < 6


def test_images_are_predicted_in_their_exif_orientation(
    make_client: Any, env: dict[str, str], tmp_path: Path, spy: list
) -> None:
    image = Image.new("RGB", (160, 120), (128, 128, 128))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90°: portrait, 120 wide and 160 high
    (tmp_path / "media" / "rotated.jpg").write_bytes(png_bytes(image, "JPEG", exif=exif))
    config = """<View><Image name="image" value="$image"/>
      <RectangleLabels name="box" toName="image"><Label value="red"/></RectangleLabels></View>"""
    client = make_client(YOLO_DIR, **env)
    (item,) = post_predict(client, [{"id": 1, "data": {"image": "rotated.jpg"}}], config)
    assert item["result"]
    assert {(r["original_width"], r["original_height"]) for r in item["result"]} == {(120, 160)}
    assert spy == [("det.pt", [(160, 120, 3)])]  # the model saw the upright (transposed) pixels


def test_bad_media_fails_only_its_own_task(make_client: Any, env: dict[str, str], tmp_path: Path) -> None:
    rng = random.Random(2)
    good = shapes_image(rng, (160, 120))[0]
    good.save(tmp_path / "media" / "good.png")
    jpeg = png_bytes(shapes_image(rng, (160, 120))[0], "JPEG", quality=95)
    (tmp_path / "media" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (tmp_path / "media" / "notes.jpg").write_bytes(b"these are not the pixels you are looking for")
    Image.new("1", (12_000, 9_000)).save(tmp_path / "media" / "huge.png")  # 108 megapixels, 13 kB of PNG
    nobody = f"http://127.0.0.1:{free_port()}/image.png"
    tasks = [
        {"id": 1, "data": {"image": "good.png"}},
        {"id": 2, "data": {"image": "notes.jpg"}},
        {"id": 3, "data": {"image": "truncated.jpg"}},
        {"id": 4, "data": {"image": "huge.png"}},
        {"id": 5, "data": {"image": nobody}},
        {"id": 6, "data": {"picture": "good.png"}},
        {"id": 7, "data": {"image": "good.png"}},
    ]
    config = """<View><Image name="image" value="$image"/>
      <RectangleLabels name="box" toName="image"><Label value="red"/></RectangleLabels></View>"""
    client = make_client(YOLO_DIR, **env)
    results = post_predict(client, tasks, config)

    assert results[0]["result"] and results[6]["result"]
    errors = {task["id"]: item.get("error", "") for task, item in zip(tasks, results, strict=True)}
    assert "not an image" in errors[2]
    assert "truncated" in errors[3]
    assert "too large" in errors[4] and "12000x9000" in errors[4] and "IMAGE_MAX_MEGAPIXELS" in errors[4]
    assert "127.0.0.1" in errors[5]
    assert "no data field 'image'" in errors[6]
    assert all("result" not in results[i] for i in range(1, 6))


def test_setup_reports_labels_the_model_cannot_predict_and_predict_logs_it(
    make_client: Any, env: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = """<View><Image name="image" value="$image"/>
      <RectangleLabels name="box" toName="image"><Label value="cat"/><Label value="dog"/></RectangleLabels>
      <Choices name="colour" toName="image"><Choice value="Red"/><Choice value="green"/></Choices></View>"""
    shapes_image(random.Random(3), (160, 120))[0].save(tmp_path / "media" / "a.png")
    client = make_client(YOLO_DIR, **env)
    setup = client.post("/setup", json={"project": "1", "schema": config}).get_json()
    report = {entry["control"]: entry for entry in setup["labels"]}
    assert report["box"]["mapping"] == {} and report["box"]["unmapped_model_labels"] == ["red", "blue"]
    assert "no label of the model matches" in report["box"]["report"]
    assert report["colour"]["mapping"] == {"red": "Red"} and report["colour"]["unfed_config_labels"] == ["green"]

    with caplog.at_level(logging.WARNING, logger="labelzoo.yolo"):
        (item,) = post_predict(client, [{"id": 1, "data": {"image": "a.png"}}], config)
    assert {r["from_name"] for r in item["result"]} == {"colour"}
    assert any("RectangleLabels name='box'" in r.message and "no class of the model" in r.message
               for r in caplog.records)


def test_model_path_in_the_config_needs_permission(make_client: Any, env: dict[str, str], tmp_path: Path) -> None:
    config = """<View><Image name="image" value="$image"/>
      <Choices name="animal" toName="image" model_path="animals-cls.pt" model_score_threshold="0">
        <Choice value="cat"/><Choice value="dog"/>
      </Choices></View>"""
    shapes_image(random.Random(4), (160, 120))[0].save(tmp_path / "media" / "a.png")
    refused = make_client(YOLO_DIR, **env).post("/setup", json={"project": "1", "schema": config})
    assert refused.status_code == 400 and "ALLOW_CUSTOM_MODEL_PATH=true" in refused.get_json()["message"]

    client = make_client(YOLO_DIR, **env, ALLOW_CUSTOM_MODEL_PATH="true")
    setup = client.post("/setup", json={"project": "1", "schema": config}).get_json()
    assert setup["labels"][0]["mapping"] == {"cat": "cat", "dog": "dog"}
    (item,) = post_predict(client, [{"id": 1, "data": {"image": "a.png"}}], config)
    (region,) = item["result"]
    assert region["value"]["choices"][0] in {"cat", "dog"} and item["score"] == pytest.approx(region["score"])


def test_a_model_that_cannot_load_fails_the_tasks_with_the_reason(make_client: Any, env: dict[str, str],
                                                                  tmp_path: Path) -> None:
    shapes_image(random.Random(5), (160, 120))[0].save(tmp_path / "media" / "a.png")
    client = make_client(YOLO_DIR, **{**env, "YOLO_MODEL_DETECT": "missing-model.pt"})
    config = """<View><Image name="image" value="$image"/>
      <RectangleLabels name="box" toName="image"><Label value="red"/></RectangleLabels></View>"""
    setup = client.post("/setup", json={"project": "1", "schema": config})
    assert setup.status_code == 500 and "missing-model.pt" in setup.get_json()["message"]
    (item,) = post_predict(client, [{"id": 1, "data": {"image": "a.png"}}], config)
    assert "cannot load YOLO model" in item["error"] and "missing-model.pt" in item["error"]
