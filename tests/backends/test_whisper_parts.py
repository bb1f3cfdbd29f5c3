"""The Whisper backend's pure parts on known data: scores, segment → region mapping, time shifts, options.

How windows are stitched on the file's time line is tested with the core's stitching (tests/core/test_stitching.py)."""

from __future__ import annotations

import math
import re

import pytest
import torch

from labelzoo import Settings, TaskError
from labelzoo.labelconfig import parse_label_config
from tests.backends.whisper_support import TINY_EN, WHISPER_BACKEND, whisper_module

engines = whisper_module("engines")
labeling = whisper_module("labeling")
scores = whisper_module("scores")
transcriber = whisper_module("transcriber")
options = whisper_module("options")

CONFIGS = WHISPER_BACKEND / "configs"


def segment(start: float, end: float, text: str, avg_logprob: float, no_speech: float, **extra: object) -> dict:
    return {"start": start, "end": end, "text": text, "avg_logprob": avg_logprob, "no_speech_prob": no_speech, **extra}


def config(path_or_xml: str):
    text = (CONFIGS / path_or_xml).read_text() if path_or_xml.endswith(".xml") else path_or_xml
    return parse_label_config(text)


# --- scores ----------------------------------------------------------------------------------------


def test_segment_score_is_token_probability_times_speech_probability() -> None:
    assert scores.segment_score(segment(0, 1, "a", -0.25, 0.1)) == pytest.approx(math.exp(-0.25) * 0.9, abs=1e-12)
    assert scores.segment_score(segment(0, 1, "a", 0.0, 0.0)) == 1.0
    assert scores.segment_score(segment(0, 1, "a", 0.3, 0.0)) == 1.0  # clipped
    assert scores.segment_score(segment(0, 1, "a", -0.1, 1.0)) == 0.0  # all silence
    assert scores.segment_score(segment(0, 1, "a", float("nan"), 0.1)) == 0.0  # broken weights: no confidence
    assert scores.segment_score(segment(0, 1, "a", -0.1, float("nan"))) == 0.0


def test_transcript_score_weights_segments_by_duration() -> None:
    long_good = segment(0.0, 9.0, "a", math.log(0.9), 0.0)
    short_bad = segment(9.0, 10.0, "b", math.log(0.4), 0.5)  # 0.4 × 0.5 = 0.2
    assert scores.transcript_score([long_good, short_bad]) == pytest.approx((0.9 * 9 + 0.2 * 1) / 10, abs=1e-12)
    points = [segment(1.0, 1.0, "a", math.log(0.8), 0.0), segment(2.0, 2.0, "b", math.log(0.4), 0.0)]
    assert scores.transcript_score(points) == pytest.approx(0.6, abs=1e-12)  # zero durations: plain mean
    assert scores.transcript_score([]) == 0.0  # nothing transcribed: reviewed first
    assert scores.word_score({"probability": 0.75}) == 0.75
    assert scores.word_score({"probability": float("nan")}) == 0.0


# --- which controls get filled -------------------------------------------------------------------


def test_plan_reads_every_kind_of_control_on_an_audio_object() -> None:
    xml = """<View>
      <Audio name="audio" value="$audio"/>
      <AudioPlus name="other" value="$other"/>
      <TextArea name="transcript" toName="audio"/>
      <TextArea name="skipped" toName="audio" model_skip="true"/>
      <Labels name="segments" toName="audio"><Label value="Noise"/><Label value="speech"/></Labels>
      <Labels name="words" toName="audio" model_granularity="word"><Label value="W"/></Labels>
      <Labels name="nolabels" toName="audio"></Labels>
      <TextArea name="region_text" toName="audio" perRegion="true"/>
      <Choices name="lang" toName="audio">
        <Choice value="en"/><Choice value="Deutsch" predicted_values="German"/><Choice value="Spanish"/>
        <Choice value="Castilian"/><Choice value="Unknown"/>
      </Choices>
      <Choices name="quality" toName="audio"><Choice value="Clean"/><Choice value="Noisy"/></Choices>
      <Choices name="other_lang" toName="other"><Choice value="FRENCH"/></Choices>
    </View>"""
    first, second = labeling.plan(config(xml))
    assert first.obj.name == "audio"
    assert [c.name for c in first.transcripts] == ["transcript"]
    regions = [(r.control.name, r.label, r.words) for r in first.regions]
    assert regions == [("segments", "speech", False), ("words", "W", True)]
    assert [c.name for c in first.region_texts] == ["region_text"]
    (lang, codes), = first.languages  # "quality" names no language
    assert lang.name == "lang" and codes == {"en": "en", "de": "Deutsch", "es": "Spanish"}  # first choice wins
    assert first.needs_text and first.needs_words and first.needs_language
    assert second.obj.tag == "AudioPlus" and not second.needs_text and second.languages[0][1] == {"fr": "FRENCH"}


