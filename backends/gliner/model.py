"""GLiNER zero-shot named entities for ``<Labels>`` on ``<Text>``: the entity types are the config's labels.

* The model is ``GLINER_MODEL``: a Hugging Face name (downloaded once into ``MODEL_DIR/gliner``) or a folder
  saved with ``GLiNER.save_pretrained``. It needs no training to label a new project.
* What GLiNER is asked to find: each ``<Label>``'s ``predicted_values`` (comma-separated prompts, e.g.
  ``predicted_values="person,people's names"``), else its value; a project's ``extra_params`` (saved by
  ``/setup``) may give ``{"gliner_prompts": {"Person": "person, full name"}}`` instead. Every prompt's
  entities go to its label.
* A /predict batch goes through ``GLiNER.inference`` at once (``GLINER_BATCH`` texts per forward pass); the
  spans are GLiNER's, with its scores; the threshold is the core's (``model_score_threshold``, then
  ``MODEL_SCORE_THRESHOLD``, then GLiNER's own 0.5). A task's score is its least sure span's.
* ``fit`` fine-tunes the current model on the project's annotated spans (:mod:`.training`), the label's first
  prompt as its entity type; the new version is promoted unless its held-out span F1 drops by more than the
  noise on that many texts (:func:`labelzoo.learning.decide`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from labelzoo import Backend, FitContext, FitResult, PredictContext, Prediction, Target, Task, TrainingData
from labelzoo.batch import PredictionBatch
from labelzoo.devices import DEVICE_TYPES, resolve_device
from labelzoo.labelconfig import THRESHOLD_ATTRIBUTES
from labelzoo.labelprompts import label_prompts, own_prompts, project_prompts
from labelzoo.learning import decide, split_held_out
from labelzoo.options import Option, Options
from labelzoo.pretrained import pretrained_name
from labelzoo.results import span
from labelzoo.textspans import annotated_texts

from .loading import load_gliner
from .training import fine_tune, gliner_record, span_f1

SAVED = "model"  # a trained version's folder holds the model saved here
MIN_HELD_OUT, MIN_TRAIN = 3, 10  # fewer texts than both validate nothing: all train, the new version is promoted


class GlinerNER(Backend):
    targets = (Target("Labels", "Text"),)
    batch_size = 64
    description = "GLiNER zero-shot named entities for <Labels> on <Text>: the entity types come from the config"
    default_score_threshold = 0.5  # GLiNER's own default
    control_attributes = THRESHOLD_ATTRIBUTES
    device_types = DEVICE_TYPES

    options = Options(
        Option("GLINER_MODEL", str, "urchade/gliner_small-v2.1",
               doc="a Hugging Face model name (the v2.1 checkpoints `urchade/gliner_small-v2.1`, `_medium-`, "
               "`_large-`, `_multi-v2.1` are Apache-2.0; the first ones, `urchade/gliner_base`, are not for "
               "commercial use) or a folder saved with `GLiNER.save_pretrained`; relative folders are looked up "
               "under `MODEL_ROOT` first"),
        Option("GLINER_BATCH", int, 8, low=1, high=256, doc="texts per forward pass"),
        Option("GLINER_MULTI_LABEL", bool, False,
               doc="let one span carry several labels (GLiNER's `multi_label`); off: the likeliest only"),
        Option("GLINER_TRAIN_STEPS", int, 300, low=1, high=100_000, doc="optimiser steps of each fine-tuning"),
        Option("GLINER_LEARNING_RATE", float, 5e-6, low=1e-8, high=1.0,
               doc="the fine-tuning learning rate (GLiNER's published checkpoints were fine-tuned at 5e-6–1e-5)"),
        Option("GLINER_HOLDOUT", int, 20, low=0, high=50,
               doc="percent of annotated tasks held out to validate each new version; 0: always promote"),
    )

    def load(self) -> None:
        self._lock = threading.Lock()  # one forward pass at a time: the model is shared by the server's threads
        self.device = resolve_device(self.settings.device, self.device_types)
        source = str(self.weights / SAVED) if self.weights is not None else self.options.gliner_model
        self.model = load_gliner(source, self.settings, self.device)

    def base_version(self) -> str:
        return pretrained_name(self.options.gliner_model)

    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
        overrides = project_prompts(ctx.params, "gliner_prompts")
        batch = PredictionBatch(tasks, ctx.logger, model="GLiNER")
        for control, obj in ctx.pairs("Labels", "Text"):
            prompts = label_prompts(control, overrides)
            if not prompts:
                continue
            ready = list(batch.ready(ctx.media.per_task(tasks, obj)))  # texts behind URLs: fetched in parallel
            threshold = self.score_threshold(control)
            with self._lock:
                found = self.model.inference([text for _, text in ready], list(prompts), threshold=threshold,
                                             flat_ner=not self.options.gliner_multi_label,
                                             multi_label=self.options.gliner_multi_label,
                                             batch_size=self.options.gliner_batch)
            for (i, text), entities in zip(ready, found, strict=True):
                items = [span(control.name, obj.name, text=text, start=e["start"], end=e["end"],
                              labels=[prompts[e["label"]]], score=float(e["score"])) for e in entities]
                batch.add(i, items, min((item["score"] for item in items), default=None))
        return batch.predictions()

    def fit(self, data: TrainingData, ctx: FitContext) -> FitResult:
        corpus, problems = annotated_texts(data, ctx.media)
        ctx.warn(problems)
        types = {label.key: own_prompts(label)[0] for control, _ in data.config.pairs("Labels", "Text")
                 for label in control.labels}
        texts = [text for _, text in corpus]
        split = split_held_out(texts, task_id=lambda t: t.task_id, content=lambda t: t.text,
                               fraction=self.options.gliner_holdout / 100, min_held_out=MIN_HELD_OUT,
                               min_train=MIN_TRAIN)
        threshold, batch = self.default_score_threshold or 0.5, self.options.gliner_batch
        old = span_f1(self.model, split.held_out, types, threshold, batch) if split.validated else None
        ctx.report(0.1, f"fine-tuning on {len(split.train)} texts, {len(split.held_out)} held out")
        records = [gliner_record(self.model, text, types) for text in split.train]
        fine_tune(self.model, records, steps=self.options.gliner_train_steps,
                  learning_rate=self.options.gliner_learning_rate, batch_size=batch,
                  use_cpu=self.device.type == "cpu")
        new = span_f1(self.model, split.held_out, types, threshold, batch) if split.validated else None
        decision = decide(new, old, n_held_out=len(split.held_out), metric="held-out span F1")
        ctx.logger.info("%s", decision.reason)
        metrics = decision.metrics("f1")
        if decision.promote:
            self.model.save_pretrained(ctx.output_dir / SAVED)
        ctx.report(1.0, decision.reason, **metrics)
        return FitResult(promote=decision.promote, metrics=metrics, summary=decision.reason,
                         held_out=split.held_out_tasks(lambda t: t.task_id))

