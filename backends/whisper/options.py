"""Whisper's options: the engine, the model, the device and how to decode, declared once; decoding overridable
per project.

A project's ``extra_params`` may override ``language``, ``task``, ``beam_size`` and ``temperature``
(:meth:`Decoding.with_params`). Defaults follow the device: on a GPU, Whisper's own (beam search of 5,
temperature fallback 0 → 1.0 when a window decodes badly); on a CPU, greedy decoding at temperature 0,
several times faster and what most CPU users want for pre-annotation.

Two engines run the same Whisper networks: ``openai`` (``openai-whisper``, PyTorch) and ``faster-whisper``
(CTranslate2). Both read official names (downloaded by openai-whisper) and ``.pt`` checkpoints (a path or a URL),
which faster-whisper converts to CTranslate2 once (:mod:`.conversion`); faster-whisper also reads CTranslate2
folders (``model.bin`` and ``config.json``), and such a folder picks it by itself. Its compute type defaults to
float32 on a CPU: the transcripts are then openai-whisper's, where int8 is faster but mishears more (the README
has the figures).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import whisper
from whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE

from labelzoo import Settings
from labelzoo.devices import resolve_device, use_fp16
from labelzoo.options import Option, OptionError, Options
from labelzoo.weights import is_url

DEFAULT_MODEL = "base"
OPENAI, FASTER_WHISPER = "openai", "faster-whisper"
ENGINES = (OPENAI, FASTER_WHISPER)
#: CTranslate2's compute types (https://opennmt.net/CTranslate2/quantization.html); `default` keeps the folder's
COMPUTE_TYPES = ("default", "auto", "float32", "float16", "bfloat16", "int8", "int8_float32", "int8_float16",
                 "int8_bfloat16", "int16")  # fmt: skip
CT2_FILES = ("model.bin", "config.json")  # what makes a folder a CTranslate2 model
TASKS = ("transcribe", "translate")
GPU_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # whisper.transcribe's default fallback schedule
GPU_BEAM_SIZE = 5  # the whisper command line's default
#: not Apple's MPS: Whisper's model does not load there (its alignment heads are a sparse tensor)
DEVICE_TYPES = ("cuda", "cpu")


def language_code(text: str | None) -> str | None:
    """``"en"``, ``"English"`` or ``"english"`` → ``"en"``; None if it names no language Whisper knows."""
    key = (text or "").strip().lower()
    return key if key in LANGUAGES else TO_LANGUAGE_CODE.get(key)


def language(text: str) -> str | None:
    """A language code (``en``), name (``English``) or ``auto`` (detect it) → the code, or None to detect."""
    if text.strip().lower() in ("", "auto"):
        return None
    code = language_code(text)
    if code is None:
        raise ValueError(
            "is not a language Whisper knows: use a code such as 'en', a name such as 'English', or 'auto' to detect it"
        )
    return code


OPTIONS = Options(
    Option("WHISPER_ENGINE", str, None, choices=ENGINES, allowed="'openai' or 'faster-whisper'",
           default_doc="`faster-whisper` for a CTranslate2 folder, else `openai`",
           doc="`openai` (openai-whisper, PyTorch) or `faster-whisper` (CTranslate2; see Engines)"),
    Option("WHISPER_MODEL", str, DEFAULT_MODEL,
           doc="an official model (`tiny`, `base`, `small`, `medium`, `large-v3`, `turbo`, the `.en` variants, ...), "
           "an openai-whisper checkpoint (a `.pt` file or its URL; converted once for faster-whisper, see Engines) "
           "or a CTranslate2 folder (`model.bin` + `config.json`, faster-whisper engine); relative paths are looked "
           "up under `MODEL_ROOT`"),
    Option("WHISPER_COMPUTE_TYPE", str, None, choices=COMPUTE_TYPES,
           allowed="a CTranslate2 compute type: " + ", ".join(COMPUTE_TYPES),
           default_doc="`float32` on a CPU, `float16` on a GPU",
           doc="faster-whisper only: the precision CTranslate2 computes in (`int8` is faster on a CPU but less "
           "accurate, see Engines)"),
    Option("WHISPER_DOWNLOAD_ROOT", Path, default_doc="`whisper/` next to `MODEL_DIR` (`/data/whisper` in the image)",
           doc="where official weights and checkpoint URLs are downloaded on first use"),
    Option("WHISPER_LANGUAGE", str, None, check=language, project="language", default_doc="`auto`",
           doc="the spoken language as a code (`en`) or name (`English`); `auto` detects it per file"),
    Option("WHISPER_TASK", str, "transcribe", choices=TASKS, project="task",
           allowed="'transcribe' or 'translate' (into English)", doc="`transcribe`, or `translate` (into English)"),
    Option("WHISPER_BEAM_SIZE", int, None, low=1, project="beam_size",
           allowed="a whole number of beams >= 1 (1 = greedy decoding)",
           default_doc="5 on a GPU, 1 (greedy) on a CPU", doc="beams of the beam search at temperature 0"),
    Option("WHISPER_TEMPERATURE", float, None, low=0, high=1, many=True, project="temperature",
           allowed="a temperature in [0, 1] or a list of them, e.g. 0,0.2,0.4",
           default_doc="`0,0.2,0.4,0.6,0.8,1.0` on a GPU, `0` on a CPU",
           doc="a temperature or Whisper's fallback schedule: a window that decodes badly (too repetitive, too "
           "improbable) is decoded again at the next temperature"),
    Option("WHISPER_WINDOW_SECONDS", float, 600.0, low=5, allowed="a number of seconds >= 5",
           doc="audio decoded and transcribed at a time (see Long files)"),
    Option("WHISPER_VAD", bool, True,
           doc="transcribe only audio with speech in it (Silero voice activity detection, see Silence): a window "
           "without speech gives no transcript, a segment more than 2 s from any speech is dropped; `false`: the "
           "engine's raw output"),
    Option("WHISPER_VAD_THRESHOLD", float, 0.5, low=0, high=1,
           doc="the speech probability above which the detector counts audio as speech"),
)


def _beams(size: int | None) -> int | None:
    """Whisper's beam size: None for greedy decoding, which a setting of 1 asks for."""
    return None if size == 1 else size


