"""Typed, immutable views of a parsed Label Studio label config.

Attribute mappings keep the raw XML attribute names in their original case (as Label Studio's SDK
does); use :meth:`ControlTag.attr` for a case-insensitive lookup, because the editor itself
lowercases attribute names, so ``smartOnly`` and ``smartonly`` mean the same thing there.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from labelzoo.errors import LabelConfigError

# Canonical spellings of Label Studio's tags; matching is case-insensitive.
CONTROL_TAG_NAMES = (
    "RectangleLabels", "Rectangle", "PolygonLabels", "Polygon", "KeyPointLabels", "KeyPoint",
    "BrushLabels", "Brush", "EllipseLabels", "Ellipse", "Labels", "HyperTextLabels", "ParagraphLabels",
    "TimeSeriesLabels", "TimelineLabels", "Choices", "TextArea", "Rating", "Number", "DateTime",
    "Taxonomy", "Pairwise", "VideoRectangle", "BitmaskLabels", "Bitmask", "MagicWand", "Vector",
    "VectorLabels", "Ranker",
)  # fmt: skip
OTHER_TAG_NAMES = (
    "View", "Header", "Style", "Filter", "Collapse", "Repeater", "Shortcut", "Image", "Text",
    "HyperText", "Audio", "AudioPlus", "Video", "Paragraphs", "TimeSeries", "Channel", "MultiChannel",
    "Table", "List", "Bucket", "Pdf", "Markdown", "Chat", "ReactCode", "Label", "Choice", "Relation",
    "Relations",
)  # fmt: skip
_CANONICAL = {name.lower(): name for name in CONTROL_TAG_NAMES + OTHER_TAG_NAMES}


def canonical_tag(tag: str) -> str:
    """``"RECTANGLELABELS"`` → ``"RectangleLabels"``; unknown tags keep their case."""
    return _CANONICAL.get(tag.lower(), tag)


#: result types that are not the control's tag in lower case
_RESULT_TYPES = {"chat": "chatmessage"}
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def lookup_attr(attrs: Mapping[str, str], name: str) -> str | None:
    """Value of attribute ``name`` in ``attrs``, matching the name case-insensitively.

    An exact-case match wins over a case-insensitive one.
    """
    if name in attrs:
        return attrs[name]
    wanted = name.lower()
    for key, value in attrs.items():
        if key.lower() == wanted:
            return value
    return None


@dataclass(frozen=True)
class ObjectTag:
    """A data-bearing tag such as ``<Image name="image" value="$image"/>``."""

    name: str
    tag: str
    value: str
    value_key: str | None
    """The task-data key: ``"image"`` for ``value="$image"``; ``None`` when the value is not a
    ``$variable``. Dotted or unusual keys are kept as written (minus the ``$``)."""
    value_list: bool
    """True when the tag uses ``valueList`` (e.g. multi-image ``<Image valueList="$images"/>``)."""
    value_type: str | None
    attrs: Mapping[str, str] = field(hash=False, repr=False)

    def attr(self, name: str, default: str | None = None) -> str | None:
        found = lookup_attr(self.attrs, name)
        return default if found is None else found


@dataclass(frozen=True)
class LabelTag:
    """A ``<Label>``, ``<Choice>`` or ``<Relation>`` inside a control."""

    value: str | None
    alias: str | None
    key: str
    """What goes into prediction results: ``alias`` when set, otherwise ``value``."""
    background: str | None
    predicted_values: tuple[str, ...]
    """Model labels this label claims, from ``predicted_values="car, truck"``."""
    attrs: Mapping[str, str] = field(hash=False, repr=False)

    def attr(self, name: str, default: str | None = None) -> str | None:
        found = lookup_attr(self.attrs, name)
        return default if found is None else found


@dataclass(frozen=True)
class ControlTag:
    """A tag that produces results, e.g. ``<RectangleLabels name="label" toName="image">``."""

    name: str
    tag: str
    to_names: tuple[str, ...]
    objects: tuple[ObjectTag, ...]
    """The connected object tags that exist, in ``toName`` order."""
    labels: tuple[LabelTag, ...]
    attrs: Mapping[str, str] = field(hash=False, repr=False)
    dynamic_labels: bool = False
    """True when labels come from task data (``value="$options"``) or from an ``apiUrl``."""

    def attr(self, name: str, default: str | None = None) -> str | None:
        """Raw attribute ``name``, looked up case-insensitively."""
        found = lookup_attr(self.attrs, name)
        return default if found is None else found

    def bool_attr(self, name: str, default: bool) -> bool:
        """Attribute ``name`` read as a boolean (true/false, 1/0, yes/no, on/off)."""
        raw = self.attr(name)
        if raw is None:
            return default
        text = raw.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise LabelConfigError(
            f'<{self.tag} name="{self.name}"> has {name}="{raw}", which is not a boolean; '
            f'use {name}="true" or {name}="false"'
        )

    def float_attr(self, name: str, default: float | None = None) -> float | None:
        """Attribute ``name`` read as a finite number."""
        raw = self.attr(name)
        if raw is None:
            return default
        try:
            number = float(raw.strip())
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise LabelConfigError(
                f'<{self.tag} name="{self.name}"> has {name}="{raw}", which is not a number; '
                f'use e.g. {name}="0.5"'
            )
        return number

    @property
    def result_type(self) -> str:
        """The ``type`` of this control's prediction results, e.g. ``"rectanglelabels"``: the tag in lower case,
        but ``"chatmessage"`` for a ``<Chat>`` (label-studio-sdk's ``ChatMessageTag``, the control side of it)."""
        return _RESULT_TYPES.get(self.tag.lower(), self.tag.lower())

    @property
    def label_keys(self) -> tuple[str, ...]:
        """Label keys in document order, without duplicates."""
        return tuple(dict.fromkeys(label.key for label in self.labels))

    @property
    def per_region(self) -> bool:
        return self.bool_attr("perRegion", False)

    @property
    def smart(self) -> bool:
        """Whether the editor may ask for interactive predictions: ``smart`` defaults to true in
        Label Studio, and ``smartOnly="true"`` implies it."""
        return self.bool_attr("smart", True) or self.bool_attr("smartOnly", False)

    @property
    def model_path(self) -> str | None:
        return self.attr("model_path")

    @property
    def score_threshold(self) -> float | None:
        """From ``model_score_threshold``, else ``score_threshold``; ``None`` when neither is set."""
        if self.attr("model_score_threshold") is not None:
            return self.float_attr("model_score_threshold")
        return self.float_attr("score_threshold")

    @property
    def model_skip(self) -> bool:
        """``model_skip="true"`` asks backends to leave this control alone."""
        return self.bool_attr("model_skip", False)

    @property
    def choice_multiple(self) -> bool:
        """True for ``<Choices choice="multiple">`` (several choices may be selected)."""
        return (self.attr("choice") or "").strip().lower() == "multiple"


def _tag_set(tags: str | Iterable[str]) -> frozenset[str]:
    return frozenset(t.lower() for t in ([tags] if isinstance(tags, str) else tags))


@dataclass(frozen=True)
class LabelConfig:
    """A parsed label config. Build it with :func:`labelzoo.labelconfig.parse_label_config`."""

    xml: str = field(repr=False)
    objects: Mapping[str, ObjectTag] = field(hash=False)
    controls: Mapping[str, ControlTag] = field(hash=False)
    """Control tags by name, in document order."""
    warnings: tuple[str, ...] = ()
    sample_task: Mapping[str, Any] | None = field(default=None, hash=False, compare=False)
    """A sample task from a JSON comment ``<!-- {"data": {...}} -->`` in the config, if any."""

    def control(self, name: str) -> ControlTag:
        try:
            return self.controls[name]
        except KeyError:
            raise LabelConfigError(
                f"no control tag named '{name}' in the label config; controls: {_names(self.controls)}"
            ) from None

    def object(self, name: str) -> ObjectTag:
        try:
            return self.objects[name]
        except KeyError:
            raise LabelConfigError(
                f"no object tag named '{name}' in the label config; objects: {_names(self.objects)}"
            ) from None

    def controls_for(self, object_name: str) -> tuple[ControlTag, ...]:
        """Controls connected to object ``object_name``, in document order (raises if it is unknown)."""
        self.object(object_name)
        return tuple(c for c in self.controls.values() if any(o.name == object_name for o in c.objects))

    def pairs(
        self, control_tags: str | Iterable[str], object_tags: str | Iterable[str]
    ) -> list[tuple[ControlTag, ObjectTag]]:
        """Every (control, object) pair whose tags match, compared case-insensitively.

        Controls come in document order and each control's objects in ``toName`` order, so the
        first pair is the one Label Studio's ``get_first_tag_occurence`` would pick.
        """
        want_controls, want_objects = _tag_set(control_tags), _tag_set(object_tags)
        return [
            (control, obj)
            for control in self.controls.values()
            if control.tag.lower() in want_controls
            for obj in control.objects
            if obj.tag.lower() in want_objects
        ]

    def first_pair(
        self, control_tags: str | Iterable[str], object_tags: str | Iterable[str]
    ) -> tuple[ControlTag, ObjectTag]:
        """The first of :meth:`pairs`; raises :class:`LabelConfigError` with an example if none."""
        found = self.pairs(control_tags, object_tags)
        if found:
            return found[0]
        controls = [
            canonical_tag(t) for t in ([control_tags] if isinstance(control_tags, str) else control_tags)
        ]
        objects = [canonical_tag(t) for t in ([object_tags] if isinstance(object_tags, str) else object_tags)]
        wanted_c = " or ".join(f"<{t}>" for t in controls)
        wanted_o = " or ".join(f"<{t}>" for t in objects)
        article = "an" if wanted_o[1:2].lower() in tuple("aeiou") else "a"
        present = ", ".join(
            f"{c.tag} '{c.name}' -> {', '.join(f'{o.tag} {o.name!r}' for o in c.objects) or 'nothing'}"
            for c in self.controls.values()
        )
        raise LabelConfigError(
            f"no {wanted_c} connected to {article} {wanted_o} in the label config; add e.g. "
            f"{_example(controls[0] if controls else 'Labels', objects[0] if objects else 'Image')}"
            f" (the config has: {present or 'no control tags'})"
        )

    @cached_property
    def fingerprint(self) -> str:
        """A short stable hash of what the config means to a backend.

        Built from the objects and controls (tags, names, attributes, labels), so whitespace,
        comments, layout tags and tag-name case do not change it.
        """
        canonical = {
            "objects": [[o.tag, o.name, sorted(o.attrs.items())] for o in self.objects.values()],
            "controls": [
                [c.tag, c.name, sorted(c.attrs.items()), [sorted(lb.attrs.items()) for lb in c.labels]]
                for c in self.controls.values()
            ],
        }
        digest = hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).hexdigest()
        return digest[:16]


def _names(tags: Mapping[str, object]) -> str:
    return ", ".join(repr(n) for n in tags) or "none"


def _example(control_tag: str, object_tag: str) -> str:
    obj = object_tag.lower()
    if control_tag.lower() in ("choices", "taxonomy"):
        inner = '<Choice value="..."/>'
    else:
        inner = '<Label value="..."/>' if control_tag.lower().endswith("labels") else ""
    return (
        f'<{object_tag} name="{obj}" value="${obj}"/> '
        f'<{control_tag} name="label" toName="{obj}">{inner}</{control_tag}>'
    )
