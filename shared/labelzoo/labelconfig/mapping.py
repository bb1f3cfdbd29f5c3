"""Map a model's class names onto the label keys of one control tag.

Rules, tried in this order for each model label (the first rule that matches wins, and within a
rule the first config label in document order wins):

1. a ``<Label predicted_values="car, truck">`` lists the model label exactly;
2. it lists it loosely (see below);
3. the model label equals the label's key (``alias`` if set, else ``value``) exactly;
4. it equals the label's ``value`` exactly (so ``<Label value="car" alias="C">`` is fed by "car");
5. it equals the key loosely;
6. it equals the value loosely.

*Loosely* means after ``str.casefold`` and treating runs of ``_``, ``-`` and whitespace as one
space, so "Traffic_Light", "traffic-light" and "traffic light" are equal. A model label maps to at
most one config label; a config label may be fed by several model labels.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from labelzoo.labelconfig.tags import ControlTag, LabelTag

_SEPARATORS = re.compile(r"[\s_-]+")
_LIST_LIMIT = 20


def _loose(text: str) -> str:
    return _SEPARATORS.sub(" ", text.casefold()).strip()


_RULES: tuple[Callable[[str, LabelTag], bool], ...] = (
    lambda m, label: m in label.predicted_values,
    lambda m, label: _loose(m) in {_loose(p) for p in label.predicted_values},
    lambda m, label: m == label.key,
    lambda m, label: m == label.value,
    lambda m, label: _loose(m) == _loose(label.key),
    lambda m, label: label.value is not None and _loose(m) == _loose(label.value),
)


@dataclass(frozen=True)
class LabelMap:
    """Which config label key each model label becomes, for one control."""

    control_name: str
    control_tag: str
    model_labels: tuple[str, ...]
    config_labels: tuple[str, ...]
    mapping: Mapping[str, str] = field(hash=False)
    """Model label → config label key, in model-label order."""
    unmapped_model_labels: tuple[str, ...]
    """Model labels that no config label takes; predictions with them should be dropped."""
    unfed_config_labels: tuple[str, ...]
    """Config labels that no model label feeds."""
    dynamic: bool = False
    """The control takes its labels from task data, so every model label maps to itself."""

    def get(self, model_label: str) -> str | None:
        """The config label key to put in results for ``model_label``; ``None`` to drop it."""
        return self.mapping.get(model_label)

    @property
    def is_empty(self) -> bool:
        return not self.mapping

    def report(self) -> str:
        """A readable, multi-line account of how the model's labels fit the config."""
        who = f"{self.control_tag} '{self.control_name}'"
        if self.dynamic:
            return (
                f"{who}: labels come from task data (dynamic labels), so model labels are used as they "
                f"are: {_listing(self.model_labels)}"
            )
        child = "Choice" if self.control_tag.lower() in ("choices", "taxonomy") else "Label"
        lines = []
        if not self.config_labels:
            lines.append(
                f"{who} has no <{child}> children — predictions for it will be empty; "
                f'add <{child} value="..."/> for each class to predict'
            )
        elif self.is_empty:
            lines.append(
                f"no label of the model matches any <{child}> of {who} — predictions for it will be empty"
            )
        renamed = [f"{m} -> {key}" for m, key in self.mapping.items() if m != key]
        lines.append(
            f"{who}: {len(self.mapping)} of {len(self.model_labels)} model labels map to config labels"
            + (f" (renamed: {_listing(renamed)})" if renamed else "")
        )
        if self.unmapped_model_labels:
            lines.append(
                f"{who}: model labels not in the config: {_listing(self.unmapped_model_labels)} "
                f'(add predicted_values="{self.unmapped_model_labels[0]}" to a <{child}> to map one)'
            )
        if self.unfed_config_labels:
            lines.append(
                f"{who}: config labels the model cannot predict: {_listing(self.unfed_config_labels)}"
            )
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        return {
            "control": self.control_name,
            "type": self.control_tag.lower(),
            "dynamic": self.dynamic,
            "mapping": dict(self.mapping),
            "unmapped_model_labels": list(self.unmapped_model_labels),
            "unfed_config_labels": list(self.unfed_config_labels),
            "report": self.report(),
        }


def build_label_map(control: ControlTag, model_labels: Iterable[str] | Mapping[int, str]) -> LabelMap:
    """Map ``model_labels`` (names, or ``{index: name}`` as Ultralytics' ``model.names``) onto
    ``control``'s labels; see the module docstring for the rules."""
    if isinstance(model_labels, str):
        raise TypeError("model_labels must be a collection of label names, not a single string")
    names = model_labels.values() if isinstance(model_labels, Mapping) else model_labels
    model = tuple(dict.fromkeys(str(name) for name in names))
    if control.dynamic_labels:
        return LabelMap(
            control_name=control.name,
            control_tag=control.tag,
            model_labels=model,
            config_labels=(),
            mapping=MappingProxyType({m: m for m in model}),
            unmapped_model_labels=(),
            unfed_config_labels=(),
            dynamic=True,
        )
    found: dict[str, str] = {}
    for rule in _RULES:
        for m in model:
            if m not in found:
                label = next((lb for lb in control.labels if rule(m, lb)), None)
                if label is not None:
                    found[m] = label.key
    mapping = {m: found[m] for m in model if m in found}
    fed = set(mapping.values())
    return LabelMap(
        control_name=control.name,
        control_tag=control.tag,
        model_labels=model,
        config_labels=control.label_keys,
        mapping=MappingProxyType(mapping),
        unmapped_model_labels=tuple(m for m in model if m not in found),
        unfed_config_labels=tuple(k for k in control.label_keys if k not in fed),
    )


def label_or_first(control: ControlTag, model_label: str) -> str | None:
    """The label a single-class model's regions get in ``control``: the one ``model_label`` maps to (the rules
    above), else the control's first label; None when the control has no labels of its own.

    For models that find one kind of thing (speech, "an object", text lines) whatever the control calls it.
    A control with dynamic labels maps every name to itself, so there only its own first label counts.
    """
    mapped = None if control.dynamic_labels else build_label_map(control, [model_label]).get(model_label)
    if mapped is not None:
        return mapped
    return control.label_keys[0] if control.label_keys else None


class TrainingNames(dict[str, str]):
    """Config label key → the model label it trains as; a key not listed (a dynamic label) trains under its own
    name."""

    def __missing__(self, key: str) -> str:
        return key


def training_names(controls: Iterable[ControlTag], model_labels: Iterable[str]) -> TrainingNames:
    """The other way round from :func:`build_label_map`, for training: which model label each config label of
    ``controls`` becomes. The first of ``model_labels`` (in the order given) that feeds it under the rules
    above, the first control deciding; a label no model label feeds keeps its key, a new label of the model
    named as in the config."""
    labels = list(model_labels)
    names = TrainingNames()
    for control in controls:
        for model_label, key in build_label_map(control, labels).mapping.items():
            names.setdefault(key, model_label)
        for key in control.label_keys:
            names.setdefault(key, key)
    return names


def _listing(items: Iterable[str]) -> str:
    items = list(items)
    shown = ", ".join(items[:_LIST_LIMIT])
    return shown + (f", … and {len(items) - _LIST_LIMIT} more" if len(items) > _LIST_LIMIT else "")
