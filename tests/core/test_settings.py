"""Settings read once from the environment, with errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from labelzoo.settings import Settings


def test_defaults_and_overrides_from_the_environment(tmp_path):
    s = Settings.from_env({"MODEL_DIR": str(tmp_path), "PORT": "9191", "WORKERS": "2", "LOG_LEVEL": "debug",
                           "MODEL_VERSION_PIN": "12=a-p12-v1-abcdef, 13=base", "ALLOW_CUSTOM_MODEL_PATH": "yes",
                           "YOLO_MODEL_DETECT": "my.pt", "EMPTY": ""})
    assert (s.port, s.workers, s.log_level, s.model_dir) == (9191, 2, "DEBUG", Path(tmp_path))
    assert s.version_pins == {"12": "a-p12-v1-abcdef", "13": "base"}
    assert s.allow_custom_model_path is True and s.basic_auth_enabled is False
    assert s.option("YOLO_MODEL_DETECT") == "my.pt" and s.option("EMPTY", "d") == "d"
    assert Settings.from_env({}).train_after_annotations == 10


@pytest.mark.parametrize(
    ("env", "message"),
    [({"PORT": "http"}, "PORT='http' is not an integer"),
     ({"MODEL_SCORE_THRESHOLD": "high"}, "MODEL_SCORE_THRESHOLD='high' is not a number"),
     ({"ALLOW_CUSTOM_MODEL_PATH": "maybe"}, "ALLOW_CUSTOM_MODEL_PATH='maybe' is not a boolean"),
     ({"MODEL_VERSION_PIN": "12"}, "MODEL_VERSION_PIN entry '12'")],
)
def test_malformed_values_name_the_variable(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_typed_backend_options():
    s = Settings.from_env({"A_FLOAT": "0.25", "AN_INT": "7", "A_BOOL": "off", "BAD": "x"})
    assert s.float_option("A_FLOAT", 1.0) == 0.25 and s.float_option("MISSING", 1.5) == 1.5
    assert s.int_option("AN_INT", 1) == 7 and s.bool_option("A_BOOL", True) is False
    with pytest.raises(ValueError, match="BAD='x' is not an integer"):
        s.int_option("BAD", 1)
    with pytest.raises(ValueError, match="BAD='x' is not a number"):
        s.float_option("BAD", 1.0)


def test_settings_survive_pickling_for_training_children():
    import pickle

    s = Settings.from_env({"MODEL_DIR": "/tmp/x", "MODEL_VERSION_PIN": "1=v"})
    assert pickle.loads(pickle.dumps(s)) == s


def test_model_paths_are_looked_up_under_model_root(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    rooted = Settings.from_env({"MODEL_ROOT": str(tmp_path / "models")})
    assert rooted.model_path("tune.pt") == tmp_path / "models" / "tune.pt"
    assert rooted.model_path(Path("sub/tune.pt")) == tmp_path / "models" / "sub" / "tune.pt"
    assert rooted.model_path("/abs/tune.pt") == Path("/abs/tune.pt")
    assert rooted.model_path("~/tune.pt") == tmp_path / "tune.pt"  # the home folder, not MODEL_ROOT
    assert Settings.from_env({}).model_path("tune.pt") == Path("tune.pt")  # no MODEL_ROOT: the working directory
