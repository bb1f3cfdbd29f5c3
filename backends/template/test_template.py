"""The template backend on its own: it learns sentiment from a few dozen annotations and predicts it.

This test travels with the folder: ``labelzoo new my_backend`` copies it, and ``pytest my_backend``
passes before you change anything.
"""

from __future__ import annotations

import random
from pathlib import Path

from labelzoo import FitContext, PredictContext, Settings, Task, TrainingData, TrainingExample
from labelzoo.labelconfig import parse_label_config
from labelzoo.media import MediaResolver
from labelzoo.testing import backend_class

HERE = Path(__file__).resolve().parent
CONFIG = parse_label_config((HERE / "label_config.xml").read_text())
GOOD = ["great", "wonderful", "excellent", "lovely", "fantastic", "superb", "delightful"]
BAD = ["awful", "terrible", "horrible", "dreadful", "poor", "disappointing", "broken"]
THINGS = ["film", "hotel", "meal", "service", "book", "phone", "concert"]


def review(rng: random.Random, words: list[str]) -> str:
    return f"The {rng.choice(THINGS)} was {rng.choice(words)}, really {rng.choice(words)}."


def sentiment(choice: str) -> list[dict]:
    return [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": [choice]}}]


def test_learns_from_annotations_and_predicts_with_a_confidence(tmp_path: Path) -> None:
    rng = random.Random(0)
    settings = Settings.from_env({"MODEL_DIR": str(tmp_path / "models"), "MEDIA_CACHE_DIR": str(tmp_path / "cache")})
    media = MediaResolver(settings.media)
    backend_cls = backend_class(HERE)

    blank = backend_cls(settings)
    blank.load()
    task = Task(id=1, data={"text": "The meal was great."})
    ctx = PredictContext(project="1", config=CONFIG, media=media, settings=settings, model_version="v0")
    assert blank.predict([task], ctx)[0].result == []  # knows nothing before training

    examples = []
    for i in range(40):
        label = "Positive" if i % 2 else "Negative"
        text = review(rng, GOOD if label == "Positive" else BAD)
        examples.append(TrainingExample(task=Task(id=i, data={"text": text}), result=sentiment(label)))
    out = tmp_path / "v1"
    out.mkdir()
    fitted = blank.fit(TrainingData(project="1", config=CONFIG, examples=examples),
                       FitContext(output_dir=out, media=media, settings=settings))
    assert fitted.promote and fitted.metrics["sentiment.accuracy"] >= 0.9

    trained = backend_cls(settings, weights=out)
    trained.load()
    held_out = [(review(rng, GOOD), "Positive") for _ in range(10)]
    held_out += [(review(rng, BAD), "Negative") for _ in range(10)]
    tasks = [Task(id=100 + i, data={"text": text}) for i, (text, _) in enumerate(held_out)]
    predictions = trained.predict(tasks, ctx)
    picked = [p.result[0]["value"]["choices"][0] for p in predictions]
    assert sum(p == want for p, (_, want) in zip(picked, held_out, strict=True)) >= 18
    assert all(0.5 < p.score <= 1.0 for p in predictions)
    assert all(p.result[0]["score"] == p.score for p in predictions)
