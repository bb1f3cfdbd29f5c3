"""Pixel-space geometry for image regions: oriented boxes, masks traced into polygons, simplification.

Image coordinates have the origin at the top-left and y pointing down, so a positive angle turns
clockwise on screen, as Label Studio's ``rotation`` does. Coordinates are continuous: pixel (i, j) —
column i, row j — covers [i, i + 1) × [j, j + 1) and has its centre at (i + 0.5, j + 0.5). That is how
Label Studio draws a region's percent values (x % of the width is x · W / 100 on a canvas of W pixels)
and what the result builders write, so a point means the same spot on the image everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labelzoo.results.errors import ResultError


def rotated_box_corners(center: Sequence[float], size: Sequence[float], angle_deg: float) -> np.ndarray:
    """Corners (4, 2) of a centre-based box of ``size`` (w, h) turned ``angle_deg`` clockwise on screen.

    Order: the corners that were top-left, top-right, bottom-right and bottom-left before rotating.
    """
    cx, cy = (float(v) for v in center)
    w, h = (float(v) for v in size)
    theta = np.deg2rad(float(angle_deg))
    cos, sin = np.cos(theta), np.sin(theta)
    local = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    return local @ np.array([[cos, sin], [-sin, cos]]) + (cx, cy)


_COLLINEAR_PX = 1e-9  # a tolerance of 0 still drops points that rounding left a hair off a straight run


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """The (x, y, width, height) pixel box that covers every set pixel of an (H, W) mask, on pixel edges (pixel
    (i, j) covers [i, i + 1) × [j, j + 1)); None for an empty mask."""
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return None
    top, bottom = np.flatnonzero(rows)[[0, -1]]
    left, right = np.flatnonzero(cols)[[0, -1]]
    return float(left), float(top), float(right + 1 - left), float(bottom + 1 - top)


def mask_to_polygons(
    mask: np.ndarray,
    *,
    largest_only: bool = False,
    min_area_px: float = 0.0,
    tolerance_px: float = 0.0,
    scale: float | Sequence[float] = 1.0,
) -> list[np.ndarray]:
    """The outer outlines of a bool/integer (H, W) mask as (N, 2) float pixel polygons, largest first.

    The convention: vertices lie on the **centres of the mask's boundary pixels**, (i + 0.5, j + 0.5) in
    the continuous coordinates of the module docstring. Filled back the way Label Studio reads those
    coordinates — a pixel is inside when its centre is inside the polygon or on its edge, which is
    ``cv2.fillPoly`` of the points shifted by -0.5 — an unsimplified outline covers exactly the pixels of
    its connected part (holes filled; a polygon has none). Ultralytics' ``polygon2mask`` truncates the
    points to integers, which comes to the same pixels. Each 8-connected part gives one outline.

    ``largest_only`` keeps the part with the largest outline area only. ``min_area_px`` drops outlines
    enclosing less area; ``tolerance_px`` simplifies each outline (:func:`simplify_polygon`); outlines
    left with fewer than 3 points (parts a pixel thin) are dropped. Both are in output pixels.

    ``scale`` (one factor, or (sx, sy)) maps a mask at the model's resolution onto the natural image: a
    mask pixel covers [i·sx, (i + 1)·sx) there and its vertex is the centre of that area, (i + 0.5)·sx,
    so the outline keeps its place half a mask pixel inside the mask's edge. Undo any letterbox padding
    before (crop the mask to the image content). Needs OpenCV (``opencv-python-headless``).
    """
    try:
        import cv2
    except ImportError as exc:  # the core does not depend on OpenCV; the image backends that trace masks do
        raise ResultError("mask_to_polygons needs OpenCV: pip install opencv-python-headless") from exc

    arr = np.asarray(mask)
    if arr.ndim != 2 or arr.size == 0:
        raise ResultError(f"a mask must be a non-empty 2-D (height, width) array, got shape {arr.shape}")
    if arr.dtype != np.bool_ and not np.issubdtype(arr.dtype, np.integer):
        raise ResultError(f"a mask must be bool or integer, got {arr.dtype}; threshold it first (mask > 0.5)")
    factors = np.broadcast_to(np.asarray(scale, dtype=np.float64), (2,))
    if not (np.isfinite(factors).all() and (factors > 0).all()):
        raise ResultError(f"scale must be one or two finite numbers > 0, got {scale!r}")
    for name, number in (("min_area_px", min_area_px), ("tolerance_px", tolerance_px)):
        if not (np.isfinite(number) and number >= 0):
            raise ResultError(f"{name} must be a finite number >= 0, got {number!r}")
    contours, _ = cv2.findContours(
        np.ascontiguousarray(arr != 0, dtype=np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    outlines = [(contour.reshape(-1, 2).astype(np.float64) + 0.5) * factors for contour in contours]
    ranked = sorted(((_area(points), points) for points in outlines), key=lambda pair: -pair[0])
    if largest_only:
        ranked = ranked[:1]
    polygons = []
    for area, points in ranked:
        if area < min_area_px:
            continue
        simplified = simplify_polygon(points, max(tolerance_px, _COLLINEAR_PX))
        if len(simplified) >= 3:
            polygons.append(simplified)
    return polygons


def _area(points: np.ndarray) -> float:
    """The area a closed (N, 2) ring encloses (shoelace formula)."""
    x, y = points[:, 0], points[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


def simplify_polygon(
    points: Sequence[Sequence[float]] | np.ndarray, tolerance_px: float, *, closed: bool = True
) -> np.ndarray:
    """Douglas–Peucker simplification: drop points closer than ``tolerance_px`` to the kept outline.

    ``points`` is an (N, 2) sequence of pixel coordinates (e.g. an OpenCV contour reshaped to
    (N, 2)); the result is a new float (M, 2) array, M <= N, keeping the first point. A closed ring
    (the default) may repeat its first point at the end or not; the result never repeats it. The ring
    is split at the point farthest from the first one, so both halves are simplified as open chains
    and the shape's extremes survive. A ring thinner than the tolerance can come back with fewer than
    3 points: skip such shapes.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ResultError(f"polygon points must have shape (N, 2), got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ResultError("polygon points must be finite numbers (found NaN or infinity)")
    if not (np.isfinite(tolerance_px) and tolerance_px >= 0):
        raise ResultError(f"tolerance_px must be a finite number >= 0, got {tolerance_px!r}")
    if closed and len(pts) > 1 and np.array_equal(pts[0], pts[-1]):
        pts = pts[:-1]
    n = len(pts)
    if n <= 2:
        return pts.copy()
    if not closed:
        keep = np.zeros(n, bool)
        _douglas_peucker(pts, 0, n - 1, float(tolerance_px), keep)
        return pts[keep]
    farthest = int(np.argmax(np.hypot(*(pts - pts[0]).T)))
    if farthest == 0:  # every point coincides with the first
        return pts[:1].copy()
    ring = np.concatenate((pts, pts[:1]))
    keep = np.zeros(n + 1, bool)
    _douglas_peucker(ring, 0, farthest, float(tolerance_px), keep)
    _douglas_peucker(ring, farthest, n, float(tolerance_px), keep)
    return pts[keep[:n]]


def _douglas_peucker(pts: np.ndarray, first: int, last: int, tolerance: float, keep: np.ndarray) -> None:
    """Mark in ``keep`` the points of ``pts[first:last + 1]`` that Douglas–Peucker retains."""
    keep[first] = keep[last] = True
    stack = [(first, last)]
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            continue
        distances = _segment_distances(pts[i + 1 : j], pts[i], pts[j])
        k = int(np.argmax(distances))
        if distances[k] > tolerance:
            split = i + 1 + k
            keep[split] = True
            stack.append((i, split))
            stack.append((split, j))


def _segment_distances(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of each point to the segment a–b (to a itself when a == b)."""
    ab = b - a
    length2 = float(ab @ ab)
    if length2 == 0.0:
        return np.hypot(*(points - a).T)
    t = np.clip((points - a) @ ab / length2, 0.0, 1.0)
    return np.hypot(*(points - a - t[:, None] * ab).T)
