"""Label Studio label configs: parse the XML into typed tags, and map model labels onto them."""

from labelzoo.labelconfig.mapping import LabelMap, build_label_map
from labelzoo.labelconfig.parser import MAX_LABEL_CONFIG_BYTES, parse_label_config, parse_label_config_cached
from labelzoo.labelconfig.tags import ControlTag, LabelConfig, LabelTag, ObjectTag, canonical_tag

__all__ = [
    "MAX_LABEL_CONFIG_BYTES",
    "ControlTag",
    "LabelConfig",
    "LabelMap",
    "LabelTag",
    "ObjectTag",
    "build_label_map",
    "canonical_tag",
    "parse_label_config",
    "parse_label_config_cached",
]
