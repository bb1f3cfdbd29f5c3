"""The typed view of the YOLO backend's options that its modules share (:func:`.options.read_options` makes it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from labelzoo.devices import resolve_device, use_fp16


@dataclass(frozen=True)
class YoloOptions:
    models: Mapping[str, str]  # YOLO_MODEL_DETECT, _OBB, _SEGMENT, _POSE, _CLASSIFY
    model_root: Path  # MODEL_ROOT, default $MODEL_DIR/weights
    device: str  # DEVICE: auto, cpu, cuda, cuda:1… (load() resolves auto)
    batch: int | None  # YOLO_BATCH: images per forward pass; None = by device (:attr:`chunk`)
    imgsz: int | None  # YOLO_IMGSZ: inference size; None = the size the model was trained at
    preload: tuple[str, ...]  # YOLO_PRELOAD: kinds whose model load() loads up front (default detect; all, none)
    engine: str  # YOLO_ENGINE: auto, torch, openvino or onnx (:mod:`.engines`)
    engine_cache: Path  # $MODEL_DIR/engines: exports of base weights, by content
    epochs: int | None  # YOLO_EPOCHS: fixed epoch count for training; None = chosen from the data size
    video_train_frames: int  # YOLO_VIDEO_TRAIN_FRAMES: frames of each annotated video a video control trains on
    max_pixels: int  # IMAGE_MAX_MEGAPIXELS: larger images are refused (decompression bombs)
    config_dir: Path  # YOLO_CONFIG_DIR: Ultralytics' settings and fonts, default $MODEL_DIR/ultralytics

    def resolved(self) -> YoloOptions:
        """These options with ``DEVICE`` resolved to a device that is there (imports torch, so not done at
        start-up); Ultralytics takes its name, e.g. ``"cuda"``, ``"cuda:1"`` or ``"cpu"``."""
        return replace(self, device=str(resolve_device(self.device)))

    @property
    def chunk(self) -> int:
        """Images per forward pass: ``YOLO_BATCH``, else 1 on the CPU and 8 on a GPU (read after :meth:`resolved`)."""
        if self.batch is not None:
            return self.batch
        return 1 if self.device == "cpu" else 8

    @property
    def half(self) -> bool:
        """fp16 inference (and AMP training) on CUDA; fp32 elsewhere."""
        return use_fp16(self.device)
