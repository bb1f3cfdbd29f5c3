"""A tiny SAM with random weights, registered as a model type, and helpers to build SAM requests.

The tiny model is assembled from ``segment_anything.modeling`` parts (a 2-block ViT encoder at 256 px,
the real prompt encoder and mask decoder at width 64), its weights saved as a checkpoint file and
loaded through the backend's real path: ``SAM_MODEL_TYPE`` → ``sam_model_registry`` → ``SAM_CHECKPOINT``.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from segment_anything import SamPredictor, sam_model_registry
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

from labelzoo import PredictContext, Settings, Task
from labelzoo.labelconfig import parse_label_config
from labelzoo.media import MediaResolver
from labelzoo.registry import load_backend

REPO = Path(__file__).resolve().parents[2]
SAM_FOLDER = REPO / "backends" / "sam"
TINY_TYPE = "labelzoo_tiny_test"
IMAGE_SIZE = 256  # the tiny encoder's input size; embeddings are 64 × 16 × 16 float32 = 64 KiB
WIDTH = 64

BRUSH_CONFIG = parse_label_config((SAM_FOLDER / "configs" / "smart_brush.xml").read_text())
POLYGON_CONFIG = parse_label_config((SAM_FOLDER / "configs" / "smart_polygon.xml").read_text())


def sam_module(name: str) -> Any:
    """A module of the SAM backend folder, imported as the server imports it (``labelzoo_backends.sam``)."""
    load_backend(str(SAM_FOLDER))
    return importlib.import_module(f"labelzoo_backends.sam.{name}")


def build_tiny_sam(checkpoint: str | None = None) -> Sam:
    """A SAM builder with the signature of ``segment_anything.build_sam`` (weights loaded by the caller)."""
    assert checkpoint is None, "the backend loads checkpoints itself"
    grid = IMAGE_SIZE // 16
    return Sam(
        image_encoder=ImageEncoderViT(
            img_size=IMAGE_SIZE,
            patch_size=16,
            embed_dim=64,
            depth=2,
            num_heads=2,
            out_chans=WIDTH,
            qkv_bias=True,
            use_rel_pos=True,
            window_size=4,
            global_attn_indexes=(1,),
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=WIDTH,
            image_embedding_size=(grid, grid),
            input_image_size=(IMAGE_SIZE, IMAGE_SIZE),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=WIDTH, mlp_dim=128, num_heads=4),
            transformer_dim=WIDTH,
            iou_head_depth=3,
            iou_head_hidden_dim=WIDTH,
        ),
    ).eval()


def tiny_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return build_tiny_sam().state_dict()


def with_tiny_sam(backend: str) -> Any:
    """The class of ``backends/<backend>`` with the tiny model type registered, so that it can load it: for the
    end-to-end fixtures' ``model.py``, imported by ``labelzoo serve`` in processes where no test registered it."""
    sam_model_registry[TINY_TYPE] = build_tiny_sam
    return load_backend(str(REPO / "backends" / backend)).cls


@pytest.fixture(name="tiny_checkpoint", scope="session")
def tiny_checkpoint_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sam") / "sam_tiny.pth"
    torch.save(tiny_weights(), path)
    return path


@pytest.fixture(name="tiny_type")
def tiny_type_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setitem(sam_model_registry, TINY_TYPE, build_tiny_sam)
    yield TINY_TYPE


@contextmanager
def loaded_backends(folder: Path, settings: Callable[..., Settings]) -> Iterator[Callable[..., Any]]:
    """``make(**env)``: a loaded backend of ``folder`` with ``settings(**env)``; their warm-ups are waited for
    at the end."""
    made = []

    def make(**env: str) -> Any:
        backend = load_backend(str(folder)).cls(settings(**env))
        backend.load()
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.cache.wait_idle(30)


