"""Loading Ultralytics models: where weights live, and one shared copy per process.

Ultralytics reads a few environment variables when it is first imported. :func:`prepare_ultralytics`
sets them from the backend's options, *only where the operator has not set them*:
``YOLO_OFFLINE=1`` (no connectivity probes, update checks or telemetry; weight downloads still work),
``YOLO_AUTOINSTALL=false`` (never pip-install at run time), ``YOLO_VERBOSE=false`` (no per-image lines
or progress bars; training progress is reported through the job instead) and ``YOLO_CONFIG_DIR`` (a
writable folder). It also puts a font there, so training never downloads Arial.ttf.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelzoo.caching import LruCache
from labelzoo.errors import LabelConfigError, LabelzooError

from .options import YoloOptions

if TYPE_CHECKING:
    import numpy as np
    from ultralytics.engine.results import Results

#: keypoint order of the COCO pose models (yolo11n-pose.pt), whose checkpoints carry no names
COCO_KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
)  # fmt: skip

_prepared = threading.Lock()


def prepare_ultralytics(options: YoloOptions) -> None:
    """Ultralytics' environment defaults (unless set), its folders under MODEL_DIR and MODEL_ROOT, telemetry and
    experiment loggers off, a local font. Call it before Ultralytics is imported."""
    values = {
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "false",
        "YOLO_VERBOSE": "false",
        "YOLO_CONFIG_DIR": str(options.config_dir),
    }
    with _prepared:
        for name, value in values.items():
            os.environ.setdefault(name, value)
        from ultralytics.utils import SETTINGS, USER_CONFIG_DIR

        # Ultralytics' own folders default to the working directory (read-only in the Docker image); its AMP
        # check on CUDA downloads a model into weights_dir. Experiment loggers (MLflow, W&B…) that happen to be
        # installed would otherwise record every training job.
        wanted: dict[str, Any] = {
            "sync": False,
            "weights_dir": str(options.model_root),
            "runs_dir": str(options.config_dir / "runs"),
            "datasets_dir": str(options.config_dir / "datasets"),
            **dict.fromkeys(("clearml", "comet", "dvc", "mlflow", "raytune", "tensorboard", "wandb"), False),
        }
        changes = {key: value for key, value in wanted.items() if SETTINGS.get(key) != value}
        if changes:
            SETTINGS.update(changes)
        _install_font(Path(USER_CONFIG_DIR))


def _install_font(config_dir: Path) -> None:
    """Training plots want Arial.ttf in Ultralytics' config dir and download it when missing."""
    import matplotlib

    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        target = config_dir / name
        if not target.exists() and source.exists():
            try:
                shutil.copyfile(source, target)
            except OSError:
                return  # a read-only config dir: Ultralytics will try the download and log if offline


def resolve_model_path(name: str, root: Path, *, custom: bool) -> Path:
    """Where a model name points: absolute paths as they are, relative ones under ``MODEL_ROOT``.

    A ``model_path`` from a label config (``custom``) must stay inside ``MODEL_ROOT``: a ``.pt`` file is
    a pickle, so loading one is running code, and the label config is editable by every project admin.
    """
    path = Path(name).expanduser()
    if not custom:
        return path if path.is_absolute() else root / path
    resolved = (root / path).resolve()
    if path.is_absolute() or not resolved.is_relative_to(root.resolve()):
        raise LabelConfigError(
            f"model_path={name!r} must be a file name relative to MODEL_ROOT ({root}); put the weights there"
        )
    return resolved


class YoloModel:
    """A loaded Ultralytics model. Calls are serialised: an Ultralytics predictor is not thread-safe."""

    def __init__(self, yolo: Any, source: str) -> None:
        self.yolo = yolo
        self.source = source
        self._lock = threading.Lock()

    @property
    def task(self) -> str:
        return str(self.yolo.task)

    @property
    def names(self) -> dict[int, str]:
        return {int(k): str(v) for k, v in self.yolo.names.items()}

    @property
    def keypoint_names(self) -> list[str]:
        """Names of a pose model's keypoints (trained ones carry them; COCO's are known), else indices."""
        count = int((getattr(self.yolo.model, "kpt_shape", None) or [0])[0])
        stored = getattr(self.yolo.model, "kpt_names", None)
        if isinstance(stored, dict) and stored:
            first = next(iter(stored.values()))
            if len(first) == count:
                return [str(n) for n in first]
        if count == len(COCO_KEYPOINTS):
            return list(COCO_KEYPOINTS)
        return [str(i) for i in range(count)]

    def predict(
        self, images: list[np.ndarray], *, conf: float, options: YoloOptions, iou: float | None = None
    ) -> list[Results]:
        """Results for BGR arrays, one forward pass for the whole list (the caller sizes the chunks);
        ``iou`` is the NMS overlap (None: Ultralytics' default)."""
        extra: dict[str, Any] = {"imgsz": options.imgsz} if options.imgsz else {}
        if iou is not None:
            extra["iou"] = iou
        if options.half:
            extra["quantize"] = 16  # fp16 (Ultralytics 8.4 replaced half=True with quantize)
        with self._lock:
            return list(
                self.yolo.predict(images, conf=conf, device=options.device, batch=len(images), verbose=False, **extra)
            )


def load_model(path: Path) -> YoloModel:
    """Load weights; an official name missing locally is downloaded by Ultralytics into ``path``'s folder."""
    from ultralytics import YOLO

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return YoloModel(YOLO(str(path)), str(path))
    except Exception as exc:
        hint = (
            " (no such file; official names such as yolo11n.pt are downloaded there on first use, which needs "
            "internet: otherwise put the .pt file there)"
            if not path.exists()
            else ""
        )
        raise LabelzooError(f"cannot load YOLO model {path}{hint}: {type(exc).__name__}: {exc}") from exc


#: base and custom models by path, loaded once per process and shared by every served version
SHARED_MODELS: LruCache[Path, YoloModel] = LruCache()


def shared_model(path: Path) -> YoloModel:
    """The model at ``path`` from :data:`SHARED_MODELS`: one load per path, however many requests ask at once."""
    return SHARED_MODELS.get_or_compute(path, lambda: load_model(path))
