"""A random-weight MobileSAM checkpoint (``SAM_MODEL_TYPE=vit_t``) in the official file's format, and the
libraries' own answers on it: segment_anything's ``SamPredictor`` and Ultralytics' ``SAM`` predictor.

``mobile_sam.pt`` as MobileSAM distributes it is the model's plain ``state_dict()`` (MobileSAM's builder
and Ultralytics' both ``load_state_dict`` what ``torch.load`` returns); the fixture saves one the same way,
from the backend's own builder, under the same file name (Ultralytics picks the architecture by it).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor
from segment_anything.modeling import Sam

from labelzoo.ultralytics_env import quiet_ultralytics
from tests.backends.sam_support import sam_module

quiet_ultralytics(Path(tempfile.gettempdir()) / "labelzoo-sam-tests")  # before anything imports Ultralytics

mobile_sam = sam_module("mobile_sam")


def mobile_sam_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    """MobileSAM's tensors, random. Every one is moved off its initial value (TinyViT starts its attention
    biases at zero and its batch norms at identity, which would hide a misplaced tensor), and the IoU head's
    output layer is scaled so predicted IoUs fall in 0..1 as a trained model's do: the backend clamps scores
    to that range, and Ultralytics' predictor drops masks scored below its ``conf``."""
    torch.manual_seed(seed)
    sam = mobile_sam.build_mobile_sam()
    with torch.no_grad():
        for parameter in sam.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
        for name, buffer in sam.named_buffers():
            if name.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                buffer.normal_(0.0, 0.1)
        iou_out = sam.mask_decoder.iou_prediction_head.layers[-1]
        iou_out.weight.mul_(0.1)
        iou_out.bias.fill_(0.5)
    return sam.state_dict()


@pytest.fixture(name="mobile_checkpoint", scope="session")
def mobile_checkpoint_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mobile_sam") / "mobile_sam.pt"
    torch.save(mobile_sam_weights(), path)
    return path


def mobile_reference(checkpoint: Path) -> SamPredictor:
    """segment_anything's predictor on the checkpoint loaded into MobileSAM's architecture, then switched to
    eval mode (which TinyViT needs after loading, as MobileSAM's README does it)."""
    sam: Sam = mobile_sam.build_mobile_sam()
    sam.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    return SamPredictor(sam.eval())


def best_mask(
    predictor: SamPredictor, *, points=None, labels=None, box=None, multimask: bool
) -> tuple[np.ndarray, float]:
    masks, scores, _ = predictor.predict(points, labels, box, multimask_output=multimask)
    best = int(np.argmax(scores))
    return masks[best], float(scores[best])


def ultralytics_sam(checkpoint: Path) -> Any:
    """Ultralytics' own MobileSAM (``ultralytics.SAM``) on the checkpoint: its builder, loader and predictor."""
    from ultralytics import SAM  # imported here, after quiet_ultralytics

    return SAM(str(checkpoint))


def ultralytics_mobile_sam_state() -> dict[str, torch.Tensor]:
    """The state dict of Ultralytics' MobileSAM builder, untrained."""
    from ultralytics.models.sam.build import build_mobile_sam

    return build_mobile_sam().state_dict()
