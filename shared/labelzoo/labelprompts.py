"""Text prompts of a zero-shot model, taken from the label config: what it is asked to find for each label.

Zero-shot models (GLiNER for entities, OWLv2 and Grounding DINO for boxes) are given words, not class ids.
A ``<Label>`` asks with its ``predicted_values`` (comma-separated, e.g. ``predicted_values="person,pedestrian"``),
else its value. A project may override them in its ``extra_params`` (Label Studio's Extra params, or ``/setup``)
under a key the backend names, e.g. ``{"gliner_prompts": {"Person": "person, full name"}}``: a label listed there
is asked with those prompts instead; the others keep their own. Every prompt's findings go to its label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labelzoo.errors import RequestError
from labelzoo.labelconfig import ControlTag, LabelTag


def project_prompts(params: Mapping[str, Any], key: str) -> dict[str, list[str]]:
    """A project's ``extra_params[key]``: ``{label: "prompt, prompt"}``; a RequestError says what is wrong."""
    raw = params.get(key) or {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, str) for v in raw.values()):
        raise RequestError(f'extra_params.{key} must map labels to prompts: {{"Person": "person, full name"}}')
    return {str(label): split_prompts(value) for label, value in raw.items()}


def label_prompts(control: ControlTag, overrides: Mapping[str, list[str]]) -> dict[str, str]:
    """Each prompt the model is given for ``control``, and the label key its findings get, in label order."""
    prompts: dict[str, str] = {}
    for label in control.labels:
        for prompt in overrides.get(label.key) or own_prompts(label):
            prompts.setdefault(prompt, label.key)
    return prompts


def own_prompts(label: LabelTag) -> Sequence[str]:
    """A label's own prompts: its ``predicted_values``, else its value."""
    return label.predicted_values or [label.value or label.key]


def split_prompts(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]
