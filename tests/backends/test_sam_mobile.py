"""MobileSAM (``SAM_MODEL_TYPE=vit_t``): its checkpoint's layout, and served answers equal to the libraries' own.

The model is MobileSAM's real architecture (TinyViT at 1024 px, SAM's prompt encoder and mask decoder)
with random weights, saved as ``mobile_sam.pt`` is and loaded through the backend's real path. Served
masks and scores are compared with segment_anything's ``SamPredictor`` (MobileSAM's reference pipeline)
on any image, and with Ultralytics' own MobileSAM (``ultralytics.SAM``: its builder, loader, pre- and
post-processing) on a 1024 × 1024 image: Ultralytics resizes with OpenCV and pads with grey before
normalising where SamPredictor resizes with Pillow and pads with zeros after, so only at the encoder's own
input size do both pipelines see the same pixels.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from labelzoo import LabelzooError
from labelzoo.results import rle_to_mask
from labelzoo.server.app import create_app
from tests.backends.mobile_sam_support import (  # noqa: F401 - fixtures
    best_mask,
    mobile_checkpoint_fixture,
    mobile_reference,
    mobile_sam,
    ultralytics_mobile_sam_state,
    ultralytics_sam,
)
from tests.backends.sam_support import (  # noqa: F401 - fixtures
    BRUSH_CONFIG,
    SAM_FOLDER,
    click,
    rect,
    sam_module,
    sam_settings,
    scene,
    tiny_checkpoint_fixture,
    write_image,
)

checkpoint = sam_module("checkpoint")
model = sam_module("model")

#: tensor count and SHA-256 of the "name:shape" lines of the state dict of MobileSAM's own ``vit_t`` builder
#: (github.com/ChaoningZhang/MobileSAM, mobile_sam/build_sam.py at commit 34bbbfd), which loads mobile_sam.pt
MOBILE_SAM_LAYOUT = (439, "85d11ec82241b43f877f7295717de158dcccd6b403a89c61c6eb86341bdcfadc")


def layout(state: dict[str, torch.Tensor]) -> tuple[int, str]:
    lines = "\n".join(f"{name}:{tuple(tensor.shape)}" for name, tensor in state.items())
    return len(state), hashlib.sha256(lines.encode()).hexdigest()


def test_vit_t_has_the_tensors_of_mobile_sams_checkpoint() -> None:
    ours = mobile_sam.build_mobile_sam().state_dict()
    assert layout(ours) == MOBILE_SAM_LAYOUT
    assert layout(ultralytics_mobile_sam_state()) == MOBILE_SAM_LAYOUT


def served(client, task: dict, items: list[dict], width: int, height: int) -> tuple[np.ndarray, float]:
    body = {"tasks": [task], "project": "1", "label_config": BRUSH_CONFIG.xml, "params": {"context": {"result": items}}}
    reply = client.post("/predict", json=body)
    assert reply.status_code == 200, reply.get_json()
    (answer,) = reply.get_json()["results"]
    (region,) = answer["result"]
    return rle_to_mask(region["value"]["rle"], width, height), answer["score"]


@pytest.fixture
def mobile_client(make_runtime, tmp_path: Path, mobile_checkpoint: Path):
    """(HTTP client, backend) serving vit_t on the random MobileSAM checkpoint, with room for two embeddings."""
    runtime = make_runtime(
        SAM_FOLDER,
        SAM_MODEL_TYPE="vit_t",
        SAM_CHECKPOINT=str(mobile_checkpoint),
        SAM_CACHE_MB="8",
        MEDIA_LOCAL_ROOTS=str(tmp_path),
        DEVICE="cpu",
    )
    return create_app(runtime).test_client(), runtime.models.base


def test_served_masks_over_http_are_sam_predictors_on_the_mobile_sam_checkpoint(
    mobile_client, tmp_path: Path, mobile_checkpoint: Path
) -> None:
    client, backend = mobile_client
    pixels = scene(120, 80, seed=4)
    task = {"id": 1, "data": {"image": str(write_image(tmp_path / "photo.png", pixels))}}
    reference = mobile_reference(mobile_checkpoint)
    reference.set_image(pixels)
    cases = [
        ([click(25, 50)], {"points": np.array([[30.0, 40.0]]), "labels": np.array([1]), "multimask": True}),
        ([rect(10, 20, 50, 50)], {"box": np.array([12.0, 16.0, 72.0, 56.0]), "multimask": False}),
        (
            [click(25, 50), click(75, 25, positive=False)],
            {"points": np.array([[30.0, 40.0], [90.0, 20.0]]), "labels": np.array([1, 0]), "multimask": False},
        ),
    ]
    for items, prompt in cases:
        mask, score = served(client, task, items, 120, 80)
        expected, expected_score = best_mask(reference, **prompt)
        assert 0 < expected.sum() < expected.size  # a real, partial mask
        np.testing.assert_array_equal(mask, expected)
        assert 0 < expected_score < 1 and score == pytest.approx(expected_score, abs=1e-5)

    # one encoder pass for the three prompts, and the cache counts MobileSAM's real embedding
    stats = backend.cache.stats()
    assert (stats.misses, stats.hits, stats.entries) == (1, 2, 1)
    assert stats.nbytes == backend.segmenter.embedding_nbytes == reference.features.nbytes == 4 * 2**20
    assert backend.cache.capacity == 2

    choices = {"result": [{"type": "choices", "value": {"choices": ["x"]}}]}
    body = {"tasks": [task], "project": "1", "label_config": BRUSH_CONFIG.xml, "params": {"context": choices}}
    refused = client.post("/predict", json=body)
    assert refused.status_code == 422 and "keypoint or rectangle prompts" in refused.get_json()["message"]


def assert_equal_up_to_rounding(mask: np.ndarray, expected: np.ndarray, most: int = 16) -> None:
    """The same mask, but for at most ``most`` pixels on the expected mask's edge.

    Ultralytics runs MobileSAM through its own modules, whose sums round differently from segment_anything's on
    some CPUs (one pixel of 1,048,576 on an AVX-512 machine): a pixel whose logit is within rounding of 0 may
    fall on either side. A real difference (another resize, half a pixel's shift, another mask) changes far more
    pixels, or pixels away from the edge."""
    differ = np.argwhere(mask != expected)
    assert len(differ) <= most, f"{len(differ)} of {mask.size} pixels differ"
    padded = np.pad(expected, 1, mode="edge")
    for y, x in differ:
        around = padded[y : y + 3, x : x + 3]
        assert around.min() != around.max(), f"pixel (row {y}, column {x}) differs away from the mask's edge"


def test_served_masks_are_ultralytics_own_mobile_sam_answers(mobile_client, tmp_path: Path, mobile_checkpoint) -> None:
    client, _ = mobile_client
    pixels = scene(1024, 1024, seed=6)
    task = {"id": 2, "data": {"image": str(write_image(tmp_path / "square.png", pixels))}}
    ultralytics = ultralytics_sam(mobile_checkpoint)
    bgr = np.ascontiguousarray(pixels[..., ::-1])  # Ultralytics takes OpenCV's channel order
    # Ultralytics answers one mask per prompt, as the backend does for a box or several clicks; points come
    # grouped per object
    clicks = {"points": [[[409.6, 512.0], [819.2, 204.8]]], "labels": [[1, 0]]}
    cases = [
        ([rect(20, 30, 50, 40)], {"bboxes": [204.8, 307.2, 716.8, 716.8]}),
        ([click(40, 50), click(80, 20, positive=False)], clicks),
    ]
    for items, prompt in cases:
        mask, score = served(client, task, items, 1024, 1024)
        (result,) = ultralytics(bgr, device="cpu", conf=0.0, verbose=False, **prompt)
        (expected,) = result.masks.data.numpy()
        assert 0 < expected.sum() < expected.size
        assert_equal_up_to_rounding(mask, expected)
        assert score == pytest.approx(float(result.boxes.conf[0]), abs=1e-5)


def test_a_checkpoint_of_another_architecture_does_not_fit_vit_t(tmp_path, tiny_checkpoint: Path) -> None:
    settings = sam_settings(tmp_path, SAM_MODEL_TYPE="vit_t", SAM_CHECKPOINT=str(tiny_checkpoint))
    with pytest.raises(LabelzooError, match=r"does not fit SAM_MODEL_TYPE='vit_t' \(Error\(s\) in loading"):
        checkpoint.load_sam(settings)


def test_vit_t_defaults_to_mobile_sams_published_checkpoint(tmp_path) -> None:
    settings = sam_settings(tmp_path, SAM_MODEL_TYPE="vit_t")
    source = checkpoint.checkpoint_source(settings)
    assert source.startswith("https://github.com/ChaoningZhang/MobileSAM/raw/")
    assert source.endswith("/weights/mobile_sam.pt")
    assert model.SegmentAnything(settings).base_version() == "sam-vit_t"
    mine = sam_settings(tmp_path, SAM_MODEL_TYPE="vit_t", SAM_CHECKPOINT="mobile_sam_finetuned.pt")
    assert model.SegmentAnything(mine).base_version() == "sam-vit_t-mobile_sam_finetuned"
