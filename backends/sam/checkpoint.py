"""Build the SAM model named by ``SAM_MODEL_TYPE`` and load ``SAM_CHECKPOINT`` into it, on ``DEVICE``.

``SAM_CHECKPOINT`` is a local path or an http(s) URL, fetched by :func:`labelzoo.weights.weights_file`
(relative paths under ``MODEL_ROOT``; URLs downloaded once into ``MODEL_DIR/checkpoints/``). Unset, it
is the official checkpoint for the model type: Meta's, whose download is checked against its size and
SHA-256, or MobileSAM's for ``vit_t`` (see :data:`OFFICIAL_CHECKPOINTS`). Nothing is downloaded at import
time, only in :func:`load_sam`.

The architecture comes from ``segment_anything.sam_model_registry``, plus ``vit_t`` (MobileSAM,
:mod:`.mobile_sam`); any builder registered there under a new name can be chosen with ``SAM_MODEL_TYPE``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
from segment_anything import sam_model_registry
from segment_anything.modeling import Sam

from labelzoo import LabelzooError, Settings
from labelzoo.devices import resolve_device
from labelzoo.options import Option
from labelzoo.ultralytics_env import quiet_ultralytics
from labelzoo.weights import RemoteFile, weights_file

from .mobile_sam import build_mobile_sam

log = logging.getLogger("labelzoo.sam")

DEFAULT_MODEL_TYPE = "vit_b"
MOBILE_SAM = "vit_t"  # MobileSAM's own name for its model type
_META = "https://dl.fbaipublicfiles.com/segment_anything"
OFFICIAL_CHECKPOINTS = {
    "vit_h": RemoteFile(f"{_META}/sam_vit_h_4b8939.pth", size=2564550879,
                        sha256="a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e"),
    "vit_l": RemoteFile(f"{_META}/sam_vit_l_0b3195.pth", size=1249524607,
                        sha256="3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622"),
    "vit_b": RemoteFile(f"{_META}/sam_vit_b_01ec64.pth", size=375042383,
                        sha256="ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912"),
    # MobileSAM's weights in its authors' repository, at a fixed commit, so the content cannot change; their
    # size and SHA-256 are not recorded here (git blob 7ef2d090979fd9853adf17b7a99c8b94a1c5a6a7).
    MOBILE_SAM: RemoteFile("https://github.com/ChaoningZhang/MobileSAM/raw/"
                           "a509aac54fdd7af59f843135f2f7cee307283c88/weights/mobile_sam.pt"),
}  # fmt: skip


def builders() -> dict[str, Callable[..., Sam]]:
    """The model types: segment_anything's registry, read now (so builders registered later count), and vit_t."""
    return {**sam_model_registry, MOBILE_SAM: build_mobile_sam}


def _registered(name: str) -> str:
    if name not in builders():
        known = ", ".join(sorted(k for k in builders() if k != "default"))
        raise ValueError(f"is not a SAM model type; use one of {known}")
    return name


MODEL_TYPE = Option(
    "SAM_MODEL_TYPE", str, DEFAULT_MODEL_TYPE, check=_registered,
    doc="`vit_b` (375 MB), `vit_l` (1.2 GB), `vit_h` (2.4 GB), or `vit_t` (MobileSAM, 40 MB: the choice for a "
    "CPU), or another key of `segment_anything.sam_model_registry`",
)
CHECKPOINT = Option(
    "SAM_CHECKPOINT", default_doc="the official checkpoint for the type",
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
    return OFFICIAL_CHECKPOINTS[name].url


def model_version(settings: Settings) -> str:
    """``sam-<type>`` with the type's official checkpoint, known by its file name (Meta's are
    ``sam_<type>_<hash>``, MobileSAM's ``mobile_sam``), else ``sam-<type>-<file name>``."""
    name = model_type(settings)
    stem = Path(checkpoint_source(settings).rsplit("/", 1)[-1]).stem
    official = OFFICIAL_CHECKPOINTS.get(name)
    if stem.startswith(f"sam_{name}_") or (official is not None and stem == Path(official.name).stem):
        return f"sam-{name}"
    return f"sam-{name}-{stem}"


def load_sam(settings: Settings) -> Sam:
    """The model, with the checkpoint's weights, in eval mode on the configured device."""
    name = model_type(settings)
    source = checkpoint_source(settings)
    official = {remote.url: remote for remote in OFFICIAL_CHECKPOINTS.values()}  # with their size and hash if known
    path = weights_file(official.get(source, source), settings, setting=CHECKPOINT.name, what="SAM checkpoint")
    if name == MOBILE_SAM:
        quiet_ultralytics(settings.model_dir / "ultralytics")  # before build_mobile_sam imports it
    sam = builders()[name]()
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
    return sam.to(device).eval()  # after loading: vit_t's TinyViT caches its attention biases in eval()
