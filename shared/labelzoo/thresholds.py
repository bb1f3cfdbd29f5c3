"""The one rule for the score a prediction needs to be shown, for every backend.

A control's threshold is, first found:

1. the control's ``model_score_threshold`` attribute (or ``score_threshold``, as upstream backends read it);
2. the ``MODEL_SCORE_THRESHOLD`` environment variable, when it is set;
3. the backend's declared default, ``Backend.default_score_threshold``: YOLO 0.25 (Ultralytics' own default
   confidence), 0 elsewhere (nothing is left out: spaCy shows every entity its pipeline finds).

Predictions (regions, choices, texts) scoring below the threshold are left out. A threshold is a score,
in 0..1: a control's attribute outside that range is a :class:`~labelzoo.errors.LabelConfigError` naming the
control, and ``MODEL_SCORE_THRESHOLD`` outside it stops the server at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labelzoo.errors import LabelConfigError

if TYPE_CHECKING:
    from labelzoo.labelconfig import ControlTag
    from labelzoo.settings import Settings


def score_threshold(control: ControlTag, default: float, settings: Settings | None = None) -> float:
    """The threshold of ``control`` by the rule above; ``settings`` carries ``MODEL_SCORE_THRESHOLD``."""
    threshold = control.score_threshold
    if threshold is None:
        env = settings.model_score_threshold if settings is not None else None
        return default if env is None else env
    if not 0.0 <= threshold <= 1.0:
        raise LabelConfigError(
            f'<{control.tag} name="{control.name}"> has a score threshold of {threshold:g}; use a value in 0..1'
        )
    return threshold
