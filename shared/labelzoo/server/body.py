"""Request bodies: JSON parsed once, in one place, with hostile input turned into a 400 that names the problem.

Python's JSON decoder recurses once per nesting level, so a body of ``[[[[…]]]]`` a few thousand deep raises
``RecursionError`` (a 500 anywhere it is parsed), and one just shallow enough to parse can still exhaust the
stack of any code that walks it. Label Studio's own payloads nest about ten levels deep (a webhook's task →
annotations → result → value → sequence), so anything past :data:`MAX_JSON_DEPTH` is refused.
"""

from __future__ import annotations

import json
from typing import Any

from labelzoo.errors import BadRequest

#: the deepest nesting of objects and arrays a request body may have
MAX_JSON_DEPTH = 64


def parse_json(data: bytes) -> Any:
    """The JSON value of a request body; a BadRequest says why a body is empty, not JSON, or nested too deep."""
    if not data.strip():
        raise BadRequest("the request body is empty; send JSON")
    try:
        value = json.loads(data)
    except RecursionError:
        raise BadRequest(f"the request body nests objects or arrays deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, and UnicodeDecodeError for bytes in no UTF encoding
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    check_depth(value)
    return value


def check_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """A BadRequest when ``value`` nests objects or arrays deeper than ``limit``; walks without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            raise BadRequest(f"the request body nests objects or arrays deeper than {limit} levels")
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
