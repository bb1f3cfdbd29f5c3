"""A new version's task-score map (:mod:`labelzoo.scoremap`), fitted on the tasks its ``fit`` held out.

Runs in the training process right after ``fit``: the new version is loaded from its folder as the server
will load it, predicts its held-out tasks through the core's :func:`~labelzoo.prediction.run_backend` (so
with the same batching and thresholds as ``/predict``), and each task gives a pair (raw task score, whether
the shown result equals the human one on the controls the backend fills, :meth:`Backend.agrees`). A task
that fails to predict, or has no score, is no evidence either way and is left out.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path
from typing import Any

from labelzoo import calibration
from labelzoo.backend import Backend, PredictContext, TrainingData
from labelzoo.media import MediaResolver
from labelzoo.prediction import run_backend, to_json
from labelzoo.scoremap import ScoreMap
from labelzoo.settings import Settings


def held_out_pairs(model: Backend, data: TrainingData, held_out: Collection[Any], media: MediaResolver
                   ) -> list[tuple[float, bool]]:  # fmt: skip
    """``(raw task score, right)`` for each held-out example the loaded ``model`` predicts
    (:func:`labelzoo.calibration.held_out_pairs`, every scored task counting)."""
    ctx = PredictContext(project=data.project, config=data.config, media=media, settings=model.settings,
                         model_version="held-out")
    examples = [calibration.HeldOut(e.task, e.result) for e in data.examples if e.task.id in held_out]
    controls = {control.name for control, _ in type(model).fills(data.config)}
    return calibration.held_out_pairs(
        examples, lambda tasks: [to_json(p, ctx.model_version) for p in run_backend(model, tasks, ctx)],
        model.agrees, controls, shown_only=False)


def calibrate(backend_cls: type[Backend], settings: Settings, folder: Path, data: TrainingData,
              held_out: Collection[Any], media: MediaResolver, logger: logging.Logger) -> ScoreMap | None:
    """Fit and save the map of the version in ``folder``; None when it has no held-out task to learn from or
    calibration is off. A failure is logged and leaves the version with its raw scores: it never fails the job."""
    if not settings.calibrate_task_scores:
        return None
    if not held_out:
        logger.info("no held-out tasks: the new version serves raw task scores")
        return None
    try:
        model = backend_cls(settings, weights=folder)
        model.load()
        pairs = held_out_pairs(model, data, set(held_out), media)
    except Exception:
        logger.warning("task scores not calibrated: predicting the held-out tasks failed", exc_info=True)
        return None
    if not pairs:
        logger.info("no held-out task was predicted with a score: the new version serves raw task scores")
        return None
    scores = ScoreMap.fit(pairs)
    scores.save(folder)
    logger.info("%s", scores.describe())
    return scores
