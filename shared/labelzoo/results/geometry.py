"""Pixel-space geometry helpers for building image regions: oriented boxes and polygon simplification.

Image coordinates have the origin at the top-left and y pointing down, so a positive angle turns
clockwise on screen, as Label Studio's ``rotation`` does.
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
