"""A small GLiNER built here from random weights (no download): a 2-layer BERT encoder of width 32 with a
WordPiece vocabulary trained on a few sentences, wrapped by GLiNER's own span model and saved with
``save_pretrained``, so the backend loads it through ``GLiNER.from_pretrained`` like any checkpoint."""

from __future__ import annotations

from pathlib import Path

SENTENCES = [
    "Angela Merkel met Emmanuel Macron in Berlin on Tuesday.",
    "Apple reported revenue of 94 billion dollars for the quarter that ended in March.",
    "Dr. Amara Okafor joined the World Health Organization in Geneva last year.",
    "person organization location date company city country",
]


def build_gliner(folder: Path) -> Path:
    """The saved model's folder."""
    from gliner.config import GLiNERConfig
    from gliner.model import UniEncoderSpanGLiNER
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertTokenizerFast

    encoder = folder / "encoder"
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=False)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer.train_from_iterator(SENTENCES * 20, trainers.WordPieceTrainer(vocab_size=400, special_tokens=special))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
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
