"""Loading Ultralytics models: where weights live, and Ultralytics set up for a server.

Ultralytics reads a few environment variables when it is first imported. :func:`prepare_ultralytics`
sets them (:func:`labelzoo.ultralytics_env.quiet_ultralytics`), *only where the operator has not set them*:
``YOLO_OFFLINE=1`` (no connectivity probes, update checks or telemetry; weight downloads still work),
``YOLO_AUTOINSTALL=false`` (never pip-install at run time), ``YOLO_VERBOSE=false`` (no per-image lines
or progress bars; training progress is reported through the job instead) and ``YOLO_CONFIG_DIR`` (a
writable folder). It also puts a font there, so training never downloads Arial.ttf.
"""

from __future__ import annotations

import shutil
import threading
from collections import deque
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelzoo.acceleration import EngineSwitch
from labelzoo.errors import LabelConfigError, MediaError, RequestError
from labelzoo.ultralytics_env import quiet_ultralytics

from .config import YoloOptions

if TYPE_CHECKING:
    import numpy as np
    from ultralytics.engine.results import Results

#: keypoint order of the COCO pose models (yolo11n-pose.pt), whose checkpoints carry no names
COCO_KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
)  # fmt: skip
#: images with detections kept per model, to check an export on what the backend really sees
RECENT_IMAGES = 3

_prepared = threading.Lock()


def prepare_ultralytics(options: YoloOptions) -> None:
    """Ultralytics' environment defaults (unless set), its folders under MODEL_DIR and MODEL_ROOT, telemetry and
    experiment loggers off, a local font. Call it before Ultralytics is imported."""
    with _prepared:
        quiet_ultralytics(options.config_dir)
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
    """A loaded Ultralytics model. Calls are serialised: an Ultralytics predictor is not thread-safe.

    ``yolo`` is always the PyTorch model: names, keypoints and training read it, and exports are checked
    against it. Predictions go through :attr:`engine`'s model, PyTorch until an export replaces it
    (:mod:`.engines`). The last few images on which it found something are kept for that check.
    """

    def __init__(self, yolo: Any, source: str) -> None:
        self.yolo = yolo
        self.source = source
        self.engine = "torch"
        self.switch: EngineSwitch[Any] | None = None  # the background export to a faster engine, if any
        self.recent: deque[np.ndarray] = deque(maxlen=RECENT_IMAGES)
        self._runner = yolo
        self._lock = threading.Lock()

    @property
    def task(self) -> str:
        return str(self.yolo.task)

    @property
    def imgsz(self) -> int:
        """The size the model was trained at (Ultralytics' 640 when the checkpoint does not say)."""
        size = self.yolo.overrides.get("imgsz") or 640
        return int(max(size) if isinstance(size, list | tuple) else size)

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

    def use(self, engine: str, runner: Any) -> None:
        """Predict with ``runner`` (an Ultralytics model of the same weights on ``engine``) from now on."""
        with self._lock:
            self._runner, self.engine = runner, engine

    def predict(
        self,
        images: list[np.ndarray],
        *,
        conf: float,
        options: YoloOptions,
        iou: float | None = None,
        runner: Any = None,
    ) -> list[Results]:
        """Results for BGR arrays, one forward pass for the whole list (the caller sizes the chunks);
        ``iou`` is the NMS overlap (None: Ultralytics' default); ``runner``: another engine's model to ask
        instead of the serving one (the export check)."""
        serving = runner is None
        runner = runner or self._runner
        extra: dict[str, Any] = {"imgsz": options.imgsz or self.imgsz}  # an export does not know its training size
        if iou is not None:
            extra["iou"] = iou
        if runner is self.yolo and options.half:
            extra["quantize"] = 16  # fp16 (Ultralytics 8.4 replaced half=True with quantize)
        device = options.device if runner is self.yolo else "cpu"  # exports run on the CPU
        with self._lock:
            results = list(runner.predict(images, conf=conf, device=device, batch=len(images), verbose=False, **extra))
        if serving:
            found = [image for image, result in zip(images, results, strict=True) if _found(result)]
            self.recent.extend(found)
            if found and self.switch is not None:
                self.switch.retry()  # an export check that had nothing to compare can now run
        return results


    def frames(self, source: str, *, conf: float, options: YoloOptions, iou: float | None = None,
               tracker: str | None = None) -> Iterator[Results]:
        """A result per frame of a video file, as it is decoded: Ultralytics' tracking with ``tracker``, else its
        prediction. A model of its own per video, on the PyTorch weights: a tracker lives in the predictor, and
        a long video must not hold the shared model."""
        from ultralytics import YOLO

        extra: dict[str, Any] = {"imgsz": options.imgsz or self.imgsz}
        if iou is not None:
            extra["iou"] = iou
        runner = YOLO(self.source, task=self.task)
        mode = partial(runner.track, tracker=tracker, persist=False) if tracker else runner.predict
        try:
            yield from mode(source=source, stream=True, conf=conf, device=options.device, verbose=False, **extra)
        except (OSError, ValueError) as exc:
            raise MediaError(f"cannot read the frames of {Path(source).name}: {type(exc).__name__}: {exc}") from exc


def _found(result: Results) -> bool:
    """Whether a result holds something to compare: an instance, or class probabilities."""
    found = result.obb if result.obb is not None else result.boxes
    return result.probs is not None or (found is not None and len(found) > 0)


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
        raise RequestError(f"cannot load YOLO model {path}{hint}: {type(exc).__name__}: {exc}",
                           status=500, code="model_load_failed") from exc