def test_speech_label_prefers_a_speech_label_then_the_first_one() -> None:
    labels = config("""<View><Audio name="a" value="$a"/>
      <Labels name="x" toName="a"><Label value="Music"/><Label value="Talk" predicted_values="Speech"/></Labels>
      <Labels name="y" toName="a"><Label value="Speaker 1"/><Label value="Speaker 2"/></Labels>
      <Labels name="z" toName="a"><Label value="Voice" alias="speech"/></Labels></View>""")
    assert [labeling.speech_label(labels.control(n)) for n in "xyz"] == ["Talk", "Speaker 1", "speech"]


def test_a_config_with_nothing_for_whisper_gives_no_plan() -> None:
    xml = '<View><Audio name="a" value="$a"/><Choices name="c" toName="a"><Choice value="Loud"/></Choices></View>'
    assert labeling.plan(config(xml)) == []


# --- results from known segments -------------------------------------------------------------------

SEGMENTS = [
    segment(0.0, 2.5, " Hello there.", -0.2, 0.05),
    segment(2.5, 2.5, "", -0.3, 0.9),  # Whisper's empty segment over silence: no region
    segment(3.0, 7.25, " How are you?", -0.6, 0.2),
]


def test_segments_become_regions_with_their_text_sharing_the_region_id() -> None:
    (audio,) = labeling.plan(config("segments.xml"))
    items, score = labeling.results_for(audio, transcriber.Transcript(SEGMENTS))
    first = math.exp(-0.2) * 0.95
    second = math.exp(-0.6) * 0.8
    assert [(i["from_name"], i["type"]) for i in items] == [
        ("segment", "labels"), ("segment_text", "textarea"), ("segment", "labels"), ("segment_text", "textarea"),
    ]  # fmt: skip
    assert items[0]["id"] == items[1]["id"] != items[2]["id"] == items[3]["id"]
    assert items[0]["value"] == {"start": 0.0, "end": 2.5, "channel": 0, "labels": ["Speech"]}
    assert items[1]["value"] == {"start": 0.0, "end": 2.5, "channel": 0, "text": ["Hello there."]}
    assert items[2]["value"] == {"start": 3.0, "end": 7.25, "channel": 0, "labels": ["Speech"]}
    assert items[3]["value"] == {"start": 3.0, "end": 7.25, "channel": 0, "text": ["How are you?"]}
    assert all(i["to_name"] == "audio" for i in items)
    assert items[0]["score"] == items[1]["score"] == pytest.approx(first, abs=1e-12)
    assert items[2]["score"] == items[3]["score"] == pytest.approx(second, abs=1e-12)
    assert score == pytest.approx((first * 2.5 + second * 4.25) / 6.75, abs=1e-12)


def test_the_transcript_textarea_gets_the_whole_text_and_the_task_score() -> None:
    (audio,) = labeling.plan(config("transcript.xml"))
    items, score = labeling.results_for(audio, transcriber.Transcript(SEGMENTS))
    (item,) = items
    assert item["type"] == "textarea" and item["from_name"] == "transcription"
    assert item["value"] == {"text": ["Hello there. How are you?"]}
    assert item["score"] == score == pytest.approx(scores.transcript_score([SEGMENTS[0], SEGMENTS[2]]), abs=1e-12)


def test_silence_gives_no_result_and_a_zero_score() -> None:
    (audio,) = labeling.plan(config("transcript.xml"))
    assert labeling.results_for(audio, transcriber.Transcript([segment(0.0, 4.0, " ", -0.1, 0.97)])) == ([], 0.0)


def test_the_detected_language_picks_the_choice_naming_it() -> None:
    (audio,) = labeling.plan(config("language.xml"))
    items, score = labeling.results_for(audio, transcriber.Transcript([], "es", 0.8125))
    assert [(i["type"], i["value"], i["score"]) for i in items] == [("choices", {"choices": ["es"]}, 0.8125)]
    assert score == 0.8125  # only the language was asked for: its probability is the task's score
    assert labeling.results_for(audio, transcriber.Transcript([], "ja", 0.9))[0] == []  # no choice names it


def test_words_become_regions_scored_by_word_probability() -> None:
    (audio,) = labeling.plan(config("words.xml"))
    words = [
        {"word": " Hello", "start": 0.1, "end": 0.5, "probability": 0.9},
        {"word": " there.", "start": 0.5, "end": 1.0, "probability": 0.5},
    ]
    transcript = transcriber.Transcript([segment(0.0, 1.0, " Hello there.", -0.2, 0.0, words=words)])
    items, score = labeling.results_for(audio, transcript)
    shown = [(i["type"], i["value"].get("labels") or i["value"]["text"], i["value"]["start"], i["value"]["end"])
             for i in items]  # fmt: skip
    assert [i["score"] for i in items] == [0.9, 0.9, 0.5, 0.5]
    assert shown == [
        ("labels", ["Word"], 0.1, 0.5), ("textarea", ["Hello"], 0.1, 0.5),
        ("labels", ["Word"], 0.5, 1.0), ("textarea", ["there."], 0.5, 1.0),
    ]  # fmt: skip
    assert items[0]["id"] == items[1]["id"] and items[2]["id"] == items[3]["id"]
    assert score == pytest.approx(math.exp(-0.2), abs=1e-12)  # the task's score stays the transcript's


