"""Score a model on the held-out images the way a user sees it: through the control's label mapping.

The current model and the newly trained one are measured with the same code on the same images, so a
base model whose classes map onto the config (``person`` → ``Person``) competes fairly with a
fine-tuned one, and a base model that maps nothing scores 0.

Metrics: detect, obb, segment and pose give COCO-style ``mAP50`` and ``mAP50-95`` (box IoU, rotated-box
probabilistic IoU, mask IoU, and keypoint OKS); classify gives ``top1`` accuracy. :data:`PRIMARY` names
the one that decides promotion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np
import torch

from labelzoo.images import open_array
from labelzoo.labelconfig import build_label_map

from .controls import ControlPlan, keypoint_map
from .dataset import Dataset, Sample
from .options import YoloOptions
from .weights import YoloModel

PRIMARY = {"detect": "mAP50-95", "obb": "mAP50-95", "segment": "mAP50-95", "pose": "mAP50-95", "classify": "top1"}
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
EVAL_CONF = 0.01  # low, as mAP integrates over every confidence level
MASK_SIDE = 320  # masks are compared at most this large (longer side), to bound memory


def evaluate(model: YoloModel, plan: ControlPlan, dataset: Dataset, options: YoloOptions) -> dict[str, float]:
    """The model's metrics on ``dataset.val``; higher is better for all of them."""
    names = model.names
    if plan.kind == "classify":
        return {"top1": _top1(model, plan, dataset, options)}
    labels = build_label_map(plan.control, names)
    index = {key: i for i, key in enumerate(dataset.classes)}
    class_of = {cls: index[labels.get(name)] for cls, name in names.items() if labels.get(name) in index}
    stats: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    targets: list[np.ndarray] = []
    for sample, result in _predictions(model, dataset.val, options):
        gt_cls, iou, pred_conf, pred_cls = _compare(plan, dataset, sample, result, class_of, model)
        targets.append(gt_cls)
        stats.append((_match(iou, gt_cls, pred_cls), pred_conf, pred_cls))
    return _map(stats, np.concatenate(targets) if targets else np.zeros(0))


def _predictions(model: YoloModel, samples: Sequence[Sample], options: YoloOptions):
    for start in range(0, len(samples), options.batch):
        chunk = samples[start : start + options.batch]
        images = [open_array(s.image, max_pixels=options.max_pixels, bgr=True) for s in chunk]
        yield from zip(chunk, model.predict(images, conf=EVAL_CONF, options=options), strict=True)


def _tensor(value: object) -> np.ndarray:
    return value.detach().float().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _rows(sample: Sample) -> list[np.ndarray]:
    return [np.array(line.split(), dtype=np.float64) for line in sample.lines]


