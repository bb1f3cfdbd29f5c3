"""A real, unmodified Label Studio (pinned in ``.ls-venv`` by ``make ls-venv``) for the end-to-end tests.

:class:`LabelStudio` runs ``label-studio start`` on 127.0.0.1 with SQLite in a throwaway data directory,
with the settings Label Studio needs to run offline and to accept a backend on loopback. The database
migrations take 20–80 s, so a migrated data directory with the test user is made once per Label Studio
version (kept under ``.ls-venv/``) and copied for every run: a start then takes a few seconds.

The tests talk to it as a user would: they log in with the user's e-mail and password and create a
Personal Access Token (``POST /api/token/``, what the "Account & Settings → Personal Access Token" page
does). Legacy ``Token`` auth stays off, as it is for every new organisation since Label Studio 1.20.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from tests.conftest import free_port
from tests.e2e.ls_api import LabelStudioAPI

REPO = Path(__file__).resolve().parents[2]
LS_VENV = REPO / ".ls-venv"
LS_BIN = LS_VENV / "bin" / "label-studio"
LS_VERSION = "1.23.2"  # keep equal to LABEL_STUDIO_VERSION in the Makefile
TEMPLATE_DIR = LS_VENV / f"e2e-data-{LS_VERSION}"

USER_EMAIL = "e2e@example.com"
USER_PASSWORD = "e2e-password-1"

#: what Label Studio needs here (see shared/notes/label-studio-local.md): accept backends and webhooks on
#: loopback (both default to true since 1.23.1), make no calls to the internet, report no errors.
OFFLINE_SETTINGS = {
    "ML_BLOCK_LOCAL_IP": "false",
    "SSRF_PROTECTION_ENABLED": "false",
    "LATEST_VERSION_CHECK": "false",
    "COLLECT_ANALYTICS": "false",
    "SENTRY_DSN": "",
    "FRONTEND_SENTRY_DSN": "",
    "LOG_LEVEL": "INFO",
}
#: Label Studio reads every setting NAME also as LABEL_STUDIO_NAME, HEARTEX_NAME and the bare NAME, so a
#: stray USERNAME, HOST or PORT in the caller's environment would change its user, host or port
_STRAY = {"USERNAME", "PASSWORD", "HOST", "PORT", "USER_TOKEN", "DATABASE_NAME", "DJANGO_SETTINGS_MODULE"}
_STARTED = re.compile(rb"Starting development server at http://127\.0\.0\.1:(\d+)/")


def installed() -> bool:
    return LS_BIN.is_file()


def ls_env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items()
        if k not in _STRAY and not k.startswith(("LABEL_STUDIO_", "HEARTEX_"))
    }
    env.update(OFFLINE_SETTINGS)
    env.update(extra)
    return env


def migrated_template() -> Path:
    """A migrated data directory holding the test user; made once per Label Studio version.

    It is built in a temporary folder and renamed into place, so an interrupted run leaves no half-made
    template behind.
    """
    if (TEMPLATE_DIR / "label_studio.sqlite3").is_file():
        return TEMPLATE_DIR
    building = Path(tempfile.mkdtemp(prefix="e2e-data-building-", dir=LS_VENV))
    cmd = [str(LS_BIN), "init", "--data-dir", str(building), "--username", USER_EMAIL,
           "--password", USER_PASSWORD, "--no-browser"]
    done = subprocess.run(cmd, env=ls_env(), cwd=building, capture_output=True, timeout=240, check=False)
    if done.returncode != 0 or not (building / "label_studio.sqlite3").is_file():
        shutil.rmtree(building, ignore_errors=True)
        raise RuntimeError(f"label-studio init failed ({done.returncode}):\n{done.stdout.decode()[-3000:]}"
                           f"\n{done.stderr.decode()[-3000:]}")
    try:
        building.rename(TEMPLATE_DIR)
    except OSError:  # another run made it meanwhile
        shutil.rmtree(building, ignore_errors=True)
    return TEMPLATE_DIR


class LabelStudio:
    """One Label Studio server process on 127.0.0.1, its data directory and log under ``workdir``."""

    def __init__(self, workdir: Path, port: int = 0) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.log_path = workdir / "label-studio.log"
        self._requested_port = port
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self._pat: str | None = None

    # lifecycle ---------------------------------------------------------------------------------
    def start(self, timeout: float = 180) -> LabelStudio:
        shutil.copytree(migrated_template(), self.data_dir)
        port = self._requested_port or free_port()
        cmd = [str(LS_BIN), "start", "--internal-host", "127.0.0.1", "--port", str(port),
               "--data-dir", str(self.data_dir), "--no-browser"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, env=ls_env(), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        self._wait_started(timeout)
        return self

    def _wait_started(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"label-studio exited with {self.proc.returncode}:\n{self.log()[-5000:]}")
            if not self.url:
                # Label Studio moves to the next port by itself when the one asked for is taken: read it back
                found = _STARTED.search(self.log_path.read_bytes())
                if found:
                    self.url = f"http://127.0.0.1:{int(found.group(1))}"
            if self.url:
                try:
                    if requests.get(self.url + "/health", timeout=2).status_code == 200:
                        return
                except requests.RequestException:
                    pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"label-studio did not answer within {timeout:.0f} s:\n{self.log()[-5000:]}")

    def stop(self) -> None:
        """SIGTERM (it ignores SIGINT when in the background), then SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def requests_logged(self, pattern: str) -> list[str]:
        """Lines of Label Studio's request log matching a regular expression (e.g. ``GET /data/upload/``)."""
        regex = re.compile(pattern)
        return [line for line in self.log().splitlines() if "django.server" in line and regex.search(line)]

    # users and tokens --------------------------------------------------------------------------
    def login(self) -> requests.Session:
        """A browser-like session: the login form with its CSRF token, as the login page posts it."""
        session = requests.Session()
        session.get(self.url + "/user/login/", timeout=10).raise_for_status()
        response = session.post(
            self.url + "/user/login/",
            data={"email": USER_EMAIL, "password": USER_PASSWORD,
                  "csrfmiddlewaretoken": session.cookies["csrftoken"]},
            headers={"Referer": self.url + "/user/login/"},
            allow_redirects=False, timeout=10,
        )
        if response.status_code != 302:
            raise RuntimeError(f"login failed: {response.status_code} {response.text[:500]}")
        return session

    @property
    def pat(self) -> str:
        """The user's Personal Access Token (a JWT refresh token), created once on first use."""
        if self._pat is None:
            with self.login() as session:
                response = session.post(
                    self.url + "/api/token/",
                    headers={"X-CSRFToken": session.cookies["csrftoken"], "Referer": self.url + "/"},
                    timeout=10,
                )
            if response.status_code != 201:
                raise RuntimeError(f"POST /api/token/ failed: {response.status_code} {response.text[:500]}")
            self._pat = str(response.json()["token"])
        return self._pat

    def api(self) -> LabelStudioAPI:
        return LabelStudioAPI(self.url, self.pat)

