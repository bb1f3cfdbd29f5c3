"""``make bench``: run every ``benchmarks/bench_*.py`` (or the ones named) and print their ratios.

Each benchmark measures its baseline and labelzoo in the same run, on the same data, so the printed
ratios mean something on a shared, noisy machine where absolute times do not.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path


def main(names: list[str]) -> int:
    here = Path(__file__).parent
    modules = sorted(p.stem for p in here.glob("bench_*.py"))
    chosen = [m for m in modules if not names or m.removeprefix("bench_") in names]
    failed = 0
    for name in chosen:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        try:
            importlib.import_module(f"benchmarks.{name}").main()
        except Exception:
            failed += 1
            traceback.print_exc()
        print(f"   ({time.perf_counter() - started:.1f} s)\n", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
