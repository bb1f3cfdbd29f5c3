"""openai-whisper checkpoints converted to CTranslate2 for faster-whisper (``backends/whisper/conversion.py``).

The real tiny.en goes round the circle: the packaged CTranslate2 folder (:data:`whisper_support.TINY_EN`) put into
openai-whisper's network (:func:`whisper_support.openai_from_ct2`), saved as an openai-whisper checkpoint, served as
the official ``tiny.en`` (openai-whisper's download replaced by that file: there is no internet here) and converted
back. The conversion must be the packaged folder again: the same tensors, word-timing heads, suppressed tokens and
vocabulary, and the same transcripts, words and timings, which are openai-whisper's own tokens. The token files are
checked against openai-whisper's tokenizer for English-only, multilingual and large-v3 vocabularies, and a random
multilingual model against openai-whisper token for token. Then the cache, unfit files, and ``/predict``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import ctranslate2
import faster_whisper
import numpy as np
import pytest
import tokenizers
import torch
import whisper
from whisper.audio import N_FRAMES, N_SAMPLES, log_mel_spectrogram, pad_or_trim

from labelzoo import Settings, audio
from labelzoo.errors import LabelzooError
from labelzoo.server.app import create_app
from tests.backends.test_whisper_engines import FASTER, QUICKSTART, SAID, shape
from tests.backends.test_whisper_fidelity import SEGMENTS, WORDS
from tests.backends.whisper_support import (
    TINY_EN,
    WHISPER_BACKEND,
    one_torch_thread,
    openai_from_ct2,
    random_model,
    read_ct2,
    save,
    serve_files,
    speech,
)
from tests.backends.whisper_support import whisper_module as module

conversion, tokens, options = module("conversion"), module("tokens"), module("options")
TEXTS = (
    "Please send the report before the end of the week.",
    " I'll say it  twice:\n\tthey'd WON'T 1234,5 — ok?!",
    "Ça va très bien, merci : où est la gare ?",
    "日本語のテキストと中文の混合、한국어도",
    "Ünïcödé, ñ and emojis 🎉🚀  ",
)
GREEDY = {"beam_size": 1, "best_of": 1, "temperature": 0.0}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("whisper-conversion")
    for name, sentence in SAID.items():
        speech(folder / name, sentence)
    return folder


@pytest.fixture(scope="module")
def checkpoint(media: Path) -> Path:
    """The real tiny.en as an openai-whisper checkpoint file (float32)."""
    return save(openai_from_ct2(), media / "tiny-en.pt")


def read_options(models: Path, **env: str) -> Any:
    return options.WhisperOptions.from_settings(Settings.from_env(
        {"DEVICE": "cpu", "WHISPER_ENGINE": "faster-whisper", "MODEL_DIR": str(models), **env}))  # fmt: skip


@pytest.fixture(scope="module")
def official(media: Path, checkpoint: Path) -> Iterator[Path]:
    """``WHISPER_MODEL=tiny.en`` converted, openai-whisper's download of it giving :func:`checkpoint`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(whisper, "_download", lambda url, root, in_memory: str(checkpoint))
        yield conversion.ct2_folder(read_options(media / "models", WHISPER_MODEL="tiny.en"))


def test_tiny_en_converted_from_openai_whisper_is_the_packaged_folder(official: Path, media: Path) -> None:
    assert official.parent == media / "models" / "engines" and official.name.endswith("-tiny.en-ctranslate2")
    assert official.name.startswith(whisper._MODELS["tiny.en"].split("/")[-2][:16])  # named by the official SHA-256
    packaged, converted = read_ct2(TINY_EN / "model.bin"), read_ct2(official / "model.bin")
    floats = [name for name, value in packaged.items() if value.dtype.kind == "f"]
    assert len(floats) > 70 and all(np.array_equal(packaged[n].astype(np.float32), converted[n]) for n in floats)
    expected = json.loads((TINY_EN / "config.json").read_text())
    config = json.loads((official / "config.json").read_text())
    for name in ("alignment_heads", "suppress_ids", "suppress_ids_begin"):  # heads: openai-whisper's packed tiny.en
        assert config[name] == expected[name], name
    vocabulary = (TINY_EN / "vocabulary.txt").read_text().splitlines()
    ours = json.loads((official / "vocabulary.json").read_text())
    assert len(ours) == len(vocabulary) == 51864
    # Hugging Face spells Hebrew `iw`; openai-whisper, and faster-whisper's language codes, `he`
    assert [(i, a, b) for i, (a, b) in enumerate(zip(vocabulary, ours, strict=True)) if a != b] == [
        (50278, "<|iw|>", "<|he|>")]  # fmt: skip
    assert json.loads((official / "preprocessor_config.json").read_text())["feature_size"] == 80


