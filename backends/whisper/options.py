"""Whisper's settings: the model and device from the environment, decoding options per project.

Environment (read once through :class:`~labelzoo.settings.Settings`): ``WHISPER_MODEL``,
``WHISPER_LANGUAGE``, ``WHISPER_TASK``, ``WHISPER_BEAM_SIZE``, ``WHISPER_TEMPERATURE``,
``WHISPER_WINDOW_SECONDS``, ``WHISPER_DOWNLOAD_ROOT`` and the common ``DEVICE``. A project's
``extra_params`` may override ``language``, ``task``, ``beam_size`` and ``temperature``.

Defaults follow the device: on a GPU, Whisper's own (beam search of 5, temperature fallback
0 → 1.0 when a window decodes badly); on a CPU, greedy decoding at temperature 0, several times
faster and what most CPU users want for pre-annotation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import whisper
from whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE

from labelzoo import Settings, TaskError, devices

DEFAULT_MODEL = "base"
DEFAULT_WINDOW_SECONDS = 600.0  # ten minutes of audio decoded and transcribed at a time
MIN_WINDOW_SECONDS = 5.0
TASKS = ("transcribe", "translate")
GPU_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # whisper.transcribe's default fallback schedule
GPU_BEAM_SIZE = 5  # the whisper command line's default
PROJECT_KEYS = ("language", "task", "beam_size", "temperature")


class OptionError(ValueError):
    """A Whisper setting has a value that cannot work; the message names the setting and the fix."""


@dataclass(frozen=True)
class Decoding:
    """How to decode: the language (None: detect it), task, beam size (None: greedy) and temperatures."""

    language: str | None
    task: str
    beam_size: int | None
    temperature: tuple[float, ...]

    def with_params(self, params: Mapping[str, Any]) -> Decoding:
        """These options with a project's ``extra_params`` applied; a bad value fails the task clearly."""
        changes: dict[str, Any] = {}
        try:
            if "language" in params:
                changes["language"] = parse_language(params["language"], "extra_params.language")
            if "task" in params:
                changes["task"] = parse_task(params["task"], "extra_params.task")
            if "beam_size" in params:
                changes["beam_size"] = parse_beam_size(params["beam_size"], "extra_params.beam_size")
            if "temperature" in params:
                changes["temperature"] = parse_temperature(params["temperature"], "extra_params.temperature")
        except OptionError as exc:
            raise TaskError(str(exc)) from None
        return replace(self, **changes) if changes else self

    def transcribe_kwargs(self, *, fp16: bool) -> dict[str, Any]:
        """Keyword arguments for ``whisper.transcribe`` (the language is passed separately)."""
        temperature: float | tuple[float, ...] = (
            self.temperature[0] if len(self.temperature) == 1 else self.temperature
        )
        return {"task": self.task, "beam_size": self.beam_size, "temperature": temperature, "fp16": fp16}


@dataclass(frozen=True)
class WhisperOptions:
    model: str  # a name from whisper.available_models() or a checkpoint file
    device: str
    download_root: Path
    window_seconds: float
    decoding: Decoding

    @property
    def fp16(self) -> bool:
        return self.device.startswith("cuda")

    @classmethod
    def from_settings(cls, settings: Settings) -> WhisperOptions:
        device = resolve_device(settings.device)
        on_gpu = device.startswith("cuda")
        beam = settings.option("WHISPER_BEAM_SIZE")
        temperature = settings.option("WHISPER_TEMPERATURE")
        decoding = Decoding(
            language=parse_language(settings.option("WHISPER_LANGUAGE"), "WHISPER_LANGUAGE"),
            task=parse_task(settings.option("WHISPER_TASK", "transcribe"), "WHISPER_TASK"),
            beam_size=parse_beam_size(beam, "WHISPER_BEAM_SIZE") if beam else (GPU_BEAM_SIZE if on_gpu else None),
            temperature=(
                parse_temperature(temperature, "WHISPER_TEMPERATURE")
                if temperature
                else (GPU_TEMPERATURES if on_gpu else (0.0,))
            ),
        )
        root = settings.option("WHISPER_DOWNLOAD_ROOT")
        return cls(
            model=resolve_model(settings.option("WHISPER_MODEL", DEFAULT_MODEL) or DEFAULT_MODEL, settings),
            device=device,
            download_root=Path(root) if root else settings.model_dir.parent / "whisper",
            window_seconds=parse_window(settings.option("WHISPER_WINDOW_SECONDS")),
            decoding=decoding,
        )


def model_name(value: str) -> str:
    """A short name for a model setting: ``"base"`` → ``"base"``, ``"/m/my-tune.pt"`` → ``"my-tune"``."""
    return value if value in whisper.available_models() else Path(value).stem


def resolve_model(value: str, settings: Settings) -> str:
    """``value`` if it names an official model, else the checkpoint file it points at."""
    if value in whisper.available_models():
        return value
    path = Path(value).expanduser()
    if not path.is_absolute() and settings.model_root is not None:
        path = settings.model_root / path
    if not path.is_file():
        names = ", ".join(whisper.available_models())
        raise OptionError(f"WHISPER_MODEL={value!r} is neither a Whisper model ({names}) nor a checkpoint file")
    return str(path)


def resolve_device(setting: str) -> str:
    """``auto`` → CUDA when a GPU is visible, else the CPU: not Apple's MPS, on which Whisper's model does
    not load (its alignment heads are a sparse tensor). Anything else is checked by the core."""
    if setting.strip().lower() == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(devices.resolve_device(setting))


def parse_language(raw: Any, where: str) -> str | None:
    """A language code (``en``), name (``English``) or ``auto``/empty (detect) → code or None."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise OptionError(f"{where} must be a language code or name, got {raw!r}")
    text = raw.strip().lower()
    if text in ("", "auto"):
        return None
    if text in LANGUAGES:
        return text
    if text in TO_LANGUAGE_CODE:
        return TO_LANGUAGE_CODE[text]
    raise OptionError(
        f"{where}={raw!r} is not a language Whisper knows: use a code such as 'en', a name such as 'English', "
        "or 'auto' to detect it"
    )


def parse_task(raw: Any, where: str) -> str:
    text = raw.strip().lower() if isinstance(raw, str) else raw
    if text not in TASKS:
        raise OptionError(f"{where}={raw!r} must be 'transcribe' or 'translate' (into English)")
    return str(text)


def parse_beam_size(raw: Any, where: str) -> int | None:
    """A whole number of beams >= 1 (a number or a numeric string); 1 means greedy (None for Whisper)."""
    size = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    if isinstance(raw, str) and raw.strip().isdigit():
        size = int(raw)
    if size is None or size < 1:
        raise OptionError(f"{where}={raw!r} must be a whole number of beams >= 1 (1 = greedy decoding)")
    return None if size == 1 else size


def parse_temperature(raw: Any, where: str) -> tuple[float, ...]:
    """``0``, ``0.2`` or a fallback schedule ``"0,0.2,0.4"`` (also a JSON list) of values in [0, 1]."""
    items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    try:
        values = tuple(float(item) for item in items)
    except (TypeError, ValueError):
        values = ()
    if not values or not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
        raise OptionError(f"{where}={raw!r} must be a temperature in [0, 1] or a list of them, e.g. 0,0.2,0.4")
    return values


def parse_window(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_WINDOW_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= MIN_WINDOW_SECONDS):
        raise OptionError(f"WHISPER_WINDOW_SECONDS={raw!r} must be a number of seconds >= {MIN_WINDOW_SECONDS:g}")
    return seconds
