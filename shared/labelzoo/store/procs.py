"""Identify a process so that another process, later, can tell whether it is still running.

A bare pid is not enough: after a container restart the new server often gets the same small pid as
the dead one. The token adds the host name and, on Linux, the process start time from ``/proc``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot); None if it is gone, a zombie, or not Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is field 3, start time field 22
    return None if fields[0] in ("Z", "X") else fields[19]


def process_token(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or ''}"


def token_alive(token: str) -> bool | None:
    """True/False for a process of this host; None when it ran elsewhere (it cannot be checked)."""
    host, pid_text, start = token.rsplit(":", 2)
    if host != socket.gethostname():
        return None
    pid = int(pid_text)
    if start:
        return _start_time(pid) == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