def test_the_conversion_transcribes_as_the_packaged_folder_and_as_openai_whisper(official: Path, media: Path,
                                                                                 checkpoint: Path) -> None:  # fmt: skip
    packaged = faster_whisper.WhisperModel(str(TINY_EN), device="cpu", compute_type="float32")
    converted = faster_whisper.WhisperModel(str(official), device="cpu", compute_type="float32")
    reference = whisper.load_model(str(checkpoint), device="cpu")
    for name in SAID:
        clip = audio.decode(media / name)
        ours = [asdict(s) for s in converted.transcribe(clip, word_timestamps=True, **GREEDY)[0]]
        assert ours == [asdict(s) for s in packaged.transcribe(clip, word_timestamps=True, **GREEDY)[0]], name
        assert ours[0]["words"] and ours[0]["text"].strip()
        with one_torch_thread():
            openai = reference.transcribe(clip, temperature=0.0, fp16=False)["segments"]
        assert [s["tokens"] for s in ours] == [s["tokens"] for s in openai], name


@pytest.mark.parametrize("n_vocab", [51864, 51865, 51866], ids=["english-only", "multilingual", "large-v3"])
def test_the_token_files_give_openai_whisper_token_ids(n_vocab: int) -> None:
    tokenizer = tokens.whisper_tokenizer(n_vocab)
    hf = tokens.hf_tokenizer(tokenizer)
    vocabulary = tokens.vocabulary(tokenizer)
    assert hf.get_vocab_size() == len(vocabulary) == n_vocab
    for text in TEXTS:
        ids = hf.encode(text, add_special_tokens=False).ids
        assert ids == tokenizer.encode(text), text
        assert hf.decode(ids) == text
    for name in ("<|startoftranscript|>", "<|transcribe|>", "<|notimestamps|>", "<|0.00|>", "<|30.00|>"):
        assert hf.token_to_id(name) == vocabulary.index(name) == tokenizer.encoding.encode_single_token(name), name
    assert hf.token_to_id("<|nocaptions|>") == vocabulary.index("<|nocaptions|>") == tokenizer.no_speech
    assert vocabulary[tokenizer.encode(" hello")[0]] == "Ġhello"  # GPT-2's byte-level spelling (Ġ: a space)
    multilingual = n_vocab > 51864
    assert (hf.token_to_id("<|yue|>") is not None) == (n_vocab == 51866)
    if not multilingual:  # the same BPE model as the packaged tiny.en's tokenizer.json
        ours = json.loads(hf.to_str())["model"]
        packaged = json.loads((TINY_EN / "tokenizer.json").read_text())["model"]
        assert [" ".join(pair) for pair in ours["merges"]] == packaged["merges"]  # saved as pairs, or as text
        assert ours["vocab"] == {k: v for k, v in packaged["vocab"].items() if k != "<|endoftext|>"}
        assert tokenizers.Tokenizer.from_file(str(TINY_EN / "tokenizer.json")).encode(TEXTS[1]).ids[2:-1] == \
            tokenizer.encode(TEXTS[1])  # fmt: skip


def test_no_other_vocabulary_size_has_a_tokenizer() -> None:
    with pytest.raises(ValueError, match="no Whisper tokenizer has 1000 tokens"):
        tokens.whisper_tokenizer(1000)


def test_a_random_multilingual_model_decodes_openai_whispers_tokens(media: Path) -> None:
    """Random weights decode the longest window openai-whisper allows (224 tokens): every one must be the same,
    which a wrong fused weight or a shifted token id would not survive. The language probabilities are compared on
    openai-whisper's log-mel: faster-whisper's own feature extractor differs from it in the last digits, which a
    random network amplifies."""
    model = random_model(seed=3)
    folder = media / "random-ct2"
    folder.mkdir()
    conversion.convert(save(model, media / "random.pt"), folder)
    clip = audio.decode(media / "report.wav")
    converted = faster_whisper.WhisperModel(str(folder), device="cpu", compute_type="float32")
    assert converted.model.is_multilingual
    for language in ("en", "fr"):
        with one_torch_thread():
            openai = model.transcribe(clip, language=language, temperature=0.0, fp16=False)["segments"]
        ours = converted.transcribe(clip, language=language, **GREEDY)[0]
        expected = [t for s in openai for t in s["tokens"]]
        assert [t for s in ours for t in s.tokens] == expected and len(expected) == 224, language
    mel = pad_or_trim(log_mel_spectrogram(clip, 80, padding=N_SAMPLES), N_FRAMES)
    with torch.no_grad():
        _, probabilities = model.detect_language(mel)
    ct2 = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32")
    detected = ct2.detect_language(ctranslate2.StorageView.from_array(mel[None].numpy()))[0]
    assert len(detected) == 99
    for token, probability in detected[:5]:
        assert probability == pytest.approx(probabilities[token[2:-2]], abs=1e-4), token


