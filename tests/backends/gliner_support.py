"""A small GLiNER built here from random weights (no download): a 2-layer BERT encoder of width 32 with a
WordPiece vocabulary of the words and characters of a few sentences, wrapped by GLiNER's own span model and saved with
``save_pretrained``, so the backend loads it through ``GLiNER.from_pretrained`` like any checkpoint."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path

SENTENCES = [
    "Angela Merkel met Emmanuel Macron in Berlin on Tuesday.",
    "Apple reported revenue of 94 billion dollars for the quarter that ended in March.",
    "Dr. Amara Okafor joined the World Health Organization in Geneva last year.",
    "person organization location date company city country",
]


def build_gliner(folder: Path, corpus: Sequence[str] = ()) -> Path:
    """The saved model's folder; its vocabulary holds the words of :data:`SENTENCES` and ``corpus``."""
    from gliner.config import GLiNERConfig
    from gliner.model import UniEncoderSpanGLiNER
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertTokenizerFast

    encoder = folder / "encoder"
    words = sorted({w for text in [*SENTENCES, *corpus] for w in re.findall(r"\w+|[^\w\s]", text)})
    chars = sorted({c for word in words for c in word})
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys([*special, *chars, *(f"##{c}" for c in chars),
                                                                *words]))}  # the same ids on every run
    tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=False)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    fast = BertTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]")
    fast.save_pretrained(encoder)
    BertConfig(vocab_size=fast.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=64, max_position_embeddings=512).save_pretrained(encoder)
    import torch

    torch.manual_seed(0)
    config = GLiNERConfig(model_name=str(encoder), hidden_size=32, max_width=8, dropout=0.1)
    model = UniEncoderSpanGLiNER(config, backbone_from_pretrained=False, local_files_only=True)
    model.data_processor.transformer_tokenizer.add_tokens([config.ent_token, config.sep_token], special_tokens=True)
    model.resize_embeddings()
    saved = folder / "gliner"
    model.save_pretrained(saved)
    return saved


def train_gliner(folder: Path, records: Sequence[dict], steps: int = 700, learning_rate: float = 4e-3) -> Path:
    """:func:`build_gliner` fine-tuned with GLiNER's own trainer on ``records`` (``tokenized_text`` + ``ner``), a
    stand-in for a published checkpoint that knows those entity types; the saved folder."""
    import torch
    from gliner import GLiNER

    corpus = [" ".join(record["tokenized_text"]) for record in records]
    model = GLiNER.from_pretrained(str(build_gliner(folder / "blank", corpus)), local_files_only=True)
    random.seed(0)  # GLiNER's collator samples negative entity types with Python's random
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same sums in the same order, so the same model on every run
    try:
        model.train_model(list(records), None, output_dir=str(folder / "runs"), max_steps=steps,
                          learning_rate=learning_rate, others_lr=learning_rate, per_device_train_batch_size=8,
                          use_cpu=True, save_strategy="no", report_to="none", dataloader_num_workers=0,
                          disable_tqdm=True)
    finally:
        torch.set_num_threads(threads)
    saved = folder / "trained"
    model.eval().save_pretrained(saved)
    return saved


def records(sentences: Sequence, types: dict[str, str]) -> list[dict]:
    """GLiNER training records of ``tests.backends.spacy_support`` sentences: words split on word characters,
    each span of a label in ``types`` as ``[first word, last word, type]``."""
    import re

    out = []
    for sentence in sentences:
        words = [(m.start(), m.end()) for m in re.finditer(r"\w+(?:[-_]\w+)*|\S", sentence.text)]
        ner = []
        for start, end, label in sentence.spans:
            inside = [i for i, (a, b) in enumerate(words) if a >= start and b <= end]
            if inside and label in types:
                ner.append([inside[0], inside[-1], types[label]])
        out.append({"tokenized_text": [sentence.text[a:b] for a, b in words], "ner": ner})
    return out
