"""Text-prompted box detection with transformers: OWLv2 / OWL-ViT and Grounding DINO, as their model cards run them.

Both families load with ``AutoProcessor`` and ``AutoModelForZeroShotObjectDetection``; the folder's
``config.json`` (its ``model_type``) says which family it is. Boxes, scores and labels are the processor's own
``post_process_grounded_object_detection`` output, scaled to each image's natural size:

* OWL (``owlv2``, ``owlvit``): every query is scored for every box; a box is kept when its best query's score
  is above the threshold, and it gets that query.
* Grounding DINO (``grounding-dino``, ``mm-grounding-dino``): images of one size share a forward pass (its
  processor pads a batch to its largest image, which changes the boxes of the others); the queries are joined
  into one prompt
  (``"a cat. a dog."``); a box is kept when its best token's probability is above the threshold, and the
  processor names it by the prompt's tokens above ``text_threshold``. That phrase can run over several
  queries; the box goes to the query whose tokens it scores highest among those (a box whose phrase holds
  no query's token names nothing in the config and is left out).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from labelzoo.errors import TaskError

OWL_TYPES = frozenset({"owlv2", "owlvit"})
DINO_TYPES = frozenset({"grounding-dino", "mm-grounding-dino"})


@dataclass(frozen=True)
class Detection:
    """One found box: corners in pixels of the natural image, the model's score, the index of its query."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    query: int


class Detector:
    """A processor and model pair; :meth:`detect` runs one batch of images against one list of queries."""

    def __init__(self, processor: Any, model: Any) -> None:
        self.processor, self.model = processor, model.eval()
        self.model_type = str(model.config.model_type)
        if self.model_type not in OWL_TYPES | DINO_TYPES:
            raise ValueError(f"model type {self.model_type!r} is neither OWL nor Grounding DINO")
        self._lock = threading.Lock()  # one forward pass at a time: the model is shared by the server's threads

    def detect(self, images: Sequence[Image.Image], queries: Sequence[str], *, threshold: float,
               text_threshold: float) -> list[list[Detection]]:
        """The detections of each image, best score first."""
        sizes = [(image.height, image.width) for image in images]
        if self.model_type in OWL_TYPES:  # every image is resized to the same square: one batch
            found = self._owl(images, list(queries), threshold, sizes)
        else:  # images of one size at a time: padding a smaller one to a larger changes its boxes
            found = [[] for _ in images]
            for size in dict.fromkeys(sizes):
                run = [i for i, s in enumerate(sizes) if s == size]
                for i, detections in zip(run, self._dino([images[i] for i in run], list(queries), threshold,
                                                         text_threshold, [size] * len(run)), strict=True):
                    found[i] = detections
        return [sorted(detections, key=lambda d: -d.score) for detections in found]

    def _forward(self, **inputs: Any) -> Any:
        batch = self.processor(**inputs, return_tensors="pt").to(self.model.device)
        with self._lock, torch.inference_mode():
            return batch, self.model(**batch)

    def _owl(self, images: Sequence[Image.Image], queries: list[str], threshold: float,
             sizes: list[tuple[int, int]]) -> list[list[Detection]]:
        _, outputs = self._forward(text=[queries] * len(images), images=list(images))
        results = self.processor.post_process_grounded_object_detection(outputs, threshold=threshold,
                                                                          target_sizes=sizes)
        return [[Detection(_corners(box), float(score), int(label))
                 for box, score, label in zip(r["boxes"], r["scores"], r["labels"], strict=True)] for r in results]

    def _dino(self, images: Sequence[Image.Image], queries: list[str], threshold: float, text_threshold: float,
              sizes: list[tuple[int, int]]) -> list[list[Detection]]:
        prompt, spans = dino_prompt(queries)
        batch, outputs = self._forward(text=[prompt] * len(images), images=list(images))
        limit = getattr(self.model.config, "max_text_len", None)
        if limit is not None and batch["input_ids"].shape[1] > limit:
            raise TaskError(f"the prompt of {len(queries)} labels is {batch['input_ids'].shape[1]} tokens, more than "
                            f"the model's {limit}: use fewer labels or shorter prompts")
        results = self.processor.post_process_grounded_object_detection(
            outputs, batch["input_ids"], threshold=threshold, text_threshold=text_threshold, target_sizes=sizes)
        owner = token_queries(self.processor.tokenizer, prompt, spans)  # token position -> query index
        found = []
        for logits, result in zip(outputs.logits, results, strict=True):
            probabilities = torch.sigmoid(logits)  # what the processor reads: (queries of the model, tokens)
            kept = probabilities[probabilities.max(-1).values > threshold]
            detections = []
            for row, box, score in zip(kept, result["boxes"], result["scores"], strict=True):
                query = _best_query(row, owner, text_threshold)
                if query is not None:
                    detections.append(Detection(_corners(box), float(score), query))
            found.append(detections)
        return found


def dino_prompt(queries: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Grounding DINO's prompt for ``queries`` (``"a cat. a dog."``) and each query's character span in it."""
    spans, at = [], 0
    for query in queries:
        spans.append((at, at + len(query)))
        at += len(query) + 2  # ". "
    return ". ".join(queries) + ".", spans


def token_queries(tokenizer: Any, prompt: str, spans: Sequence[tuple[int, int]]) -> dict[int, int]:
    """Which query each token of the tokenised prompt belongs to (special tokens and dots belong to none)."""
    offsets = tokenizer(prompt, return_offsets_mapping=True)["offset_mapping"]
    owner = {}
    for position, (start, end) in enumerate(offsets):
        for query, (first, last) in enumerate(spans):
            if end > start and start >= first and end <= last:
                owner[position] = query
    return owner


def _best_query(row: torch.Tensor, owner: dict[int, int], text_threshold: float) -> int | None:
    """The query whose token above ``text_threshold`` has the highest probability (the processor's phrase is
    made of exactly the tokens above it, position 0 and the last position excluded as it excludes them)."""
    best, best_p = None, text_threshold
    for position, query in owner.items():
        if 0 < position < row.shape[0] - 1 and float(row[position]) > best_p:
            best, best_p = query, float(row[position])
    return best


def _corners(box: torch.Tensor) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box.tolist())
    return x0, y0, x1, y1
