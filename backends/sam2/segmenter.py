"""Clicks and boxes on an image → SAM 2's mask, by the ``sam2`` package's own ``SAM2ImagePredictor``.

The predictor keeps one image's features as its state; here ``embed`` runs ``set_image`` and hands the features
out as an :class:`Embedding`, and ``segment`` gives them to a fresh predictor before ``predict``, so embeddings can
be cached (:class:`labelzoo.embeddings.ImageEmbeddings`) and clicks on different images answered in parallel
threads against one model, whose weights are only read. The masks are the predictor's, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sam2.sam2_image_predictor import SAM2ImagePredictor


@dataclass(frozen=True)
class Embedding:
    features: dict[str, Any]
    """``SAM2ImagePredictor``'s features of the image: ``image_embed`` and the two ``high_res_feats``."""
    original_size: tuple[int, int]
    """(height, width) of the natural image, EXIF orientation applied: the size masks come out at."""

    @property
    def nbytes(self) -> int:
        tensors = [self.features["image_embed"], *self.features["high_res_feats"]]
        return sum(t.element_size() * t.nelement() for t in tensors)


@dataclass(frozen=True)
class Segment:
    mask: np.ndarray
    """(H, W) bool mask at the natural image size."""
    score: float
    """SAM 2's predicted IoU of the chosen mask."""


class ImageSegmenter:
    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def embedding_nbytes(self) -> int:
        """Bytes of one image's features (16 MiB for the official models at 1024 pixels, float32)."""
        side = self.model.image_size
        channels = self.model.sam_prompt_embed_dim
        element = next(self.model.parameters()).element_size()
        # the 1/16 embedding plus the 1/4 and 1/8 high-resolution maps (channels / 8 and / 4)
        return element * channels * ((side // 16) ** 2 + (side // 4) ** 2 // 8 + (side // 8) ** 2 // 4)

    def embed(self, image: np.ndarray) -> Embedding:
        """Run the image encoder on (H, W, 3) uint8 RGB pixels."""
        predictor = SAM2ImagePredictor(self.model)
        predictor.set_image(image)
        height, width = predictor._orig_hw[0]
        return Embedding(predictor._features, (int(height), int(width)))

    def segment(self, embedding: Embedding, *, points: np.ndarray | None = None,
                point_labels: np.ndarray | None = None, box: np.ndarray | None = None) -> Segment:  # fmt: skip
        """The best mask for pixel prompts: ``points`` (N, 2) x, y with ``point_labels`` (N,) 1 = object,
        0 = background, and/or ``box`` (4,) x0, y0, x1, y1. A single click is ambiguous, so the predictor
        proposes three masks and the one with the highest predicted IoU wins (Meta's advice); several clicks or
        a box ask for one."""
        if points is None and box is None:
            raise ValueError("segment needs points, a box, or both")
        predictor = SAM2ImagePredictor(self.model)
        predictor._features, predictor._orig_hw, predictor._is_image_set = (
            embedding.features, [embedding.original_size], True)  # fmt: skip
        multimask = box is None and points is not None and len(points) == 1
        masks, scores, _ = predictor.predict(point_coords=points, point_labels=point_labels, box=box,
                                             multimask_output=multimask)  # fmt: skip
        best = int(np.argmax(scores))
        return Segment(mask=masks[best] > 0, score=float(scores[best]))
