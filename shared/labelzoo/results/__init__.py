"""Label Studio result items from model outputs and back, brush RLE, mask outlines, JSON-safe conversion.

Build one result item per region with the builders (pixels, seconds and code-point offsets in;
Label Studio's percent, RLE and value formats out), wrap a task's items with :func:`prediction`, and
pass anything bound for Label Studio through :func:`json_safe`. See :mod:`labelzoo.results.regions`
for the conventions every builder follows. Read annotations back with the ``read_*`` functions
(:mod:`labelzoo.results.readers`), trace masks into polygons with :func:`mask_to_polygons`, and hand
a mask to an image's brush and polygon controls with :func:`mask_outputs` and :func:`mask_regions`.
"""

from labelzoo.results.agreement import AGREEMENT_IOU, POINT_TOLERANCE, disagreement, restricted, same_annotation
from labelzoo.results.errors import ResultError
from labelzoo.results.geometry import mask_box, mask_to_polygons, rotated_box_corners, simplify_polygon
from labelzoo.results.jsonsafe import json_safe
from labelzoo.results.mask_outputs import MASK_TAGS, MaskOutput, mask_outputs, mask_regions
from labelzoo.results.readers import (
    BrushRegion,
    ChoicesRegion,
    KeypointRegion,
    PolygonRegion,
    ReadRegion,
    RectangleRegion,
    SpanRegion,
    TextAreaRegion,
    TrackKeyframe,
    VideoTrackRegion,
    label_key,
    read_brushes,
    read_choices,
    read_keypoints,
    read_polygons,
    read_rectangles,
    read_spans,
    read_textareas,
    read_video_rectangles,
)
from labelzoo.results.regions import (
    Keyframe,
    audio_segment,
    audio_segment_with_text,
    brush,
    choices,
    keypoint,
    new_region_id,
    polygon,
    prediction,
    rectangle,
    relation,
    rotated_rectangle,
    span,
    textarea,
    timeline_labels,
    validate_result,
    video_rectangle,
    with_region_text,
)
from labelzoo.results.rle import decode, encode, mask_to_rle, rle_to_mask

__all__ = [
    "AGREEMENT_IOU",
    "MASK_TAGS",
    "POINT_TOLERANCE",
    "BrushRegion",
    "ChoicesRegion",
    "Keyframe",
    "KeypointRegion",
    "MaskOutput",
    "PolygonRegion",
    "ReadRegion",
    "RectangleRegion",
    "ResultError",
    "SpanRegion",
    "TextAreaRegion",
    "TrackKeyframe",
    "VideoTrackRegion",
    "audio_segment",
    "audio_segment_with_text",
    "brush",
    "choices",
    "decode",
    "disagreement",
    "encode",
    "json_safe",
    "keypoint",
    "label_key",
    "mask_box",
    "mask_outputs",
    "mask_regions",
    "mask_to_polygons",
    "mask_to_rle",
    "new_region_id",
    "polygon",
    "prediction",
    "read_brushes",
    "read_choices",
    "read_keypoints",
    "read_polygons",
    "read_rectangles",
    "read_spans",
    "read_textareas",
    "read_video_rectangles",
    "rectangle",
    "relation",
    "restricted",
    "rle_to_mask",
    "rotated_box_corners",
    "rotated_rectangle",
    "same_annotation",
    "simplify_polygon",
    "span",
    "textarea",
    "timeline_labels",
    "validate_result",
    "video_rectangle",
    "with_region_text",
]
