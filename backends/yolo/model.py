"""Ultralytics YOLO for Label Studio: boxes, rotated boxes, polygons, masks, keypoints and image classes.

Each control of the label config is filled by one *kind* (detect, obb, segment, pose, classify), whose
recipe in :mod:`.kinds` holds everything particular to it. Predicting: the controls are planned
(:mod:`.plans`), each gets its model (a project's fine-tuned one, else the configured one for its kind),
the task images stream in while the previous chunk runs through the model (the core's per-task media),
and the kind turns each result into regions. Learning: the kind turns each control's annotations into an
Ultralytics dataset (:mod:`.dataset`), the current model is fine-tuned (:mod:`.training`), and the new
weights replace it unless they score clearly worse on the held-out images by the kind's metric
(:mod:`.evaluate`, :func:`labelzoo.learning.decide`).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelzoo import Backend, FitContext, FitResult, PredictContext, Prediction, Target, Task, TrainingData
from labelzoo.devices import DEVICE_TYPES
from labelzoo.errors import LabelzooError
from labelzoo.finished import report_finished
from labelzoo.fitprogress import PartProgress
from labelzoo.images import array_decoder
from labelzoo.labelconfig import ControlTag, LabelConfig, LabelMap, ObjectTag, build_label_map
from labelzoo.learning import decide
from labelzoo.settings import Settings
from labelzoo.video import video_info

from .engines import SERVED, serve, shared_model
from .engines import status as engine_status
from .kind import ControlPlan, Converter
from .kinds import CONTROL_TAGS, DETECT, KINDS, kind_of
from .options import OPTIONS, read_options
from .outputs import ControlOutput, task_score
from .plans import DEFAULT_THRESHOLD, PLAN_ATTRIBUTES, plan_control, plan_controls, training_plans, unit_attr
from .video import (
    TRACKING_CONF,
    VIDEO_ATTRIBUTES,
    VIDEO_TAGS,
    collect_tracks,
    labels_control,
    timeline_regions,
    track_regions,
    tracker_file,
    video_labels,
)
from .weights import YoloModel, load_model, prepare_ultralytics, resolve_model_path

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("labelzoo.yolo")

PREFETCH = 4  # images downloaded and decoded ahead of the forward pass, at least
MANIFEST = "yolo.json"  # in a trained version's folder: which control uses which weights


@dataclass
class ModelRun:
    """One forward pass per image chunk: a model at one NMS overlap, and the controls that read its results."""

    model: YoloModel
    iou: float | None
    controls: list[tuple[ControlPlan, Converter]] = field(default_factory=list)


@dataclass(frozen=True)
class Trained:
    """A control's fine-tuned weights in this version."""

    kind: str  # the kind's name
    file: str
    model: YoloModel
    metrics: dict[str, float]


def prediction_of(outputs: list[ControlOutput] | LabelzooError) -> Prediction:
    """A task's prediction from its controls' outputs, or its error."""
    if isinstance(outputs, LabelzooError):
        return Prediction.failed(outputs.message)
    return Prediction(result=[r for out in outputs for r in out.regions], score=task_score(outputs))


