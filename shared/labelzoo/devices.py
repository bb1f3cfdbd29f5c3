"""Which torch device a backend runs on, from the ``DEVICE`` setting (``Settings.device``), and in what precision.

One rule for every backend: ``DEVICE=auto`` picks CUDA, then Apple's MPS, then the CPU, skipping the types
a backend cannot run on (its ``device_types``: Whisper leaves MPS out); any other value is checked, so a
device that is not there, or not usable by the backend, fails with a message naming ``DEVICE`` and the fix.
Half precision (fp16) is used on CUDA only (:func:`use_fp16`).

The syntax of ``DEVICE`` is checked without torch when the settings are read (:func:`check_device_setting`);
whether the device exists is checked by :func:`resolve_device` when a backend loads its model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from labelzoo.errors import LabelzooError

if TYPE_CHECKING:
    import torch

#: the device types backends run on, in the order ``DEVICE=auto`` prefers them
DEVICE_TYPES = ("cuda", "mps", "cpu")
_USE = "use auto, cpu, cuda, cuda:1 or mps"


def check_device_setting(setting: str) -> str:
    """``DEVICE`` normalised (``" CUDA "`` → ``"cuda"``, a bare GPU index ``"1"`` → ``"cuda:1"``), or a
    ``ValueError`` whose text completes ``DEVICE='…' …``."""
    text = setting.strip().lower()
    if text.isdigit():
        return f"cuda:{int(text)}"
    kind, colon, index = text.partition(":")
    if text == "auto" or (kind in DEVICE_TYPES and (not colon or index.isdigit())):
        return text
    raise ValueError(f"is not a torch device: {_USE}")


def resolve_device(setting: str, types: Sequence[str] = DEVICE_TYPES) -> torch.device:
    """The torch device for ``DEVICE=setting`` on a backend that runs on ``types`` (see the module doc)."""
    import torch  # only backends that run torch models call this; the core itself does not need torch

    try:
        name = check_device_setting(setting)
    except ValueError as exc:
        raise LabelzooError(f"DEVICE={setting!r} {exc}") from None
    if name == "auto":
        if "cuda" in types and torch.cuda.is_available():
            return torch.device("cuda")
        if "mps" in types and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type not in types:
        usable = ", ".join(t for t in DEVICE_TYPES if t in types)
        raise LabelzooError(
            f"DEVICE={setting!r}, but this backend does not run on {device.type.upper()}: use DEVICE=auto or one of "
            f"{usable}"
        )
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LabelzooError(f"DEVICE={setting!r} but this torch build sees no CUDA GPU; use DEVICE=cpu or auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise LabelzooError(f"DEVICE={setting!r} but MPS is not available here; use DEVICE=cpu or auto")
    return device


def use_fp16(device: torch.device | str) -> bool:
    """Whether a model runs in half precision (fp16) there: on CUDA only, where it is about twice as fast."""
    return str(device).strip().lower().partition(":")[0] == "cuda"


def describe_auto(types: Sequence[str] = DEVICE_TYPES) -> str:
    """What ``DEVICE=auto`` means for a backend, for its settings table."""
    names = {"cuda": "CUDA", "mps": "Apple's MPS", "cpu": "the CPU"}
    order = ", then ".join(names[t] for t in DEVICE_TYPES if t in types)
    skipped = [names[t] for t in DEVICE_TYPES if t not in types]
    text = f"`auto`: {order}"
    if skipped:
        text += f" ({' and '.join(skipped)} not supported)"
    examples = {"cpu": ["`cpu`"], "cuda": ["`cuda`", "`cuda:1`"], "mps": ["`mps`"]}
    return f"{text}; or {', '.join(e for t in ('cpu', 'cuda', 'mps') if t in types for e in examples[t])}"
