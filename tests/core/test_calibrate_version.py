"""A trained version's task-score map: fitted on exactly the tasks its fit held out, as the server predicts them."""

from __future__ import annotations

import logging

from labelzoo import Settings
from labelzoo.backend import FitContext, PredictContext, Task, TrainingData, TrainingExample
from labelzoo.labelconfig import parse_label_config
from labelzoo.media import MediaResolver
from labelzoo.registry import load_backend
from labelzoo.results import same_annotation
from labelzoo.scoremap import FILE_NAME, ScoreMap
from labelzoo.training.calibrate import calibrate, held_out_pairs
from tests.conftest import TEMPLATE_BACKEND
from tests.e2e.reviews import review, sentiment

CONFIG = (TEMPLATE_BACKEND / "label_config.xml").read_text()
LOG = logging.getLogger("test")


def trained(tmp_path, n: int = 60, **env: str):
    settings = Settings.from_env({"MODEL_DIR": str(tmp_path / "models"), "MEDIA_CACHE_DIR": str(tmp_path / "c"),
                                  **env})
    cls = load_backend(str(TEMPLATE_BACKEND)).cls
    examples = []
    for i in range(n):
        text, label = review(i)
        # every seventh annotation disagrees with the words: some held-out pre-labels are wrong
        examples.append(TrainingExample(Task(id=100 + i, data={"text": text}),
                                        sentiment(label if i % 7 else ("Negative" if label == "Positive" else
                                                                       "Positive"))))
    data = TrainingData(project="4", config=parse_label_config(CONFIG), examples=examples)
    folder = tmp_path / "staging"
    folder.mkdir()
    model = cls(settings)
    model.load()
    media = MediaResolver(settings.media)
    result = model.fit(data, FitContext(output_dir=folder, media=media, settings=settings))
    assert result.promote and result.held_out
    return cls, settings, folder, data, result.held_out, media


def test_the_map_is_fitted_on_the_held_out_tasks_as_the_new_version_predicts_them(tmp_path):
    cls, settings, folder, data, held_out, media = trained(tmp_path)
    scores = calibrate(cls, settings, folder, data, held_out, media, LOG)
    assert scores is not None and ScoreMap.read(folder) == scores
    new = cls(settings, weights=folder)
    new.load()
    examples = [e for e in data.examples if e.task.id in held_out]
    expected = []
    ctx = PredictContext(project="4", config=data.config, media=media, settings=settings, model_version="new")
    for example, prediction in zip(examples, new.predict([e.task for e in examples], ctx), strict=True):
        expected.append((prediction.score, same_annotation(prediction.result, example.result)))
    assert held_out_pairs(new, data, held_out, media) == expected
    assert scores.tasks == len(examples) == len(held_out) and scores.right == sum(r for _, r in expected)
    assert 0 < scores.right < scores.tasks  # the disagreeing annotations: the evidence holds both outcomes


def test_no_map_without_held_out_tasks_when_switched_off_or_when_predicting_fails(tmp_path, caplog):
    cls, settings, folder, data, held_out, media = trained(tmp_path)
    assert calibrate(cls, settings, folder, data, (), media, LOG) is None
    off = Settings.from_env({**settings.env, "CALIBRATE_TASK_SCORES": "false"})
    assert calibrate(cls, off, folder, data, held_out, media, LOG) is None
    (folder / "classifiers.joblib").write_bytes(b"not a model")
    assert calibrate(cls, settings, folder, data, held_out, media, LOG) is None  # the job goes on, unmapped
    assert "task scores not calibrated" in caplog.text
    assert not (folder / FILE_NAME).exists()
