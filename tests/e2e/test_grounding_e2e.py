"""Grounding with a real Label Studio: uploaded images, the grounded-SAM config's labels as the queries, boxes and
SAM masks retrieved through the Data Manager action and stored, exactly the processor's boxes and scores (small
OWLv2 and SAM models built here from random weights), and an annotation made from them accepted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("segment_anything")

from PIL import Image

from tests.backends.sam_support import TINY_TYPE, tiny_checkpoint_fixture  # noqa: F401
from tests.backends.test_grounding_backend import as_pixels, clipped, direct
from tests.conftest import REPO
from tests.e2e.project import check_predictions

GROUNDING = REPO / "backends" / "grounding"
TINY_GROUNDING = Path(__file__).parent / "fixtures" / "tiny_grounding"
CONFIG = (GROUNDING / "configs" / "grounded_sam.xml").read_text()
QUERIES = ["Person", "car", "van", "truck"]
LABEL_OF = {"Person": "Person", "car": "Car", "van": "Car", "truck": "Car"}

pytestmark = pytest.mark.slow


def test_grounding_boxes_and_masks_through_label_studio(ls_project, serve_for_ls, tiny_owl, tiny_checkpoint, tmp_path):
    rng = np.random.default_rng(11)
    paths = []
    for i, (height, width) in enumerate([(60, 90), (80, 64)]):
        paths.append(tmp_path / f"photo {i}.png")
        Image.fromarray((rng.random((height, width, 3)) * 255).astype("uint8")).save(paths[-1])
    server = serve_for_ls(TINY_GROUNDING, GROUNDING_MODEL=str(tiny_owl), SAM_MODEL_TYPE=TINY_TYPE,
                          SAM_CHECKPOINT=str(tiny_checkpoint), MODEL_SCORE_THRESHOLD="0.45")
    project = ls_project(CONFIG, title="Grounding")
    ids = [t["id"] for t in project.upload(paths)]
    backend = project.connect(server.url, "Grounding")
    assert backend["model_version"] == "owlv2-tiny", backend

    answer = project.retrieve_predictions()
    assert answer["processed_items"] == len(ids), answer
    stored = check_predictions(project.predictions(), ids, backend["model_version"],
                               result_types={"rectanglelabels", "brushlabels"})
    for task, path in zip(ids, paths, strict=True):
        result = stored[task]["result"]
        width, height = Image.open(path).size
        boxes = [r for r in result if r["type"] == "rectanglelabels"]
        want = [(clipped(box, width, height), score, [LABEL_OF[query]])
                for box, score, query in direct(tiny_owl, path, QUERIES, 0.45)]
        assert len(boxes) == len(want) and boxes
        for box, (want_box, want_score, want_labels) in zip(boxes, want, strict=True):
            assert as_pixels(box) == pytest.approx(want_box, abs=1e-2)
            assert box["score"] == pytest.approx(want_score, abs=1e-5)
            assert box["value"]["rectanglelabels"] == want_labels
        masks = [r for r in result if r["type"] == "brushlabels"]
        assert masks and all(r["value"]["brushlabels"][0] in {"Person", "Car"} for r in masks)  # SAM's, per box
        assert stored[task]["score"] == pytest.approx(min(r["score"] for r in result))

    accepted = project.annotate(ids[0], stored[ids[0]]["result"])  # accepting the prediction as it is
    assert {item["type"] for item in accepted["result"]} <= {"rectanglelabels", "brushlabels"}, accepted
