"""``labelzoo predict --tasks``: pre-annotate a task file or a media folder into Label Studio's import format.

The output is the input tasks, each with a ``predictions`` list holding one prediction of the model
version (an earlier prediction of the same version is replaced, others are kept), ready for Label
Studio's import. Tasks the backend failed on are written without one and reported.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelzoo.bulk.chunks import PredictFn
from labelzoo.bulk.journal import Journal, write_atomically
from labelzoo.bulk.progress import ProgressBar
from labelzoo.bulk.sources import SourceTask, fingerprint

MAX_ERRORS = 5


@dataclass
class OfflineSummary:
    total: int
    resumed: int = 0  # predicted by an earlier, interrupted run
    predicted: int = 0
    failed: int = 0
    interrupted: bool = False
    errors: list[str] = field(default_factory=list)


def predict_offline(
    predict: PredictFn,
    sources: Sequence[SourceTask],
    out: Path,
    *,
    model_version: str,
    label_config: str,
    chunk_size: int,
    stop: threading.Event,
    progress: ProgressBar | None = None,
) -> OfflineSummary:
    """Predict every source task in chunks, journaling each chunk, then write ``out`` at once."""
    journal = Journal(out, {
        "input": fingerprint(sources, model_version),
        "label_config": hashlib.sha256(label_config.encode()).hexdigest()[:16],
        "model_version": model_version,
        "tasks": len(sources),
    })
    done = journal.load()
    summary = OfflineSummary(total=len(sources), resumed=len(done))
    if progress is not None:
        progress.update(len(done), note=f"{len(done)} from the earlier run" if done else None)
    todo = [i for i in range(len(sources)) if i not in done]
    journal.open()
    completed = False
    try:
        for start in range(0, len(todo), chunk_size):
            if stop.is_set():
                summary.interrupted = True
                return summary
            indices = todo[start:start + chunk_size]
            items = predict([sources[i].task for i in indices])
            journal.append(list(zip(indices, items, strict=True)))
            for i, item in zip(indices, items, strict=True):
                if "result" in item:
                    done[i] = item
                    summary.predicted += 1
                else:
                    summary.failed += 1
                    if len(summary.errors) < MAX_ERRORS:
                        summary.errors.append(f"task {i}: {item.get('error')}")
            if progress is not None:
                progress.update(len(indices), note=f"{summary.failed} failed" if summary.failed else None)
        write_atomically(out, [_record(src, done.get(i), model_version) for i, src in enumerate(sources)])
        completed = True
    finally:
        journal.close(remove=completed)
    return summary


def _record(source: SourceTask, item: dict[str, Any] | None, model_version: str) -> dict[str, Any]:
    record = dict(source.record)
    kept = [p for p in record.get("predictions") or () if p.get("model_version") != model_version]
    if item is not None:
        kept.append({k: item[k] for k in ("model_version", "score", "result") if k in item})
    record["predictions"] = kept
    return record