def _compare(
    plan: ControlPlan, dataset: Dataset, sample: Sample, result: object, class_of: Mapping[int, int], model: YoloModel
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(target classes, IoU matrix targets × predictions, prediction confidences, prediction classes)."""
    width, height = sample.size
    scale = np.array([width, height], dtype=np.float64)
    rows = _rows(sample)
    found = result.obb if plan.kind == "obb" else result.boxes
    conf = _tensor(found.conf) if found is not None and len(found) else np.zeros(0)
    cls = _tensor(found.cls).astype(int) if len(conf) else np.zeros(0, int)
    if plan.kind == "pose":  # instances are compared class-agnostically; the keypoints are what is scored
        keep = np.ones(len(conf), bool)
        pred_cls, gt_cls = np.zeros(len(conf), int), np.zeros(len(rows), int)
    else:
        keep = np.array([c in class_of for c in cls], bool)
        pred_cls = np.array([class_of[c] for c in cls[keep]], int)
        gt_cls = np.array([int(r[0]) for r in rows], int)
    conf = conf[keep]
    if plan.kind == "detect":
        gt = np.array([_xyxy(r[1:5], scale) for r in rows]).reshape(-1, 4)
        pred = _tensor(found.xyxy)[keep] if len(keep) else np.zeros((0, 4))
        from ultralytics.utils.metrics import box_iou

        iou = box_iou(torch.tensor(gt), torch.tensor(pred)).numpy()
    elif plan.kind == "obb":
        from ultralytics.utils.metrics import batch_probiou
        from ultralytics.utils.ops import xyxyxyxy2xywhr

        corners = np.array([r[1:9].reshape(4, 2) * scale for r in rows]).reshape(-1, 4, 2)
        gt = xyxyxyxy2xywhr(corners) if len(corners) else np.zeros((0, 5))
        pred = _tensor(found.xywhr)[keep] if len(keep) else np.zeros((0, 5))
        iou = batch_probiou(torch.tensor(gt).float(), torch.tensor(pred).float()).numpy()
    elif plan.kind == "segment":
        iou = _mask_iou(rows, result, keep, (width, height))
    else:
        iou = _oks(rows, result, keep, dataset, plan, model, scale)
    return gt_cls, iou.reshape(len(gt_cls), len(pred_cls)), conf, pred_cls


def _xyxy(cxcywh: np.ndarray, scale: np.ndarray) -> np.ndarray:
    cx, cy, w, h = cxcywh
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]) * np.tile(scale, 2)


def _mask_iou(rows: list[np.ndarray], result: object, keep: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from ultralytics.utils.metrics import mask_iou

    from .convert import natural_mask

    factor = min(1.0, MASK_SIDE / max(size))
    small = (max(1, round(size[0] * factor)), max(1, round(size[1] * factor)))
    gt = np.zeros((len(rows), small[1] * small[0]), np.float32)
    for i, row in enumerate(rows):
        canvas = np.zeros((small[1], small[0]), np.uint8)
        points = np.round(row[1:].reshape(-1, 2) * np.array(small)).astype(np.int32)
        cv2.fillPoly(canvas, [points], 1)
        gt[i] = canvas.ravel()
    masks = _tensor(result.masks.data) if result.masks is not None and len(result.masks) else np.zeros((0, 1, 1))
    chosen = np.flatnonzero(keep)
    pred = np.zeros((len(chosen), small[1] * small[0]), np.float32)
    for j, i in enumerate(chosen):
        full = natural_mask(masks, int(i), size).astype(np.uint8)
        pred[j] = cv2.resize(full, small, interpolation=cv2.INTER_NEAREST).ravel()
    return mask_iou(torch.tensor(gt), torch.tensor(pred)).numpy()


def _oks(
    rows: list[np.ndarray],
    result: object,
    keep: np.ndarray,
    dataset: Dataset,
    plan: ControlPlan,
    model: YoloModel,
    scale: np.ndarray,
) -> np.ndarray:
    """Object keypoint similarity; predicted keypoints are re-indexed into the dataset's order by label."""
    from ultralytics.utils.metrics import OKS_SIGMA, kpt_iou

    count = len(dataset.keypoints)
    gt = np.array([r[5:].reshape(-1, 3)[:count] for r in rows]).reshape(-1, count, 3)
    gt[..., :2] *= scale
    area = np.array([r[3] * r[4] * scale[0] * scale[1] for r in rows])
    data = _tensor(result.keypoints.data)[keep] if result.keypoints is not None and len(keep) else np.zeros((0, 0, 3))
    pred = np.zeros((len(data), count, 3))
    points = keypoint_map(plan.control, model.keypoint_names)
    for i, key in points.items():
        if key in dataset.keypoints and i < data.shape[1]:
            pred[:, dataset.keypoints.index(key), : data.shape[2]] = data[:, i]
    sigma = OKS_SIGMA if count == len(OKS_SIGMA) else np.ones(count) / count
    return kpt_iou(torch.tensor(gt), torch.tensor(pred), torch.tensor(area * 0.53), list(sigma)).numpy()


def _match(iou: np.ndarray, gt_cls: np.ndarray, pred_cls: np.ndarray) -> np.ndarray:
    """(predictions × 10) true-positive flags: greedy one-to-one matching by IoU, same class, per threshold."""
    tp = np.zeros((len(pred_cls), len(IOU_THRESHOLDS)), bool)
    if not iou.size:
        return tp
    iou = iou * (gt_cls[:, None] == pred_cls[None, :])
    for t, threshold in enumerate(IOU_THRESHOLDS):
        gt_idx, pred_idx = np.nonzero(iou >= threshold)
        order = np.argsort(-iou[gt_idx, pred_idx], kind="stable")
        used_gt: set[int] = set()
        used_pred: set[int] = set()
        for g, p in zip(gt_idx[order], pred_idx[order], strict=True):
            if g not in used_gt and p not in used_pred:
                used_gt.add(int(g))
                used_pred.add(int(p))
                tp[p, t] = True
    return tp


def _map(stats: list[tuple[np.ndarray, np.ndarray, np.ndarray]], target_cls: np.ndarray) -> dict[str, float]:
    from ultralytics.utils.metrics import ap_per_class

    if not len(target_cls):
        return {"mAP50": 0.0, "mAP50-95": 0.0}
    tp = np.concatenate([s[0] for s in stats]) if stats else np.zeros((0, 10), bool)
    conf = np.concatenate([s[1] for s in stats]) if stats else np.zeros(0)
    pred_cls = np.concatenate([s[2] for s in stats]) if stats else np.zeros(0)
    if not len(tp):
        return {"mAP50": 0.0, "mAP50-95": 0.0}
    ap = ap_per_class(tp, conf, pred_cls, target_cls)[5]  # (classes with targets, 10); unpredicted ones are 0
    return {"mAP50": float(ap[:, 0].mean()), "mAP50-95": float(ap.mean())}


def _top1(model: YoloModel, plan: ControlPlan, dataset: Dataset, options: YoloOptions) -> float:
    labels = build_label_map(plan.control, model.names)
    correct = 0
    for sample, result in _predictions(model, dataset.val, options):
        by_label: dict[str, float] = {}
        for cls, p in enumerate(_tensor(result.probs.data)):
            label = labels.get(result.names[cls])
            if label is not None:
                by_label[label] = by_label.get(label, 0.0) + float(p)
        if by_label and max(by_label, key=by_label.__getitem__) == dataset.classes[sample.label]:
            correct += 1
    return correct / max(1, len(dataset.val))
