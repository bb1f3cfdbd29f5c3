"""Keep a threaded worker's memory from growing with the number of threads that ever predicted.

glibc gives each thread that contends for the heap an arena of its own (up to 8 per core) and rarely
returns their memory, so a worker whose 8 threads all decoded images and ran a model holds several
hundred MB more than one that did the same work on one thread (measured with the YOLO backend under 16
clients: +770 MB with glibc's default, +340 MB with 2 arenas). Two arenas keep allocation fast enough
for a handful of threads. ``MALLOC_ARENA_MAX`` in the environment, glibc's own setting, wins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger("labelzoo.server")

ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process and the workers it forks; False where that does not apply
    (not glibc, or ``MALLOC_ARENA_MAX`` already set, which glibc read at start-up)."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    if mallopt(_M_ARENA_MAX, arenas) != 1:
        log.debug("mallopt(M_ARENA_MAX, %d) was refused", arenas)
        return False
    return True
