"""SAM split in two: ``embed`` (the heavy image encoder, once per image) and ``segment`` (per click).

This does what ``SamPredictor.set_image`` and ``SamPredictor.predict`` do, with the same transforms,
but keeps no image state: ``embed`` returns an :class:`Embedding` and ``segment`` takes one, so clicks
on different images can run in parallel threads against one model (the model's weights are only read),
and embeddings can be cached (:class:`labelzoo.embeddings.ImageEmbeddings`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide


@dataclass(frozen=True)
class Embedding:
    """One image's encoder output and the sizes needed to map prompts in and masks out."""

    features: torch.Tensor
    """(1, C, h, w) image embedding on the model's device (C=256, h=w=64 for the official models)."""
    original_size: tuple[int, int]
    """(height, width) of the natural image, EXIF orientation applied: the size masks come out at."""
    input_size: tuple[int, int]
    """(height, width) after resizing the longest side to the encoder's input size (before padding)."""

    @property
    def nbytes(self) -> int:
        return self.features.element_size() * self.features.nelement()


@dataclass(frozen=True)
class Segment:
    mask: np.ndarray
    """(H, W) bool mask at the natural image size."""
    score: float
    """SAM's predicted IoU of the chosen mask."""
    candidates: int
    """How many masks the decoder proposed (3 for an ambiguous single click, else 1)."""


class Segmenter:
    def __init__(self, sam: Sam) -> None:
        self.sam = sam.eval()
        self.transform = ResizeLongestSide(sam.image_encoder.img_size)
        with torch.inference_mode():
            # The positional encoding of the embedding grid depends on the model alone: computed once
            # here (SamPredictor recomputes it on every click).
            self.dense_pe = sam.prompt_encoder.get_dense_pe()

    @property
    def device(self) -> torch.device:
        return self.sam.device

    @property
    def embedding_nbytes(self) -> int:
        """Bytes of one image embedding (4 MiB for the official models: 256 × 64 × 64 float32)."""
        height, width = self.sam.prompt_encoder.image_embedding_size
        element = next(self.sam.image_encoder.parameters()).element_size()
        return self.sam.prompt_encoder.embed_dim * height * width * element

    def embed(self, image: np.ndarray) -> Embedding:
        """Run the image encoder on (H, W, 3) uint8 RGB pixels."""
        resized = self.transform.apply_image(image)
        pixels = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()[None]
        with torch.inference_mode():
            features = self.sam.image_encoder(self.sam.preprocess(pixels))
        height, width = image.shape[:2]
        return Embedding(features, (int(height), int(width)), (int(pixels.shape[-2]), int(pixels.shape[-1])))

    def segment(
        self,
        embedding: Embedding,
        *,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
    ) -> Segment:
        """The best mask for pixel prompts: ``points`` (N, 2) x, y with ``point_labels`` (N,) 1 = object,
        0 = background, and/or ``box`` (4,) x0, y0, x1, y1.

        A single click is ambiguous (a shirt or the person wearing it), so the decoder proposes three
        masks and the one with the highest predicted IoU wins; several clicks or a box are not, and SAM
        recommends a single output for them. Only the chosen mask is upscaled to the image size.
        """
        if points is None and box is None:
            raise ValueError("segment needs points, a box, or both")
        multimask = box is None and points is not None and len(points) == 1
        coords = None
        if points is not None:
            if point_labels is None or len(point_labels) != len(points):
                raise ValueError("point_labels must give one label per point")
            scaled = self.transform.apply_coords(np.asarray(points, np.float64), embedding.original_size)
            coords = (
                torch.as_tensor(scaled, dtype=torch.float, device=self.device)[None],
                torch.as_tensor(point_labels, dtype=torch.int, device=self.device)[None],
            )
        boxes = None
        if box is not None:
            scaled_box = self.transform.apply_boxes(np.asarray(box, np.float64)[None], embedding.original_size)
            boxes = torch.as_tensor(scaled_box, dtype=torch.float, device=self.device)
        with torch.inference_mode():
            sparse, dense = self.sam.prompt_encoder(points=coords, boxes=boxes, masks=None)
            low_res, iou = self.sam.mask_decoder(
                image_embeddings=embedding.features,
                image_pe=self.dense_pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
            )
            best = int(iou[0].argmax())
            logits = self.sam.postprocess_masks(
                low_res[:, best : best + 1], embedding.input_size, embedding.original_size
            )
            mask = (logits[0, 0] > self.sam.mask_threshold).cpu().numpy()
        return Segment(mask=mask, score=float(iou[0, best]), candidates=int(iou.shape[1]))
