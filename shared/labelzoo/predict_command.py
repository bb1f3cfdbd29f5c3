"""``labelzoo predict``: the command line of bulk pre-annotation (the parser lives in :mod:`labelzoo.cli`).

``--tasks`` (a task file or a media folder) predicts offline into ``--out``; otherwise the tasks of
Label Studio project ``--project`` are predicted and posted back; with ``--target-precision`` or
``--auto-label-threshold`` the sure ones are annotated instead (``--dry-run`` only reports; ``--undo JOB``
deletes a run's annotations). SIGINT or SIGTERM stops at the end of
the current chunk (a second one stops at once); running the same command again goes on from there.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from types import FrameType
from typing import Any

from labelzoo.bulk.autolabel import AutoLabelOptions
from labelzoo.bulk.chunks import ChunkReport
from labelzoo.bulk.offline import predict_offline
from labelzoo.bulk.progress import ProgressBar
from labelzoo.bulk.sources import load_task_file, scan_media_folder
from labelzoo.errors import LabelzooError
from labelzoo.labelconfig import parse_label_config_cached
from labelzoo.prediction import run_backend, to_json
from labelzoo.registry import load_backend
from labelzoo.runtime import Runtime
from labelzoo.settings import Settings

INTERRUPTED = 130
FLAGS = {"threshold": "--auto-label-threshold", "target_precision": "--target-precision",
         "min_support": "--min-support", "confidence": "--confidence"}  # auto_label fields → their options
LOAD_TIMEOUT = 600.0


def run(args: argparse.Namespace) -> int:
    auto_label = _auto_label(args)
    if args.undo is not None:
        return _undo(args)
    if auto_label is not None and args.project is None:
        raise LabelzooError("auto-labelling annotates a Label Studio project: give --project N")
    if args.calibrate and (args.project is None or auto_label is not None):
        raise LabelzooError("--calibrate measures the model on a Label Studio project's annotations: give --project N, "
                            "and no auto-labelling options")
    if args.tasks is None and args.project is None:
        raise LabelzooError("say what to predict: --tasks FILE|FOLDER --out FILE, or --project N (Label Studio)")
    if args.tasks is not None and args.out is None:
        raise LabelzooError("--tasks needs --out, the predictions file to write")
    runtime = Runtime(load_backend(args.backend), _settings(args))
    runtime.models.start()
    stop = threading.Event()
    try:
        with _stop_on_signals(stop):
            if args.tasks is not None:
                return _offline(runtime, args, stop)
            return _project(runtime, args, stop, auto_label)
    finally:
        runtime.close()


def _auto_label(args: argparse.Namespace) -> AutoLabelOptions | None:
    """The auto-label options the arguments ask for; None for plain pre-annotation."""
    if args.auto_label_threshold is None and args.target_precision is None:
        if args.dry_run or args.min_support is not None or args.confidence is not None:
            raise LabelzooError("--dry-run, --min-support and --confidence go with --target-precision or "
                                "--auto-label-threshold")
        return None
    body: dict[str, Any] = {"dry_run": args.dry_run}
    if args.auto_label_threshold is not None:
        body["threshold"] = args.auto_label_threshold
    else:
        body["target_precision"] = args.target_precision
    if args.min_support is not None:
        body["min_support"] = args.min_support
    if args.confidence is not None:
        body["confidence"] = args.confidence
    try:
        return AutoLabelOptions.from_json(body)
    except LabelzooError as exc:
        message = exc.message
        for field, flag in FLAGS.items():
            message = message.replace(f"'auto_label.{field}'", flag)
        raise LabelzooError(message) from None


def _undo(args: argparse.Namespace) -> int:
    runtime = Runtime(load_backend(args.backend), _settings(args))
    try:
        job = runtime.bulk.undo(args.undo)
    finally:
        runtime.close()
    undo = job.get("auto_label", {}).get("undo", {})
    print(f"bulk job {job['id']}: undo {undo.get('status')}: {undo.get('undone', 0)} annotations deleted, "
          f"{undo.get('kept', 0)} kept (changed by a person since), {undo.get('gone', 0)} deleted already"
          + (f"; {undo['error']}" if undo.get("error") else ""), file=sys.stderr)
    return 0 if undo.get("status") == "done" else 1


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    media = settings.media
    if args.label_studio_url or args.api_key:
        media = replace(media, label_studio_url=args.label_studio_url or media.label_studio_url,
                        api_key=args.api_key or media.api_key)
    if args.tasks is not None and args.tasks.is_dir():
        media = replace(media, local_roots=(*media.local_roots, args.tasks.resolve()))  # the folder's files
    overrides: dict[str, Any] = {"media": media}
    if args.chunk_size is not None:
        overrides["bulk_chunk_size"] = max(1, args.chunk_size)
    if args.rate_limit is not None:
        overrides["bulk_rate_limit"] = max(0.0, args.rate_limit)
    return settings.with_overrides(**overrides)


def _offline(runtime: Runtime, args: argparse.Namespace, stop: threading.Event) -> int:
    config_path = args.label_config or runtime.spec.path / "label_config.xml"
    if not config_path.is_file():
        raise LabelzooError(f"no label config at {config_path}: pass --label-config FILE")
    label_config = config_path.read_text(encoding="utf-8")
    if args.tasks.is_dir():
        config = parse_label_config_cached(label_config, max_bytes=runtime.settings.label_config_max_bytes)
        sources = scan_media_folder(args.tasks, config, args.data_prefix)
    else:
        sources = load_task_file(args.tasks)
    _wait_for_model(runtime)
    backend, ctx = runtime.prediction.context(args.project, label_config, wait=LOAD_TIMEOUT)
    print(f"{len(sources)} tasks from {args.tasks}, model version {ctx.model_version}", file=sys.stderr)
    bar = ProgressBar(len(sources), "predicting")
    summary = predict_offline(
        lambda tasks: [to_json(p, ctx.model_version) for p in run_backend(backend, tasks, ctx)],
        sources, args.out, model_version=ctx.model_version, label_config=label_config,
        chunk_size=runtime.settings.bulk_chunk_size, stop=stop, progress=bar,
    )
    bar.close()
    if summary.interrupted:
        print(f"interrupted: {summary.resumed + summary.predicted} of {summary.total} tasks are in "
              f"{args.out}.partial; run the same command again to go on", file=sys.stderr)
        return INTERRUPTED
    print(f"wrote {args.out}: {summary.total} tasks, {summary.resumed + summary.predicted} with a prediction "
          f"of {ctx.model_version}, {summary.failed} failed", file=sys.stderr)
    for error in summary.errors:
        print(f"  {error}", file=sys.stderr)
    return 1 if summary.failed else 0


class _Observer:
    """Shows the listing of the project's tasks, then the predictions, as progress bars."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.bar: ProgressBar | None = None
        self.failed = 0

    def listing(self, seen: int, total: int) -> None:
        if self.bar is None:
            self.bar = ProgressBar(total, "listing tasks")
        self.bar.update(seen - self.bar.done)

    def planned(self, total: int, project_tasks: int | None) -> None:
        if self.bar is not None:
            self.bar.close()
        known = "" if project_tasks is None else f"{project_tasks} tasks in project {self.project}, "
        print(f"{known}{total} to predict", file=sys.stderr)
        self.bar = ProgressBar(total, "predicting")

    def chunk_done(self, report: ChunkReport) -> None:
        assert self.bar is not None
        counts = report.counts
        self.failed += counts.failed
        self.bar.update(counts.posted + counts.skipped + counts.failed,
                        note=f"{self.failed} failed" if self.failed else None)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _project(runtime: Runtime, args: argparse.Namespace, stop: threading.Event,
             auto_label: AutoLabelOptions | None) -> int:
    _wait_for_model(runtime)
    observer = _Observer(str(args.project))
    try:
        job = runtime.bulk.run_here(args.project, observer, stop, auto_label=auto_label, calibrate=args.calibrate)
    finally:
        observer.close()
    print(f"bulk job {job['id']} ({job['model_version']}): {job['status']}: {job['message']}", file=sys.stderr)
    if "auto_label" in job and job["auto_label"].get("summary"):
        print(f"  held-out estimate: {job['auto_label']['summary']}", file=sys.stderr)
    for error in job["errors"]:
        print(f"  {error}", file=sys.stderr)
    if job["status"] == "interrupted":
        return INTERRUPTED
    return 0 if job["status"] == "succeeded" and not job["failed"] else 1


def _wait_for_model(runtime: Runtime) -> None:
    if not runtime.models.wait_ready(LOAD_TIMEOUT):
        state = runtime.models.base_state
        raise LabelzooError(f"the model did not load: {state.error or 'still loading after ' + str(LOAD_TIMEOUT)}")


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """The first SIGINT/SIGTERM sets ``stop`` (the run ends after its chunk); the next one acts as usual."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handle(signum: int, frame: FrameType | None) -> None:
        print("\nstopping after the current chunk (again to stop at once)", file=sys.stderr)
        stop.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    for sig in previous:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