def test_a_checkpoint_is_converted_once_and_anew_when_it_changes(tmp_path: Path, monkeypatch: Any) -> None:
    built: list[Path] = []
    write = conversion.write_ct2

    def counted(checkpoint: Any, folder: Path) -> None:
        built.append(folder)
        write(checkpoint, folder)

    monkeypatch.setattr(conversion, "write_ct2", counted)
    path = save(random_model(seed=1), tmp_path / "mine.pt")
    settings = read_options(tmp_path / "models", WHISPER_MODEL=str(path))
    first = conversion.ct2_folder(settings)
    assert conversion.ct2_folder(settings) == first and len(built) == 1  # found, not converted again
    assert first.parent == tmp_path / "models" / "engines" and (first / "tokenizer.json").is_file()
    assert sorted(p.name for p in first.parent.iterdir()) == [first.name]  # no scratch folder left
    save(random_model(seed=2), path)  # new weights under the same name
    second = conversion.ct2_folder(settings)
    assert second != first and len(built) == 2
    assert not np.array_equal(*(read_ct2(f / "model.bin")["decoder/embeddings/weight"] for f in (first, second)))


def test_an_official_model_already_converted_is_not_downloaded_again(official: Path, media: Path,
                                                                     monkeypatch: Any) -> None:  # fmt: skip
    def offline(url: str, root: str, in_memory: bool) -> str:
        raise AssertionError("downloaded")

    monkeypatch.setattr(whisper, "_download", offline)
    assert conversion.ct2_folder(read_options(media / "models", WHISPER_MODEL="tiny.en")) == official


def unfit_files(folder: Path) -> dict[str, Path]:
    garbage, foreign, misfit = folder / "garbage.pt", folder / "foreign.pt", folder / "misfit.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    torch.save({"state_dict": {}}, foreign)
    model = random_model()
    torch.save({"dims": {**model.dims.__dict__, "n_text_layer": 3}, "model_state_dict": model.state_dict()}, misfit)
    return {"not a PyTorch checkpoint": garbage, "no 'dims' and 'model_state_dict'": foreign,
            "do not fit its dimensions": misfit}  # fmt: skip


def test_an_unfit_checkpoint_is_refused_naming_the_setting_and_leaves_nothing(tmp_path: Path) -> None:
    for reason, path in unfit_files(tmp_path).items():
        with pytest.raises(LabelzooError, match=f"WHISPER_MODEL='{path}' cannot be converted") as refused:
            conversion.ct2_folder(read_options(tmp_path / "models", WHISPER_MODEL=str(path)))
        assert reason in refused.value.message, refused.value.message
    assert list((tmp_path / "models" / "engines").iterdir()) == []


def test_an_unfit_checkpoint_fails_the_load_in_health(make_runtime: Any, tmp_path: Path) -> None:
    path = unfit_files(tmp_path)["not a PyTorch checkpoint"]
    runtime = make_runtime(WHISPER_BACKEND, wait=False, DEVICE="cpu", WHISPER_ENGINE="faster-whisper",
                           WHISPER_MODEL=str(path))  # fmt: skip
    assert not runtime.models.wait_ready(60)
    health = create_app(runtime).test_client().get("/health").get_json()
    assert "WHISPER_MODEL=" in health["reason"] and "cannot be converted" in health["reason"], health


def test_served_results_of_a_converted_checkpoint_are_the_packaged_folders_in_the_same_shapes(
    make_runtime: Any, media: Path, checkpoint: Path
) -> None:
    """A ``.pt`` file with WHISPER_ENGINE=faster-whisper: converted on load (its word-timing heads the default ones,
    as openai-whisper takes for a file), served as the packaged folder serves, in the openai engine's shapes."""
    files = list(SAID)
    models = {"MODEL_DIR": str(media / "served-models")}

    def serve(model: Path, config: str, **env: str) -> list[dict[str, Any]]:
        return serve_files(make_runtime, media, model, files, config, **models, **env)

    converted, packaged = serve(checkpoint, SEGMENTS, **FASTER), serve(TINY_EN, SEGMENTS, **FASTER)
    assert list(map(without_ids, converted)) == list(map(without_ids, packaged))
    assert converted[0]["model_version"].startswith("faster-whisper-tiny-en-float32")
    assert len(list((media / "served-models" / "engines").iterdir())) == 1
    openai = {k: v for k, v in FASTER.items() if k not in ("WHISPER_ENGINE", "WHISPER_COMPUTE_TYPE")}
    for config in (QUICKSTART, WORDS):
        converted, reference = serve(checkpoint, config, **FASTER), serve(checkpoint, config, **openai)
        assert [shape(r) for r in converted] == [shape(r) for r in reference] and all(map(shape, converted))


def without_ids(result: dict[str, Any]) -> tuple[list[dict[str, Any]], float]:
    """A served result's items (region ids are random) and score."""
    return [{k: v for k, v in item.items() if k != "id"} for item in result["result"]], result["score"]
