"""Model weights named by a setting: a local file, or a URL downloaded once into a folder and checked.

``weights_file(source, settings, setting=..., what=...)`` is what a backend's ``load()`` calls with the
value of its checkpoint setting (or its default, a :class:`RemoteFile` of the official weights):

* a local path: ``~`` expanded, a relative one looked up under ``MODEL_ROOT`` (else the working
  directory); a missing file is an error naming the setting and the path tried;
* an http(s) URL or a :class:`RemoteFile`: downloaded on first use into ``folder`` (default
  ``MODEL_DIR/checkpoints``) under the URL's file name, and found there afterwards. The download goes
  to a temporary file next to the target, is checked against the known size and SHA-256, and only then
  renamed into place, so an interrupted or damaged download never leaves a file that looks complete.
  A file already there is checked against the known size only (hashing gigabytes on every start is
  too slow). Without internet access the error says where to put the file by hand.

Nothing here imports a framework: the caller loads the file it gets back.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from labelzoo.errors import LabelzooError
from labelzoo.settings import Settings

log = logging.getLogger("labelzoo.weights")

#: seconds a download may wait for the server before it fails (per read, not for the whole file)
DOWNLOAD_TIMEOUT = 60.0
_CHUNK = 1 << 20
_downloading = threading.Lock()  # one download at a time per process: two loads of one file share it


@dataclass(frozen=True)
class RemoteFile:
    """A file to download once: its URL and, when known, its size in bytes and SHA-256 (hex)."""

    url: str
    size: int | None = None
    sha256: str | None = None

    @property
    def name(self) -> str:
        """The file name it is stored under: the last part of the URL's path."""
        return Path(urlsplit(self.url).path).name


def is_url(source: str) -> bool:
    return urlsplit(source).scheme in ("http", "https")


def weights_file(
    source: str | RemoteFile, settings: Settings, *, setting: str, what: str, folder: Path | None = None
) -> Path:
    """A local file with the weights ``source`` names: a path (under ``MODEL_ROOT`` when relative), or a URL
    downloaded into ``folder`` (default ``MODEL_DIR/checkpoints``) on first use.

    ``setting`` is the variable ``source`` came from and ``what`` names the file in messages
    (``"SAM checkpoint"``); every failure is a :class:`LabelzooError` that says what to do.
    """
    if isinstance(source, str) and is_url(source):
        source = RemoteFile(source)
    if isinstance(source, RemoteFile):
        return download_once(source, folder or settings.model_dir / "checkpoints", setting=setting, what=what)
    path = settings.model_path(source).absolute()
    if not path.is_file():
        raise LabelzooError(
            f"{setting} {source!r}: no file at {path}; set it to an existing {what} file or to a download URL"
        )
    return path


def download_once(remote: RemoteFile, folder: Path, *, setting: str, what: str) -> Path:
    """``folder/<file name>``, downloading ``remote`` there unless it is there already."""
    target = folder / (remote.name or "weights")
    with _downloading:
        if target.is_file():
            _check_size(target, remote, what)
            return target
        folder.mkdir(parents=True, exist_ok=True)
        log.info("downloading the %s %s to %s", what, remote.url, target)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out:
                digest = _fetch(remote.url, out)
            problem = _mismatch(remote, Path(temporary).stat().st_size, digest)
            if problem:
                raise LabelzooError(
                    f"the {what} downloaded from {remote.url} {problem}: the download was damaged or the file "
                    f"changed upstream; start again, or put a good copy at {target}"
                )
            os.replace(temporary, target)
        except LabelzooError:
            raise
        except Exception as exc:  # urllib raises URLError, HTTPError, timeouts, OSError...
            raise LabelzooError(
                f"cannot download the {what} {remote.url}: {type(exc).__name__}: {exc}. Without internet access, "
                f"download it elsewhere and put it at {target}, or set {setting} to a local file"
            ) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
    log.info("downloaded the %s to %s (%d bytes)", what, target, target.stat().st_size)
    return target


def _fetch(url: str, out: BinaryIO) -> str:
    """Stream ``url`` into the binary file ``out``; returns the SHA-256 of what was written."""
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "labelzoo"})
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:  # the operator's URL
        while chunk := response.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _mismatch(remote: RemoteFile, size: int, sha256: str) -> str | None:
    if remote.size is not None and size != remote.size:
        return f"has {size} bytes, not {remote.size}"
    if remote.sha256 is not None and sha256 != remote.sha256.lower():
        return f"has SHA-256 {sha256}, not {remote.sha256}"
    return None


def _check_size(path: Path, remote: RemoteFile, what: str) -> None:
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        raise LabelzooError(
            f"{path} has {size} bytes, but the {what} {remote.url} has {remote.size}: it is incomplete or another "
            "file; delete it to download it again, or replace it with a complete copy"
        )
