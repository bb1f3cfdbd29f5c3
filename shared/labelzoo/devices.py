"""Which torch device a backend runs on, from the ``DEVICE`` setting (``Settings.device``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from labelzoo.errors import LabelzooError

if TYPE_CHECKING:
    import torch


def resolve_device(setting: str) -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; anything else is checked and used as given."""
    import torch  # only backends that run torch models call this; the core itself does not need torch

    if setting.strip().lower() == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(setting.strip())
    except RuntimeError as exc:
        raise LabelzooError(f"DEVICE={setting!r} is not a torch device: use auto, cpu, cuda, cuda:1 or mps") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LabelzooError(f"DEVICE={setting!r} but this torch build sees no CUDA GPU; use DEVICE=cpu or auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise LabelzooError(f"DEVICE={setting!r} but MPS is not available here; use DEVICE=cpu or auto")
    return device
