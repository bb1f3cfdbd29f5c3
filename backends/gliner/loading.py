"""Loading a GLiNER checkpoint: a folder, or a Hugging Face name fetched once into ``MODEL_DIR/gliner``."""

from __future__ import annotations

from typing import Any

import torch

from labelzoo.pretrained import from_pretrained
from labelzoo.settings import Settings


def load_gliner(setting: str, settings: Settings, device: torch.device) -> Any:
    """The model in eval mode on ``device``; LabelzooError saying what to do when it cannot be had."""
    from gliner import GLiNER

    model = from_pretrained(lambda source, kwargs: GLiNER.from_pretrained(source, **kwargs), setting, settings,
                            cache="gliner", option="GLINER_MODEL", what="GLiNER model")
    return model.to(device).eval()
