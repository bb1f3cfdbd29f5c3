"""openai-whisper's tokenizer written as the token files a CTranslate2 Whisper folder holds.

CTranslate2 needs the vocabulary (one string per token id) and faster-whisper a Hugging Face ``tokenizer.json``;
both are made here from the tokenizer openai-whisper bundles (``whisper/assets/*.tiktoken``, its special tokens),
so every token id is the one openai-whisper decodes, for English-only and multilingual models alike:

* ordinary tokens are byte strings with a rank (= id); they are written in GPT-2's byte-level alphabet (each byte
  a printable character), which is what ``tokenizers``' ``ByteLevel`` pre-tokenizer and decoder read. The BPE
  merges that file needs are not stored by tiktoken: a token of rank ``r`` is the merge of the two parts that
  byte-pair encoding with the ranks below ``r`` leaves of it (on GPT-2's vocabulary this gives its published
  merges list exactly).
* special tokens follow in openai-whisper's order (end of text, start of transcript, the languages, the tasks, ...,
  then the 1501 timestamps), with one rename: openai-whisper's ``<|nospeech|>`` is ``<|nocaptions|>``, the name
  CTranslate2 looks the no-speech token up by.
"""

from __future__ import annotations

import math
from functools import cache

import tokenizers
from tokenizers import decoders, pre_tokenizers
from tokenizers.models import BPE
from whisper.tokenizer import Tokenizer, get_tokenizer

#: the special tokens of openai-whisper that CTranslate2 and Hugging Face name differently
RENAMED = {"<|nospeech|>": "<|nocaptions|>"}
#: Whisper's embedding rows besides the languages: a multilingual model has 51765 + languages + 1
BASE_VOCAB = 51765


def whisper_tokenizer(n_vocab: int) -> Tokenizer:
    """The openai-whisper tokenizer of a model with ``n_vocab`` embedding rows, as ``whisper.Whisper`` picks it
    (multilingual from 51865 rows on, one more row per language beyond 99); a size no tokenizer has is refused."""
    multilingual = n_vocab >= BASE_VOCAB + 100
    languages = n_vocab - BASE_VOCAB - int(multilingual)
    tokenizer = get_tokenizer(multilingual, num_languages=languages) if 0 < languages <= 100 else None
    if tokenizer is None or tokenizer.encoding.n_vocab != n_vocab:
        raise ValueError(f"no Whisper tokenizer has {n_vocab} tokens (51864 English-only, 51865 or 51866 multilingual)")
    return tokenizer


@cache
def byte_symbols() -> tuple[str, ...]:
    """GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves, the other 68 bytes (controls,
    space, soft hyphen...) for the characters from U+0100 on, in byte order."""
    printable = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)}
    symbols, unprintable = [], 0
    for byte in range(256):
        if byte in printable:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + unprintable))
            unprintable += 1
    return tuple(symbols)


def spelled(token: bytes) -> str:
    symbols = byte_symbols()
    return "".join(symbols[byte] for byte in token)


def ordinary_tokens(tokenizer: Tokenizer) -> list[bytes]:
    """The bytes of each ordinary (non-special) token, by id."""
    return [tokenizer.encoding.decode_single_token_bytes(i) for i in range(tokenizer.eot)]


def special_tokens(tokenizer: Tokenizer) -> list[str]:
    """The special tokens by id, from ``<|endoftext|>`` on, under CTranslate2's names."""
    ids = range(tokenizer.eot, tokenizer.encoding.n_vocab)
    names = [tokenizer.encoding.decode_single_token_bytes(i).decode() for i in ids]
    return [RENAMED.get(name, name) for name in names]


def vocabulary(tokenizer: Tokenizer) -> list[str]:
    """CTranslate2's vocabulary: the string of every token id."""
    return [*map(spelled, ordinary_tokens(tokenizer)), *special_tokens(tokenizer)]


def merges(tokens: list[bytes]) -> list[tuple[bytes, bytes]]:
    """The BPE merges that rebuild ``tokens`` (ranked by id), in rank order: for each token of two bytes or more, the
    two parts byte-pair encoding leaves of it when only lower-ranked tokens may be formed."""
    ranks = {token: rank for rank, token in enumerate(tokens)}
    out = []
    for rank, token in enumerate(tokens):
        if len(token) < 2:
            continue
        parts = [token[i : i + 1] for i in range(len(token))]
        while len(parts) > 2:
            first = min(range(len(parts) - 1), key=lambda i: ranks.get(parts[i] + parts[i + 1], math.inf))
            if ranks.get(parts[first] + parts[first + 1], math.inf) >= rank:
                break
            parts[first : first + 2] = [parts[first] + parts[first + 1]]
        if len(parts) != 2:
            raise ValueError(f"token {rank} ({token!r}) is not a merge of two lower-ranked tokens")
        out.append((parts[0], parts[1]))
    return out


def hf_tokenizer(tokenizer: Tokenizer) -> tokenizers.Tokenizer:
    """The Hugging Face tokenizer faster-whisper reads (``tokenizer.json``), giving openai-whisper's token ids."""
    tokens = ordinary_tokens(tokenizer)
    model = BPE(vocab={spelled(t): i for i, t in enumerate(tokens)},
                merges=[(spelled(a), spelled(b)) for a, b in merges(tokens)])  # fmt: skip
    out = tokenizers.Tokenizer(model)
    out.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # GPT-2's split, as tiktoken's pattern
    out.decoder = decoders.ByteLevel()
    specials = special_tokens(tokenizer)
    out.add_special_tokens([tokenizers.AddedToken(t, special=True, normalized=False) for t in specials])
    return out


def generation_ids(tokenizer: Tokenizer) -> dict[str, list[int]]:
    """CTranslate2's Whisper config: the tokens openai-whisper suppresses by default (its ``suppress_tokens="-1"``:
    non-speech symbols, the task and context tokens, no-speech) and at a segment's start (a blank, the end of
    text), and the language tokens its language detection chooses among."""
    suppressed = {*tokenizer.non_speech_tokens, tokenizer.transcribe, tokenizer.translate, tokenizer.sot,
                  tokenizer.sot_prev, tokenizer.sot_lm, tokenizer.no_speech}  # fmt: skip
    return {
        "suppress_ids": sorted(suppressed),
        "suppress_ids_begin": [*tokenizer.encode(" "), tokenizer.eot],
        "lang_ids": sorted(tokenizer.all_language_tokens),
    }
