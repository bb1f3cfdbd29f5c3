"""The YOLO backend's settings, read once from :class:`~labelzoo.settings.Settings` (never from os.environ).

One model per task kind, named by an environment variable; a relative name is looked up under
``MODEL_ROOT`` (default ``$MODEL_DIR/weights``), where Ultralytics also downloads official weights on
first use when the machine has internet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from labelzoo.images import max_pixels_setting
from labelzoo.settings import Settings

#: Ultralytics task names, which are also the kinds of work a control asks for
KINDS = ("detect", "obb", "segment", "pose", "classify")

DEFAULT_MODELS: Mapping[str, str] = {
    "detect": "yolo11n.pt",
    "obb": "yolo11n-obb.pt",
    "segment": "yolo11n-seg.pt",
    "pose": "yolo11n-pose.pt",
    "classify": "yolo11n-cls.pt",
}
MODEL_ENV = {kind: f"YOLO_MODEL_{kind.upper()}" for kind in KINDS}


def _positive_int(settings: Settings, name: str, default: int | None) -> int | None:
    raw = settings.option(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
    if value < 1:
        raise ValueError(f"{name}={raw!r} must be at least 1")
    return value


def resolve_device(requested: str) -> str:
    """``DEVICE=auto`` → ``cuda:0`` when PyTorch sees a GPU, else ``cpu``; anything else is kept."""
    if requested.strip().lower() != "auto":
        return requested.strip()
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class YoloOptions:
    models: Mapping[str, str]  # YOLO_MODEL_DETECT, _OBB, _SEGMENT, _POSE, _CLASSIFY
    model_root: Path  # MODEL_ROOT, default $MODEL_DIR/weights
    device: str  # DEVICE: auto, cpu, cuda, cuda:1… (load() resolves auto)
    batch: int  # YOLO_BATCH: images per forward pass (bounds memory)
    imgsz: int | None  # YOLO_IMGSZ: inference size; None = the size the model was trained at
    preload: tuple[str, ...]  # YOLO_PRELOAD: kinds whose model load() loads up front (default detect; all, none)
    epochs: int | None  # YOLO_EPOCHS: fixed epoch count for training; None = chosen from the data size
    max_pixels: int  # IMAGE_MAX_MEGAPIXELS: larger images are refused (decompression bombs)
    config_dir: Path  # YOLO_CONFIG_DIR: Ultralytics' settings and fonts, default $MODEL_DIR/ultralytics

    def resolved(self) -> YoloOptions:
        """These options with ``DEVICE=auto`` resolved (imports torch, so not done at start-up)."""
        return replace(self, device=resolve_device(self.device))

    @property
    def half(self) -> bool:
        """fp16 inference on CUDA (twice the throughput, same boxes); fp32 elsewhere."""
        return self.device.startswith("cuda") or self.device.isdigit()

    @classmethod
    def from_settings(cls, settings: Settings) -> YoloOptions:
        models = {
            kind: settings.option(MODEL_ENV[kind], DEFAULT_MODELS[kind]) or DEFAULT_MODELS[kind] for kind in KINDS
        }
        preload_raw = settings.option("YOLO_PRELOAD", "detect") or ""
        preload = tuple(k.strip().lower() for k in preload_raw.split(",") if k.strip())
        if preload == ("all",):
            preload = KINDS
        elif preload == ("none",):
            preload = ()
        unknown = [k for k in preload if k not in KINDS]
        if unknown:
            raise ValueError(
                f"YOLO_PRELOAD={preload_raw!r} names unknown kinds {unknown}; use {', '.join(KINDS)}, all or none"
            )
        config_dir = settings.option("YOLO_CONFIG_DIR")
        return cls(
            models=models,
            model_root=settings.model_root or settings.model_dir / "weights",
            device=settings.device,
            batch=_positive_int(settings, "YOLO_BATCH", 8) or 8,
            imgsz=_positive_int(settings, "YOLO_IMGSZ", None),
            preload=preload,
            epochs=_positive_int(settings, "YOLO_EPOCHS", None),
            max_pixels=max_pixels_setting(settings),
            config_dir=Path(config_dir) if config_dir else settings.model_dir / "ultralytics",
        )
