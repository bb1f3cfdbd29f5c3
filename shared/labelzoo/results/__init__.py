"""Label Studio result items from model outputs, brush RLE, and JSON-safe conversion.

Build one result item per region with the builders (pixels, seconds and code-point offsets in;
Label Studio's percent, RLE and value formats out), wrap a task's items with :func:`prediction`, and
pass anything bound for Label Studio through :func:`json_safe`. See :mod:`labelzoo.results.regions`
for the conventions every builder follows.
"""

from labelzoo.results.errors import ResultError
from labelzoo.results.geometry import rotated_box_corners, simplify_polygon
from labelzoo.results.jsonsafe import json_safe
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
    validate_result,
    video_rectangle,
)
from labelzoo.results.rle import decode, encode, mask_to_rle, rle_to_mask

__all__ = [
    "Keyframe",
    "ResultError",
    "audio_segment",
    "audio_segment_with_text",
    "brush",
    "choices",
    "decode",
    "encode",
    "json_safe",
    "keypoint",
    "mask_to_rle",
    "new_region_id",
    "polygon",
    "prediction",
    "rectangle",
    "relation",
    "rle_to_mask",
    "rotated_box_corners",
    "rotated_rectangle",
    "simplify_polygon",
    "span",
    "textarea",
    "validate_result",
    "video_rectangle",
]
