"""GLiNER with a real Label Studio: the quickstart config's labels as the entity types, imported text tasks,
predictions retrieved through the Data Manager action and stored as ``labels`` spans whose offsets and texts
match the task text, exactly GLiNER's own spans (a small model built here from random weights)."""

from __future__ import annotations

import pytest

pytest.importorskip("gliner")

from tests.backends.gliner_support import SENTENCES
from tests.conftest import REPO
from tests.e2e.project import check_predictions

GLINER = REPO / "backends" / "gliner"
CONFIG = (GLINER / "configs" / "quickstart.xml").read_text().replace(
    '<Labels name="label" toName="text">', '<Labels name="label" toName="text" model_score_threshold="0.45">')

pytestmark = pytest.mark.slow


def test_gliner_predicts_the_configs_entity_types_through_label_studio(ls_project, serve_for_ls, tiny_gliner):
    from gliner import GLiNER

    server = serve_for_ls(GLINER, GLINER_MODEL=str(tiny_gliner))
    project = ls_project(CONFIG, title="GLiNER")
    ids = project.import_tasks({"text": text} for text in SENTENCES[:3])
    backend = project.connect(server.url, "GLiNER")
    assert backend["model_version"] == "gliner", backend  # the saved folder's name

    answer = project.retrieve_predictions()
    assert answer["processed_items"] == len(ids), answer
    stored = check_predictions(project.predictions(), ids, backend["model_version"], result_types={"labels"},
                               scored=True)
    prompts = ["Person", "organization", "company", "location", "city", "country", "Date"]
    labels = {"Person": "Person", "organization": "Organization", "company": "Organization", "location": "Location",
              "city": "Location", "country": "Location", "Date": "Date"}
    model = GLiNER.from_pretrained(str(tiny_gliner), local_files_only=True).eval()
    direct = model.inference(SENTENCES[:3], prompts, threshold=0.45, flat_ner=True, multi_label=False)
    for task, text, entities in zip(ids, SENTENCES, direct, strict=False):
        got = [(r["value"]["start"], r["value"]["end"], r["value"]["text"], r["value"]["labels"])
               for r in stored[task]["result"]]
        assert got == [(e["start"], e["end"], text[e["start"]:e["end"]], [labels[e["label"]]]) for e in entities]
