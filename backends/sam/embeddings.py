"""SAM image embeddings and their cache: a :class:`labelzoo.caching.LruCache` bounded by bytes.

An embedding is what SAM's heavy image encoder makes of one image; every click on that image only
runs the small prompt encoder and mask decoder against it. Upstream's predictor keeps the embedding
of a single image, so two annotators working on two images re-encode on every click. The cache keeps
many, evicting the least recently used once their size passes ``max_bytes``; concurrent clicks on an
image nobody has encoded yet share one encoder pass.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from labelzoo.caching import LruCache


def content_key(data: bytes) -> str:
    """The cache key of an image file: a digest of its bytes, so the same picture under two URLs or in
    two tasks shares one embedding, and a changed file never gets a stale one."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


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


def embedding_cache(max_bytes: int) -> LruCache[str, Embedding]:
    """Embeddings by :func:`content_key`, least recently used out once their tensors pass ``max_bytes``."""
    return LruCache(max_bytes=max_bytes, nbytes=lambda embedding: embedding.nbytes)
