"""Zero-shot boxes (and masks) for ``<Image>``: the label config's labels are the text queries.

* The detector is ``GROUNDING_MODEL``: a Hugging Face name (downloaded once into ``MODEL_DIR/grounding``) or a
  folder saved with ``save_pretrained``, of the OWLv2 / OWL-ViT or Grounding DINO family (its config says which,
  :mod:`.detector`). It needs no training to label a new project.
* What it is asked to find: each ``<Label>``'s ``predicted_values`` (comma-separated, e.g.
  ``predicted_values="car,truck"``), else its value; a project's ``extra_params`` may give
  ``{"grounding_prompts": {"Car": "car, van"}}`` instead (:mod:`labelzoo.labelprompts`). Each query's boxes go to
  its label, in every ``RectangleLabels``, ``BrushLabels`` and ``PolygonLabels`` of the image that has it.
* Masks ("Grounded SAM"): for the ``BrushLabels``/``PolygonLabels`` of the image, each found box is given to the
  SAM backend's model (``SAM_MODEL_TYPE``, ``SAM_CHECKPOINT``) as a box prompt; SAM is loaded at the first such
  request and its image embeddings are cached by the core (:class:`labelzoo.embeddings.ImageEmbeddings`).
* The threshold is the core's (``model_score_threshold``, then ``MODEL_SCORE_THRESHOLD``, then 0.3); a region's
  score is its box's, a task's its least sure region's. A batch of images runs through the model at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from labelzoo_backends.sam.checkpoint import CHECKPOINT, MODEL_TYPE, load_sam
from labelzoo_backends.sam.segmenter import Embedding, Segmenter

from labelzoo import Backend, PredictContext, Prediction, Target, Task
from labelzoo.batch import PredictionBatch
from labelzoo.devices import DEVICE_TYPES, resolve_device
from labelzoo.embeddings import MIB, ImageEmbeddings
from labelzoo.images import image_decoder, max_pixels_setting
from labelzoo.labelconfig import THRESHOLD_ATTRIBUTES, ControlTag, ObjectControls, object_controls
from labelzoo.labelprompts import label_prompts, project_prompts
from labelzoo.options import Option, Options
from labelzoo.pretrained import from_pretrained, pretrained_name
from labelzoo.results import MASK_TAGS, MaskOutput, mask_regions, rectangle

from .detector import Detection, Detector

TAGS = ("RectangleLabels", *MASK_TAGS)
DEFAULT_MODEL = "google/owlv2-base-patch16-ensemble"
SAM_CACHE_MB = 256  # SAM embeddings kept for images masked again (4 MiB each with the official models)


class Grounding(Backend):
    targets = tuple(Target(tag, "Image") for tag in TAGS)
    batch_size = 16
    description = "Zero-shot boxes (OWLv2 or Grounding DINO) for the config's labels, and SAM masks for them"
    default_score_threshold = 0.3
    control_attributes = THRESHOLD_ATTRIBUTES
    device_types = DEVICE_TYPES

    options = Options(
        Option("GROUNDING_MODEL", str, DEFAULT_MODEL,
               doc="a Hugging Face name or a `save_pretrained` folder of an OWLv2 / OWL-ViT or Grounding DINO "
               "model (`IDEA-Research/grounding-dino-tiny`); relative folders are looked up under `MODEL_ROOT`"),
        Option("GROUNDING_TEXT_THRESHOLD", float, 0.25, low=0, high=1,
               doc="Grounding DINO only: the probability above which a prompt token names a box"),
        Option("GROUNDING_BATCH", int, 4, low=1, doc="images per forward pass"),
        Option("GROUNDING_POLYGON_TOLERANCE", float, 1.5, low=0,
               doc="polygon simplification of SAM's masks, in pixels (0 keeps every boundary pixel)"),
        MODEL_TYPE,
        CHECKPOINT,
    )

    def load(self) -> None:
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        device = resolve_device(self.settings.device, self.device_types)
        source = self.options.grounding_model
        processor = from_pretrained(lambda s, kw: AutoProcessor.from_pretrained(s, **kw), source, self.settings,
                                    cache="grounding", option="GROUNDING_MODEL", what="processor")
        model = from_pretrained(lambda s, kw: AutoModelForZeroShotObjectDetection.from_pretrained(s, **kw), source,
                                self.settings, cache="grounding", option="GROUNDING_MODEL", what="detector")
        self.detector = Detector(processor, model.to(device))
        self._sam_lock = threading.Lock()
        self._masks: ImageEmbeddings[Embedding] | None = None

    def base_version(self) -> str:
        return pretrained_name(self.options.grounding_model)

    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
        overrides = project_prompts(ctx.params, "grounding_prompts")
        batch = PredictionBatch(tasks, ctx.logger, model="the detector")
        decode = image_decoder(max_pixels_setting(self.settings))
        size = self.options.grounding_batch
        for group in object_controls(ctx.config, "Image"):
            plan = ImagePlan(group, overrides, self.score_threshold)
            if not plan.queries:
                continue
            ready = list(batch.ready(ctx.media.per_task(tasks, group.obj, decode)))
            for chunk in (ready[start : start + size] for start in range(0, len(ready), size)):
                try:
                    found = self.detector.detect([image for _, image in chunk], plan.queries,
                                                 threshold=plan.threshold,
                                                 text_threshold=self.options.grounding_text_threshold)
                except Exception as exc:  # one forward pass for the chunk: each of its tasks fails with it
                    for i, _ in chunk:
                        batch.fail(i, exc)
                    continue
                for (i, image), detections in zip(chunk, found, strict=True):
                    with batch.guard(i):
                        regions = self._regions(tasks[i], ctx, plan, image.size, detections)
                        batch.add(i, regions, min((r["score"] for r in regions), default=None))
        return batch.predictions()

    def _regions(self, task: Task, ctx: PredictContext, plan: ImagePlan, size: tuple[int, int],
                 detections: Sequence[Detection]) -> list[dict[str, Any]]:
        """Each control's regions for the image's detections: boxes, and SAM's mask inside each box."""
        regions: list[dict[str, Any]] = []
        embedding = None
        to_name = plan.group.obj.name
        for control, detection, label in plan.shown(detections):
            x0, y0, x1, y1 = detection.box
            if control.tag == "RectangleLabels":
                regions.append(rectangle(control.name, to_name, box=(x0, y0, x1 - x0, y1 - y0), image_size=size,
                                         labels=[label], score=detection.score))
                continue
            masks = self._mask_model()
            embedding = embedding or masks.get(task, plan.group.obj, ctx.media)
            segment = self._segmenter.segment(embedding, box=np.asarray(detection.box))
            regions.extend(mask_regions(MaskOutput(control, label), to_name, segment.mask, detection.score,
                                        tolerance_px=self.options.grounding_polygon_tolerance))
        return regions

    def _mask_model(self) -> ImageEmbeddings[Embedding]:
        """SAM's image embeddings, loading SAM first (once, at the first request that wants masks)."""
        with self._sam_lock:
            if self._masks is None:
                self._segmenter = Segmenter(load_sam(self.settings))
                self._masks = ImageEmbeddings(self._segmenter.embed, max_bytes=SAM_CACHE_MB * MIB,
                                              entry_nbytes=self._segmenter.embedding_nbytes,
                                              max_pixels=max_pixels_setting(self.settings), name="grounding-sam")
            return self._masks


class ImagePlan:
    """What to ask about one image and where the answers go: the queries of its controls, and per control the
    label each query's boxes get there."""

    def __init__(self, group: ObjectControls, overrides: Mapping[str, list[str]],
                 threshold_of: Callable[[ControlTag], float]) -> None:
        self.group = group
        self.controls = group.of(*TAGS)
        self.labels = {control.name: label_prompts(control, overrides) for control in self.controls}
        self.queries = list(dict.fromkeys(q for by_query in self.labels.values() for q in by_query))
        self.thresholds = {control.name: threshold_of(control) for control in self.controls}
        self.threshold = min(self.thresholds.values(), default=0.0)  # the model keeps what any control shows

    def shown(self, detections: Sequence[Detection]) -> Iterator[tuple[ControlTag, Detection, str]]:
        """``(control, detection, label key)`` for each detection a control shows, controls in config order."""
        for control in self.controls:
            for detection in detections:
                label = self.labels[control.name].get(self.queries[detection.query])
                if label is not None and detection.score >= self.thresholds[control.name]:
                    yield control, detection, label
