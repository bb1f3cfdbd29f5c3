"""Fine-tuning GLiNER on a project's annotated spans, with GLiNER's own trainer.

Each annotated text becomes GLiNER's training record: its words (the model's own word splitter) and each span
as ``[first word, last word, entity type]``, the entity type being the label's first prompt (what GLiNER is
asked at prediction time). A span that does not cover whole words keeps the words inside it; one inside a single
word is left out. Held-out texts score both the current and the new model by span F1 (exact offsets and label,
``labelzoo.metrics.count_spans``), which decides the promotion.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from labelzoo.metrics import SpanCounts, count_spans
from labelzoo.textspans import AnnotatedText


def gliner_record(model: Any, text: AnnotatedText, types: Mapping[str, str]) -> dict[str, Any]:
    """GLiNER's training record for one annotated text; ``types`` maps a label key to its entity type."""
    words = list(model.data_processor.words_splitter(text.text))  # (word, start, end)
    ner = []
    for start, end, key in text.spans:
        inside = [i for i, (_, first, last) in enumerate(words) if first >= start and last <= end]
        if inside and key in types:
            ner.append([inside[0], inside[-1], types[key]])
    return {"tokenized_text": [word for word, _, _ in words], "ner": ner}


def span_f1(model: Any, texts: Sequence[AnnotatedText], types: Mapping[str, str], threshold: float,
            batch_size: int) -> float:
    """Span F1 of the model on the texts (1.0 when neither side has a span)."""
    keys = {entity_type: key for key, entity_type in types.items()}
    found = model.inference([t.text for t in texts], list(keys), threshold=threshold, flat_ner=True,
                            batch_size=batch_size)
    counts = SpanCounts()
    for text, entities in zip(texts, found, strict=True):
        predicted = [(e["start"], e["end"], keys[e["label"]]) for e in entities]
        counts += count_spans(text.spans, predicted, unknown=text.unknown)
    return counts.f1


def fine_tune(model: Any, records: Sequence[dict[str, Any]], *, steps: int, learning_rate: float,
              batch_size: int, use_cpu: bool) -> None:
    """Train ``model`` in place for ``steps`` optimiser steps on ``records``."""
    with tempfile.TemporaryDirectory(prefix="labelzoo-gliner-") as folder:
        model.train()
        model.train_model(list(records), None, output_dir=folder, max_steps=steps, learning_rate=learning_rate,
                          others_lr=learning_rate, per_device_train_batch_size=batch_size, use_cpu=use_cpu,
                          save_strategy="no", report_to="none", logging_steps=max(1, steps // 10),
                          dataloader_num_workers=0, disable_tqdm=True)
        model.eval()
