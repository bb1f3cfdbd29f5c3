"""Whether two Ultralytics results for the same image give the same answers, within a stated tolerance.

An exported model (OpenVINO in bf16 on a CPU with AMX, ONNX Runtime in f32) computes the same network with
other rounding, so its boxes and scores move a little; what must not change is what a user would see.
Instances are matched one to one (same class, every box corner within :attr:`Tolerance.pixels` of the model's
input, confidence within :attr:`Tolerance.score`); every instance clearly above the confidence floor on either
side must find its match. An instance within :attr:`Tolerance.score` of the floor (or of the weakest kept one
when ``max_det`` cut the list) may be missing on the other side: rounding decides on which side of the cut it
falls. Matched instances also compare their masks (IoU at least :attr:`Tolerance.mask_iou`), their keypoints
(position and confidence, for points visible on either side) or, for classifiers, every class probability and
the top class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ultralytics.engine.results import Results

MAX_DET = 300  # Ultralytics' default max_det, which the backend predicts with
VISIBLE = 0.5  # a keypoint's confidence from which its position is compared (the default model_point_threshold)


@dataclass(frozen=True)
class Tolerance:
    #: box corners and keypoints, in pixels of the model's input (the letterboxed image, ``imgsz`` on its longer
    #: side): 3.4 px on a 1080-px photo at 640. Measured on trained YOLOv8 weights, OpenVINO's bf16 moves
    #: corners by up to 2.4 px on such photos (scores by 0.006).
    pixels: float = 2.0
    score: float = 0.01  # confidences and class probabilities
    mask_iou: float = 0.9  # a matched instance's masks


TOLERANCE = Tolerance()


def disagreement(
    reference: Results, candidate: Results, floor: float, imgsz: int, tol: Tolerance = TOLERANCE
) -> str | None:
    """What differs between two results for one image predicted at confidence ``floor`` and size ``imgsz``;
    None when they agree."""
    pixels = tol.pixels * max(reference.orig_shape[:2]) / imgsz  # the tolerance in pixels of the image
    if reference.probs is not None:
        return _choices(reference.probs.data.cpu().numpy(), candidate.probs.data.cpu().numpy(), tol)
    ref, cand = _instances(reference), _instances(candidate)
    pairs: list[tuple[int, int]] = []
    taken: set[int] = set()
    for i in np.argsort(-ref.conf):
        options = [j for j in range(len(cand.conf)) if j not in taken and cand.cls[j] == ref.cls[i]
                   and abs(cand.conf[j] - ref.conf[i]) <= tol.score and _distance(ref, i, cand, j) <= pixels]
        if options:
            j = min(options, key=lambda j: _distance(ref, i, cand, j))
            taken.add(j)
            pairs.append((int(i), j))
    matched_ref, matched_cand = {i for i, _ in pairs}, {j for _, j in pairs}
    for side, found, matched, other in (("reference", ref, matched_ref, cand), ("candidate", cand, matched_cand, ref)):
        cut = max(floor, float(other.conf.min())) if len(other.conf) >= MAX_DET else floor  # where the other side stops
        for i in range(len(found.conf)):
            if i not in matched and found.conf[i] > cut + tol.score:
                return (f"{side} instance of class {int(found.cls[i])} at {found.conf[i]:.3f} "
                        f"{np.round(found.corners[i], 1).tolist()} has no match")  # fmt: skip
    for i, j in pairs:
        problem = _details(reference, candidate, i, j, tol, pixels)
        if problem:
            return problem
    return None


@dataclass(frozen=True)
class _Found:
    cls: np.ndarray
    conf: np.ndarray
    corners: np.ndarray  # (n, k, 2): a box's 2 corners, a rotated box's 4


def _instances(result: Results) -> _Found:
    if result.obb is not None:
        found, corners = result.obb, result.obb.xyxyxyxy.double().cpu().numpy()
    else:
        found = result.boxes
        corners = found.xyxy.double().cpu().numpy().reshape(-1, 2, 2)
    return _Found(found.cls.cpu().numpy().astype(int), found.conf.double().cpu().numpy(), corners)


def _distance(a: _Found, i: int, b: _Found, j: int) -> float:
    """The largest corner offset, in pixels; a rotated box's corners in any cyclic order (its angle may turn by
    a quarter when its sides are nearly equal)."""
    if a.corners.shape[1] == 2:
        return float(np.abs(a.corners[i] - b.corners[j]).max())
    return min(float(np.abs(a.corners[i] - np.roll(b.corners[j], k, axis=0)).max()) for k in range(4))


def _details(reference: Results, candidate: Results, i: int, j: int, tol: Tolerance, pixels: float) -> str | None:
    if reference.masks is not None:
        a, b = reference.masks.data[i].cpu().numpy() > 0.5, candidate.masks.data[j].cpu().numpy() > 0.5
        union = np.logical_or(a, b).sum()
        overlap = np.logical_and(a, b).sum() / union if union else 1.0
        if overlap < tol.mask_iou:
            return f"the masks of instance {i} overlap by IoU {overlap:.3f} (< {tol.mask_iou})"
    if reference.keypoints is not None:
        xy_a, xy_b = reference.keypoints.xy[i].double().cpu().numpy(), candidate.keypoints.xy[j].double().cpu().numpy()
        conf_a = _keypoint_conf(reference, i, len(xy_a))
        conf_b = _keypoint_conf(candidate, j, len(xy_b))
        if np.abs(conf_a - conf_b).max(initial=0.0) > tol.score:
            return f"the keypoint confidences of instance {i} differ by {np.abs(conf_a - conf_b).max():.3f}"
        visible = (conf_a >= VISIBLE) | (conf_b >= VISIBLE)
        offset = float(np.abs(xy_a - xy_b)[visible].max(initial=0.0))
        if offset > pixels:
            return f"the keypoints of instance {i} move by {offset:.2f} px"
    return None


def _keypoint_conf(result: Results, i: int, count: int) -> np.ndarray:
    conf = result.keypoints.conf
    return np.ones(count) if conf is None else conf[i].double().cpu().numpy()


def _choices(ref: np.ndarray, cand: np.ndarray, tol: Tolerance) -> str | None:
    worst = float(np.abs(ref - cand).max(initial=0.0))
    if worst > tol.score:
        return f"class probabilities differ by {worst:.4f}"
    top = int(ref.argmax())
    if int(cand.argmax()) != top and ref[top] - ref[int(cand.argmax())] > tol.score:
        return f"the top class differs ({top} vs {int(cand.argmax())})"
    return None

