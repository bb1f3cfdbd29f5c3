"""Upstream's per-control YOLO attributes are honoured (model_conf, model_iou, model_trainable) or refused in /setup
with the reason (model_tracker on an image, an attribute of another kind), never silently ignored."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from labelzoo import FitContext, FitResult, Settings, Task, TrainingData, TrainingExample
from labelzoo.labelconfig import parse_label_config
from labelzoo.media import MediaResolver
from tests.backends.yolo_support import YOLO_DIR, build_model, rectangles, shapes_image, yolo_backend, yolo_env

SIZE = (160, 120)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("yolo-attr-weights")
    build_model(folder / "det.pt", "detect", ["red", "blue"], confident=True)
    build_model(folder / "cls.pt", "classify", ["red", "blue"])
    return folder


@pytest.fixture
def env(tmp_path: Path, model_dir: Path) -> dict[str, str]:
    (tmp_path / "media").mkdir()
    (tmp_path / "weights").symlink_to(model_dir)
    shapes_image(random.Random(1), SIZE)[0].save(tmp_path / "media" / "a.png")
    return yolo_env(tmp_path, {"detect": "det.pt", "classify": "cls.pt"}, YOLO_IMGSZ="160")


def boxes_config(**attrs: str) -> str:
    written = " ".join(f'{name}="{value}"' for name, value in attrs.items())
    return (f'<View><Image name="image" value="$image"/><RectangleLabels name="box" toName="image" {written}>'
            '<Label value="red"/><Label value="blue"/></RectangleLabels></View>')


def served_boxes(client: Any, config: str) -> list[dict]:
    response = client.post("/predict", json={"tasks": [{"id": 1, "data": {"image": "a.png"}}], "project": "1.1",
                                             "label_config": config})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"][0]["result"]


def direct_boxes(model_dir: Path, tmp_path: Path, conf: float, iou: float) -> int:
    from ultralytics import YOLO

    (result,) = YOLO(str(model_dir / "det.pt")).predict(str(tmp_path / "media" / "a.png"), conf=conf, iou=iou,
                                                         imgsz=160, verbose=False)
    return len(result.boxes)


def test_setup_refuses_what_changes_nothing_and_says_why(make_client: Any, env: dict[str, str]) -> None:
    config = """<View><Image name="image" value="$image"/>
      <RectangleLabels name="box" toName="image" model_conf="0.3" model_iou="0.5" model_trainable="false"
                       model_tracker="bytetrack" model_point_size="4" model_score_threshold="0.4">
        <Label value="red"/></RectangleLabels>
      <Choices name="colour" toName="image" model_iou="0.5" model_conf="0.2"><Choice value="red"/></Choices>
    </View>"""
    setup = make_client(YOLO_DIR, **env).post("/setup", json={"project": "1", "schema": config})
    warnings = setup.get_json()["warnings"]
    refused = sorted(w.split(" has ")[0] + " " + w.split(" has ")[1].split("=")[0] for w in warnings
                     if "changes nothing" in w)
    assert refused == ['<Choices name="colour"> model_iou', '<RectangleLabels name="box"> model_point_size',
                       '<RectangleLabels name="box"> model_tracker']
    tracker = next(w for w in warnings if "model_tracker" in w)
    assert "video" in tracker and "VideoRectangle" in tracker


def test_model_iou_and_model_conf_reach_the_model(make_client: Any, env: dict[str, str], model_dir: Path,
                                                 tmp_path: Path) -> None:
    client = make_client(YOLO_DIR, **env)
    loose = served_boxes(client, boxes_config(model_conf="0.5", model_iou="0.9"))
    strict = served_boxes(client, boxes_config(model_conf="0.5", model_iou="0.2"))
    assert len(loose) == direct_boxes(model_dir, tmp_path, 0.5, 0.9)
    assert len(strict) == direct_boxes(model_dir, tmp_path, 0.5, 0.2)
    assert len(strict) < len(loose)  # the overlap was used: a lower one suppresses more boxes

    confident = served_boxes(client, boxes_config(model_conf="0.96"))
    assert len(confident) == direct_boxes(model_dir, tmp_path, 0.96, 0.7) < len(loose)
    assert all(r["score"] >= 0.96 for r in confident)
    both = served_boxes(client, boxes_config(model_conf="0.5", model_score_threshold="0.96"))
    assert len(both) == len(confident)  # the higher of the two holds


@pytest.mark.parametrize("attr", ["model_iou", "model_conf"])
def test_an_overlap_or_confidence_outside_zero_to_one_is_a_config_error(make_client: Any, env: dict[str, str],
                                                                         attr: str) -> None:
    response = make_client(YOLO_DIR, **env).post("/setup", json={"project": "1", "schema": boxes_config(**{attr: "7"})})
    assert response.status_code == 400 and f'{attr}="7"' in response.get_json()["message"]


def test_model_trainable_false_leaves_the_control_out_of_training(env: dict[str, str], tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_label_config("""<View><Image name="image" value="$image"/>
      <RectangleLabels name="box" toName="image" model_trainable="false"><Label value="red"/></RectangleLabels>
      <Choices name="colour" toName="image"><Choice value="red"/></Choices></View>""")
    backend_cls = yolo_backend().cls
    trained: list[str] = []
    monkeypatch.setattr(backend_cls, "_fit_control", lambda self, plan, *args: trained.append(plan.control.name))
    settings = Settings.from_env({**env, "MODEL_DIR": str(tmp_path / "models")})
    backend = backend_cls(settings)
    backend.load()
    _, shapes = shapes_image(random.Random(2), SIZE)
    example = TrainingExample(task=Task(id=1, data={"image": "a.png"}), result=rectangles(shapes, SIZE))
    out = tmp_path / "v1"
    out.mkdir()
    fitted: FitResult = backend.fit(TrainingData(project="1", config=config, examples=[example]),
                                    FitContext(output_dir=out, media=MediaResolver(settings.media), settings=settings))
    assert trained == ["colour"]
    assert 'box: not trained (model_trainable="false")' in fitted.summary
