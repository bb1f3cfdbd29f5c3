"""Loaded backend instances, one per model version, kept in a small LRU pool.

The base model is loaded in a background thread at start-up, so ``/health`` answers at once while the
weights load. A project's trained version is loaded on first use; concurrent requests for the same
version wait for one load instead of starting several. A failed load is forgotten once reported, so the
next request tries again; its ``on_failure`` callback (the quarantine check) runs once per failed load,
before the waiting requests are told. A trained version's task-score map (:mod:`labelzoo.scoremap`) is read
with its weights, unless ``CALIBRATE_TASK_SCORES=false``.

Each load is timed in ``labelzoo_model_load_seconds`` (by kind, base or trained, and outcome); the base
model's state is ``labelzoo_model_state`` and ``labelzoo_model_ready`` (:mod:`labelzoo.observability`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labelzoo.backend import Backend
from labelzoo.errors import NotReady
from labelzoo.observability import core_metrics, set_base_model_state
from labelzoo.scoremap import ScoreMap
from labelzoo.settings import Settings

log = logging.getLogger("labelzoo.models")


@dataclass
class LoadState:
    state: str = "loading"  # loading | ready | failed
    error: str | None = None
    seconds: float | None = None
    notices: tuple[str, ...] = ()  # Backend.notices() of the loaded model


OnFailure = Callable[[Exception], None]


class _Slot:
    def __init__(self, instance: Backend, kind: str, on_failure: OnFailure | None = None) -> None:
        self.instance = instance
        self.kind = kind  # base | trained: a label of the load metrics
        self.on_failure = on_failure
        self.done = threading.Event()
        self.status = LoadState()

    def load(self) -> None:
        started = time.perf_counter()
        if self.kind == "base":
            set_base_model_state("loading")
        try:
            self.instance.load()
            if self.instance.settings.calibrate_task_scores:
                self.instance.task_scores = ScoreMap.read(self.instance.weights)
            notices = tuple(self.instance.notices())
        except Exception as exc:  # the error is reported by /health and by every predict
            log.exception("loading %s failed", type(self.instance).__name__)
            self.status = LoadState("failed", f"{type(exc).__name__}: {exc}", time.perf_counter() - started)
            if self.on_failure is not None:
                try:
                    self.on_failure(exc)
                except Exception:  # the load's own error is what the requests report
                    log.exception("handling the failed load of %s failed", type(self.instance).__name__)
        else:
            for notice in notices:
                log.warning("%s", notice)
            self.status = LoadState("ready", None, time.perf_counter() - started, notices)
        finally:
            if self.status.seconds is not None:  # ready or failed
                core_metrics().model_load_seconds.labels(self.kind, self.status.state).observe(self.status.seconds)
            if self.kind == "base":
                set_base_model_state(self.status.state)
            self.done.set()


class ModelPool:
    """Hands out loaded :class:`Backend` instances by version; the base instance is pinned."""

    def __init__(self, backend_cls: type[Backend], settings: Settings, *, capacity: int | None = None) -> None:
        self.backend_cls = backend_cls
        self._settings = settings
        self._capacity = capacity or settings.loaded_models
        self._lock = threading.Lock()
        self._base = _Slot(backend_cls(settings, weights=None), "base")
        self._trained: OrderedDict[str, _Slot] = OrderedDict()

    @property
    def base(self) -> Backend:
        return self._base.instance

    @property
    def base_state(self) -> LoadState:
        return self._base.status

    def start(self) -> None:
        threading.Thread(target=self._base.load, name="labelzoo-load-base", daemon=True).start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._base.done.wait(timeout) and self._base.status.state == "ready"

    def get(self, version: str, weights: Path | None, *, wait: float, on_failure: OnFailure | None = None) -> Backend:
        """The loaded instance for ``version`` (``weights`` None = the base model).

        ``on_failure`` is called with the error if this call starts a load of a trained version that fails.
        """
        if weights is None:
            slot = self._base
        else:
            slot = self._slot_for(
                version, lambda: _Slot(self.backend_cls(self._settings, weights=weights), "trained", on_failure)
            )
        if not slot.done.wait(wait):
            raise NotReady(f"model {version} is still loading; try again in a few seconds")
        if slot.status.state == "failed":
            if slot is not self._base:
                with self._lock:
                    self._trained.pop(version, None)  # let a later request retry the load
            raise NotReady(f"model {version} failed to load: {slot.status.error}")
        return slot.instance

    def _slot_for(self, version: str, make: Callable[[], _Slot]) -> _Slot:
        with self._lock:
            slot = self._trained.get(version)
            if slot is not None:
                self._trained.move_to_end(version)
                return slot
            slot = make()
            self._trained[version] = slot
            while len(self._trained) > self._capacity:
                evicted, _ = self._trained.popitem(last=False)
                log.info("unloaded model %s (LOADED_MODELS=%d)", evicted, self._capacity)
        threading.Thread(target=slot.load, name=f"labelzoo-load-{version}", daemon=True).start()
        return slot

    def loaded_versions(self) -> list[str]:
        with self._lock:
            return [v for v, s in self._trained.items() if s.status.state == "ready"]

    def loaded(self, version: str | None) -> Backend | None:
        """The ready instance of trained ``version`` (None: the base model) in this process, else None."""
        with self._lock:
            slot = self._base if version is None else self._trained.get(version)
        return slot.instance if slot is not None and slot.status.state == "ready" else None
