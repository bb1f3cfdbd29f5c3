"""Models named by a setting the Hugging Face way: a local folder, or a hub name fetched once into ``MODEL_DIR``.

A setting such as ``GLINER_MODEL`` or ``GROUNDING_MODEL`` names either a folder saved with the library's
``save_pretrained`` (relative paths are looked up under ``MODEL_ROOT`` first, then the working directory),
loaded with ``local_files_only`` so nothing is downloaded, or a hub name (``google/owlv2-base-patch16-ensemble``)
downloaded on first use into ``MODEL_DIR/<cache>`` and read from there afterwards. A model that cannot be had
is a :class:`~labelzoo.errors.LabelzooError` naming the setting and what to do, which ``/health`` shows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from labelzoo.errors import LabelzooError
from labelzoo.settings import Settings

T = TypeVar("T")


def pretrained_name(setting: str) -> str:
    """A short name for the model: its last path part, ``owlv2-base-patch16`` for ``google/owlv2-base-patch16``."""
    return Path(setting.rstrip("/")).name or setting


def local_folder(setting: str, settings: Settings) -> Path | None:
    """The folder ``setting`` names (under ``MODEL_ROOT`` first when relative), if it is one."""
    for candidate in (settings.model_path(setting), Path(setting).expanduser()):
        if candidate.is_dir():
            return candidate
    return None


def from_pretrained(
    load: Callable[[str, Mapping[str, Any]], T], setting: str, settings: Settings, *, cache: str, option: str,
    what: str,
) -> T:
    """``load(source, keyword arguments)`` of the folder or hub name ``setting`` (the value of ``option``).

    ``load`` is the library's ``from_pretrained`` taking ``local_files_only=True`` for a folder and
    ``cache_dir=MODEL_DIR/<cache>`` for a hub name; whatever it raises becomes a LabelzooError about ``what``.
    """
    folder = local_folder(setting, settings)
    cache_dir = settings.model_dir / cache
    try:
        if folder is not None:
            return load(str(folder), {"local_files_only": True})
        cache_dir.mkdir(parents=True, exist_ok=True)
        return load(setting, {"cache_dir": str(cache_dir)})
    except Exception as exc:
        hint = "" if folder is not None else (
            f" (a Hugging Face name is downloaded into {cache_dir} on first use, which needs internet; otherwise "
            f"set {option} to a folder saved with save_pretrained)")
        raise LabelzooError(f"cannot load {what} {setting!r}{hint}: {type(exc).__name__}: {exc}") from exc
