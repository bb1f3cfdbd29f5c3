"""Helpers for the YOLO backend's tests and benchmark: local models (no downloads), synthetic images.

Models are built from Ultralytics' model YAMLs with random weights and saved as ``.pt`` files, so the
backend loads them through its normal path-loading code. A random detector finds nothing at any useful
threshold; ``confident=True`` sets the class biases of the head high, so every anchor fires and the
whole pipeline (NMS, masks, keypoints, conversion) runs on real model output.
"""

from __future__ import annotations

import base64
import io
import os
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

# Ultralytics reads these when first imported; the backend sets the same defaults from its Settings.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_VERBOSE", "false")
os.environ.setdefault("YOLO_CONFIG_DIR", str(Path(tempfile.gettempdir()) / "labelzoo-yolo-tests"))

import importlib

import numpy as np
from PIL import Image, ImageDraw

from labelzoo.registry import BackendSpec, load_backend
from tests.conftest import REPO

YOLO_DIR = REPO / "backends" / "yolo"
YAMLS = {
    "detect": "yolo11n.yaml",
    "segment": "yolo11n-seg.yaml",
    "pose": "yolo11n-pose.yaml",
    "obb": "yolo11n-obb.yaml",
    "classify": "yolo11n-cls.yaml",
}
COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220)}


def yolo_backend() -> BackendSpec:
    return load_backend(str(YOLO_DIR))


def yolo_module(name: str) -> ModuleType:
    """A module of the backend package (``kinds``, ``dataset``…), imported the way the server does."""
    spec = yolo_backend()
    return importlib.import_module(f"{spec.cls.__module__.rsplit('.', 1)[0]}.{name}")


def build_model(path: Path, kind: str, names: Sequence[str], *, confident: bool = False) -> Path:
    """A random-weight model of ``kind`` with these class names, saved at ``path``."""
    from ultralytics import YOLO
    from ultralytics.nn import tasks

    classes = {
        "detect": tasks.DetectionModel,
        "segment": tasks.SegmentationModel,
        "pose": tasks.PoseModel,
        "obb": tasks.OBBModel,
        "classify": tasks.ClassificationModel,
    }
    yolo = YOLO(YAMLS[kind])
    args, task = yolo.model.args, yolo.task
    yolo.model = classes[kind](YAMLS[kind], nc=len(names), verbose=False)
    yolo.model.args, yolo.model.task = args, task
    yolo.model.names = dict(enumerate(names))
    if confident and kind != "classify":
        for branch in yolo.model.model[-1].cv3:
            branch[-1].bias.data.fill_(3.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    yolo.save(path)
    return path


def yolo_env(tmp_path: Path, models: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """Environment for a YOLO server under test: models under MODEL_ROOT, media under tmp_path."""
    env = {
        "MODEL_ROOT": str(tmp_path / "weights"),
        "MEDIA_LOCAL_ROOTS": str(tmp_path / "media"),
        "YOLO_CONFIG_DIR": os.environ["YOLO_CONFIG_DIR"],
        "YOLO_PRELOAD": "none",
    }
    for kind, name in (models or {}).items():
        env[f"YOLO_MODEL_{kind.upper()}"] = name
    env.update(extra)
    return env


def png_bytes(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def data_uri(image: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


@dataclass(frozen=True)
class Shape:
    label: str
    box: tuple[int, int, int, int]  # x, y, w, h in pixels


def shapes_image(rng: random.Random, size: tuple[int, int] = (160, 160)) -> tuple[Image.Image, list[Shape]]:
    """A grey image with one or two filled squares, red or blue, that do not overlap."""
    width, height = size
    image = Image.new("RGB", size, (128, 128, 128))
    draw = ImageDraw.Draw(image)
    shapes: list[Shape] = []
    for _ in range(rng.choice((1, 2))):
        for _attempt in range(20):
            side = rng.randint(width // 5, width // 3)
            x, y = rng.randint(0, width - side - 1), rng.randint(0, height - side - 1)
            if all(x + side < s.box[0] or s.box[0] + s.box[2] < x or y + side < s.box[1] or s.box[1] + s.box[3] < y
                   for s in shapes):
                label = rng.choice(sorted(COLOURS))
                draw.rectangle((x, y, x + side - 1, y + side - 1), fill=COLOURS[label])
                shapes.append(Shape(label, (x, y, side, side)))
                break
    return image, shapes


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two (x, y, w, h) boxes."""
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    inter = max(0.0, min(ax2, bx2) - max(a[0], b[0])) * max(0.0, min(ay2, by2) - max(a[1], b[1]))
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def mean_best_iou(regions: list[dict], shapes: list[Shape], size: tuple[int, int]) -> float:
    """For each true shape, the IoU of the best predicted rectangle with its label (0 if none), averaged."""
    width, height = size
    boxes = [
        (r["value"]["rectanglelabels"][0],
         (r["value"]["x"] * width / 100, r["value"]["y"] * height / 100,
          r["value"]["width"] * width / 100, r["value"]["height"] * height / 100))
        for r in regions if r["type"] == "rectanglelabels"
    ]  # fmt: skip
    scores = [max((iou(s.box, box) for label, box in boxes if label == s.label), default=0.0) for s in shapes]
    return float(np.mean(scores)) if scores else 0.0


def box_value(shape: Shape, size: tuple[int, int]) -> dict[str, float]:
    """A shape's box as Label Studio percentages."""
    x, y, w, h = shape.box
    return {"x": x * 100 / size[0], "y": y * 100 / size[1], "width": w * 100 / size[0], "height": h * 100 / size[1]}


def rectangles(shapes: list[Shape], size: tuple[int, int], from_name: str = "box") -> list[dict]:
    """Annotation results: one rectanglelabels region per shape, as the editor saves them."""
    return [
        {"id": f"{from_name}{i}", "from_name": from_name, "to_name": "image", "type": "rectanglelabels",
         "original_width": size[0], "original_height": size[1], "image_rotation": 0, "origin": "manual",
         "value": {**box_value(s, size), "rotation": 0, "rectanglelabels": [s.label]}}
        for i, s in enumerate(shapes)
    ]  # fmt: skip