def test_per_region_text_honours_when_conditions_and_thresholds_drop_regions() -> None:
    xml = """<View><Audio name="audio" value="$audio"/>
      <Labels name="speech" toName="audio" model_score_threshold="0.6"><Label value="Speech"/></Labels>
      <Labels name="words" toName="audio" model_granularity="word"><Label value="Word"/></Labels>
      <TextArea name="for_speech" toName="audio" perRegion="true" whenTagName="speech"/>
      <TextArea name="for_words" toName="audio" perRegion="true" whenLabelValue="Word"/>
    </View>"""
    (audio,) = labeling.plan(config(xml))
    words = [{"word": " Hi", "start": 3.0, "end": 3.5, "probability": 0.4}]
    transcript = transcriber.Transcript([SEGMENTS[0], segment(3.0, 3.5, " Hi", -0.6, 0.2, words=words)])
    items, _ = labeling.results_for(audio, transcript)
    # the second segment scores exp(-0.6) × 0.8 = 0.44 < 0.6: dropped; words have no threshold
    assert [(i["from_name"], i["value"]["start"]) for i in items] == [
        ("speech", 0.0), ("for_speech", 0.0), ("words", 3.0), ("for_words", 3.0),
    ]  # fmt: skip


# --- segments on the file's time line (the windows are stitched by labelzoo.stitching) -------------


def test_segment_times_are_clamped_to_their_window_and_words_shifted() -> None:
    words = [{"word": " a", "start": 1.0, "end": 2.0, "probability": 0.5}, {"word": " b", "start": 29.0, "end": 31.0}]
    out = transcriber.shifted(segment(1.0, 31.0, " a b", -0.1, 0.0, words=words, tokens=[1, 2]), 600.0, 12.5)
    assert (out["start"], out["end"]) == (601.0, 612.5)
    assert [(w["start"], w["end"]) for w in out["words"]] == [(601.0, 602.0), (612.5, 612.5)]
    assert "tokens" not in out and math.isnan(out["words"][1]["probability"])


# --- options ------------------------------------------------------------------------------------


def test_options_follow_the_device_and_the_environment(tmp_path, monkeypatch) -> None:
    checkpoint = tmp_path / "my-tune.pt"
    checkpoint.write_bytes(b"x")
    cpu = options.WhisperOptions.from_settings(Settings.from_env({"DEVICE": "cpu", "MODEL_DIR": str(tmp_path / "m")}))
    assert (cpu.model, cpu.fp16, cpu.decoding.beam_size, cpu.decoding.temperature) == ("base", False, None, (0.0,))
    assert (cpu.engine, cpu.compute_type) == ("openai", "float32")
    assert cpu.download_root == tmp_path / "whisper" and cpu.window_seconds == 600.0
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    gpu = options.WhisperOptions.from_settings(Settings.from_env({
        "DEVICE": "cuda:0", "WHISPER_MODEL": "my-tune.pt", "MODEL_ROOT": str(tmp_path), "WHISPER_LANGUAGE": "German",
        "WHISPER_TASK": "translate", "WHISPER_WINDOW_SECONDS": "120",
    }))  # fmt: skip
    assert (gpu.model, gpu.fp16, gpu.decoding.beam_size, gpu.compute_type) == (str(checkpoint), True, 5, "float16")
    assert gpu.decoding.temperature == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert (gpu.decoding.language, gpu.decoding.task, gpu.window_seconds) == ("de", "translate", 120.0)
    assert options.model_name("tiny.en") == "tiny.en" and options.model_name(str(checkpoint)) == "my-tune"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WHISPER_MODEL": "huge"}, "neither a Whisper model"),
        ({"WHISPER_LANGUAGE": "Klingon"}, "not a language Whisper knows"),
        ({"WHISPER_TASK": "summarise"}, "'transcribe' or 'translate'"),
        ({"WHISPER_BEAM_SIZE": "0"}, "whole number of beams"),
        ({"WHISPER_TEMPERATURE": "0,2"}, "temperature in [0, 1]"),
        ({"WHISPER_WINDOW_SECONDS": "1"}, "WHISPER_WINDOW_SECONDS='1'"),
        ({"WHISPER_ENGINE": "ctranslate"}, "'openai' or 'faster-whisper'"),
        ({"WHISPER_COMPUTE_TYPE": "int4"}, "a CTranslate2 compute type: default, auto, float32"),
        ({"WHISPER_MODEL": str(TINY_EN), "WHISPER_ENGINE": "openai"}, "only WHISPER_ENGINE=faster-whisper reads"),
    ],
)
def test_bad_settings_are_named(env: dict, message: str) -> None:
    with pytest.raises(options.OptionError, match=re.escape(message)):
        options.WhisperOptions.from_settings(Settings.from_env({"DEVICE": "cpu", **env}))


