"""Which engine runs a model: PyTorch, or an OpenVINO or ONNX Runtime export of the same weights (``YOLO_ENGINE``).

``auto`` on a CPU exports each model once, in the background, to the fastest engine installed (OpenVINO,
else ONNX Runtime), while PyTorch keeps serving; each variant of it (:func:`variants`: OpenVINO at the CPU's
bf16, then in f32) is checked against PyTorch on the images the model found something on recently plus
Ultralytics' own photos (``bus.jpg``, ``zidane.jpg``), predicted at :data:`CHECK_CONF`, below any threshold
in use, so that weak detections are compared too (:mod:`.agreement` states the tolerance). The first variant
that agrees serves; when none does, PyTorch stays and ``/health`` says why. On a GPU, ``auto`` keeps PyTorch.
``openvino`` and ``onnx`` export at load and serve the first variant that agrees, else the last (the most
exact) unchecked; ``torch`` never exports.

Exports have dynamic input shapes: Ultralytics then letterboxes one image to its own aspect ratio (rounded up to
the stride), as it does for PyTorch; a fixed square export would pad every image to a square, which changes what
the network sees (measured on a calibrated detector: 151 boxes above 0.3 on ``zidane.jpg`` instead of PyTorch's
137, which the dynamic export gives). An export is cached by the weights' content: base weights under
``MODEL_DIR/engines``, a trained version's in its own folder (``engines/``).
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labelzoo.acceleration import EngineSwitch, Inconclusive, cached_build, content_key
from labelzoo.caching import LruCache
from labelzoo.errors import LabelzooError

from .agreement import disagreement
from .weights import YoloModel, load_model

if TYPE_CHECKING:
    from .config import YoloOptions

log = logging.getLogger("labelzoo.yolo")

FASTEST_FIRST = ("openvino", "onnx")
#: the packages each export needs, to build it and to run it
PACKAGES = {"openvino": ("openvino",), "onnx": ("onnx", "onnxruntime")}
#: what Ultralytics writes for each format, beside the copied ``model.pt``
OUTPUTS = {"openvino": "model_openvino_model", "onnx": "model.onnx"}
CHECK_CONF = 0.05
CHECK_PHOTOS = ("bus.jpg", "zidane.jpg")

#: every model served in this process, by weights file, for ``/health``
SERVED: weakref.WeakValueDictionary[str, YoloModel] = weakref.WeakValueDictionary()


def installed(engine: str) -> bool:
    return all(importlib.util.find_spec(name) is not None for name in PACKAGES.get(engine, ()))


def chosen_engine(setting: str, device: str) -> str:
    """The engine ``YOLO_ENGINE`` asks for on ``device``; a forced engine whose packages are missing is an error."""
    if setting == "auto":
        if device != "cpu":
            return "torch"
        return next((engine for engine in FASTEST_FIRST if installed(engine)), "torch")
    if setting != "torch" and not installed(setting):
        needed = " and ".join(PACKAGES[setting])
        raise LabelzooError(f"YOLO_ENGINE={setting} needs {needed} installed: pip install 'labelzoo[yolo]'")
    return setting


def serve(model: YoloModel, options: YoloOptions, cache: Path) -> YoloModel:
    """``model`` set up to predict with the engine ``YOLO_ENGINE`` asks for (exports cached under ``cache``)."""
    SERVED[model.source] = model
    engine = chosen_engine(options.engine, options.device)
    if engine == "torch":
        return model
    candidates = variants(model, engine, cache)
    if options.engine == "auto":
        model.switch = EngineSwitch(
            Path(model.source).name,
            "torch",
            candidates,
            verify=lambda candidate: check(model, candidate, options),
            switch=model.use,
        ).start()
        return model
    *checked, (last, prepare) = candidates  # forced: the first variant that agrees, else the most exact one
    for name, prepare_checked in checked:
        candidate = prepare_checked()
        try:
            agrees = check(model, candidate, options) is None
        except Inconclusive:
            agrees = False
        if agrees:
            model.use(name, candidate)
            return model
    model.use(last, prepare())
    return model


def variants(model: YoloModel, engine: str, cache: Path) -> list[tuple[str, Callable[[], Any]]]:
    """The ways to run ``engine``, fastest first: OpenVINO at its CPU's default precision (bf16 where the CPU
    has AMX or AVX-512 bf16 units), then in f32; ONNX Runtime in f32."""

    def load() -> Any:
        return load_export(export(model, engine, cache), model.task)

    if engine == "onnx":
        return [("onnx", load)]
    return [("openvino", load), ("openvino-f32", lambda: full_precision(export(model, engine, cache), model))]


def full_precision(path: Path, model: YoloModel) -> Any:
    """The OpenVINO export at ``path`` loaded to compute in f32.

    Ultralytics compiles it at the device's default precision (bf16 on AMX CPUs), which on some weights moves
    boxes by pixels, and has no setting for it; its OpenVINO backend keeps the compile function it recompiles
    with (``compile_model``), which set up by a first prediction is used again here with f32 asked for."""
    runner = load_export(path, model.task)
    blank = np.zeros((model.imgsz, model.imgsz, 3), np.uint8)
    runner.predict(blank, imgsz=model.imgsz, device="cpu", verbose=False)
    backend = runner.predictor.model.backend
    network = backend.ov.Core().read_model(str(next(path.glob("*.xml"))))
    backend.ov_compiled_model = backend.compile_model(
        network, config={"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    )
    return runner


def export(model: YoloModel, engine: str, cache: Path) -> Path:
    """The export of ``model``'s weights to ``engine``, made once per content of the weights."""
    folder = cache / f"{content_key(Path(model.source))}-{engine}"

    def build(scratch: Path) -> None:
        from ultralytics import YOLO

        weights = scratch / "model.pt"
        shutil.copyfile(model.source, weights)
        YOLO(str(weights)).export(format=engine, imgsz=model.imgsz, dynamic=True, device="cpu", verbose=False)
        weights.unlink()

    folder, built = cached_build(folder, build)
    if built:
        log.info("exported %s to %s in %s", model.source, engine, folder)
    return folder / OUTPUTS[engine]