@pytest.fixture(name="make_backend")
def make_backend_fixture(tmp_path: Path, tiny_type: str, tiny_checkpoint: Path) -> Iterator[Any]:
    """``make_backend(**env)``: a loaded SAM backend on the tiny model (env overrides the defaults)."""
    settings = partial(sam_settings, tmp_path, SAM_MODEL_TYPE=tiny_type, SAM_CHECKPOINT=str(tiny_checkpoint))
    with loaded_backends(SAM_FOLDER, settings) as make:
        yield make


def sam_settings(tmp_path: Path, **env: str) -> Settings:
    base = {
        "MODEL_DIR": str(tmp_path / "models"),
        "MEDIA_CACHE_DIR": str(tmp_path / "media"),
        "MEDIA_LOCAL_ROOTS": str(tmp_path),
        "DEVICE": "cpu",
    }
    return Settings.from_env({**base, **env})


def context(settings: Settings, config: Any = BRUSH_CONFIG, prompt: list[dict] | None = None) -> PredictContext:
    return PredictContext(
        project="1",
        config=config,
        media=MediaResolver(settings.media),
        settings=settings,
        model_version="sam-test",
        prompt=None if prompt is None else {"result": prompt},
    )


def image_task(path: Path, task_id: int = 1) -> Task:
    return Task(id=task_id, data={"image": str(path)})


def scene(width: int, height: int, seed: int) -> np.ndarray:
    """A (height, width, 3) uint8 picture: noise with a few bright rectangles, different per seed."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    for _ in range(3):
        x0, y0 = rng.integers(0, width // 2), rng.integers(0, height // 2)
        pixels[y0 : y0 + height // 3, x0 : x0 + width // 3] = rng.integers(150, 256, 3, dtype=np.uint8)
    return pixels


def filled(mask: np.ndarray) -> np.ndarray:
    """``mask`` with its holes filled: everything the outside cannot reach through the background."""
    import cv2

    outside = np.pad(~mask, 1, constant_values=True).astype(np.uint8)
    cv2.floodFill(outside, None, (0, 0), 2)
    return (outside != 2)[1:-1, 1:-1]


def write_image(path: Path, pixels: np.ndarray, *, orientation: int | None = None) -> Path:
    """Save ``pixels`` as a lossless PNG, optionally with an EXIF orientation tag."""
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    if orientation is None:
        image.save(buffer, format="PNG")
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        image.save(buffer, format="PNG", exif=exif)
    path.write_bytes(buffer.getvalue())
    return path


def click(x: float, y: float, *, positive: bool = True, label: str = "Cat", size: tuple[int, int] = (0, 0)) -> dict:
    """A smart keypoint as the editor serialises it; ``x``, ``y`` in percent."""
    return {
        "id": f"k{x:.0f}-{y:.0f}",
        "from_name": "click",
        "to_name": "image",
        "type": "keypointlabels",
        "origin": "manual",
        "original_width": size[0],
        "original_height": size[1],
        "image_rotation": 0,
        "value": {"x": x, "y": y, "width": 0.3, "labels": [label], "keypointlabels": [label]},
        "is_positive": positive,
    }


def rect(x: float, y: float, w: float, h: float, *, label: str = "Cat", rotation: float = 0.0) -> dict:
    """A smart rectangle as the editor serialises it; everything in percent."""
    value = {"x": x, "y": y, "width": w, "height": h, "rotation": rotation, "rectanglelabels": [label]}
    return {"id": "r1", "from_name": "box", "to_name": "image", "type": "rectanglelabels", "value": value}


def reference_mask(
    pixels: np.ndarray,
    *,
    points: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    box: np.ndarray | None = None,
    multimask: bool,
) -> tuple[np.ndarray, float]:
    """What upstream's ``SamPredictor`` answers on the same weights: the best mask and its IoU score."""
    sam = build_tiny_sam()
    sam.load_state_dict(tiny_weights())
    predictor = SamPredictor(sam)
    predictor.set_image(pixels)
    masks, scores, _ = predictor.predict(points, labels, box, multimask_output=multimask)
    best = int(np.argmax(scores))
    return masks[best], float(scores[best])
