"""Helpers for the YOLO backend's tests and benchmark: local models (no downloads), synthetic images.

Models are built from Ultralytics' model YAMLs with random weights and saved as ``.pt`` files, so the
backend loads them through its normal path-loading code. A random detector finds nothing at any useful
threshold; ``confident=True`` sets the class biases of the head high, so every anchor fires and the
whole pipeline (NMS, masks, keypoints, conversion) runs on real model output, though every image gets the
same boxes at one confidence. ``calibrate_on=images`` instead makes the random network respond to those
images, with confidences spread out (:func:`calibrate`): what the fidelity test and the benchmark compare.

:func:`differences` compares one served prediction with Ultralytics' results for the same image, as the
project's rule asks (what ``/predict`` returns equals the library called directly with the same settings).
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
from typing import Any

# Ultralytics reads these when first imported; the backend sets the same defaults from its Settings.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_VERBOSE", "false")
os.environ.setdefault("YOLO_CONFIG_DIR", str(Path(tempfile.gettempdir()) / "labelzoo-yolo-tests"))

import importlib

import numpy as np
from PIL import Image, ImageDraw

from labelzoo import Settings
from labelzoo.labelconfig import parse_label_config
from labelzoo.registry import BackendSpec, load_backend
from labelzoo.results import rle_to_mask
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


def ultralytics_assets() -> Path:
    """The folder of the photos Ultralytics ships (``bus.jpg``, ``zidane.jpg``)."""
    from ultralytics.utils import ASSETS

    return Path(ASSETS)


def yolo_module(name: str) -> ModuleType:
    """A module of the backend package (``kinds``, ``dataset``…), imported the way the server does."""
    spec = yolo_backend()
    return importlib.import_module(f"{spec.cls.__module__.rsplit('.', 1)[0]}.{name}")


def build_model(
    path: Path,
    kind: str,
    names: Sequence[str],
    *,
    confident: bool = False,
    calibrate_on: Sequence[Path] = (),
    imgsz: int = 320,
) -> Path:
    """A random-weight model of ``kind`` with these class names, saved at ``path``.

    With ``calibrate_on`` (image files) the weights come from a fixed seed and the model is calibrated on
    those images at the inference size ``imgsz`` (:func:`calibrate`), so that what it finds depends on the
    image; ``confident`` is then moot.
    """
    import torch
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
    with torch.random.fork_rng(enabled=bool(calibrate_on)):  # a calibrated model is the same on every run
        if calibrate_on:
            torch.manual_seed(0)
        yolo.model = classes[kind](YAMLS[kind], nc=len(names), verbose=False)
    yolo.model.args, yolo.model.task = args, task
    yolo.model.names = dict(enumerate(names))
    if calibrate_on:
        calibrate(yolo.model, calibrate_on, imgsz)
    elif confident and kind != "classify":
        for branch in yolo.model.model[-1].cv3:
            branch[-1].bias.data.fill_(3.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    yolo.save(path)
    return path


#: calibrated class logits, mean and spread: about 5% of the anchors pass a confidence of 0.5
CALIBRATED_LOGITS = (-2.5, 1.5)


def calibrate(model: Any, images: Sequence[Path], side: int = 320) -> None:
    """Make a random-weight Ultralytics model respond to its input, with spread-out confidences.

    Freshly initialised, the network's activations fade layer by layer: every image gets the same boxes
    (a grid of anchors), all at one confidence, so served and direct results could agree without telling
    images or instances apart. Here the BatchNorm statistics are measured on ``images`` (letterboxed to
    ``side``), so that every layer passes on a signal of unit scale; then the class logits are rescaled to
    :data:`CALIBRATED_LOGITS` on the same images, and masks made solid (:func:`_solid_masks`).
    """
    import torch
    from ultralytics.data.augment import LetterBox

    letterbox = LetterBox((side, side), auto=False)  # what the model sees when it predicts, padding and all
    pixels = np.stack([letterbox(image=np.asarray(Image.open(p).convert("RGB"))) for p in images])
    batch = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average: the statistics of exactly this batch
    model.train()
    with torch.no_grad():
        model(batch)
    model.eval()
    for norm in norms:
        norm.momentum = 0.03  # Ultralytics' own
    head = model.model[-1]
    if hasattr(head, "cv3"):  # a box-finding head (detect, segment, pose, obb): the class branches
        _rescale_logits([branch[-1] for branch in head.cv3], model, batch, *CALIBRATED_LOGITS)
    else:  # a classifier: its one linear layer
        _rescale_logits([head.linear], model, batch, 0.0, CALIBRATED_LOGITS[1])
    if hasattr(head, "proto"):
        _solid_masks(head, model, batch)


#: calibrated instance masks: their logits' mean, in spreads of what the random prototypes add (few holes)
MASK_OFFSET = 10.0


def _solid_masks(head: Any, model: Any, batch: Any) -> None:
    """Make a segmentation head's masks solid, speckled with holes, rather than noise.

    An instance's mask is its coefficients times the prototype masks, cropped to its box. Random prototypes
    and coefficients make that a noise pattern of hundreds of specks, which no instance mask looks like. Here
    the first prototype becomes a constant, and each instance's first coefficient a constant weight on it,
    :data:`MASK_OFFSET` times the spread of what the other prototypes add.
    """
    import torch

    proto = head.proto.cv3  # Ultralytics' Conv: a convolution, a BatchNorm, SiLU
    proto.conv.weight.data[0] = 0.0
    proto.bn.weight.data[0], proto.bn.bias.data[0] = 0.0, 1.0  # the first prototype is SiLU(1) everywhere
    captured: dict[str, Any] = {}
    hooks = [head.proto.register_forward_hook(lambda _m, _i, out: captured.__setitem__("protos", out)),
             *(branch[-1].register_forward_hook(lambda m, _i, out: captured.__setitem__(str(id(m)), out))
               for branch in head.cv4)]  # fmt: skip
    with torch.no_grad():
        model(batch)
    for hook in hooks:
        hook.remove()
    protos = captured.pop("protos")[:, 1:].flatten(2)  # (B, K - 1, pixels)
    constant = float(torch.nn.functional.silu(torch.tensor(1.0)))
    for branch in head.cv4:  # one per feature level, whose coefficients differ in scale
        coefficients = captured[str(id(branch[-1]))][:, 1:].flatten(2)  # (B, K - 1, anchors)
        spread = float((coefficients.transpose(1, 2) @ protos).std())
        branch[-1].weight.data[0] = 0.0
        branch[-1].bias.data[0] = MASK_OFFSET * spread / constant


def _rescale_logits(layers: list[Any], model: Any, batch: Any, mean: float, spread: float) -> None:
    """Scale the last layer of each class branch so that its outputs on ``batch`` have this mean and spread."""
    import torch

    outputs: dict[int, Any] = {}
    hooks = [layer.register_forward_hook(lambda m, _i, out: outputs.__setitem__(id(m), out)) for layer in layers]
    with torch.no_grad():
        model(batch)
    for hook in hooks:
        hook.remove()
    for layer in layers:
        out = outputs[id(layer)]
        gain = spread / float(out.std())
        layer.weight.data *= gain
        layer.bias.data = (layer.bias.data - float(out.mean())) * gain + mean


def yolo_env(tmp_path: Path, models: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """Environment for a YOLO server under test: models under MODEL_ROOT, media under tmp_path."""
    env = {
        "MODEL_ROOT": str(tmp_path / "weights"),
        "MEDIA_LOCAL_ROOTS": str(tmp_path / "media"),
        "YOLO_CONFIG_DIR": os.environ["YOLO_CONFIG_DIR"],
        "YOLO_PRELOAD": "none",
        "YOLO_ENGINE": "torch",  # served exactly as Ultralytics' PyTorch predicts; test_yolo_engines tries the others
    }
    for kind, name in (models or {}).items():
        env[f"YOLO_MODEL_{kind.upper()}"] = name
    env.update(extra)
    return env


def training_plan(tmp_path: Path, config: str, control: str) -> tuple[Any, Any, Settings]:
    """The training plan of ``control`` in the label config, the parsed config and the settings (media under
    ``tmp_path / "media"``, which is made)."""
    (tmp_path / "media").mkdir()
    settings = Settings.from_env(yolo_env(tmp_path, MODEL_DIR=str(tmp_path / "models")))
    parsed = parse_label_config(config)
    options = yolo_module("options").read_options(settings)
    (plan,) = [p for p in yolo_module("plans").training_plans(parsed, options, settings) if p.control.name == control]
    return plan, parsed, settings


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


# --- served vs direct --------------------------------------------------------------------------------------
# What Label Studio gets from /predict, compared with what Ultralytics' own Results say for the same image.
# The label config's labels are the model's class names (and, for keypoints, a <Label> per model index).

#: geometry in percent: Ultralytics' float32 pixel coordinates carry ~1e-4 px of rounding at 1,000 px
PERCENT_TOL = 1e-5
#: corners of rotated boxes, in pixels: float32 trigonometry on both sides
PIXEL_TOL = 1e-3
#: confidences are float32 values carried through JSON as float64: equal but for rounding
SCORE_TOL = 1e-7


@dataclass(frozen=True)
class Control:
    """One served control, as the comparison reads it: its name, its kind, and the settings that decide what
    is shown. ``kind`` is detect, obb, brush, polygon, pose or classify."""

    name: str
    kind: str
    threshold: float
    multiple: bool = False  # classify: choice="multiple"
    keypoints: tuple[tuple[int, str], ...] = ()  # pose: (model keypoint index, label), the config's model_index
    point_threshold: float = 0.5  # pose: model_point_threshold
    boxes: str = ""  # pose: the RectangleLabels control that gets each instance's box (kinds/pose.py)


@dataclass(frozen=True, eq=False)
class Instance:
    """One decision as Label Studio would show it: its labels, its score and its shape (kind-specific)."""

    labels: tuple[str, ...]
    score: float
    shape: Any = None

    def describe(self) -> str:
        return f"{'/'.join(self.labels)} {self.score:.6f} {_summary(self.shape)}"[:200]


def _summary(shape: Any) -> str:
    if isinstance(shape, np.ndarray):
        return f"mask of {int(shape.sum())} px" if shape.dtype == np.bool_ else str(np.round(shape, 2).tolist())
    if isinstance(shape, tuple):
        return "(" + ", ".join(map(_summary, shape)) + ")"
    return repr(round(shape, 4) if isinstance(shape, float) else shape)


@dataclass(frozen=True)
class Decisions:
    """What one control shows for one image according to the direct results, and the best candidate below
    the threshold (the near miss, known when the results were asked below the threshold)."""

    instances: list[Instance]
    near_miss: float = 0.0


def image_size_of(result: Any) -> tuple[int, int]:
    """The natural (width, height) of a direct result's image."""
    height, width = result.orig_shape[:2]
    return int(width), int(height)


