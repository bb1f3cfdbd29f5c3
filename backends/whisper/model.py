"""Whisper backend: speech-to-text pre-annotation with OpenAI Whisper (``openai-whisper``).

For each ``<Audio>`` of the label config it fills a transcript ``<TextArea>``, one ``<Labels>`` region
per segment (or per word) with its text in a per-region ``<TextArea>``, and a language ``<Choices>``;
see ``labeling.py`` for the rules and ``scores.py`` for the confidence scores. The model loads once
and serves every task of every request; audio is decoded by ffmpeg a window at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from labelzoo import Backend, LabelzooError, PredictContext, Prediction, Target, Task, TaskError
from labelzoo.labelconfig import ControlTag, ObjectTag
from labelzoo.taskdata import field_value

from .audio import AudioStream, ffmpeg_program
from .labeling import AUDIO_TAGS, AudioPlan, plan, results_for, speech_label
from .options import DEFAULT_MODEL, WhisperOptions, model_name
from .transcriber import Transcriber, load_model


class WhisperBackend(Backend):
    targets = tuple(Target(control, obj) for obj in AUDIO_TAGS for control in ("TextArea", "Labels", "Choices"))
    batch_size = 16
    description = "OpenAI Whisper speech-to-text: transcripts, timed segments or words, and the spoken language"

    transcriber: Transcriber

    def load(self) -> None:
        ffmpeg_program()  # fail the load, visibly in /health, when ffmpeg is missing
        options = WhisperOptions.from_settings(self.settings)
        self.transcriber = Transcriber(load_model(options), options)

    def base_version(self) -> str:
        return f"whisper-{model_name(self.settings.option('WHISPER_MODEL', DEFAULT_MODEL) or DEFAULT_MODEL)}"

    def model_labels(self, control: ControlTag, obj: ObjectTag) -> Sequence[str] | None:
        if control.tag != "Labels":
            return None
        label = speech_label(control)
        return None if label is None else [label]

    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
        """Every task's audio is fetched in parallel and transcribed as it arrives; a task that fails
        (bad URL, bad file, a Whisper error) fails alone, and no task is ever transcribed twice."""
        try:
            decoding = self.transcriber.options.decoding.with_params(ctx.params)
        except TaskError as exc:  # a bad extra_params value: every task fails with the same message
            return [Prediction.failed(exc.message) for _ in tasks]
        results: list[list[dict[str, Any]]] = [[] for _ in tasks]
        scores: list[list[float]] = [[] for _ in tasks]
        errors: list[str | None] = [None] * len(tasks)
        for audio in plan(ctx.config):
            wanted: list[tuple[int, str]] = []
            for i, task in enumerate(tasks):
                try:
                    wanted.append((i, _media_value(task, audio)))
                except TaskError as exc:
                    errors[i] = errors[i] or exc.message
            for n, path in ctx.media.iter_fetch([(value, tasks[i].id) for i, value in wanted]):
                i, value = wanted[n]
                try:
                    if isinstance(path, Exception):
                        raise path
                    with AudioStream(path, name=value) as stream:
                        transcript = self.transcriber.transcribe(
                            stream, decoding, text=audio.needs_text, words=audio.needs_words,
                            detect=audio.needs_language,
                        )  # fmt: skip
                    items, score = results_for(audio, transcript)
                except Exception as exc:
                    errors[i] = errors[i] or _failure(tasks[i], exc, ctx)
                    continue
                results[i].extend(items)
                if score is not None:
                    scores[i].append(score)
        return [
            Prediction.failed(error) if error else Prediction(result=result, score=min(found) if found else None)
            for result, found, error in zip(results, scores, errors, strict=True)
        ]


def _media_value(task: Task, audio: AudioPlan) -> str:
    value = field_value(task, audio.obj)
    if not isinstance(value, str) or not value.strip():
        raise TaskError(f"task {task.id}: field {audio.obj.value_key!r} must be an audio URL, got {value!r:.80}")
    return value


def _failure(task: Task, exc: Exception, ctx: PredictContext) -> str:
    """The message a failed task carries; unexpected errors are logged with their traceback."""
    if isinstance(exc, LabelzooError):
        ctx.logger.warning("task %s: %s", task.id, exc.message)
        return exc.message
    ctx.logger.error("task %s: Whisper failed", task.id, exc_info=exc)
    return f"task {task.id}: Whisper failed ({type(exc).__name__}: {exc})"
