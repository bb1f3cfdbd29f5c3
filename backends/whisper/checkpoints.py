"""Where the openai-whisper weights ``WHISPER_MODEL`` names are: an official model downloaded by openai-whisper, a
checkpoint file, or a checkpoint URL downloaded once.

The official models' URLs (with their SHA-256 in the path) and word-timing heads are openai-whisper's own tables
(``whisper._MODELS``, ``whisper._ALIGNMENT_HEADS``), and its ``whisper._download`` fetches and checks them, as
``whisper.load_model(name)`` does: internals of the pinned openai-whisper release (20250625), read here so that the
faster-whisper engine gets the very file the openai engine loads, and knows its content before downloading it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import whisper

from labelzoo.weights import RemoteFile, download_once, is_url


@dataclass(frozen=True)
class Official:
    """An official Whisper model: its name, URL, SHA-256 and word-timing heads (as openai-whisper stores them)."""

    name: str
    url: str
    alignment_heads: bytes

    @property
    def sha256(self) -> str:
        return self.url.split("/")[-2]

    def download(self, root: Path) -> Path:
        """The checkpoint in ``root``, downloaded by openai-whisper unless it is there with the right SHA-256."""
        try:
            return Path(whisper._download(self.url, str(root), in_memory=False))
        except (URLError, ConnectionError, TimeoutError) as exc:
            raise download_failed(self.name, root, exc) from exc


def official(name: str) -> Official | None:
    """The official model ``name`` names, None for anything else."""
    if name not in whisper.available_models():
        return None
    return Official(name, whisper._MODELS[name], whisper._ALIGNMENT_HEADS[name])


def download_failed(name: str, root: Path, exc: Exception) -> RuntimeError:
    return RuntimeError(
        f"cannot download the Whisper {name!r} weights into {root} ({exc}); "
        "without internet, set WHISPER_MODEL to a model on disk"
    )


def checkpoint_file(model: str, root: Path) -> Path:
    """The local file of a checkpoint setting: the path itself, or a URL's download into ``root`` (once)."""
    if is_url(model):
        return download_once(RemoteFile(model), root, setting="WHISPER_MODEL", what="Whisper checkpoint")
    return Path(model)