class Yolo(Backend):
    targets = (*(Target(tag, "Image") for tag in CONTROL_TAGS), *(Target(tag, "Video") for tag in VIDEO_TAGS))
    batch_size = 64  # tasks per predict() call; images go through the model YOLO_BATCH at a time
    description = "Ultralytics YOLO: boxes, rotated boxes, polygons, masks, keypoints, image classes; learns"
    options = OPTIONS
    default_score_threshold = DEFAULT_THRESHOLD
    device_types = DEVICE_TYPES
    control_attributes = tuple(dict.fromkeys(PLAN_ATTRIBUTES + tuple(a for kind in KINDS for a in kind.attributes)
                                             + VIDEO_ATTRIBUTES))

    def __init__(self, settings: Settings, weights: Path | None = None) -> None:
        super().__init__(settings, weights)
        self.yolo = read_options(settings)  # the declared options, typed for the modules below
        self.trained: dict[str, Trained] = {}
        self._warned: set[tuple[str, str]] = set()
        self._warn_lock = threading.Lock()

    # lifecycle -------------------------------------------------------------------------------
    def load(self) -> None:
        self.yolo = self.yolo.resolved()
        prepare_ultralytics(self.yolo)
        if self.weights is not None:
            manifest = json.loads((self.weights / MANIFEST).read_text(encoding="utf-8"))
            for name, entry in manifest["controls"].items():
                model = serve(load_model(self.weights / entry["file"]), self.yolo, self.weights / "engines")
                self.trained[name] = Trained(entry["kind"], entry["file"], model, dict(entry.get("metrics", {})))
        for kind in self.yolo.preload:
            shared_model(resolve_model_path(self.yolo.models[kind], self.yolo.model_root, custom=False), self.yolo)

    def base_version(self) -> str:
        """The detection model's name, plus a hash of the other kinds' models when they differ from the defaults."""
        models = self.yolo.models
        stem = Path(models[DETECT.name]).stem
        others = [kind for kind in KINDS if kind is not DETECT]
        if all(models[kind.name] == kind.default_model for kind in others):
            return stem
        import hashlib

        configured = {kind.name: models[kind.name] for kind in others}
        digest = hashlib.sha1(json.dumps(configured, sort_keys=True).encode()).hexdigest()[:6]
        return f"{stem}-{digest}"

    def health(self) -> dict[str, Any]:
        """The engine of each model, and why a faster one was refused: for the base instance (``/health``) every
        model loaded in this process, base weights and trained versions alike; for a trained version's
        (``/versions``) its fine-tuned models."""
        models = list(SERVED.values()) if self.weights is None else [t.model for t in self.trained.values()]
        notices = [model.switch.reason for model in models if model.switch is not None and model.switch.reason]
        return {"engines": {model.source: engine_status(model) for model in models}, "notices": notices}

    # models ----------------------------------------------------------------------------------
    def model_for(self, plan: ControlPlan) -> YoloModel:
        """This version's fine-tuned model for the control, else the configured model of its kind."""
        trained = self.trained.get(plan.control.name)
        if trained is not None and trained.kind == plan.kind.name:
            return trained.model
        path = resolve_model_path(plan.model_name, self.yolo.model_root, custom=plan.custom)
        model = shared_model(path, self.yolo)
        plan.kind.check_model(model, plan.where)
        return model

    def model_labels(self, control: ControlTag, obj: ObjectTag) -> Sequence[str] | None:
        plan = plan_control(control, obj, self.yolo, self.settings)
        if plan is None or control.tag.lower() == "videorectangle":  # its labels are a <Labels> tag's
            return None
        return plan.kind.model_labels(control, self.model_for(plan))

    @classmethod
    def ignored_attribute(cls, control: ControlTag, name: str) -> str | None:
        if control.tag.lower() == "videorectangle":
            return None if name in PLAN_ATTRIBUTES + VIDEO_ATTRIBUTES else super().ignored_attribute(control, name)
        if control.tag.lower() == "timelinelabels":
            return None if name in PLAN_ATTRIBUTES else super().ignored_attribute(control, name)
        if name == "model_tracker":
            return "tracking follows objects through a video: it applies to <VideoRectangle> on a <Video>"
        kind = kind_of(control)
        if name in PLAN_ATTRIBUTES or name in kind.attributes:
            return None
        if name in cls.control_attributes:
            return f"it applies to other controls than <{control.tag}> ({kind.name} models)"
        return super().ignored_attribute(control, name)

    def _warn_once(self, key: tuple[str, str], message: str) -> None:
        with self._warn_lock:
            if key in self._warned:
                return
            self._warned.add(key)
        log.warning("%s", message)

    def _converter(self, plan: ControlPlan, model: YoloModel, config: LabelConfig) -> Converter:
        def warn(message: str) -> None:
            self._warn_once((plan.control.name, model.source), f"{plan.where}: {message}")

        return plan.kind.converter(plan, model, config, warn)

    # predict ---------------------------------------------------------------------------------
    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
        plans = plan_controls(ctx.config, self.yolo, self.settings)
        runs: dict[str, dict[tuple[int, float | None], ModelRun]] = {}
        for plan in plans:
            model = self.model_for(plan)  # one that cannot load fails every task with the reason, quickly
            per_object = runs.setdefault(plan.obj.name, {})
            per_object.setdefault((id(model), plan.iou), ModelRun(model, plan.iou)).controls.append(
                (plan, self._converter(plan, model, ctx.config))
            )
        outputs: list[list[ControlOutput] | LabelzooError] = [[] for _ in tasks]
        for object_name, models in runs.items():
            self._predict_object(tasks, ctx, ctx.config.object(object_name), list(models.values()), outputs)
        videos = ctx.pairs(VIDEO_TAGS, "Video")
        for n, (control, obj) in enumerate(videos, 1):
            # a video-only config: each task is reported done after its last control, so a /predict deadline
            # answers the videos tracked so far (labelzoo.finished)
            report = not runs and n == len(videos)
            self._predict_videos(tasks, ctx, control, obj, outputs, report=report)
        return [prediction_of(outs) for outs in outputs]

    def _predict_object(
        self,
        tasks: Sequence[Task],
        ctx: PredictContext,
        obj: ObjectTag,
        models: list[ModelRun],
        outputs: list[list[ControlOutput] | LabelzooError],
    ) -> None:
        """Run every model that reads ``obj`` over the tasks' images, ``YOLO_BATCH`` at a time, while the next
        chunk downloads and decodes; a task whose image fails gets its error (the first) in ``outputs``."""
        chunk: list[tuple[int, np.ndarray]] = []
        decode = array_decoder(self.yolo.max_pixels, bgr=True)
        size = self.yolo.chunk
        for i, image in ctx.media.per_task(tasks, obj, decode, lookahead=max(size, PREFETCH)):
            if isinstance(image, LabelzooError):
                outputs[i] = outputs[i] if isinstance(outputs[i], LabelzooError) else image
            else:
                chunk.append((i, image))
            if chunk and (len(chunk) == size or i == len(tasks) - 1):
                self._predict_chunk(chunk, models, outputs)
                chunk = []

    def _predict_chunk(
        self,
        chunk: list[tuple[int, np.ndarray]],
        models: list[ModelRun],
        outputs: list[list[ControlOutput] | LabelzooError],
    ) -> None:
        """One forward pass of each model run per image size in the chunk; the regions go to the tasks' outputs.

        Ultralytics letterboxes a batch of one size to that size (rounded up to the stride) but a batch of mixed
        sizes to a square, which changes what the model sees: grouping by size keeps each image's regions what
        Ultralytics gives it in a batch of its own size, whichever tasks share the request."""
        by_size: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
        for item in chunk:
            by_size.setdefault(item[1].shape, []).append(item)
        for group in by_size.values():
            arrays = [image for _, image in group]
            for run in models:
                floor = min(plan.candidate_floor for plan, _ in run.controls)
                results = run.model.predict(arrays, conf=floor, options=self.yolo, iou=run.iou)
                for (i, _), result in zip(group, results, strict=True):
                    found = outputs[i]
                    if isinstance(found, list):  # else it failed on another image
                        found.extend(converter(result) for _, converter in run.controls)

    def _predict_videos(self, tasks: Sequence[Task], ctx: PredictContext, control: ControlTag, obj: ObjectTag,
                        outputs: list[list[ControlOutput] | LabelzooError], *, report: bool) -> None:
        """Each task's video, one at a time, through the control's tracker or classifier (:mod:`.video`)."""
        plan = plan_control(control, obj, self.yolo, self.settings)
        assert plan is not None  # ctx.pairs leaves out model_skip
        tracking = control.tag.lower() == "videorectangle"
        try:
            model = self.model_for(plan)
            labels = video_labels(ctx.config, obj, model.names) if tracking else build_label_map(control, model.names)
        except LabelzooError as exc:
            for i, found in enumerate(outputs):
                outputs[i] = found if isinstance(found, LabelzooError) else exc
            return
        conf = (unit_attr(control, "model_conf") or TRACKING_CONF) if tracking else 0.0
        with tempfile.TemporaryDirectory(prefix="labelzoo-tracker-") as folder:
            tracker = tracker_file(control, Path(folder)) if tracking else None
            for i, path in ctx.media.per_task(tasks, obj, lookahead=1):
                found = outputs[i]
                if isinstance(found, LabelzooError):
                    pass
                elif isinstance(path, LabelzooError):
                    outputs[i] = path
                else:
                    try:
                        found.append(self._video_output(Path(path), model, plan, labels, conf, tracker))
                    except LabelzooError as exc:
                        outputs[i] = exc
                if report:
                    report_finished(i, prediction_of(outputs[i]))

    def _video_output(self, path: Path, model: YoloModel, plan: ControlPlan, labels: LabelMap, conf: float,
                      tracker: str | None) -> ControlOutput:
        """One video through one control: its tracks (with a tracker) or its timeline."""
        info = video_info(path)
        results = model.frames(str(path), conf=conf, options=self.yolo, iou=plan.iou, tracker=tracker)
        if tracker is None:
            return timeline_regions(results, labels, plan.control, plan.obj, plan.threshold)
        tracks, frames = collect_tracks(results, labels)
        info = replace(info, frames=max(info.frames, frames))  # a file's frame count can be short
        return track_regions(tracks, info, plan.control, plan.obj, plan.threshold)

    # fit -------------------------------------------------------------------------------------
    def fit(self, data: TrainingData, ctx: FitContext) -> FitResult:
        """Fine-tune each control's model on its annotations; keep the new weights unless they score clearly worse."""
        from .training import TrainingCancelled

        planned = training_plans(data.config, self.yolo, self.settings)
        plans = [plan for plan in planned if plan.trainable]
        manifest: dict[str, dict[str, Any]] = {}
        for name, trained in self.trained.items():  # controls not retrained keep their weights
            shutil.copyfile(self.weights / trained.file, ctx.output_dir / trained.file)  # type: ignore[operator]
            manifest[name] = {"kind": trained.kind, "file": trained.file, "metrics": trained.metrics}
        metrics: dict[str, float] = {}
        summary = [f"{plan.control.name}: not trained (model_trainable=\"false\")" for plan in planned
                   if not plan.trainable]  # fmt: skip
        improved, held = False, []  # held: each trained control's held-out tasks
        with tempfile.TemporaryDirectory(prefix="labelzoo-yolo-") as tmp:
            for number, plan in enumerate(plans):
                progress = PartProgress(ctx.report, plan.control.name, number, len(plans))
                try:
                    entry = self._fit_control(plan, data, ctx, Path(tmp, str(number)), progress, metrics, summary, held)
                except TrainingCancelled:
                    return FitResult(promote=False, metrics=metrics, summary="cancelled")
                if entry is not None:
                    manifest[plan.control.name] = entry
                    improved = True
        if improved:
            (ctx.output_dir / MANIFEST).write_text(json.dumps({"controls": manifest}, indent=2), encoding="utf-8")
        text = "; ".join(summary) or "no control to train"
        ctx.report(1.0, text, **metrics)
        return FitResult(promote=improved, metrics=metrics, summary=text, held_out=set.intersection(*held or [set()]))

    def _fit_control(
        self,
        plan: ControlPlan,
        data: TrainingData,
        ctx: FitContext,
        workdir: Path,
        progress: PartProgress,
        metrics: dict[str, float],
        summary: list[str],
        held: list[set[Any]],
    ) -> dict[str, Any] | None:
        """Train one control; its manifest entry when the new weights are kept, else None."""
        from .training import fine_tune
        from .training_data import build_dataset, build_timeline_dataset, build_video_dataset

        kind, name, current = plan.kind, plan.control.name, self.model_for(plan)
        scored = plan  # the plan whose control's labels number the dataset's classes
        frames = self.yolo.video_train_frames
        if plan.control.tag.lower() == "videorectangle":  # its labels are the <Labels> on the video's
            scored = replace(plan, control=labels_control(data.config, plan.obj))
            dataset = build_video_dataset(plan, scored.control, data.examples, ctx.media, workdir / "data",
                                          frames_per_video=frames)
        elif plan.control.tag.lower() == "timelinelabels":
            dataset = build_timeline_dataset(plan, data.examples, ctx.media, workdir / "data", frames_per_video=frames)
        else:
            dataset = build_dataset(
                plan, data.examples, ctx.media, workdir / "data", max_pixels=self.yolo.max_pixels, current=current
            )
        if dataset is None:
            summary.append(f"{name}: too few annotations")
            return None
        held.append({s.task_id for s in dataset.val} - {s.task_id for s in dataset.train})
        progress(0.0, f"training on {len(dataset.train)} images, validating on {len(dataset.val)}")
        start = (
            current.source
            if current.task == kind.name
            else str(resolve_model_path(self.yolo.models[kind.name], self.yolo.model_root, custom=False))
        )  # a segmentation model serving boxes cannot be fine-tuned as a detector: start from the detector
        best = fine_tune(start, dataset, kind, self.yolo, ctx, workdir / "run", progress)
        kind.after_training(best, dataset)
        progress(1.0, "comparing with the current model on the held-out images")
        key = kind.metric
        new = kind.evaluate(load_model(best), scored, dataset, self.yolo)
        old = kind.evaluate(current, scored, dataset, self.yolo)
        metrics.update({f"{name}.{k}": v for k, v in new.items()})
        metrics.update({f"{name}.previous_{k}": v for k, v in old.items()})
        decision = decide(new[key], old[key], n_held_out=len(dataset.val), metric=key)
        summary.append(f"{name}: {decision.reason}")
        ctx.logger.info("%s", summary[-1])
        if not decision.promote:
            return None
        file = f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}-{workdir.name}.pt"
        shutil.copyfile(best, ctx.output_dir / file)
        return {"kind": kind.name, "file": file, "metrics": new}
