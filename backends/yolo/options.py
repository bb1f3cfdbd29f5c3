"""The YOLO backend's options, declared once, and read into the typed view the modules share (:mod:`.config`).

One model per task kind, named by an environment variable; a relative name is looked up under
``MODEL_ROOT`` (default ``$MODEL_DIR/weights``), where Ultralytics also downloads official weights on
first use when the machine has internet.
"""

from __future__ import annotations

from pathlib import Path

from labelzoo.images import MAX_MEGAPIXELS, max_pixels_setting
from labelzoo.options import Option, Options
from labelzoo.settings import Settings

from .config import YoloOptions
from .kinds import KINDS

#: the kinds' names (Ultralytics task names), as YOLO_PRELOAD and the YOLO_MODEL_<KIND> variables spell them
KIND_NAMES = tuple(kind.name for kind in KINDS)


def _model_env(name: str) -> str:
    return f"YOLO_MODEL_{name.upper()}"


def _preload(kinds: tuple[str, ...]) -> tuple[str, ...]:
    if kinds == ("all",):
        return KIND_NAMES
    if kinds == ("none",):
        return ()
    if "all" in kinds or "none" in kinds:
        raise ValueError(f"must be kinds ({', '.join(KIND_NAMES)}), all or none")
    return kinds


OPTIONS = Options(
    *(Option(_model_env(kind.name), str, kind.default_model, doc=f"model for {kind.controls_doc}") for kind in KINDS),
    Option("YOLO_BATCH", int, None, low=1, default_doc="1 on the CPU, 8 on a GPU",
           doc="images per forward pass (bounds memory). On a CPU a batch is no faster per image, and one image "
           "per pass gives each exactly what Ultralytics gives it alone; a GPU needs batches to stay busy"),
    Option("YOLO_IMGSZ", int, None, low=1, default_doc="the model's",
           doc="the image size the model predicts at, and the size fine-tuned versions train at; unset = predicting "
           "at the size the model was trained at (640 for official weights) and training at the data's size (the "
           "median longer side, rounded up to a multiple of 32, 64 to 640)"),
    Option("YOLO_PRELOAD", str, ("detect",), many=True, choices=(*KIND_NAMES, "all", "none"), check=_preload,
           doc="kinds whose model is loaded at start (`detect,segment`, `all`, `none`); the others load on first use"),
    Option("YOLO_ENGINE", str, "auto", choices=("auto", "torch", "openvino", "onnx"),
           doc="what runs the models. `auto`: on a CPU, each model is exported in the background to OpenVINO (else "
           "ONNX Runtime, if installed) and serves from it once it gives PyTorch's answers on a few images (see "
           "Engines); on a GPU, PyTorch. `torch`, `onnx`: that engine; `openvino`: OpenVINO, at the CPU's bf16 if "
           "that gives PyTorch's answers, else in f32 (a missing package stops the load)"),
    Option("YOLO_EPOCHS", int, None, low=1, default_doc="from the data", doc="fixed number of training epochs"),
    Option("YOLO_VIDEO_TRAIN_FRAMES", int, 40, low=1,
           doc="frames of each annotated video a `VideoRectangle` or `TimelineLabels` trains on: spread evenly over "
           "the frames its tracks are on, or its ranges label"),
    MAX_MEGAPIXELS,
    Option("YOLO_CONFIG_DIR", Path, default_doc="`$MODEL_DIR/ultralytics`", doc="Ultralytics' settings folder"),
)


def read_options(settings: Settings) -> YoloOptions:
    """The declared options, read and checked, as the backend's modules use them."""
    values = OPTIONS.read(settings.env)
    return YoloOptions(
        models={name: getattr(values, _model_env(name).lower()) for name in KIND_NAMES},
        model_root=settings.model_root or settings.model_dir / "weights",
        device=settings.device,
        batch=values.yolo_batch,
        imgsz=values.yolo_imgsz,
        preload=values.yolo_preload,
        engine=values.yolo_engine,
        engine_cache=settings.model_dir / "engines",
        epochs=values.yolo_epochs,
        video_train_frames=values.yolo_video_train_frames,
        max_pixels=max_pixels_setting(settings),
        config_dir=values.yolo_config_dir or settings.model_dir / "ultralytics",
    )
