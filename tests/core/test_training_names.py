"""labelzoo.labelconfig.training_names: which model label each config label trains as, the way back from
build_label_map."""

from __future__ import annotations

from labelzoo.labelconfig import ControlTag, build_label_map, parse_label_config, training_names

CONFIG = parse_label_config("""<View>
  <Text name="text" value="$text"/>
  <Labels name="label" toName="text">
    <Label value="Person"/>
    <Label value="Location" predicted_values="LOC, GPE"/>
    <Label value="Firm" alias="ORG"/>
    <Label value="Ingredient"/>
  </Labels>
  <Labels name="other" toName="text"><Label value="Place" predicted_values="GPE"/><Label value="Person"/></Labels>
  <Labels name="free" toName="text" value="$labels"/>
</View>""")


def controls(*names: str) -> list[ControlTag]:
    return [CONFIG.control(name) for name in names]


def test_mapped_labels_train_as_the_model_label_that_feeds_them_and_new_ones_keep_their_key() -> None:
    names = training_names(controls("label"), ["GPE", "LOC", "ORG", "PERSON"])
    assert names == {"Person": "PERSON", "Location": "GPE", "ORG": "ORG", "Ingredient": "Ingredient"}
    # the way back from the prediction mapping: each name feeds its label there
    label_map = build_label_map(CONFIG.control("label"), ["GPE", "LOC", "ORG", "PERSON"])
    assert all(label_map.get(model) == key for key, model in names.items() if key != "Ingredient")


def test_the_first_model_label_given_and_the_first_control_decide() -> None:
    assert training_names(controls("label"), ["LOC", "GPE"])["Location"] == "LOC"
    names = training_names(controls("other", "label"), ["GPE", "PERSON"])
    assert names["Place"] == "GPE" and names["Location"] == "GPE" and names["Person"] == "PERSON"


def test_dynamic_and_unlisted_labels_train_under_their_own_names() -> None:
    names = training_names(controls("free"), ["PERSON"])
    assert names["PERSON"] == "PERSON" and names["Spice"] == "Spice"
    assert training_names([], [])["Anything"] == "Anything"
