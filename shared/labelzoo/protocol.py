"""The protocol's payload types: typed views of the JSON bodies Label Studio sends, validated with messages
that name the field. The server parses requests into these and the services take them, so neither the
prediction layer nor training imports the server."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from labelzoo.backend import Task
from labelzoo.errors import BadRequest

MAX_TASKS_PER_REQUEST = 100_000
#: keys Label Studio may put in ``params.context`` that are not an annotator's prompt (protocol §1.6)
NOT_A_PROMPT = frozenset({"project_credentials_login", "project_credentials_password"})


def project_key(value: Any) -> str:
    """The store's key for a project: ``12``, ``"12"``, ``"12.1718900000"``, ``{"id": 12}`` → ``"12"``."""
    if isinstance(value, Mapping) and "id" in value:
        value = value["id"]
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str):
        head = value.strip().split(".", 1)[0]
        if head.isascii() and head.isdigit():
            return str(int(head))
    raise BadRequest(
        f'project must be a Label Studio project id such as 12, "12.1718900000" or {{"id": 12}}; '
        f"got {short_repr(value)}"
    )


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to 60 characters, for error messages that quote what was sent."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def require_object(body: Any, where: str = "request body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest(f"{where} must be a JSON object, got {type(body).__name__}")
    return body


def parse_extra_params(raw: Any) -> dict[str, Any]:
    """``extra_params`` arrives as an object, a JSON string typed into LS's textarea, or null (P11)."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"extra_params is a string but not valid JSON ({exc.msg} at position {exc.pos})") from None
        if raw is None:
            return {}
    if not isinstance(raw, dict):
        raise BadRequest(f"extra_params must be a JSON object, got {type(raw).__name__}")
    return raw


def _label_config(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"'{key}' must be the project's label config XML (a non-empty string)")
    return value


@dataclass(frozen=True)
class SetupRequest:
    project: str
    label_config: str
    extra_params: dict[str, Any]
    hostname: str | None

    @classmethod
    def from_json(cls, body: Any) -> SetupRequest:
        body = require_object(body)
        hostname = body.get("hostname")
        return cls(
            project=project_key(body.get("project")),
            label_config=_label_config(body, "schema"),
            extra_params=parse_extra_params(body.get("extra_params")),
            hostname=hostname if isinstance(hostname, str) else None,
        )


@dataclass(frozen=True)
class PredictRequest:
    project: str
    label_config: str
    tasks: tuple[Task, ...]
    context: dict[str, Any] | None

    @property
    def interactive(self) -> bool:
        return self.context is not None

    @classmethod
    def from_json(cls, body: Any) -> PredictRequest:
        body = require_object(body)
        tasks = body.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            raise BadRequest("'tasks' must be a non-empty list of Label Studio tasks")
        if len(tasks) > MAX_TASKS_PER_REQUEST:
            raise BadRequest(f"'tasks' has {len(tasks)} items; at most {MAX_TASKS_PER_REQUEST} per request")
        params = body.get("params")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise BadRequest(f"'params' must be an object, got {type(params).__name__}")
        context = params.get("context")
        if context is not None and not isinstance(context, dict):
            raise BadRequest(f"'params.context' must be an object or null, got {type(context).__name__}")
        if context is not None and not set(context) - NOT_A_PROMPT:
            context = None  # {} (or only Label Studio's credentials): an ordinary batch, as LS 1.23 sends it
        if context is not None and len(tasks) != 1:
            raise BadRequest(
                f"an interactive request (params.context with a prompt) must hold one task, got {len(tasks)}")
        parsed = tuple(Task.from_json(t, where=f"tasks[{i}]") for i, t in enumerate(tasks))
        return cls(
            project=project_key(body.get("project")),
            label_config=_label_config(body, "label_config"),
            tasks=parsed,
            context=context,
        )
