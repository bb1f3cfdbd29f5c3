"""Label Studio label configs: parse the XML into typed tags, map model labels onto them, and group the controls
of each object by the part they play."""

from labelzoo.labelconfig.attributes import THRESHOLD_ATTRIBUTES
from labelzoo.labelconfig.mapping import LabelMap, TrainingNames, build_label_map, label_or_first, training_names
from labelzoo.labelconfig.objects import ObjectControls, object_controls
from labelzoo.labelconfig.parser import MAX_LABEL_CONFIG_BYTES, parse_label_config, parse_label_config_cached
from labelzoo.labelconfig.tags import ControlTag, LabelConfig, LabelTag, ObjectTag, canonical_tag

__all__ = [
    "MAX_LABEL_CONFIG_BYTES",
    "THRESHOLD_ATTRIBUTES",
    "ControlTag",
    "LabelConfig",
    "LabelMap",
    "LabelTag",
    "ObjectControls",
    "ObjectTag",
    "TrainingNames",
    "build_label_map",
    "canonical_tag",
    "label_or_first",
    "object_controls",
    "parse_label_config",
    "parse_label_config_cached",
    "training_names",
]
