"""The one error type the result builders raise."""

from __future__ import annotations

from labelzoo.errors import TaskError


class ResultError(TaskError, ValueError):
    """Invalid input to a result builder or to the brush RLE codec.

    It is a :class:`~labelzoo.errors.TaskError`, so the server fails only the task whose prediction
    could not be built (the batch goes on), and a ``ValueError``, so plain Python callers can catch it
    without knowing labelzoo's error tree.
    """
