"""Make any prediction-like structure strict-JSON safe (pitfall P7).

Model code naturally produces numpy scalars and arrays, tuples and paths, none of which the standard
``json`` module accepts, and floats such as NaN that it writes as the non-standard token ``NaN``,
which Label Studio's parser rejects (HTTP 400 on the user's request) or stores as a value the editor
cannot draw. :func:`json_safe` maps every one of them to plain JSON types.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

JSON = None | bool | int | float | str | list["JSON"] | dict[str, "JSON"]


def json_safe(obj: Any) -> JSON:
    """A copy of ``obj`` made of dict, list, str, int, float, bool and None only.

    * numpy scalars become Python scalars and arrays nested lists;
    * tuples (and lists) become lists, ``os.PathLike`` objects their path string;
    * NaN and ±infinity become ``None``: JSON has no such numbers, and ``null`` is what Label Studio
      stores for "no value" (e.g. a missing score), where ``NaN`` would break the request;
    * mapping keys become strings (``str(key)``, after numpy scalars and paths are unwrapped).

    Anything else (sets, bytes, arbitrary objects) raises ``TypeError`` naming the type, rather than
    being guessed at.
    """
    kind = type(obj)  # exact built-in types first: a /predict answer is thousands of small dicts
    if kind is str or kind is int or kind is bool or obj is None:
        return obj
    if kind is float:
        return obj if math.isfinite(obj) else None
    if kind is dict:
        return {key if type(key) is str else _key(key): json_safe(value) for key, value in obj.items()}
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, str):
        return str(obj)  # plain str for subclasses such as numpy.str_
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, list | tuple):
        if all(type(item) is int for item in obj):  # fast path for long RLE lists
            return list(obj)
        return [json_safe(item) for item in obj]
    if isinstance(obj, Mapping):
        return {_key(key): json_safe(value) for key, value in obj.items()}
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, os.PathLike):
        return str(os.fspath(obj))
    raise TypeError(f"cannot convert {type(obj).__name__} to JSON: {obj!r:.80}")


def _key(key: Any) -> str:
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, os.PathLike):
        key = os.fspath(key)
    return str(key)