def direct_decisions(control: Control, result: Any) -> Decisions:
    """What ``control`` should show for ``result`` (Ultralytics called directly): the instances at or above
    its threshold, converted the way Label Studio reads regions, and the near miss."""
    if control.kind == "classify":
        return _direct_choices(control, result)
    size = image_size_of(result)
    found = result.obb if control.kind == "obb" else result.boxes
    instances, near_miss = [], 0.0
    for i in range(len(found) if found is not None else 0):
        conf = float(found.conf[i])
        if conf < control.threshold:
            near_miss = max(near_miss, conf)
            continue
        labels = (result.names[int(found.cls[i])],)
        shape = _direct_shape(control, result, i, size)
        if shape is not None:
            instances.append(Instance(labels, conf, shape))
    return Decisions(instances, near_miss)


def _direct_shape(control: Control, result: Any, i: int, size: tuple[int, int]) -> Any:
    """Instance ``i`` of a direct result in the form its served region is compared in; None when the backend
    documents that it shows nothing for it (an empty mask)."""
    if control.kind == "detect":
        return _box_percent(result.boxes.xyxy[i], size)
    if control.kind == "obb":
        return result.obb.xyxyxyxy[i].double().cpu().numpy()
    if control.kind in ("brush", "polygon"):
        mask = natural_mask(result, i)
        if not mask.any():
            return None
        return mask if control.kind == "brush" else (largest_part(mask), model_pixel(result))
    width, height = size  # pose
    xy, conf = result.keypoints.xy[i].double().cpu().numpy(), result.keypoints.conf[i].double().cpu().numpy()
    points = {label: (xy[k, 0] * 100 / width, xy[k, 1] * 100 / height, conf[k])
              for k, label in control.keypoints if conf[k] >= control.point_threshold}  # fmt: skip
    return _box_percent(result.boxes.xyxy[i], size), points


