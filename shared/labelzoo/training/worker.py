"""The training process: ``python -m labelzoo.training.worker <fd>``, started by the supervisor.

What the child receives, pickled on its stdin (:class:`ChildArgs`): the
:class:`~labelzoo.settings.Settings` of the process that supervises it, the backend folder (absolute
path, or a backend name on an RQ worker), the job's spec file (examples, label config, parent
version), the staging folder to write weights to, the parent version's folder (``None`` for the base
model) and the supervisor's ``sys.path``. After that, stdin carries ``cancel`` lines; end-of-file
means the supervisor is gone and the child exits. ``<fd>`` is an inherited pipe for JSON-line
messages back: ``["progress", p, message, metrics]``, then ``["result", {...}]`` or ``["error", text]``;
the result holds ``promote``, ``metrics``, ``summary`` and ``trained_on`` (the examples' task ids less the
ones :attr:`~labelzoo.backend.FitResult.held_out` names).

The child loads the backend class with :func:`labelzoo.registry.load_backend`, builds
:class:`~labelzoo.backend.TrainingData`, creates the parent version's instance, calls ``load()`` and
``fit()``; when the new weights are to be promoted, it loads them and fits their task-score map on the
held-out tasks (:mod:`labelzoo.training.calibrate`). The exception and its traceback go to stderr, which is
the job's log file.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import sys
import threading
import time
import traceback
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from labelzoo.training.layout import ChildArgs


class _Channel:
    """JSON lines to the supervisor; thread-safe (a backend may report from several threads)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def send(self, *message: Any) -> None:
        line = json.dumps(list(message))
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def main(argv: list[str]) -> int:
    channel = _Channel(os.fdopen(int(argv[0]), "w", encoding="utf-8"))
    args: ChildArgs = pickle.load(sys.stdin.buffer)
    sys.path[:] = [*args.sys_path, *(p for p in sys.path if p not in args.sys_path)]
    logging.basicConfig(
        level=args.settings.log_level, stream=sys.stderr, force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%Y-%m-%d %H:%M:%S",
    )
    logger = logging.getLogger("labelzoo.training.job")
    cancel = threading.Event()
    threading.Thread(target=_listen, args=(cancel,), name="labelzoo-supervisor-pipe", daemon=True).start()
    try:
        result = _train(args, channel, cancel, logger)
    except BaseException as exc:
        logger.error("training failed:\n%s", traceback.format_exc())
        channel.send("error", f"{type(exc).__name__}: {exc}"[:500])
        return 1
    channel.send("result", result)
    return 0


def _listen(cancel: threading.Event) -> None:
    """Set ``cancel`` on a ``cancel`` line; exit at once when the supervisor is gone (end of file)."""
    for line in sys.stdin.buffer:
        if line.strip() == b"cancel":
            cancel.set()
    os._exit(3)


def _train(
    args: ChildArgs, channel: _Channel, cancel: threading.Event, logger: logging.Logger
) -> dict[str, Any]:
    from labelzoo.backend import FitContext, FitResult, TrainingData, TrainingExample
    from labelzoo.labelconfig import parse_label_config
    from labelzoo.media import MediaResolver
    from labelzoo.registry import load_backend
    from labelzoo.training.calibrate import calibrate

    spec = json.loads(Path(args.spec_path).read_text(encoding="utf-8"))
    backend = load_backend(args.backend_path)
    examples = [TrainingExample.from_json(e) for e in spec["examples"]]
    data = TrainingData(
        project=spec["project"], examples=examples,
        config=parse_label_config(spec["label_config"], max_bytes=args.settings.label_config_max_bytes),
        reason=spec["reason"],
    )
    logger.info(
        "training %s from %s on %d examples (%s)",
        backend.cls.__name__, spec["parent_version"], len(examples), spec["reason"],
    )
    model = backend.cls(args.settings, weights=Path(args.parent_dir) if args.parent_dir else None)
    model.load()
    ctx = FitContext(
        output_dir=Path(args.staging), media=MediaResolver(args.settings.media), settings=args.settings,
        report=_Progress(channel, logger), cancelled=cancel.is_set, logger=logger,
    )
    result = model.fit(data, ctx)
    if not isinstance(result, FitResult):
        raise TypeError(f"{backend.cls.__name__}.fit() must return a FitResult, got {type(result).__name__}")
    if result.promote:
        del model  # the new version is loaded next, to calibrate its task scores
        calibrate(backend.cls, args.settings, ctx.output_dir, data, result.held_out, ctx.media, logger)
    return {"promote": bool(result.promote), "metrics": _numbers(result.metrics, logger),
            "summary": str(result.summary), "trained_on": _trained_on(examples, result.held_out)}


def _trained_on(examples: Sequence[Any], held_out: Collection[Any]) -> list[int]:
    """The task ids of ``examples`` (those that have an integer one, as Label Studio's are) minus ``held_out``."""
    held = set(held_out)
    ids = {e.task.id for e in examples if isinstance(e.task.id, int) and not isinstance(e.task.id, bool)}
    return sorted(i for i in ids if i not in held)


class _Progress:
    """``ctx.report(progress, message, **metrics)``: sent to the supervisor, logged at most once a second."""

    def __init__(self, channel: _Channel, logger: logging.Logger) -> None:
        self.channel = channel
        self.logger = logger
        self.logged_at = 0.0
        self.last_message = ""

    def __call__(self, progress: float | None = None, message: str = "", **metrics: Any) -> None:
        value = None if progress is None else min(1.0, max(0.0, float(progress)))
        numbers = _numbers(metrics, self.logger)
        self.channel.send("progress", value, str(message), numbers)
        now = time.monotonic()
        if message != self.last_message or now - self.logged_at >= 1.0:
            self.logged_at, self.last_message = now, str(message)
            shown = "" if value is None else f"{value:.0%} "
            extra = " ".join(f"{k}={v:g}" for k, v in numbers.items())
            self.logger.info("progress %s%s %s", shown, message, extra)


def _numbers(values: Mapping[str, Any], logger: logging.Logger) -> dict[str, float]:
    out = {}
    for key, value in values.items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            logger.warning("metric %r=%r is not a number; left out of the job record", key, value)
    return out


if __name__ == "__main__":
    code = main(sys.argv[1:])
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # not sys.exit: the thread blocked reading stdin would abort interpreter shutdown
