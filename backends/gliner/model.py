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
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from labelzoo import Backend, PredictContext, Prediction, Target, Task
from labelzoo.batch import PredictionBatch
from labelzoo.devices import DEVICE_TYPES, resolve_device
from labelzoo.errors import TaskError
from labelzoo.labelconfig import THRESHOLD_ATTRIBUTES, ControlTag
from labelzoo.options import Option, Options
from labelzoo.results import span

from .loading import load_gliner, model_name


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
    )

    def load(self) -> None:
        self._lock = threading.Lock()  # one forward pass at a time: the model is shared by the server's threads
        self.model = load_gliner(self.options.gliner_model, self.settings,
                                 resolve_device(self.settings.device, self.device_types))

    def base_version(self) -> str:
        return model_name(self.options.gliner_model)

    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
        try:
            overrides = project_prompts(ctx.params)
        except TaskError as exc:  # a bad extra_params value: every task fails with the same message
            return [Prediction.failed(exc.message) for _ in tasks]
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


def project_prompts(params: Mapping[str, Any]) -> dict[str, list[str]]:
    """A project's ``extra_params.gliner_prompts``: ``{label: "prompt, prompt"}``; TaskError saying what is wrong."""
    raw = params.get("gliner_prompts") or {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, str) for v in raw.values()):
        raise TaskError('extra_params.gliner_prompts must map labels to prompts: {"Person": "person, full name"}')
    return {str(label): split(value) for label, value in raw.items()}


def label_prompts(control: ControlTag, overrides: Mapping[str, list[str]]) -> dict[str, str]:
    """Each prompt GLiNER is given for the control, and the label (key) its entities get."""
    prompts: dict[str, str] = {}
    for label in control.labels:
        for prompt in overrides.get(label.key) or label.predicted_values or [label.value or label.key]:
            prompts.setdefault(prompt, label.key)
    return prompts


def split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]