def test_the_engine_follows_the_model(tmp_path) -> None:
    def read(**env: str):
        return options.WhisperOptions.from_settings(Settings.from_env({"DEVICE": "cpu", "MODEL_DIR": str(tmp_path),
                                                                       **env}))  # fmt: skip

    folder = read(WHISPER_MODEL=str(TINY_EN))
    assert (folder.engine, folder.model, folder.compute_type) == ("faster-whisper", str(TINY_EN), "float32")
    named = read(WHISPER_MODEL="tiny.en", WHISPER_ENGINE="faster-whisper", WHISPER_COMPUTE_TYPE="int8")
    assert (named.engine, named.model, named.compute_type) == ("faster-whisper", "tiny.en", "int8")  # converted
    assert named.engine_cache == tmp_path / "engines"
    checkpoint = tmp_path / "my-tune.pt"
    checkpoint.write_bytes(b"x")
    assert read(WHISPER_MODEL=str(checkpoint)).engine == "openai"
    assert read(WHISPER_MODEL=str(checkpoint), WHISPER_ENGINE="faster-whisper").model == str(checkpoint)  # converted
    url = "https://example.com/whisper/my-tune.pt"
    assert (read(WHISPER_MODEL=url).engine, read(WHISPER_MODEL=url).model) == ("openai", url)  # downloaded on load


def test_versions_name_the_engine_and_the_compute_type(tmp_path) -> None:
    model = whisper_module("model")

    def version(**env: str) -> str:
        return model.WhisperBackend(Settings.from_env({"MODEL_DIR": str(tmp_path), **env})).base_version()

    assert version(WHISPER_MODEL="tiny.en") == "whisper-tiny.en"
    assert version(WHISPER_MODEL="tiny.en", WHISPER_ENGINE="faster-whisper") == "faster-whisper-tiny.en"
    assert version(WHISPER_MODEL=str(TINY_EN), WHISPER_COMPUTE_TYPE="int8") == "faster-whisper-model-int8"


def test_faster_whisper_decodes_as_openai_whisper_is_asked_to() -> None:
    greedy = options.Decoding(language=None, task="transcribe", beam_size=None, temperature=(0.0,))
    assert engines.faster_whisper_kwargs(greedy) == {"task": "transcribe", "beam_size": 1, "best_of": 1,
                                                     "temperature": 0.0}  # fmt: skip
    fallback = options.Decoding(language="fr", task="translate", beam_size=5, temperature=(0.0, 0.5))
    assert engines.faster_whisper_kwargs(fallback) == {"task": "translate", "beam_size": 5, "best_of": 1,
                                                       "temperature": [0.0, 0.5]}  # fmt: skip


def test_extra_params_override_decoding_per_project() -> None:
    base = options.Decoding(language=None, task="transcribe", beam_size=None, temperature=(0.0,))
    params = {"language": "fr", "task": "translate", "beam_size": 3, "temperature": [0, 0.5], "threshold": 1}
    assert base.with_params(params) == options.Decoding("fr", "translate", 3, (0.0, 0.5))
    assert base.with_params({"language": "auto", "beam_size": "1"}) == base
    assert base.with_params({}).transcribe_kwargs(fp16=False) == {
        "task": "transcribe", "beam_size": None, "temperature": 0.0, "fp16": False,
    }  # fmt: skip
    with pytest.raises(TaskError, match=r"extra_params.beam_size=-2 must be a whole number"):
        base.with_params({"beam_size": -2})


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("transcript.xml", ("transcripts",)),
        ("segments.xml", ("regions", "region_texts")),
        ("words.xml", ("regions", "region_texts")),
        ("language.xml", ("languages",)),
        ("quickstart.xml", ("transcripts", "regions", "region_texts", "languages")),
    ],
)
def test_every_example_config_asks_whisper_for_what_it_shows(name: str, kinds: tuple[str, ...]) -> None:
    parsed = config(name)
    assert parsed.warnings == ()
    (audio,) = labeling.plan(parsed)
    filled = {kind for kind in ("transcripts", "regions", "region_texts", "languages") if getattr(audio, kind)}
    assert filled == set(kinds)
    assert audio.needs_words == (name == "words.xml")
