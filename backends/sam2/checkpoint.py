"""Build the SAM 2 model ``SAM2_MODEL`` names (or a ``SAM2_CONFIG`` and ``SAM2_CHECKPOINT`` of one's own) on ``DEVICE``.

The network comes from a Hydra config as the ``sam2`` package builds it (``build_sam2_video_predictor``, with the
post-processing Meta's demos use): one of the package's own (``configs/sam2.1/sam2.1_hiera_t.yaml``) or a YAML
file. The video predictor it builds is a ``SAM2Base`` too, so one model in memory serves clicks on images
(``SAM2ImagePredictor``) and tracks in videos. The weights are a ``.pt`` file or URL (downloaded once into
``MODEL_DIR/checkpoints``); unset, the official checkpoint of ``SAM2_MODEL`` (Meta's, Apache-2.0).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from labelzoo import LabelzooError, Settings
from labelzoo.devices import resolve_device
from labelzoo.options import Option
from labelzoo.weights import weights_file

log = logging.getLogger("labelzoo.sam2")

_META = "https://dl.fbaipublicfiles.com/segment_anything_2"
_SIZES = (("tiny", "tiny", "t"), ("small", "small", "s"), ("base-plus", "base_plus", "b+"), ("large", "large", "l"))
#: name → (the sam2 package's config, the official checkpoint): SAM 2.1 (September 2024) and SAM 2.0 (July 2024)
OFFICIAL = {
    f"{release}-hiera-{size}": (f"configs/{release}/{release}_hiera_{short}.yaml",
                                f"{_META}/{date}/{release}_hiera_{stem}.pt")
    for release, date in (("sam2.1", "092824"), ("sam2", "072824"))
    for size, stem, short in _SIZES
}  # fmt: skip
DEFAULT_MODEL = "sam2.1-hiera-tiny"


def _official(name: str) -> str:
    if name not in OFFICIAL:
        raise ValueError(f"is not a SAM 2 model; use one of {', '.join(OFFICIAL)}")
    return name


MODEL = Option("SAM2_MODEL", str, DEFAULT_MODEL, check=_official,
               doc="`sam2.1-hiera-tiny` (39 M parameters: the choice for a CPU), `-small`, `-base-plus`, `-large`, or "
               "the same sizes of SAM 2.0 (`sam2-hiera-tiny`, ...): its config and official checkpoint")
CONFIG = Option("SAM2_CONFIG", default_doc="the config of `SAM2_MODEL`",
                doc="a config of the `sam2` package (`configs/sam2.1/sam2.1_hiera_s.yaml`) or a Hydra YAML file of "
                "one's own (relative paths are looked up under `MODEL_ROOT`)")
CHECKPOINT = Option("SAM2_CHECKPOINT", default_doc="the official checkpoint of `SAM2_MODEL`",
                    doc="a `.pt` file (relative paths under `MODEL_ROOT`) or an http(s) URL, downloaded once into "
                    "`MODEL_DIR/checkpoints/`")


def config_and_checkpoint(settings: Settings) -> tuple[str, str]:
    """``SAM2_CONFIG`` and ``SAM2_CHECKPOINT`` as given, each defaulting to ``SAM2_MODEL``'s."""
    config, url = OFFICIAL[str(MODEL.read(settings.env))]
    return str(CONFIG.read(settings.env) or config), str(CHECKPOINT.read(settings.env) or url)


def model_version(settings: Settings) -> str:
    """``SAM2_MODEL`` for its official checkpoint, else ``sam2-<checkpoint file name>``."""
    name = str(MODEL.read(settings.env))
    _, checkpoint = config_and_checkpoint(settings)
    return name if checkpoint == OFFICIAL[name][1] else f"sam2-{Path(checkpoint.rsplit('/', 1)[-1]).stem}"


def load_sam2(settings: Settings, predictor: type) -> Any:
    """The video predictor (of class ``predictor``, a ``SAM2VideoPredictor``) with the checkpoint's weights, in eval
    mode on the configured device, built as ``build_sam2_video_predictor`` builds it."""
    from sam2.build_sam import build_sam2_video_predictor

    target = [f"++model._target_={predictor.__module__}.{predictor.__qualname__}"]
    config, source = config_and_checkpoint(settings)
    checkpoint = weights_file(source, settings, setting=CHECKPOINT.name, what="SAM 2 checkpoint")
    device = resolve_device(settings.device)
    file = settings.model_path(config)
    own = file.suffix in (".yaml", ".yml") and file.is_file()
    try:
        with _config_folder(file.parent) if own else nullcontext():
            model = build_sam2_video_predictor(file.stem if own else config, str(checkpoint), device=str(device),
                                               hydra_overrides_extra=target)  # fmt: skip
    except RuntimeError as exc:  # load_state_dict's missing / unexpected keys
        summary = str(exc).splitlines()[0]
        raise LabelzooError(f"the checkpoint {checkpoint} does not fit the SAM 2 config {config} ({summary})") from exc
    except Exception as exc:  # Hydra: no such config, a config that does not build
        problem = f"{type(exc).__name__}: {exc}"
        raise LabelzooError(f"SAM2_CONFIG={config!r} does not build a SAM 2 model: {problem}") from exc
    log.info("loaded SAM 2 %s from %s on %s", config, checkpoint, device)
    return model


@contextmanager
def _config_folder(folder: Path) -> Iterator[None]:
    """Hydra composing configs from ``folder`` for a while: importing ``sam2`` points Hydra's one global state at
    the package's own configs, which is put back afterwards."""
    from hydra import initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(folder.resolve()), version_base="1.2"):
            yield
    finally:
        GlobalHydra.instance().clear()
        initialize_config_module("sam2", version_base="1.2")
