"""Build the SAM model named by ``SAM_MODEL_TYPE`` and load ``SAM_CHECKPOINT`` into it, on ``DEVICE``.

``SAM_CHECKPOINT`` is a local path (relative ones are looked up under ``MODEL_ROOT``, else the working
directory) or an http(s) URL, downloaded once into ``MODEL_DIR/checkpoints/``. Unset, it is Meta's
official checkpoint for the model type. Nothing is downloaded at import time, only in :func:`load_sam`.

The architecture comes from ``segment_anything.sam_model_registry``; any builder registered there under
a new name (a smaller encoder, for instance) can be chosen with ``SAM_MODEL_TYPE``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

import torch
from segment_anything import sam_model_registry
from segment_anything.modeling import Sam

from labelzoo import LabelzooError, Settings
from labelzoo.devices import resolve_device
from labelzoo.options import Option

log = logging.getLogger("labelzoo.sam")

DEFAULT_MODEL_TYPE = "vit_b"
OFFICIAL_CHECKPOINTS = {
    "vit_h": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
    "vit_l": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
    "vit_b": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
}


def _registered(name: str) -> str:
    if name not in sam_model_registry:
        known = ", ".join(sorted(k for k in sam_model_registry if k != "default"))
        raise ValueError(f"is not a SAM model type; use one of {known}")
    return name


MODEL_TYPE = Option(
    "SAM_MODEL_TYPE", str, DEFAULT_MODEL_TYPE, check=_registered,
    doc="`vit_b` (375 MB), `vit_l` (1.2 GB) or `vit_h` (2.4 GB): the architecture, a key of "
    "`segment_anything.sam_model_registry`",
)
CHECKPOINT = Option(
    "SAM_CHECKPOINT", default_doc="Meta's checkpoint for the type",
    doc="a `.pth` file (relative paths are looked up under `MODEL_ROOT`, else the working directory) or an "
    "http(s) URL, downloaded once into `MODEL_DIR/checkpoints/`",
)


def model_type(settings: Settings) -> str:
    return str(MODEL_TYPE.read(settings.env))


def checkpoint_source(settings: Settings) -> str:
    """``SAM_CHECKPOINT`` as given, or the official URL for the model type."""
    source = CHECKPOINT.read(settings.env)
    if source:
        return str(source)
    name = model_type(settings)
    if name not in OFFICIAL_CHECKPOINTS:
        raise LabelzooError(f"SAM_MODEL_TYPE={name!r} has no official checkpoint; set SAM_CHECKPOINT to its weights")
    return OFFICIAL_CHECKPOINTS[name]


def checkpoint_path(settings: Settings) -> Path:
    """A local file with the checkpoint, downloading a URL on first use."""
    source = checkpoint_source(settings)
    if urlsplit(source).scheme in ("http", "https"):
        return _download(source, settings.model_dir / "checkpoints")
    path = Path(source).expanduser()
    if not path.is_absolute():
        path = (settings.model_root or Path.cwd()) / path
    if not path.is_file():
        raise LabelzooError(
            f"SAM_CHECKPOINT {source!r}: no file at {path}; set it to an existing .pth file or to a download URL"
        )
    return path


def load_sam(settings: Settings) -> Sam:
    """The model, with the checkpoint's weights, in eval mode on the configured device."""
    name = model_type(settings)
    path = checkpoint_path(settings)
    sam = sam_model_registry[name]()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise LabelzooError(f"cannot read the SAM checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    try:
        sam.load_state_dict(state)
    except RuntimeError as exc:
        summary = str(exc).splitlines()[0]
        raise LabelzooError(
            f"the checkpoint {path} does not fit SAM_MODEL_TYPE={name!r} ({summary}); pick the type it was made for"
        ) from exc
    device = resolve_device(settings.device)
    log.info("loaded SAM %s from %s on %s", name, path, device)
    return sam.to(device).eval()


def _download(url: str, folder: Path) -> Path:
    target = folder / (Path(urlsplit(url).path).name or "sam_checkpoint.pth")
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    log.info("downloading SAM checkpoint %s to %s", url, target)
    try:
        torch.hub.download_url_to_file(url, str(target), progress=False)
    except Exception as exc:  # urllib raises URLError, HTTPError, timeouts, OSError...
        raise LabelzooError(
            f"cannot download the SAM checkpoint {url}: {type(exc).__name__}: {exc}. Without internet access, "
            f"download it elsewhere and put it at {target}, or set SAM_CHECKPOINT to a local .pth file"
        ) from exc
    return target