def _direct_choices(control: Control, result: Any) -> Decisions:
    """Single choice: ``probs.top1`` at ``probs.top1conf``; ``choice="multiple"``: every class at or above the
    threshold, most likely first, scored by the least likely of them."""
    probs = result.probs
    if control.multiple:
        ranked = sorted(enumerate(probs.data.tolist()), key=lambda item: -item[1])
    else:
        ranked = [(int(probs.top1), float(probs.top1conf))]
    chosen = [(result.names[cls], p) for cls, p in ranked if p >= control.threshold]
    near_miss = max((p for _, p in ranked if p < control.threshold), default=0.0)
    if not chosen:
        return Decisions([], near_miss)
    return Decisions([Instance(tuple(name for name, _ in chosen), min(p for _, p in chosen))], near_miss)


def natural_mask(result: Any, i: int) -> np.ndarray:
    """Instance ``i``'s mask at the natural image size, with Ultralytics' own ``scale_masks`` (> 0.5)."""
    from ultralytics.utils.ops import scale_masks

    width, height = image_size_of(result)
    return scale_masks(result.masks.data[i][None, None].float(), (height, width))[0, 0].cpu().numpy() > 0.5


def largest_part(mask: np.ndarray) -> np.ndarray:
    """The 8-connected part of a mask with the largest outline, holes filled: what a polygon can show of it."""
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    part = np.zeros(mask.shape, np.uint8)
    cv2.drawContours(part, [max(contours, key=cv2.contourArea)], -1, 1, thickness=cv2.FILLED)
    return part.astype(bool)


