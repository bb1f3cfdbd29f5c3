"""Whisper backend: speech-to-text pre-annotation with OpenAI Whisper (``openai-whisper`` or ``faster-whisper``).

For each ``<Audio>`` of the label config it fills a transcript ``<TextArea>``, one ``<Labels>`` region
per segment (or per word) with its text in a per-region ``<TextArea>``, and a language ``<Choices>``;
see ``labeling.py`` for the rules, ``scores.py`` for the confidence scores and ``engines.py`` for the two
engines, which give the same results' shapes. The model loads once
and serves every task of every request; audio is decoded by ffmpeg a window at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

from labelzoo import Backend, PredictContext, Prediction, Target, Task
from labelzoo.audio import ffmpeg_program, open_stream
from labelzoo.batch import PredictionBatch
from labelzoo.labelconfig import THRESHOLD_ATTRIBUTES, ControlTag, ObjectTag

from .engines import load_engine
from .labeling import AUDIO_TAGS, plan, results_for, speech_label
from .options import DEVICE_TYPES, FASTER_WHISPER, OPENAI, OPTIONS, WhisperOptions, is_ct2_folder, model_name
from .transcriber import Transcriber

PREFETCH = 4  # tasks whose audio is downloaded, and its ffmpeg started, ahead of the one being transcribed


class WhisperBackend(Backend):
    targets = tuple(Target(control, obj) for obj in AUDIO_TAGS for control in ("TextArea", "Labels", "Choices"))
    batch_size = 16
    description = (
        "OpenAI Whisper speech-to-text (openai-whisper or faster-whisper): transcripts, timed segments or words, "
        "and the spoken language"
    )
    options = OPTIONS
    device_types = DEVICE_TYPES
    default_score_threshold = 0.0  # an unsure transcript is still faster to correct than to type
    control_attributes = (*THRESHOLD_ATTRIBUTES, "model_granularity")

    transcriber: Transcriber

    def load(self) -> None:
        ffmpeg_program()  # fail the load, visibly in /health, when ffmpeg is missing
        options = WhisperOptions.from_settings(self.settings)
        self.transcriber = Transcriber(load_engine(options), options)

    def base_version(self) -> str:
        """``whisper-base`` for openai-whisper, ``faster-whisper-base`` (``faster-whisper-base-int8`` with a compute
        type set) for faster-whisper, whose transcripts differ with the compute type. From the settings alone:
        it is asked of backends that were not loaded."""
        value = self.options.whisper_model
        name = model_name(value)
        engine = self.options.whisper_engine or (
            FASTER_WHISPER if is_ct2_folder(self.settings.model_path(value)) else OPENAI
        )
        if engine == OPENAI:
            return f"whisper-{name}"
        compute_type = self.options.whisper_compute_type
        return f"faster-whisper-{name}" + (f"-{compute_type}" if compute_type else "")

    def model_labels(self, control: ControlTag, obj: ObjectTag) -> Sequence[str] | None:
        if control.tag != "Labels":
            return None
        label = speech_label(control)
        return None if label is None else [label]

    def predict(self, tasks: Sequence[Task], ctx: PredictContext) -> list[Prediction]:
        """The tasks are transcribed in order while the next ones' audio downloads and starts decoding; a
        task that fails (bad URL, bad file, a Whisper error) fails alone, and none is transcribed twice. Each
        task is reported finished once its last audio object is done, so a /predict deadline that falls inside
        the batch still answers the tasks transcribed so far."""
        decoding = self.transcriber.options.decoding.with_params(ctx.params)
        batch = PredictionBatch(tasks, ctx.logger, model="Whisper")
        audios = plan(ctx.config, self.score_threshold)
        for n, audio in enumerate(audios, 1):
            for i, stream in batch.ready(ctx.media.per_task(tasks, audio.obj, open_stream, lookahead=PREFETCH)):
                with stream, batch.guard(i):
                    transcript = self.transcriber.transcribe(
                        stream, decoding, text=audio.needs_text, words=audio.needs_words, detect=audio.needs_language
                    )
                    batch.add(i, *results_for(audio, transcript))
                if n == len(audios):
                    batch.finish(i)
        return batch.predictions()