@dataclass(frozen=True)
class Decoding:
    """How to decode: the language (None: detect it), task, beam size (None: greedy) and temperatures."""

    language: str | None
    task: str
    beam_size: int | None
    temperature: tuple[float, ...]

    def with_params(self, params: Mapping[str, Any]) -> Decoding:
        """These options with a project's ``extra_params`` applied; a bad value is a RequestError naming it."""
        changes = OPTIONS.project_overrides(params)  # keyed like this class's fields
        if "beam_size" in changes:
            changes["beam_size"] = _beams(changes["beam_size"])
        return replace(self, **changes) if changes else self

    def transcribe_kwargs(self, *, fp16: bool) -> dict[str, Any]:
        """Keyword arguments for ``whisper.transcribe`` (the language is passed separately)."""
        temperature: float | tuple[float, ...] = (
            self.temperature[0] if len(self.temperature) == 1 else self.temperature
        )
        return {"task": self.task, "beam_size": self.beam_size, "temperature": temperature, "fp16": fp16}


@dataclass(frozen=True)
class WhisperOptions:
    engine: str  # OPENAI or FASTER_WHISPER
    model: str  # an official name, a checkpoint file or URL, or a CTranslate2 folder (faster-whisper)
    device: str
    compute_type: str  # faster-whisper only
    download_root: Path
    engine_cache: Path  # $MODEL_DIR/engines: checkpoints converted for faster-whisper, by content
    window_seconds: float
    decoding: Decoding
    vad_threshold: float | None  # WHISPER_VAD_THRESHOLD, None with WHISPER_VAD=false

    @property
    def fp16(self) -> bool:
        return use_fp16(self.device)

    @classmethod
    def from_settings(cls, settings: Settings) -> WhisperOptions:
        """The declared options read from the settings, with the device resolved (this imports torch)."""
        values = OPTIONS.read(settings.env)
        device = str(resolve_device(settings.device, DEVICE_TYPES))
        on_gpu = device.startswith("cuda")
        decoding = Decoding(
            language=values.whisper_language,
            task=values.whisper_task,
            beam_size=_beams(values.whisper_beam_size or (GPU_BEAM_SIZE if on_gpu else 1)),
            temperature=values.whisper_temperature or (GPU_TEMPERATURES if on_gpu else (0.0,)),
        )
        model = resolve_model(values.whisper_model, settings)
        return cls(
            engine=resolve_engine(values.whisper_engine, model),
            model=model,
            device=device,
            compute_type=values.whisper_compute_type or ("float16" if on_gpu else "float32"),
            download_root=values.whisper_download_root or settings.model_dir.parent / "whisper",
            engine_cache=settings.model_dir / "engines",
            window_seconds=values.whisper_window_seconds,
            decoding=decoding,
            vad_threshold=values.whisper_vad_threshold if values.whisper_vad else None,
        )


def model_name(value: str) -> str:
    """A short name for a model setting: ``"base"`` → ``"base"``, ``"/m/my-tune.pt"`` → ``"my-tune"``."""
    return value if value in whisper.available_models() else Path(value).stem


def is_ct2_folder(path: Path) -> bool:
    return all((path / name).is_file() for name in CT2_FILES)


def resolve_model(value: str, settings: Settings) -> str:
    """``value`` if it names an official model or is a URL, else the checkpoint file or CTranslate2 folder it
    points at."""
    if value in whisper.available_models() or is_url(value):
        return value
    path = settings.model_path(value)
    if not (path.is_file() or is_ct2_folder(path)):
        names = ", ".join(whisper.available_models())
        raise OptionError(
            f"WHISPER_MODEL={value!r} is neither a Whisper model ({names}), nor a checkpoint file, nor a CTranslate2 "
            f"folder (one holding {' and '.join(CT2_FILES)})"
        )
    return str(path)


def resolve_engine(value: str | None, model: str) -> str:
    """The engine for a resolved model: the setting's, else the one that reads the model (faster-whisper for a
    CTranslate2 folder, else openai); openai with a CTranslate2 folder is refused."""
    folder = is_ct2_folder(Path(model))
    engine = value or (FASTER_WHISPER if folder else OPENAI)
    if engine == OPENAI and folder:
        raise OptionError(
            f"WHISPER_MODEL={model!r} is a CTranslate2 folder, which only WHISPER_ENGINE=faster-whisper reads"
        )
    return engine
