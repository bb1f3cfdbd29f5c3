"""Declared options: read and checked from the environment, errors that name the variable, typed values."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

from labelzoo import Backend, TaskError
from labelzoo.options import Option, OptionError, Options, OptionValues
from labelzoo.settings import Settings

DECLARED = Options(
    Option("ZOO_BATCH", int, 8, low=1, doc="images per pass"),
    Option("ZOO_SCALE", float, 1.5, low=0, high=4),
    Option("ZOO_LIMIT", float, 100.0, above=0),
    Option("ZOO_WARM", bool, True),
    Option("ZOO_ROOT", Path),
    Option("ZOO_NAME", str, "base"),
    Option("ZOO_TASK", str, "transcribe", choices=("transcribe", "translate"), project="task"),
    Option("ZOO_TEMPS", float, (0.0,), low=0, high=1, many=True, project="temperature"),
)


def test_defaults_and_values_come_typed_and_read_only() -> None:
    defaults = DECLARED.read({})
    assert (defaults.zoo_batch, defaults.zoo_scale, defaults.zoo_warm, defaults.zoo_root) == (8, 1.5, True, None)
    assert defaults.zoo_temps == (0.0,) and defaults.zoo_task == "transcribe"
    values = DECLARED.read({"ZOO_BATCH": " 3 ", "ZOO_SCALE": "4", "ZOO_WARM": "off", "ZOO_ROOT": "~/w",
                            "ZOO_NAME": "tiny ", "ZOO_TASK": " Translate", "ZOO_TEMPS": "0, 0.5,", "ZOO_LIMIT": ""})
    assert (values.zoo_batch, values.zoo_scale, values.zoo_warm) == (3, 4.0, False)
    assert values.zoo_root == Path.home() / "w" and values.zoo_name == "tiny " and values.zoo_limit == 100.0
    assert values.zoo_task == "translate" and values.zoo_temps == (0.0, 0.5)  # the declared spelling
    with pytest.raises(AttributeError, match="read-only"):
        values.zoo_batch = 4
    with pytest.raises(AttributeError, match="no option 'zoo_batchh'"):
        _ = values.zoo_batchh
    assert pickle.loads(pickle.dumps(values)) == values


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ZOO_BATCH": "many"}, "ZOO_BATCH='many' is not an integer"),
        ({"ZOO_BATCH": "2.5"}, "ZOO_BATCH='2.5' is not an integer"),
        ({"ZOO_BATCH": "0"}, "ZOO_BATCH='0' must be an integer >= 1"),
        ({"ZOO_SCALE": "5"}, "ZOO_SCALE='5' must be a number between 0 and 4"),
        ({"ZOO_SCALE": "nan"}, "ZOO_SCALE='nan' must be a number between 0 and 4"),
        ({"ZOO_LIMIT": "0"}, "ZOO_LIMIT='0' must be a number > 0"),
        ({"ZOO_WARM": "maybe"}, "ZOO_WARM='maybe' is not a boolean: use true or false"),
        ({"ZOO_TASK": "summarise"}, "ZOO_TASK='summarise' must be 'transcribe' or 'translate'"),
        ({"ZOO_TEMPS": "0,2"}, "ZOO_TEMPS='0,2' must be a comma-separated list of a number between 0 and 1"),
    ],
)
def test_a_bad_value_names_the_variable_the_value_and_what_is_allowed(env, message) -> None:
    with pytest.raises(OptionError, match=re.escape(message)) as caught:
        DECLARED.read(env)
    assert isinstance(caught.value, ValueError)  # the CLI and the server report both kinds alike


def test_a_check_normalises_or_explains_and_allowed_replaces_the_generated_words() -> None:
    def code(text: str) -> str | None:
        if text.lower() in ("auto", "en"):
            return None if text.lower() == "auto" else "en"
        raise ValueError("is not a language: use en or auto")

    language = Option("ZOO_LANGUAGE", str, None, check=code)
    assert language.read({"ZOO_LANGUAGE": "EN"}) == "en" and language.read({"ZOO_LANGUAGE": "auto"}) is None
    with pytest.raises(OptionError, match=r"^ZOO_LANGUAGE='xx' is not a language: use en or auto$"):
        language.read({"ZOO_LANGUAGE": "xx"})
    beams = Option("ZOO_BEAMS", int, None, low=1, allowed="a whole number of beams >= 1")
    for bad in ("0", "x"):
        with pytest.raises(OptionError, match=f"ZOO_BEAMS='{bad}' must be a whole number of beams >= 1"):
            beams.read({"ZOO_BEAMS": bad})


def test_project_overrides_take_json_values_and_fail_as_task_errors() -> None:
    params = {"task": "translate", "temperature": [0, 0.5], "language": "de", "beam_size": None}
    assert DECLARED.project_overrides(params) == {"task": "translate", "temperature": (0.0, 0.5)}
    assert DECLARED.project_overrides({}) == {}
    for bad, message in (({"temperature": []}, "extra_params.temperature=[]"),
                         ({"task": 3}, "extra_params.task=3 must be 'transcribe' or 'translate'"),
                         ({"temperature": [0.2, True]}, "extra_params.temperature=[0.2, True]")):
        with pytest.raises(TaskError, match=re.escape(message)):
            DECLARED.project_overrides(bad)


def test_declarations_are_checked_when_written() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        Options(Option("ZOO_A"), Option("ZOO_A", int, 1))
    with pytest.raises(ValueError, match="environment variable name"):
        Option("zoo-a")
    with pytest.raises(TypeError, match="choices need type=str"):
        Option("ZOO_A", int, 1, choices=("1",))
    with pytest.raises(TypeError, match="bounds need"):
        Option("ZOO_A", str, "x", low=1)
    with pytest.raises(TypeError, match="type must be"):
        Option("ZOO_A", list)


class Declaring(Backend):
    options = Options(Option("ZOO_BATCH", int, 8, low=1), Option("ZOO_NAME", str, "base"))

    def base_version(self) -> str:
        return f"zoo-{self.options.zoo_name}"

    def predict(self, tasks, ctx):
        return []


def test_a_backend_gets_its_values_when_made_and_keeps_its_declarations_on_the_class() -> None:
    backend = Declaring(Settings.from_env({"ZOO_NAME": "small"}))
    assert isinstance(backend.options, OptionValues) and backend.options.zoo_batch == 8
    assert backend.base_version() == "zoo-small"
    assert [o.name for o in Declaring.options] == ["ZOO_BATCH", "ZOO_NAME"]
    assert len(Backend.options) == 0
    with pytest.raises(OptionError, match="ZOO_BATCH='-1' must be an integer >= 1"):
        Declaring(Settings.from_env({"ZOO_BATCH": "-1"}))


def test_the_server_settings_are_declared_and_checked_alike() -> None:
    s = Settings.from_env({"DEVICE": " CUDA:1 ", "MODEL_SCORE_THRESHOLD": "0.3", "LOG_LEVEL": "warning"})
    assert (s.device, s.model_score_threshold, s.log_level) == ("cuda:1", 0.3, "WARNING")
    assert Settings.from_env({}).model_score_threshold is None  # unset: each backend's default applies
    for env, message in (({"MODEL_SCORE_THRESHOLD": "1.5"}, "MODEL_SCORE_THRESHOLD='1.5' must be a number between"),
                         ({"DEVICE": "tpu"}, "DEVICE='tpu' is not a torch device: use auto, cpu"),
                         ({"LOADED_MODELS": "0"}, "LOADED_MODELS='0' must be an integer >= 1"),
                         ({"LOG_LEVEL": "loud"}, "LOG_LEVEL='loud' must be 'DEBUG', 'INFO'")):
        with pytest.raises(OptionError, match=re.escape(message)):
            Settings.from_env(env)


def test_a_bad_backend_option_stops_labelzoo_serve_with_its_message(tmp_path, serve) -> None:
    folder = tmp_path / "declaring"
    folder.mkdir()
    (folder / "model.py").write_text(
        "from labelzoo import Backend, Target\n"
        "from labelzoo.options import Option, Options\n\n\n"
        "class Declaring(Backend):\n"
        "    targets = (Target('Choices', 'Text'),)\n"
        "    options = Options(Option('ZOO_BATCH', int, 8, low=1))\n\n"
        "    def base_version(self):\n        return 'declaring'\n\n"
        "    def predict(self, tasks, ctx):\n        return []\n"
    )
    server = serve(folder, wait=False, ZOO_BATCH="lots")
    assert server.proc.wait(120) != 0
    assert "ZOO_BATCH='lots' is not an integer" in server.log()


def test_a_comma_list_default_is_a_tuple_like_the_same_text_in_the_environment() -> None:
    option = Option("WORDS", str, "good,great", many=True)
    assert option.read({}) == ("good", "great") == option.read({"WORDS": "good, great"})
