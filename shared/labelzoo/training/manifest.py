"""What a version's folder holds: the manifest recorded at promotion, and checks against it.

At promotion the runner records each file's size and SHA-256 (the ``files`` column of ``versions``). When
the version later fails to load, :func:`damage` compares the folder with that record: a file missing,
shorter or longer, or with other contents means the files broke (a truncated copy, a disk error, a hand
edit), not that loading failed for another reason (out of memory, a missing dependency); see
:mod:`labelzoo.training.quarantine`. :func:`signature` is the cheap stand-in (names, sizes, modification
and change times) that tells whether the files changed since a quarantine: a restore changes the change
time (``st_ctime``) even when it keeps the size and the modification time (``cp -p``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

#: relative path (``/``-separated) → (size in bytes, SHA-256 hex)
Manifest = dict[str, tuple[int, str]]

_CHUNK = 1 << 20


def _files(folder: Path) -> Iterator[tuple[str, os.stat_result, Path]]:
    """Every file under ``folder``, sorted by relative path; files that vanish meanwhile are left out."""
    for dirpath, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = Path(dirpath, name)
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            yield path.relative_to(folder).as_posix(), stat, path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def manifest(folder: Path) -> Manifest:
    return {name: (stat.st_size, _sha256(path)) for name, stat, path in _files(folder)}


def damage(folder: Path, expected: Mapping[str, Sequence[int | str]]) -> str | None:
    """What differs from ``expected``, in words; None when every recorded file is as it was promoted.

    Files added since are not counted (a backend may cache something next to its weights). Sizes are
    compared first, so a truncated or missing file is found without reading gigabytes.
    """
    for name, (size, _digest) in sorted(expected.items()):
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        actual = path.stat().st_size
        if actual != size:
            return f"{name} has {actual} bytes, training wrote {size}"
    for name, (_size, digest) in sorted(expected.items()):
        if _sha256(folder / name) != digest:
            return f"{name} is not what training wrote (its SHA-256 differs)"
    return None


def signature(folder: Path) -> str:
    """A digest of the names, sizes, modification and change times of the files under ``folder``."""
    digest = hashlib.sha256()
    for name, stat, _path in _files(folder):
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}\n".encode())
    return digest.hexdigest()
