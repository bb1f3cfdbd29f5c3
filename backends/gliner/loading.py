"""Loading a GLiNER checkpoint: a folder, or a Hugging Face name fetched once into ``MODEL_DIR/gliner``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from labelzoo.errors import LabelzooError
from labelzoo.settings import Settings


def model_name(setting: str) -> str:
    """The base version: the checkpoint's last path part, ``gliner_small-v2.1`` for ``urchade/gliner_small-v2.1``."""
    return Path(setting.rstrip("/")).name or setting


def local_folder(setting: str, settings: Settings) -> Path | None:
    """The folder ``setting`` names (under ``MODEL_ROOT`` first when relative), if it is one."""
    for candidate in (settings.model_path(setting), Path(setting).expanduser()):
        if candidate.is_dir():
            return candidate
    return None


def load_gliner(setting: str, settings: Settings, device: torch.device) -> Any:
    """The model in eval mode on ``device``; LabelzooError saying what to do when it cannot be had."""
    from gliner import GLiNER

    folder = local_folder(setting, settings)
    cache = settings.model_dir / "gliner"
    try:
        if folder is not None:
            model = GLiNER.from_pretrained(str(folder), local_files_only=True)
        else:
            cache.mkdir(parents=True, exist_ok=True)
            model = GLiNER.from_pretrained(setting, cache_dir=str(cache))
    except Exception as exc:
        hint = "" if folder is not None else (
            f" (a Hugging Face name is downloaded into {cache} on first use, which needs internet; otherwise "
            "set GLINER_MODEL to a folder saved with GLiNER.save_pretrained)")
        raise LabelzooError(f"cannot load GLiNER model {setting!r}{hint}: {type(exc).__name__}: {exc}") from exc
    return model.to(device).eval()
