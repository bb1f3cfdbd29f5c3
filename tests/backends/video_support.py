"""A synthetic video of one red square moving across a grey frame, and a YOLOv8n trained here to find such
squares (Ultralytics' own training on 40 generated images, a few seconds on a CPU): what the tracking tests
follow, in ``tests/backends`` and end to end."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

SIDE, SQUARE, FRAMES, FPS = 160, 28, 30, 10.0  # frame side and square side in pixels, frames, frame rate


def square_frame(x: int, y: int, visible: bool = True) -> np.ndarray:
    frame = np.full((SIDE, SIDE, 3), 128, np.uint8)
    if visible:
        frame[y:y + SQUARE, x:x + SQUARE] = (30, 30, 220)  # BGR: red
    return frame


def path_of(frame: int) -> tuple[int, int]:
    """Where the square is on 1-based ``frame``: left to right, a little down."""
    return 6 + (frame - 1) * 4, 40 + (frame - 1)


def write_video(path: Path, hidden: range = range(0), frames: int = FRAMES) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (SIDE, SIDE))
    for frame in range(1, frames + 1):
        writer.write(square_frame(*path_of(frame), visible=frame not in hidden))
    writer.release()
    return path


def train_square_detector(root: Path) -> Path:
    """YOLOv8n trained for a few epochs on 40 images of one red square on grey; its weights file."""
    from PIL import Image
    from ultralytics import YOLO

    rng = random.Random(0)
    for split, count in (("train", 40), ("val", 8)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for i in range(count):
            x, y = rng.randrange(0, SIDE - SQUARE), rng.randrange(0, SIDE - SQUARE)
            Image.fromarray(square_frame(x, y)[:, :, ::-1]).save(root / split / "images" / f"{i}.png")
            cx, cy, w = (x + SQUARE / 2) / SIDE, (y + SQUARE / 2) / SIDE, SQUARE / SIDE
            (root / split / "labels" / f"{i}.txt").write_text(f"0 {cx} {cy} {w} {w}\n")
    (root / "data.yaml").write_text(f"path: {root}\ntrain: train/images\nval: val/images\nnames: {{0: square}}\n")
    model = YOLO("yolov8n.yaml")
    model.train(data=str(root / "data.yaml"), epochs=30, imgsz=SIDE, batch=4, nbs=4, mosaic=0, warmup_epochs=1,
                optimizer="AdamW", lr0=0.004, workers=0, plots=False, amp=False, seed=0, deterministic=True,
                project=str(root / "runs"), name="train", verbose=False, val=False, device="cpu")
    return Path(model.trainer.last)


def truth(frame: int) -> tuple[float, float, float, float]:
    """The square's box on ``frame`` in percent of the frame: x, y, width, height."""
    x, y = path_of(frame)
    return x / SIDE * 100, y / SIDE * 100, SQUARE / SIDE * 100, SQUARE / SIDE * 100


def iou(a: dict[str, float], b: tuple[float, float, float, float]) -> float:
    """IoU of a keyframe's box and an (x, y, width, height) box, both in percent."""
    ax, ay, aw, ah = a["x"], a["y"], a["width"], a["height"]
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


COLOURS = {"red": (30, 30, 220), "blue": (220, 60, 30)}  # BGR


def colour_frame(colour: str, shift: int = 0) -> np.ndarray:
    """A grey frame holding a large square of ``colour`` (moved by ``shift`` pixels)."""
    frame = np.full((SIDE, SIDE, 3), 128, np.uint8)
    frame[30 + shift:130 + shift, 30:130] = COLOURS[colour]
    return frame


def write_colour_video(path: Path, colours: list[str]) -> Path:
    """One frame per entry of ``colours``."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (SIDE, SIDE))
    for i, colour in enumerate(colours):
        writer.write(colour_frame(colour, shift=i % 7))
    writer.release()
    return path


def train_colour_classifier(root: Path) -> Path:
    """YOLOv8n-cls trained for a few epochs to tell red squares from blue ones; its weights file."""
    from PIL import Image
    from ultralytics import YOLO

    for split, count in (("train", 12), ("val", 4)):
        for colour in COLOURS:
            folder = root / split / colour
            folder.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(colour_frame(colour, shift=i % 20)[:, :, ::-1]).save(folder / f"{i}.png")
    model = YOLO("yolov8n-cls.yaml")
    model.train(data=str(root), epochs=15, imgsz=64, batch=8, nbs=8, optimizer="AdamW", lr0=0.004, workers=0,
                plots=False, amp=False, seed=0, deterministic=True, project=str(root / "runs"), name="train",
                verbose=False, val=False, device="cpu")
    return Path(model.trainer.last)
