"""Small OWLv2 and Grounding DINO detectors built here from random weights (no download), saved with
``save_pretrained`` with their processors, so the grounding backend loads them through ``AutoProcessor`` and
``AutoModelForZeroShotObjectDetection`` like any checkpoint.

OWLv2: 2-layer text and vision towers of width 32 on 64-px images (16 patches, 16 boxes), a CLIP-style BPE
tokenizer over the words of :data:`WORDS` (CLIP's layout: ``!`` is id 0, the start token is not, since OWL masks
out queries whose first id is 0). Grounding DINO: a 1-block Swin backbone, a 1-layer BERT text encoder with a
WordPiece vocabulary of the same words, 20 queries.
"""

from __future__ import annotations

from pathlib import Path

WORDS = ["a", "an", "cat", "dog", "car", "red", "blue", "square", "circle", "photo", "of", "the", "person", "."]


def _chars() -> list[str]:
    return sorted({c for word in WORDS for c in word})


def build_owl(folder: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import (
        CLIPTokenizerFast,
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessor,
        Owlv2Processor,
    )

    vocab = {"!": 0, "<|startoftext|>": 1, "<|endoftext|>": 2}
    for token in [*(f"{w}</w>" for w in WORDS), *_chars(), *(f"{c}</w>" for c in _chars())]:
        vocab.setdefault(token, len(vocab))
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<|endoftext|>", end_of_word_suffix="</w>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>", special_tokens=[("<|startoftext|>", 1), ("<|endoftext|>", 2)])
    tokenizer.decoder = decoders.BPEDecoder(suffix="</w>")
    clip = CLIPTokenizerFast(tokenizer_object=tokenizer, bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                             unk_token="<|endoftext|>", pad_token="!", model_max_length=16)  # as OWLv2's
    torch.manual_seed(0)
    config = Owlv2Config(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 16, "bos_token_id": 1, "eos_token_id": 2,
                     "pad_token_id": 0},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 64, "patch_size": 16},
        projection_dim=32,
    )
    saved = folder / "owlv2-tiny"
    Owlv2ForObjectDetection(config).eval().save_pretrained(saved)
    Owlv2Processor(image_processor=Owlv2ImageProcessor(size={"height": 64, "width": 64}), tokenizer=clip
                   ).save_pretrained(saved)
    return saved


def build_dino(folder: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import (
        BertConfig,
        BertTokenizerFast,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {t: i for i, t in enumerate(dict.fromkeys([*special, *_chars(), *(f"##{c}" for c in _chars()), *WORDS]))}
    tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    bert = BertTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]")
    torch.manual_seed(0)
    config = GroundingDinoConfig(
        backbone_config=SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=4,
                                   image_size=64, out_features=["stage2", "stage3", "stage4"]),
        text_config=BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=64),
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        encoder_attention_heads=2, decoder_attention_heads=2, num_queries=20, num_feature_levels=4, max_text_len=32,
        encoder_n_points=2, decoder_n_points=2,
    )
    saved = folder / "grounding-dino-tiny"
    GroundingDinoForObjectDetection(config).eval().save_pretrained(saved)
    GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}),
                           tokenizer=bert).save_pretrained(saved)
    return saved