def load_export(path: Path, task: str) -> Any:
    from ultralytics import YOLO

    return YOLO(str(path), task=task)  # an export's metadata names its task, but an ONNX file's may not


def check(model: YoloModel, candidate: Any, options: YoloOptions) -> str | None:
    """What the export gets wrong on the check images compared with PyTorch; None when it agrees on all of
    them and PyTorch found something on at least one. A check that compared nothing proves nothing: it raises
    :class:`Inconclusive`, and the model retries once it has found something on an image it served."""
    compared = 0
    for name, image in check_images(model):
        (reference,) = model.predict([image], conf=CHECK_CONF, options=options, runner=model.yolo)
        (answer,) = model.predict([image], conf=CHECK_CONF, options=options, runner=candidate)
        problem = disagreement(reference, answer, CHECK_CONF, options.imgsz or model.imgsz)
        if problem is not None:
            return f"on {name}: {problem}"
        found = reference.obb if reference.obb is not None else reference.boxes
        compared += reference.probs is not None or (found is not None and len(found) > 0)
    if not compared:
        raise Inconclusive("PyTorch found nothing on the check images; the check runs again on the first image "
                           "the model finds something on")
    return None


def check_images(model: YoloModel) -> list[tuple[str, np.ndarray]]:
    """The images the model found something on recently, then Ultralytics' photos (shipped in its wheel)."""
    import cv2
    from ultralytics.utils import ASSETS

    images = [(f"recent image {i + 1}", image) for i, image in enumerate(list(model.recent))]
    for name in CHECK_PHOTOS:
        image = cv2.imread(str(Path(ASSETS) / name))
        if image is not None:
            images.append((name, image))
    return images


def status(model: YoloModel) -> dict[str, Any]:
    """Which engine serves ``model`` and, in ``auto``, how its export fared."""
    if model.switch is not None:
        return model.switch.status()
    return {"engine": model.engine}


#: base and custom models by path (and YOLO_ENGINE), loaded once per process and shared by every served version
SHARED_MODELS: LruCache[tuple[Path, str], YoloModel] = LruCache()


def shared_model(path: Path, options: YoloOptions) -> YoloModel:
    """The model at ``path`` from :data:`SHARED_MODELS`: one load per path, however many requests ask at once,
    on the engine ``YOLO_ENGINE`` asks for (exports of base weights are cached under ``MODEL_DIR/engines``)."""
    key = (path, options.engine)
    return SHARED_MODELS.get_or_compute(key, lambda: serve(load_model(path), options, options.engine_cache))
