"""The kinds of control the backend fills, one recipe each (:class:`..kind.Kind`).

=====================  ==================  ============================================
control on ``<Image>``  kind (YOLO task)    result
=====================  ==================  ============================================
RectangleLabels         detect              axis-aligned boxes
RectangleLabels         obb                 with ``model_obb="true"``: rotated boxes
PolygonLabels           segment             the largest outline of each instance mask
BrushLabels             segment             each instance mask as RLE, at the natural size
KeyPointLabels          pose                each ``<Label model_index="i">`` takes keypoint i
Choices                 classify            the most likely choice (several if ``choice="multiple"``)
=====================  ==================  ============================================
"""

from __future__ import annotations

from labelzoo.labelconfig import ControlTag

from ..kind import Kind
from .classify import CLASSIFY
from .detect import DETECT
from .obb import OBB
from .pose import POSE
from .segment import SEGMENT

#: every kind, in the order of the settings table
KINDS: tuple[Kind, ...] = (DETECT, OBB, SEGMENT, POSE, CLASSIFY)
#: the control tags some kind fills, each once, in that order
CONTROL_TAGS: tuple[str, ...] = tuple(dict.fromkeys(tag for kind in KINDS for tag in kind.tags))


def kind_of(control: ControlTag) -> Kind:
    """The kind that fills ``control`` (one of :data:`CONTROL_TAGS`)."""
    for kind in KINDS:
        if kind.fills(control):
            return kind
    raise ValueError(f"<{control.tag}> is not a control the YOLO backend fills ({', '.join(CONTROL_TAGS)})")


__all__ = ["CLASSIFY", "CONTROL_TAGS", "DETECT", "KINDS", "OBB", "POSE", "SEGMENT", "kind_of"]