def model_pixel(result: Any) -> float:
    """How many natural pixels one pixel of the model's input (and of its masks) spans."""
    height, width = result.masks.data.shape[1:]
    natural_w, natural_h = image_size_of(result)
    return 1.0 / min(height / natural_h, width / natural_w)


def outline_distance(mask: np.ndarray, part: np.ndarray) -> float:
    """How far from the outline of ``part`` the farthest pixel lies where ``mask`` and ``part`` differ, in pixels."""
    import cv2

    padded = np.pad(part, 1).astype(np.uint8)  # the image's border is outside the part
    inside = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    outside = cv2.distanceTransform(1 - padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    return float(np.where(part, inside, outside)[mask != part].max(initial=0.0))


def _box_percent(xyxy: Any, size: tuple[int, int]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    width, height = size
    return x1 * 100 / width, y1 * 100 / height, (x2 - x1) * 100 / width, (y2 - y1) * 100 / height


def served_instances(control: Control, regions: list[dict], size: tuple[int, int]) -> list[Instance]:
    """The decisions ``control`` shows in one served result (the regions of one task)."""
    if control.kind == "pose":
        return _served_poses(control, regions, size)
    own = [r for r in regions if r["from_name"] == control.name]
    if control.kind == "classify":
        return [Instance(tuple(r["value"]["choices"]), r["score"]) for r in own]
    return [Instance(tuple(r["value"][r["type"]]), r["score"], _served_shape(control, r["value"], size)) for r in own]


def _served_shape(control: Control, value: dict, size: tuple[int, int]) -> Any:
    width, height = size
    if control.kind == "detect":
        return value["x"], value["y"], value["width"], value["height"], value["rotation"]
    if control.kind == "obb":
        return _rotated_corners(value, size)
    if control.kind == "brush":
        return rle_to_mask(value["rle"], width, height)
    return polygon_mask(value["points"], size)


def _rotated_corners(value: dict, size: tuple[int, int]) -> np.ndarray:
    """The 4 corners, in pixels, of a rectangle as Label Studio draws it: (x, y) is its top-left corner, and
    it is turned ``rotation`` degrees clockwise on screen around that corner."""
    width, height = size
    left, top = value["x"] * width / 100, value["y"] * height / 100
    w, h = value["width"] * width / 100, value["height"] * height / 100
    theta = np.deg2rad(value["rotation"])
    turn = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    return np.array([[0, 0], [w, 0], [w, h], [0, h]]) @ turn + (left, top)


def polygon_mask(points: list[list[float]], size: tuple[int, int]) -> np.ndarray:
    """A served polygon filled in as Label Studio reads it (a pixel is inside when its centre is)."""
    import cv2

    width, height = size
    pixels = np.asarray(points, np.float64) * (width, height) / 100 - 0.5  # pixel centres on integers
    canvas = np.zeros((height, width), np.uint8)
    cv2.fillPoly(canvas, [np.round(pixels * 16).astype(np.int32)], 1, shift=4)
    return canvas.astype(bool)


def _served_poses(control: Control, regions: list[dict], size: tuple[int, int]) -> list[Instance]:
    """One instance per box of the pose's box control, with the keypoints whose parentID is that box; keypoints
    with no such box form one more instance, which nothing direct matches."""
    boxes = {r["id"]: r for r in regions if r["from_name"] == control.boxes}
    points: dict[str | None, dict[str, tuple[float, float, float]]] = {key: {} for key in boxes}
    for r in regions:
        if r["from_name"] == control.name:
            parent = r.get("parentID") if r.get("parentID") in boxes else None
            points.setdefault(parent, {})[r["value"]["keypointlabels"][0]] = (r["value"]["x"], r["value"]["y"],
                                                                              r["score"])  # fmt: skip
    instances = [Instance(tuple(box["value"]["rectanglelabels"]), box["score"],
                          (_served_shape(Control(control.boxes, "detect", 0), box["value"], size), points[key]))
                 for key, box in boxes.items()]  # fmt: skip
    if points.get(None):
        instances.append(Instance(("no box",), float("nan"), (None, points[None])))
    return instances


def _close(a: Sequence[float], b: Sequence[float], tol: float) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def label_studio_can_hold(corners: np.ndarray, size: tuple[int, int]) -> bool:
    """Whether some spelling of a rotated box (any corner as the anchor, its two edges from there as width and
    height) has x, y, width and height at most 100 percent: what Label Studio's prediction check accepts
    (``label_studio_sdk`` ``RectangleValue``)."""
    width, height = size
    for k in range(4):
        anchor, after, before = corners[k], corners[(k + 1) % 4], corners[(k - 1) % 4]
        for along, across in ((after, before), (before, after)):
            if (anchor[0] * 100 / width <= 100 and anchor[1] * 100 / height <= 100
                    and np.linalg.norm(along - anchor) * 100 / width <= 100
                    and np.linalg.norm(across - anchor) * 100 / height <= 100):
                return True
    return False


def _agree(kind: str, served: Instance, direct: Instance, size: tuple[int, int]) -> bool:
    """Whether a served decision is this direct one: same labels and score, and the same shape."""
    if served.labels != direct.labels or not abs(served.score - direct.score) <= SCORE_TOL:
        return False
    if kind == "detect":
        *box, rotation = served.shape
        return rotation == 0 and _close(box, direct.shape, PERCENT_TOL)
    if kind == "obb":
        if not label_studio_can_hold(direct.shape, size):
            return True  # capped at 100 by design (labelzoo.results.regions._rotated_percent): same labels and score
        distances = np.linalg.norm(served.shape[:, None] - direct.shape[None], axis=2)
        nearest = distances.argmin(axis=1)
        return len(set(nearest)) == 4 and bool(distances[range(4), nearest].max() <= PIXEL_TOL)
    if kind == "brush":
        return bool(np.array_equal(served.shape, direct.shape))
    if kind == "polygon":  # the backend's tracing (kinds/segment.py) follows the part to a model pixel
        part, pixel = direct.shape
        return outline_distance(served.shape, part) <= pixel + 1  # + 1: the natural pixel grid's own rounding
    if kind == "pose":
        (box, points), (direct_box, direct_points) = served.shape, direct.shape
        return (box is not None and box[4] == 0 and _close(box[:4], direct_box, PERCENT_TOL)
                and points.keys() == direct_points.keys()
                and all(_close(points[k][:2], direct_points[k][:2], PERCENT_TOL)
                        and abs(points[k][2] - direct_points[k][2]) <= SCORE_TOL for k in points))  # fmt: skip
    return True  # classify: the labels are the choices


def expected_task_score(decisions: Sequence[Decisions]) -> float:
    """The task score as ``backends/yolo/outputs.py`` documents it: the mean confidence of everything shown;
    with nothing shown, the near miss."""
    scores = [instance.score for found in decisions for instance in found.instances]
    return sum(scores) / len(scores) if scores else max((found.near_miss for found in decisions), default=0.0)


def differences(prediction: dict, direct: Sequence[tuple[Control, Any]]) -> list[str]:
    """How one served prediction (a task's ``result`` and ``score``) differs from what Ultralytics called directly
    gives for the same image: ``direct`` pairs each served control with its model's result. Empty when they agree:
    every region is a direct decision and every direct decision is a region, with the same labels, score and
    shape, at the natural image size, and the task score is :func:`expected_task_score`."""
    regions = prediction["result"]
    size = image_size_of(direct[0][1])
    found: list[str] = []
    names = {c.name for c, _ in direct} | {c.boxes for c, _ in direct if c.boxes}
    found += [f"region of an unexpected control {r['from_name']!r}" for r in regions if r["from_name"] not in names]
    found += [f"{r['from_name']}: region for a {r['original_width']}x{r['original_height']} image, not {size}"
              for r in regions if "original_width" in r and (r["original_width"], r["original_height"]) != size]
    decisions = [direct_decisions(control, result) for control, result in direct]
    for (control, _), expected in zip(direct, decisions, strict=True):
        found += _unpaired(control, served_instances(control, regions, size), expected.instances, size)
    score = expected_task_score(decisions)
    if not abs(prediction["score"] - score) <= SCORE_TOL:
        found.append(f"task score {prediction['score']} but {score} from the direct results")
    return found


def _unpaired(control: Control, served: list[Instance], direct: list[Instance], size: tuple[int, int]) -> list[str]:
    """Pair each served decision with a direct one it agrees with; what is left over, either side."""
    left = list(direct)
    extra = []
    for instance in served:
        match = next((j for j, d in enumerate(left) if _agree(control.kind, instance, d, size)), None)
        if match is None:
            extra.append(instance)
        else:
            del left[match]
    return ([f"{control.name}: served {i.describe()} is not in the direct results" for i in extra]
            + [f"{control.name}: direct {i.describe()} was not served" for i in left])  # fmt: skip


# --- served vs served, across engines ------------------------------------------------------------------------
# An exported engine (OpenVINO, ONNX Runtime) computes the same network with other rounding: its answers must be
# the PyTorch-served ones within the backend's tolerance (backends/yolo/agreement.py), not exactly.

#: the backend's tolerance for an export: box sides in pixels of the model's input, scores, instance masks' IoU
ENGINE_PIXELS, ENGINE_SCORE, ENGINE_MASK_IOU = 2.0, 0.01, 0.9


def engine_differences(reference: dict, candidate: dict, imgsz: int) -> list[str]:
    """How a prediction served by an exported engine differs from the PyTorch-served one for the same task,
    predicted at ``imgsz``: every region must have its counterpart (same control and labels, box sides within
    :data:`ENGINE_PIXELS` at the model's input size, score within :data:`ENGINE_SCORE`, brush mask IoU at least
    :data:`ENGINE_MASK_IOU`), and the task scores agree."""
    left = list(candidate["result"])
    found = []
    for region in reference["result"]:
        match = next((j for j, other in enumerate(left) if _same_region(region, other, imgsz)), None)
        if match is None:
            found.append(f"{region['from_name']}: {region['type']} at {region.get('score')} has no counterpart")
        else:
            del left[match]
    found += [f"{r['from_name']}: extra {r['type']} at {r.get('score')}" for r in left]
    if abs((reference["score"] or 0.0) - (candidate["score"] or 0.0)) > ENGINE_SCORE:
        found.append(f"task score {candidate['score']} but {reference['score']} served by PyTorch")
    return found


def _same_region(a: dict, b: dict, imgsz: int) -> bool:
    if (a["from_name"], a["type"]) != (b["from_name"], b["type"]) or abs(a["score"] - b["score"]) > ENGINE_SCORE:
        return False
    va, vb = a["value"], b["value"]
    if va[a["type"]] != vb[b["type"]]:
        return False
    if "original_width" not in a:  # an image class: label and score are all there is
        return True
    width, height = a["original_width"], a["original_height"]
    if a["type"] == "brushlabels":
        ma, mb = rle_to_mask(va["rle"], width, height), rle_to_mask(vb["rle"], width, height)
        union = np.logical_or(ma, mb).sum()
        return bool(not union or np.logical_and(ma, mb).sum() / union >= ENGINE_MASK_IOU)
    pixels = ENGINE_PIXELS * max(width, height) / imgsz
    if va.get("rotation"):  # a rotated box: its corners, in pixels of the image
        return bool(np.abs(_corners(va, width, height) - _corners(vb, width, height)).max() <= pixels)
    scale = {"x": width, "width": width, "y": height, "height": height}
    return all(abs(va[k] - vb[k]) * scale[k] / 100 <= pixels for k in scale if k in va)


def _corners(value: dict, width: int, height: int) -> np.ndarray:
    """The four corners of a (rotated) rectangle region, in pixels: Label Studio turns it about its top-left."""
    x, y = value["x"] * width / 100, value["y"] * height / 100
    w, h = value["width"] * width / 100, value["height"] * height / 100
    turn = np.deg2rad(value.get("rotation", 0.0))
    cos, sin = np.cos(turn), np.sin(turn)
    offsets = np.array([[0, 0], [w, 0], [w, h], [0, h]])
    return np.array([x, y]) + offsets @ np.array([[cos, sin], [-sin, cos]])
