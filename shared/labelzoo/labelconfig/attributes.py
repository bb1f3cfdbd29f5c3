"""The ``model_*`` attributes of a control: which a backend honours, and a warning for each it does not.

Label Studio passes a control's attributes through untouched, and configs written for upstream's examples
carry theirs (``model_conf``, ``model_tracker``…). An attribute a backend silently ignores looks honoured to
the user, so every ``model_*`` attribute (and upstream's ``score_threshold``) on a control the backend fills
is either read by the backend or named in ``/setup``'s warnings with the reason.
"""

from __future__ import annotations

from collections.abc import Callable

from labelzoo.labelconfig.tags import ControlTag

#: read by the core for every backend: the control is left alone
CORE_ATTRIBUTES = ("model_skip",)
#: both spellings of a control's score threshold (:mod:`labelzoo.thresholds`)
THRESHOLD_ATTRIBUTES = ("model_score_threshold", "score_threshold")


def model_attributes(control: ControlTag) -> list[tuple[str, str]]:
    """``(name, value)`` of the control's ``model_*`` and ``score_threshold`` attributes, names lowercased as
    the editor reads them, in the order written."""
    found = []
    for name, value in control.attrs.items():
        lowered = name.lower()
        if lowered.startswith("model_") or lowered == "score_threshold":
            found.append((lowered, value))
    return found


def attribute_warnings(control: ControlTag, ignored: Callable[[ControlTag, str], str | None]) -> list[str]:
    """A warning for each model attribute of ``control`` that ``ignored`` gives a reason for (None: honoured)."""
    warnings = []
    for name, value in model_attributes(control):
        if name in CORE_ATTRIBUTES:
            continue
        why = ignored(control, name)
        if why is not None:
            warnings.append(f'<{control.tag} name="{control.name}"> has {name}="{value}", which changes nothing: {why}')
    return warnings
