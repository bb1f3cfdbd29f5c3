"""Tesseract OCR for Label Studio: the words or lines of an ``<Image>`` as boxes with their text and confidence,
and the text inside a box the annotator draws.

Pre-annotation reads each task's image once and fills every control of it (:mod:`.regions`). Interactive
requests (a smart rectangle in ``params.context``) read only that rectangle and answer with the annotator's
own region, under its id, followed by the text in the per-region TextAreas that take it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from labelzoo import Backend, PredictContext, Prediction, Settings, Target, Task, TaskError
from labelzoo.batch import PredictionBatch
from labelzoo.images import image_decoder, max_pixels_setting
from labelzoo.labelconfig import THRESHOLD_ATTRIBUTES, object_controls
from labelzoo.prompts import read_image_prompt
from labelzoo.results import rectangle, with_region_text

from .options import OPTIONS
from .regions import REGION_TAGS, page_items, plan_regions, region_labels, score_of
from .tesseract import Tesseract, check_languages, find_tessdata, installed_languages, tesseract_version


class Ocr(Backend):
    targets = tuple(Target(tag, "Image") for tag in (*REGION_TAGS, "TextArea"))
    interactive = True
    batch_size = 16  # a page takes Tesseract 0.1-2 s: small chunks report early (PREDICT_DEADLINE)
    description = "Tesseract OCR: words or lines as boxes with their text and confidence; reads a box you draw"
    options = OPTIONS
    default_score_threshold = 0.0  # every word Tesseract reads is shown unless a threshold says otherwise
    control_attributes = (*THRESHOLD_ATTRIBUTES, "model_granularity")

    def __init__(self, settings: Settings, weights: Path | None = None) -> None:
        super().__init__(settings, weights)
        configured = self.options.ocr_tessdata
        self.tessdata = find_tessdata(None if configured is None else settings.model_path(configured), settings.env)
        self.languages = check_languages(self.options.ocr_languages, self.tessdata)  # a missing one stops start-up
        self.max_pixels = max_pixels_setting(settings)

    def load(self) -> None:
        self.tesseract = Tesseract(self.tessdata, self.languages)
        self.tesseract.read(Image.new("L", (32, 32), 255), psm=self.options.ocr_psm)  # loads the model now

    def base_version(self) -> str:
        return f"tesseract-{tesseract_version()}-{self.languages}"

    def health(self) -> Mapping[str, Any]:
        return {"tesseract": tesseract_version(), "languages": self.languages, "tessdata": str(self.tessdata),
                "installed_languages": installed_languages(self.tessdata)}

    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
        if ctx.prompt is not None:
            return [self._read_box(task, ctx, ctx.prompt) for task in tasks]
        batch = PredictionBatch(tasks, ctx.logger, model="Tesseract")
        groups = [g for g in object_controls(ctx.config, "Image") if g.of(*REGION_TAGS) or g.texts]
        decode = image_decoder(self.max_pixels)
        for n, group in enumerate(groups):
            plans = plan_regions(group, self.options.ocr_granularity, self.score_threshold)
            for i, image in batch.ready(ctx.media.per_task(tasks, group.obj, decode)):
                with batch.guard(i):
                    reading = self.tesseract.read(image, psm=self.options.ocr_psm)
                    for items, score in page_items(group, plans, reading, image.size, self.score_threshold):
                        batch.add(i, items, score)
                if n == len(groups) - 1:
                    batch.finish(i)
        return batch.predictions()

    def _read_box(self, task: Task, ctx: PredictContext, context: Mapping[str, Any]) -> Prediction:
        """The annotator's rectangle, read with ``OCR_BOX_PSM``; no threshold: they asked for this box."""
        prompt = read_image_prompt(context)
        obj = prompt.image(ctx.config)
        control = ctx.config.control(prompt.from_name)
        if prompt.box is None or control.tag not in REGION_TAGS:
            raise TaskError("this backend reads the text inside a box: draw one with a smart Rectangle or "
                            "RectangleLabels tool")
        labels = [prompt.label] if prompt.label and control.tag == "RectangleLabels" else region_labels(control)
        (group,) = (g for g in object_controls(ctx.config, "Image") if g.obj.name == obj.name)
        areas = [area.name for area in group.region_texts_for(control, labels[0] if labels else "")]
        if not areas:
            raise TaskError(f'add <TextArea perRegion="true" toName="{obj.name}"> to the label config: it holds the '
                            f"text read in each box of {control.name}")
        image = ctx.media.for_task(task, obj, image_decoder(self.max_pixels))
        width, height = image.size
        left, top, w, h = prompt.pixel_rect(width, height)
        # A crop, not Tesseract's SetRectangle: that misreads a rectangle as wide as the image (Tesseract 5.5)
        crop = image.crop((left, top, left + w, top + h))
        reading = self.tesseract.read(crop, psm=self.options.ocr_box_psm) if w and h else None
        score = score_of(reading.confidence) if reading and reading.text else None
        box = prompt.box
        region = rectangle(control.name, obj.name, image_size=(width, height), labels=labels, score=score,
                           box=(box.x * width / 100, box.y * height / 100, box.width * width / 100,
                                box.height * height / 100), rotation=box.rotation, region_id=prompt.region_id)
        return Prediction(result=with_region_text(region, areas, text=reading.text if reading else "", score=score),
                          score=score)
