"""The ``labelzoo`` command line: listing backends, scaffolding a custom one that works at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from labelzoo.cli import main


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labelzoo.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_backends_lists_what_each_backend_labels():
    out = run_cli("backends")
    assert out.returncode == 0, out.stderr
    template = next(line for line in out.stdout.splitlines() if line.startswith("template"))
    assert "<Choices> on <Text>" in template and "learns" in template


def test_new_scaffolds_a_backend_whose_own_test_passes_and_that_serves(tmp_path, serve):
    target = tmp_path / "my_backend"
    out = run_cli("new", str(target))
    assert out.returncode == 0, out.stderr
    assert {"model.py", "test_my_backend.py", "README.md", "Dockerfile", "requirements.txt"} <= {
        p.name for p in target.iterdir()
    }
    tested = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(target)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "1 passed" in tested.stdout
    server = serve(target)
    import requests

    assert requests.get(server.url + "/health", timeout=2).json()["model_class"] == "TextClassifier"


def test_new_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["new", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_serve_with_an_unknown_backend_names_the_known_ones(capsys):
    assert main(["serve", "no-such-backend"]) == 2
    err = capsys.readouterr().err
    assert "no backend named 'no-such-backend'" in err and "template" in err


def test_worker_without_redis_url_explains_what_to_set(capsys, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["worker", "template"]) == 2
    assert "REDIS_URL" in capsys.readouterr().err
