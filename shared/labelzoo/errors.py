"""Errors that carry an HTTP status and a message a user can act on.

Every error raised on purpose inside labelzoo derives from :class:`LabelzooError`. The server turns
them into a JSON body ``{"error": <code>, "message": <text>}`` with the error's status, so a bad
request never becomes a 500 with a traceback. Messages name the offending value and the fix.
"""

from __future__ import annotations


class LabelzooError(Exception):
    """Base class: ``status`` is the HTTP status the server answers with, ``code`` a short slug."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    def to_json(self) -> dict[str, object]:
        return {"error": self.code, "message": self.message}


class BadRequest(LabelzooError):
    """The request itself is wrong (malformed JSON, wrong types, missing fields)."""

    status = 400
    code = "bad_request"


class Unauthorized(LabelzooError):
    status = 401
    code = "unauthorized"


class NotFound(LabelzooError):
    status = 404
    code = "not_found"


class Conflict(LabelzooError):
    status = 409
    code = "conflict"


class NotReady(LabelzooError):
    """The model is still loading or failed to load; retry later."""

    status = 503
    code = "not_ready"


class LabelConfigError(BadRequest):
    """The label config XML is malformed, hostile, or does not fit the backend."""

    code = "invalid_label_config"


class MediaError(LabelzooError):
    """A task's media could not be fetched or read. Raised per task: the rest of a batch goes on.

    ``reason`` is a short slug for the ``reason`` label of ``labelzoo_media_fetch_errors``: ``invalid`` (the
    value is malformed), ``not_configured`` (LABEL_STUDIO_URL or MEDIA_LOCAL_ROOTS missing), ``refused`` (the
    guard or a local root refused it), ``not_found``, ``denied`` (401/403), ``http_error`` (another status,
    too many redirects), ``unreachable``, ``timeout``, ``interrupted`` (a download broke off), ``too_large``,
    ``io`` (a local file or the cache), ``other``.
    """

    status = 422
    code = "media_error"

    def __init__(self, message: str, *, reason: str = "other") -> None:
        super().__init__(message)
        self.reason = reason


class TaskError(LabelzooError):
    """One task could not be predicted (bad data, undecodable media). The batch goes on."""

    status = 422
    code = "task_error"


class RequestError(TaskError):
    """Every task of the call fails with this one message: what is wrong is the same for all of them (a
    project's bad ``extra_params`` value, a model that cannot load, prompts too long for the model).

    A backend raises it from ``predict`` instead of failing each task itself; the core does not retry the
    tasks one by one as it does after other errors, since each would fail the same way.
    """


class StoreUnavailable(LabelzooError):
    """``MODEL_DIR`` (the SQLite store, versions, job logs) cannot be written: read-only, full, unreachable.

    A 503, not a 500: nothing is wrong with the request, and it was not stored; it works again once the
    folder is writable. See :mod:`labelzoo.store.writable` for which errors become this one.
    """

    status = 503
    code = "store_unavailable"
