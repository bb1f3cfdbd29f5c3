"""Serving a model through a faster export of it, switched to in the background once it gives the same answers.

A backend that can export its weights to a faster runtime (OpenVINO, ONNX Runtime…) keeps predicting with the
original while an :class:`EngineSwitch` builds the export off the request path, checks it against the original
on a few inputs and only then hands it over; an export that fails or disagrees leaves the original serving,
with the reason in :meth:`EngineSwitch.status`. A check that has nothing to compare yet (a model that finds
nothing on the check inputs at start-up) raises :class:`Inconclusive`: the switch then waits, and the backend
calls :meth:`EngineSwitch.retry` once it has seen inputs worth comparing on. Exports are cached on disk by the
weights' content (:func:`content_key`, :func:`cached_build`), so each set of weights is exported once, across
restarts and processes.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

log = logging.getLogger("labelzoo.acceleration")

T = TypeVar("T")


def content_key(path: Path, length: int = 16) -> str:
    """The first ``length`` hex digits of the SHA-256 of a file's bytes: the same weights give the same key
    wherever they live, and changed weights under the same name get a new one."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def cached_build(folder: Path, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """``folder``, built by ``build(scratch)`` unless it is already there; and whether this call built it.

    ``build`` writes into a fresh scratch folder beside ``folder``, which is then renamed into place, so a
    crash or a concurrent build never leaves a half-written folder that looks finished. Builds in one parent
    folder take turns (a lock on it, across threads and processes): a second build of the same folder, e.g. by
    another server worker, waits for the first and then finds its folder instead of building it again at the same
    time (where a file system ignores the lock, the first rename wins and the other's copy is discarded). The
    root logger's level, filters and handlers are restored afterwards: exporters reconfigure them (OpenVINO's
    converter sets the level to ERROR, which would silence the server's warnings from then on).
    """
    if folder.is_dir():
        return folder, False
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _locked(folder.parent):
        if folder.is_dir():  # built while this call waited
            return folder, False
        return _build(folder, build)


def _build(folder: Path, build: Callable[[Path], None]) -> tuple[Path, bool]:
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        with _root_logger_kept():
            build(scratch)
        try:
            os.rename(scratch, folder)
        except OSError:
            if not folder.is_dir():
                raise
            return folder, False  # another build finished first
        return folder, True
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``directory``, released when the block ends (or the process dies)."""
    handle = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


@contextmanager
def _root_logger_kept() -> Iterator[None]:
    root = logging.getLogger()
    level, filters, handlers = root.level, list(root.filters), list(root.handlers)
    try:
        yield
    finally:
        root.setLevel(level)
        root.filters[:], root.handlers[:] = filters, handlers


class Inconclusive(Exception):
    """Raised by a check that had nothing to compare (say why): the switch waits for :meth:`EngineSwitch.retry`."""


class EngineSwitch(Generic[T]):
    """Prepares a faster engine for one model in a background thread and switches to it if it agrees.

    ``candidates`` are tried in order, each a name and a ``prepare()`` that builds (or finds) the export and
    loads it, e.g. an engine at reduced precision, then the same at full precision. ``verify(candidate)``
    compares a candidate with the original and returns what differs, or None when the answers agree, or
    raises :class:`Inconclusive`; the first that agrees is handed to ``switch(name, candidate)`` to serve.
    :meth:`status` says which engine serves and why, for ``/health``.
    """

    def __init__(
        self,
        what: str,
        native: str,
        candidates: Sequence[tuple[str, Callable[[], T]]],
        verify: Callable[[T], str | None],
        switch: Callable[[str, T], None],
    ) -> None:
        self.what, self.native, self.candidates = what, native, tuple(candidates)
        self._verify, self._switch = verify, switch
        self._engine, self._state = native, "preparing"  # preparing | waiting | switched | kept
        self._refused: list[str] = []
        self._waiting_for: str | None = None
        self._seconds: float | None = None
        self._lock = threading.Lock()

    def start(self) -> EngineSwitch[T]:
        threading.Thread(target=self._run, name=f"labelzoo-engine-{self.what}", daemon=True).start()
        return self

    def retry(self) -> bool:
        """Check again in the background if the last check was inconclusive; False when it was not."""
        with self._lock:
            if self._state != "waiting":
                return False
            self._state, self._refused = "preparing", []
        self.start()
        return True

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            for name, prepare in self.candidates:
                try:
                    candidate = prepare()
                    problem = self._verify(candidate)
                except Inconclusive as exc:
                    self._waiting_for, self._state = str(exc), "waiting"
                    log.info("%s: %s not checked yet: %s", self.what, name, exc)
                    return
                except Exception as exc:  # any failure leaves the original serving, said in /health
                    log.debug("preparing %s for %s failed", name, self.what, exc_info=True)
                    problem = f"it failed: {type(exc).__name__}: {exc}"
                if problem is None:
                    self._switch(name, candidate)
                    self._engine, self._state = name, "switched"
                    log.info("%s: now served by %s (it gives %s's answers)", self.what, name, self.native)
                    return
                self._refused.append(f"{name}: {problem}")
                log.info("%s: %s refused: %s", self.what, name, problem)
            self._state = "kept"
            log.warning("%s", self.reason)
        finally:
            self._seconds = time.perf_counter() - started

    @property
    def reason(self) -> str | None:
        """Why every faster engine was refused, once they were."""
        if self._state != "kept":
            return None
        return f"{self.what} stays on {self.native}: " + "; ".join(self._refused)

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {"engine": self._engine, "state": self._state}
        if self._state == "waiting":
            status["waiting_for"] = self._waiting_for
        if self._refused:
            status["refused"] = list(self._refused)
        if self._seconds is not None:
            status["seconds"] = round(self._seconds, 2)
        return status
