"""openai-whisper checkpoints converted to CTranslate2 folders for faster-whisper, once per checkpoint content.

CTranslate2 4.8 converts Whisper only from Hugging Face Transformers models; this module fills its public
``ctranslate2.specs.WhisperSpec`` from openai-whisper's own state dict instead, so neither transformers nor a
second download is needed, and the folder holds exactly the weights the openai engine loads:

* encoder: the two convolutions, the sinusoidal position table, per block self-attention with query, key and value
  fused into one linear (Whisper's key has no bias: a zero one is put in its place), the two-layer GELU MLP and the
  pre-norms, then the final norm;
* decoder: the token embedding, which is also the output projection (Whisper ties them), the learned positions,
  per block self-attention fused as above, cross-attention with the query alone and key and value fused, the MLP,
  the norms;
* ``config.json``: the word-timing heads (the official model's for a name, else the last half of the decoder's
  layers, as openai-whisper takes for a checkpoint file), the suppressed and language tokens (:mod:`.tokens`);
* ``vocabulary.json`` and ``tokenizer.json`` from openai-whisper's tokenizer (:mod:`.tokens`), and
  ``preprocessor_config.json`` with the model's mel bins (80, or 128 for large-v3), which faster-whisper's feature
  extractor reads.

Tensors keep the checkpoint's precision (the official checkpoints are float16); CTranslate2 casts them to
``WHISPER_COMPUTE_TYPE`` when it loads the folder. Folders are cached under ``MODEL_DIR/engines`` by the
checkpoint's SHA-256 and built atomically (:func:`labelzoo.acceleration.cached_build`).
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ctranslate2.specs import common_spec, transformer_spec
from ctranslate2.specs.whisper_spec import WhisperSpec
from whisper.audio import CHUNK_LENGTH, HOP_LENGTH, N_FFT, SAMPLE_RATE
from whisper.model import AudioEncoder, ModelDimensions, TextDecoder

from labelzoo.acceleration import cached_build, content_key
from labelzoo.errors import LabelzooError

from .checkpoints import checkpoint_file, official
from .options import WhisperOptions, is_ct2_folder
from .tokens import generation_ids, hf_tokenizer, vocabulary, whisper_tokenizer

log = logging.getLogger("labelzoo.whisper")

State = dict[str, torch.Tensor]
KEY_DIGITS = 16  # of the SHA-256 naming a conversion, as labelzoo.acceleration.content_key keeps


@dataclass(frozen=True)
class Checkpoint:
    """An openai-whisper checkpoint: dimensions, weights, and the decoder heads that time words."""

    dims: ModelDimensions
    state: State
    alignment_heads: list[tuple[int, int]]


class UnfitCheckpoint(ValueError):
    """A file that is not an openai-whisper checkpoint, or not one this converter reads."""


def read_checkpoint(path: Path, heads: bytes | None = None) -> Checkpoint:
    """The checkpoint in ``path`` (``torch.save({"dims": ..., "model_state_dict": ...})``, as openai-whisper's),
    checked against the network its dimensions describe; ``heads`` are openai-whisper's packed word-timing heads of
    an official model (None: the default for a file)."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError... for a file it cannot read
        raise UnfitCheckpoint(f"it is not a PyTorch checkpoint torch can read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(saved, dict) or not {"dims", "model_state_dict"} <= saved.keys():
        raise UnfitCheckpoint("it has no 'dims' and 'model_state_dict': not an openai-whisper checkpoint")
    try:
        dims = ModelDimensions(**saved["dims"])
        expected = network_shapes(dims)
    except Exception as exc:
        raise UnfitCheckpoint(f"its 'dims' are not Whisper's ({type(exc).__name__}: {exc})") from exc
    state = saved["model_state_dict"]
    shapes = {name: tuple(tensor.shape) for name, tensor in state.items()}
    if shapes != expected:
        wrong = sorted(set(shapes.items()) ^ set(expected.items()))[:3]
        raise UnfitCheckpoint(f"its weights do not fit its dimensions (first differences: {wrong})")
    return Checkpoint(dims, state, alignment_heads(dims, heads))


def network_shapes(dims: ModelDimensions) -> dict[str, tuple[int, ...]]:
    """The name and shape of each weight of openai-whisper's network for ``dims`` (built without memory)."""
    with torch.device("meta"):
        parts = {
            "encoder": AudioEncoder(dims.n_mels, dims.n_audio_ctx, dims.n_audio_state, dims.n_audio_head,
                                    dims.n_audio_layer),
            "decoder": TextDecoder(dims.n_vocab, dims.n_text_ctx, dims.n_text_state, dims.n_text_head,
                                   dims.n_text_layer),
        }  # fmt: skip
    return {f"{part}.{name}": tuple(tensor.shape)
            for part, module in parts.items() for name, tensor in module.state_dict().items()}  # fmt: skip


def alignment_heads(dims: ModelDimensions, packed: bytes | None) -> list[tuple[int, int]]:
    """(layer, head) pairs: openai-whisper's packing of an official model's (a boolean layer × head mask,
    gzipped, base85), else every head of the last half of the decoder's layers."""
    if packed is None:
        mask = np.zeros((dims.n_text_layer, dims.n_text_head), bool)
        mask[dims.n_text_layer // 2 :] = True
    else:
        mask = np.frombuffer(gzip.decompress(base64.b85decode(packed)), bool)
        mask = mask.reshape(dims.n_text_layer, dims.n_text_head)
    return [(int(layer), int(head)) for layer, head in zip(*np.nonzero(mask), strict=True)]


def whisper_spec(checkpoint: Checkpoint) -> WhisperSpec:
    """The CTranslate2 specification holding the checkpoint's weights."""
    dims, state = checkpoint.dims, checkpoint.state
    spec = WhisperSpec(dims.n_audio_layer, dims.n_audio_head, dims.n_text_layer, dims.n_text_head)

    def linear(target: common_spec.LinearSpec, *sources: str) -> None:
        """``target`` = the linears ``sources`` stacked on their outputs (a missing bias: zeros)."""
        weights = [state[f"{s}.weight"] for s in sources]
        biases = [state.get(f"{s}.bias") for s in sources]
        target.weight = torch.cat(weights)
        if any(b is not None for b in biases):
            dtype = next(b.dtype for b in biases if b is not None)
            target.bias = torch.cat([torch.zeros(len(w), dtype=dtype) if b is None else b
                                     for w, b in zip(weights, biases, strict=True)])  # fmt: skip

    def norm(target: common_spec.LayerNormSpec, source: str) -> None:
        target.gamma, target.beta = state[f"{source}.weight"], state[f"{source}.bias"]

    def block(target: transformer_spec.TransformerEncoderLayerSpec | transformer_spec.TransformerDecoderLayerSpec,
              source: str) -> None:  # fmt: skip
        """An encoder or decoder block (cross-attention where the source has one)."""
        attention = target.self_attention
        linear(attention.linear[0], f"{source}.attn.query", f"{source}.attn.key", f"{source}.attn.value")
        linear(attention.linear[1], f"{source}.attn.out")
        norm(attention.layer_norm, f"{source}.attn_ln")
        if isinstance(target, transformer_spec.TransformerDecoderLayerSpec):
            cross = target.attention
            linear(cross.linear[0], f"{source}.cross_attn.query")
            linear(cross.linear[1], f"{source}.cross_attn.key", f"{source}.cross_attn.value")
            linear(cross.linear[2], f"{source}.cross_attn.out")
            norm(cross.layer_norm, f"{source}.cross_attn_ln")
        linear(target.ffn.linear_0, f"{source}.mlp.0")
        linear(target.ffn.linear_1, f"{source}.mlp.2")
        norm(target.ffn.layer_norm, f"{source}.mlp_ln")

    encoder, decoder = spec.encoder, spec.decoder
    for conv, source in ((encoder.conv1, "encoder.conv1"), (encoder.conv2, "encoder.conv2")):
        conv.weight, conv.bias = state[f"{source}.weight"], state[f"{source}.bias"]
    encoder.position_encodings.encodings = state["encoder.positional_embedding"]
    for i, layer in enumerate(encoder.layer):
        block(layer, f"encoder.blocks.{i}")
    norm(encoder.layer_norm, "encoder.ln_post")
    decoder.embeddings.weight = state["decoder.token_embedding.weight"]
    decoder.projection.weight = state["decoder.token_embedding.weight"]  # tied: stored once (an alias)
    decoder.position_encodings.encodings = state["decoder.positional_embedding"]
    for i, layer in enumerate(decoder.layer):
        block(layer, f"decoder.blocks.{i}")
    norm(decoder.layer_norm, "decoder.ln")
    return spec


def write_ct2(checkpoint: Checkpoint, folder: Path) -> None:
    """The CTranslate2 folder faster-whisper loads, with its token files, written into the existing ``folder``."""
    tokenizer = whisper_tokenizer(checkpoint.dims.n_vocab)
    spec = whisper_spec(checkpoint)
    for name, value in generation_ids(tokenizer).items():
        setattr(spec.config, name, value)
    spec.config.alignment_heads = checkpoint.alignment_heads
    spec.register_vocabulary(vocabulary(tokenizer))
    spec.validate()
    spec.optimize(quantization=None)  # the checkpoint's precision; the tied projection becomes an alias
    spec.save(str(folder))
    hf_tokenizer(tokenizer).save(str(folder / "tokenizer.json"))
    features = {"feature_size": checkpoint.dims.n_mels, "sampling_rate": SAMPLE_RATE, "hop_length": HOP_LENGTH,
                "chunk_length": CHUNK_LENGTH, "n_fft": N_FFT}  # fmt: skip
    (folder / "preprocessor_config.json").write_text(json.dumps(features, indent=2) + "\n")


def convert(source: Path, folder: Path, heads: bytes | None = None) -> None:
    """``source``, an openai-whisper checkpoint file, converted into the existing ``folder``."""
    write_ct2(read_checkpoint(source, heads), folder)


def ct2_folder(options: WhisperOptions) -> Path:
    """The CTranslate2 folder faster-whisper loads for ``WHISPER_MODEL``: a CTranslate2 folder as it is; an official
    name, a checkpoint file or URL converted (downloaded first where needed), once per checkpoint content."""
    model = options.model
    if is_ct2_folder(Path(model)):
        return Path(model)
    known = official(model)
    if known is not None:  # its SHA-256 is known before the download, which a converted copy spares
        # named apart from the same file's conversion, whose word-timing heads are the default ones
        folder = options.engine_cache / f"{known.sha256[:KEY_DIGITS]}-{model}-ctranslate2"

        def build(scratch: Path) -> None:
            convert(known.download(options.download_root), scratch, known.alignment_heads)
    else:
        path = checkpoint_file(model, options.download_root)
        folder = options.engine_cache / f"{content_key(path)}-ctranslate2"

        def build(scratch: Path) -> None:
            convert(path, scratch)

    return converted(folder, build, model)


def converted(folder: Path, build: Callable[[Path], None], model: str) -> Path:
    """``folder``, built by ``build`` unless cached; a checkpoint it cannot convert is an error naming the setting."""
    started = time.perf_counter()
    try:
        folder, built = cached_build(folder, build)
    except UnfitCheckpoint as exc:
        raise LabelzooError(
            f"WHISPER_MODEL={model!r} cannot be converted for WHISPER_ENGINE=faster-whisper: {exc}; set it to an "
            "openai-whisper checkpoint (.pt), an official model name or a CTranslate2 folder"
        ) from exc
    if built:
        log.info("converted Whisper %s to CTranslate2 in %.1f s: %s", model, time.perf_counter() - started, folder)
    return folder
