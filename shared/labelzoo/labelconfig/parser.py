"""Parse Label Studio label-config XML into :class:`LabelConfig`.

Tags are classified the way Label Studio's SDK does it (every element, in document order, at any
nesting depth):

* a *control* has ``name`` and ``toName`` (and is not ``<Filter>``);
* an *object* is any other element with ``name`` and ``value`` or ``valueList``, so a
  ``<Header name="h" value="$title"/>`` counts as one;
* a *label* is a ``<Label>``, ``<Choice>`` or ``<Relation>`` (never an object, even with a
  ``name``); it belongs to its nearest ancestor control and is keyed by ``alias``, else ``value``.

Unlike the SDK, tag names and the structural attributes (``name``, ``toName``, ``value``, …) are
matched case-insensitively, as the editor does. Untrusted input is expected: DTDs and entities are
refused and the size is capped.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from functools import lru_cache
from pyexpat import ErrorString
from types import MappingProxyType
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from labelzoo.errors import LabelConfigError
from labelzoo.labelconfig.tags import (
    CONTROL_TAG_NAMES,
    ControlTag,
    LabelConfig,
    LabelTag,
    ObjectTag,
    canonical_tag,
    lookup_attr,
)

MAX_LABEL_CONFIG_BYTES = 16 << 20
"""The default limit (``LABEL_CONFIG_MAX_MB``). Most configs are a few KiB, but legal ones reach megabytes (a
config of many views with 50,000 controls is 5 MB and parses in 3–4 s, then is cached); Label Studio saves
anything under its 250 MB request limit. Hostile XML (entities, DTDs, deep nesting) is refused whatever
its size, before any of it is expanded."""

_KNOWN_CONTROLS = frozenset(name.lower() for name in CONTROL_TAG_NAMES)
_LABEL_TAGS = frozenset({"label", "choice", "relation"})
_SELF_REFERENCING = frozenset({"chat", "reactcode"})
"""Registered as both object and control (a result may name the tag itself), as in the SDK."""


def parse_label_config(xml: str, *, max_bytes: int = MAX_LABEL_CONFIG_BYTES) -> LabelConfig:
    """Parse a label config of at most ``max_bytes``; raises :class:`LabelConfigError` when it is unusable.

    Problems that Label Studio tolerates (a ``toName`` naming no object, duplicate labels, a
    control tag without ``name``) are kept as human-readable ``warnings`` instead.
    """
    root, comments = _parse_xml(xml, max_bytes)
    collected = _Collector()
    collected.walk(root)
    warnings = collected.warnings
    if canonical_tag(_local_name(root.tag)) != "View":
        warnings.insert(0, f"the root tag is <{_local_name(root.tag)}>; Label Studio expects <View>")
    controls = {name: _build_control(raw, collected, warnings) for name, raw in collected.controls.items()}
    return LabelConfig(
        xml=xml,
        objects=MappingProxyType(collected.objects),
        controls=MappingProxyType(controls),
        warnings=tuple(warnings),
        sample_task=_sample_task(comments),
    )


@lru_cache(maxsize=32)
def _parse_cached(xml: str, max_bytes: int) -> LabelConfig:
    return parse_label_config(xml, max_bytes=max_bytes)


def parse_label_config_cached(xml: str, *, max_bytes: int = MAX_LABEL_CONFIG_BYTES) -> LabelConfig:
    """:func:`parse_label_config` with a small LRU cache (parsed configs are immutable)."""
    if not isinstance(xml, str):
        return parse_label_config(xml, max_bytes=max_bytes)  # raises the usual error; unhashable: not cached
    return _parse_cached(xml, max_bytes)


class _CommentCollector(ET.TreeBuilder):
    """Builds the tree and keeps comment texts (for the sample task) without putting them in it."""

    def __init__(self) -> None:
        super().__init__()
        self.comments: list[str] = []

    def comment(self, text: str) -> None:
        self.comments.append(text)


def _parse_xml(xml: object, max_bytes: int) -> tuple[ET.Element, list[str]]:
    if not isinstance(xml, str):
        raise LabelConfigError(f"label config must be an XML string, got {type(xml).__name__}")
    if not xml.strip():
        raise LabelConfigError("label config is empty; send the project's XML label config")
    try:
        size = len(xml.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise LabelConfigError(
            f"label config holds a character that is not valid Unicode at position {exc.start}"
        ) from None
    if size > max_bytes:
        raise LabelConfigError(
            f"label config is {size} bytes; the limit is {max_bytes} bytes ({max_bytes / 2**20:g} MiB): raise "
            "LABEL_CONFIG_MAX_MB on the backend if the config is meant to be this large"
        )
    builder = _CommentCollector()
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        parser.feed(xml)
        root = parser.close()
    except DefusedXmlException as exc:
        raise LabelConfigError(
            f"label config must not declare entities/DTD ({type(exc).__name__}); remove the <!DOCTYPE ...>"
        ) from None
    except ET.ParseError as exc:
        line, column = exc.position
        lines = xml.splitlines()
        snippet = lines[line - 1].strip()[:120] if 0 < line <= len(lines) else ""
        raise LabelConfigError(
            f"label config is not well-formed XML: {ErrorString(exc.code)}"
            + (f" near: {snippet}" if snippet else "")
            + f" (line {line}, column {column + 1})"
        ) from None
    return root, builder.comments


def _local_name(tag: str) -> str:
    """Drop an XML namespace (``{uri}View`` → ``View``)."""
    return tag.rsplit("}", 1)[-1]


class _RawControl:
    def __init__(self, name: str, tag: str, attrs: Mapping[str, str], self_target: bool) -> None:
        self.name = name
        self.tag = tag
        self.attrs = attrs
        self.self_target = self_target
        self.to_name = lookup_attr(attrs, "toName") or (name if self_target else "")
        self.labels: list[LabelTag] = []


class _Collector:
    """One pass over the tree: objects, controls and their labels, plus warnings."""

    def __init__(self) -> None:
        self.objects: dict[str, ObjectTag] = {}
        self.controls: dict[str, _RawControl] = {}
        self.warnings: list[str] = []
        self._names: dict[str, str] = {}

    def walk(self, root: ET.Element) -> None:
        # Iterative, so a deeply nested config cannot exhaust Python's recursion limit.
        stack: list[tuple[ET.Element, _RawControl | None]] = [(root, None)]
        while stack:
            element, control = stack.pop()
            inner = self._visit(element, control)
            stack.extend((child, inner) for child in reversed(element))

    def _visit(self, element: ET.Element, control: _RawControl | None) -> _RawControl | None:
        """Classify one element; returns the nearest control for its children."""
        tag = canonical_tag(_local_name(element.tag))
        kind = tag.lower()
        attrs = MappingProxyType(dict(element.attrib))
        name = lookup_attr(attrs, "name")
        value = lookup_attr(attrs, "valueList") or lookup_attr(attrs, "value")
        if kind in _SELF_REFERENCING and name and value:
            self._add_object(name, tag, attrs, value)
            return self._add_control(name, tag, attrs, self_target=True)
        if name and lookup_attr(attrs, "toName") is not None and kind != "filter":
            return self._add_control(name, tag, attrs)
        if kind in _LABEL_TAGS:
            if control is not None:
                self._add_label(control, attrs)
        elif name and value:
            self._add_object(name, tag, attrs, value)
        elif kind in _KNOWN_CONTROLS:
            shown = f' name="{name}"' if name else ""
            self.warnings.append(
                f'<{tag}{shown}> is ignored: a control tag needs both name="..." and toName="<object name>"'
            )
        return control

    def _claim(self, name: str, tag: str) -> None:
        if name in self._names:
            raise LabelConfigError(
                f"the name '{name}' is used by both <{self._names[name]}> and <{tag}>; "
                "every tag name in a label config must be unique"
            )
        self._names[name] = tag

    def _add_control(
        self, name: str, tag: str, attrs: Mapping[str, str], self_target: bool = False
    ) -> _RawControl:
        """``self_target``: a Chat-like tag already claimed as an object; it targets itself."""
        if not self_target:
            self._claim(name, tag)
        self.controls[name] = _RawControl(name, tag, attrs, self_target)
        return self.controls[name]

    def _add_object(self, name: str, tag: str, attrs: Mapping[str, str], value: str) -> None:
        self._claim(name, tag)
        self.objects[name] = ObjectTag(
            name=name,
            tag=tag,
            value=value,
            value_key=value[1:] if value.startswith("$") and len(value) > 1 else None,
            value_list=bool(lookup_attr(attrs, "valueList")),
            value_type=lookup_attr(attrs, "valueType"),
            attrs=attrs,
        )

    @staticmethod
    def _add_label(control: _RawControl, attrs: Mapping[str, str]) -> None:
        value = lookup_attr(attrs, "value")
        alias = lookup_attr(attrs, "alias")
        key = alias or value
        if not key:
            return
        predicted = lookup_attr(attrs, "predicted_values") or ""
        control.labels.append(
            LabelTag(
                value=value,
                alias=alias,
                key=key,
                background=lookup_attr(attrs, "background"),
                predicted_values=tuple(p.strip() for p in predicted.split(",") if p.strip()),
                attrs=attrs,
            )
        )


def _build_control(raw: _RawControl, collected: _Collector, warnings: list[str]) -> ControlTag:
    name = raw.name
    to_names = tuple(n.strip() for n in raw.to_name.split(",") if n.strip())
    missing = [n for n in to_names if n not in collected.objects]
    if missing or not to_names:
        warnings.append(
            f'<{raw.tag} name="{name}"> has toName="{raw.to_name}", but '
            f"{', '.join(repr(n) for n in missing) or 'it'} names no object tag; "
            f"objects: {', '.join(repr(n) for n in collected.objects) or 'none'}"
        )
    keys = [label.key for label in raw.labels]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        warnings.append(f'<{raw.tag} name="{name}"> lists labels more than once: {", ".join(duplicates)}')
    # A Chat-like tag's own value is its data, not a source of labels.
    value = "" if raw.self_target else lookup_attr(raw.attrs, "value") or ""
    return ControlTag(
        name=name,
        tag=raw.tag,
        to_names=to_names,
        objects=tuple(collected.objects[n] for n in to_names if n in collected.objects),
        labels=tuple(raw.labels),
        attrs=raw.attrs,
        dynamic_labels=value.startswith("$") or lookup_attr(raw.attrs, "apiUrl") is not None,
    )


def _sample_task(comments: list[str]) -> Mapping[str, Any] | None:
    """The first comment holding a JSON task with a ``data`` object (Label Studio's convention)."""
    for text in comments:
        text = text.strip()
        if not text.startswith("{"):
            continue
        try:
            task = json.loads(text)
        except ValueError:
            continue
        if isinstance(task, dict) and isinstance(task.get("data"), dict):
            return MappingProxyType(task)
    return None
