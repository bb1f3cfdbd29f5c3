"""One threshold rule: the control's attribute, then MODEL_SCORE_THRESHOLD when set, then the backend's default."""

from __future__ import annotations

import pytest

from labelzoo import Backend
from labelzoo.errors import LabelConfigError
from labelzoo.labelconfig import parse_label_config
from labelzoo.settings import Settings
from labelzoo.thresholds import score_threshold

CONFIG = parse_label_config("""
<View>
  <Text name="text" value="$text"/>
  <Choices name="plain" toName="text"><Choice value="a"/></Choices>
  <Choices name="own" toName="text" model_score_threshold="0.7"><Choice value="a"/></Choices>
  <Choices name="upstream" toName="text" score_threshold="0.4"><Choice value="a"/></Choices>
  <Choices name="zero" toName="text" model_score_threshold="0"><Choice value="a"/></Choices>
  <Choices name="wrong" toName="text" model_score_threshold="70"><Choice value="a"/></Choices>
</View>
""")


def test_the_control_wins_then_the_variable_then_the_default() -> None:
    unset, set_ = Settings.from_env({}), Settings.from_env({"MODEL_SCORE_THRESHOLD": "0.6"})
    plain, own, upstream, zero = (CONFIG.control(n) for n in ("plain", "own", "upstream", "zero"))
    assert score_threshold(plain, 0.25, unset) == 0.25
    assert score_threshold(plain, 0.25) == 0.25  # without settings: attribute, else the default
    assert score_threshold(plain, 0.25, set_) == 0.6
    assert score_threshold(own, 0.25, set_) == 0.7 and score_threshold(upstream, 0.25, set_) == 0.4
    assert score_threshold(zero, 0.25, set_) == 0.0  # an explicit 0 is a threshold, not "unset"
    assert score_threshold(plain, 0.25, Settings.from_env({"MODEL_SCORE_THRESHOLD": "0"})) == 0.0


def test_a_threshold_outside_0_to_1_names_the_control() -> None:
    with pytest.raises(LabelConfigError, match=r'<Choices name="wrong"> has a score threshold of 70; use a value in'):
        score_threshold(CONFIG.control("wrong"), 0.5)


class Defaulting(Backend):
    default_score_threshold = 0.5

    def base_version(self) -> str:
        return "defaulting"

    def predict(self, tasks, ctx):
        return []


def test_a_backend_applies_the_rule_with_its_declared_default() -> None:
    plain, own = CONFIG.control("plain"), CONFIG.control("own")
    assert Defaulting(Settings.from_env({})).score_threshold(plain) == 0.5
    assert Defaulting(Settings.from_env({"MODEL_SCORE_THRESHOLD": "0.1"})).score_threshold(plain) == 0.1
    assert Defaulting(Settings.from_env({})).score_threshold(own) == 0.7
