"""The controls a backend may fill on one object tag, by the part their results play.

On any object (an ``<Image>``, a ``<Text>``, an ``<Audio>``) a label config combines controls of a few
kinds: whole-object answers (``<Choices>``, a ``<TextArea>`` holding e.g. a transcript), regions
(``<RectangleLabels>``, ``<Labels>``…), and per-region controls (``<TextArea perRegion="true">``: the text
of each region, as OCR or speech-to-text fill it). :func:`object_controls` groups them per object, without
the controls marked ``model_skip="true"``, so a backend plans what to fill in a few lines.

Which regions a per-region TextArea describes is decided as the editor does when it keeps a per-region
result on submit: all of them, unless ``whenTagName`` names the region's control and ``whenLabelValue``
(a comma-separated list) its label (:meth:`ObjectControls.region_texts_for`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from labelzoo.labelconfig.tags import ControlTag, LabelConfig, ObjectTag


@dataclass(frozen=True)
class ObjectControls:
    """One object tag and the controls connected to it, in document order, minus those with ``model_skip``."""

    obj: ObjectTag
    controls: tuple[ControlTag, ...]

    def of(self, *tags: str) -> tuple[ControlTag, ...]:
        """The controls of these tags (``"Labels"``, ``"Choices"``…, in any case)."""
        wanted = {tag.lower() for tag in tags}
        return tuple(c for c in self.controls if c.tag.lower() in wanted)

    @property
    def texts(self) -> tuple[ControlTag, ...]:
        """The TextAreas that hold one text for the whole object (not ``perRegion``)."""
        return tuple(c for c in self.of("TextArea") if not c.per_region)

    @property
    def region_texts(self) -> tuple[ControlTag, ...]:
        """The ``perRegion="true"`` TextAreas: the text of each region."""
        return tuple(c for c in self.of("TextArea") if c.per_region)

    def region_texts_for(self, control: ControlTag, label: str) -> tuple[ControlTag, ...]:
        """The per-region TextAreas that describe ``control``'s regions labelled ``label`` (``whenTagName``,
        ``whenLabelValue``)."""
        return tuple(area for area in self.region_texts if describes(area, control, label))


def object_controls(config: LabelConfig, object_tags: str | Iterable[str]) -> list[ObjectControls]:
    """One :class:`ObjectControls` per object tag of ``object_tags`` (any case), in document order."""
    wanted = {t.lower() for t in ([object_tags] if isinstance(object_tags, str) else object_tags)}
    return [
        ObjectControls(obj, tuple(c for c in config.controls_for(obj.name) if not c.model_skip))
        for obj in config.objects.values()
        if obj.tag.lower() in wanted
    ]


def describes(area: ControlTag, control: ControlTag, label: str) -> bool:
    """Whether per-region control ``area`` applies to a region of ``control`` labelled ``label``."""
    tag_name = area.attr("whenTagName")
    if tag_name and tag_name.strip() != control.name:
        return False
    label_values = area.attr("whenLabelValue")
    return not label_values or label in {value.strip() for value in label_values.split(",")}
