"""``labelzoo`` command line: serve a backend, list backends, scaffold a new one, run training workers."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from labelzoo.errors import LabelzooError
from labelzoo.settings import Settings

TEMPLATE = "template"
SCAFFOLD_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


def _serve(args: argparse.Namespace) -> int:
    from labelzoo.registry import find_folder
    from labelzoo.server.gunicorn_app import serve

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port), ("workers", args.workers),
                                   ("threads", args.threads)) if v is not None}
    settings = Settings.from_env(**overrides)
    serve(str(find_folder(args.backend)), settings)
    return 0


def _backends(args: argparse.Namespace) -> int:
    from labelzoo.registry import iter_backend_folders, load_backend

    for name, folder in iter_backend_folders():
        try:
            spec = load_backend(str(folder))
        except Exception as exc:  # a backend whose dependencies are not installed is still listed
            print(f"{name:<10} {folder}  (cannot import: {type(exc).__name__}: {exc})")
            continue
        labels = ", ".join(str(t) for t in spec.cls.targets)
        flags = [f for f, on in (("interactive", spec.cls.interactive), ("learns", spec.cls.can_fit())) if on]
        extra = f" [{', '.join(flags)}]" if flags else ""
        print(f"{name:<10} {labels}{extra}\n{'':<10} {spec.cls.description}")
    return 0


def _new(args: argparse.Namespace) -> int:
    from labelzoo.registry import find_folder

    target = Path(args.directory)
    if target.exists() and any(target.iterdir()):
        raise LabelzooError(f"{target} exists and is not empty; choose a new folder")
    source = find_folder(TEMPLATE)
    shutil.copytree(source, target, ignore=SCAFFOLD_SKIP, dirs_exist_ok=True)
    for name in ("Dockerfile", "README.md"):  # their paths assume backends/<name> in a labelzoo checkout
        path = target / name
        path.write_text(path.read_text().replace(f"backends/{TEMPLATE}", f"backends/{target.name}"))
    print(f"created {target} from the {TEMPLATE!r} backend.\n"
          f"  test it:   pytest {target}\n"
          f"  serve it:  labelzoo serve {target}\n"
          f"Edit {target / 'model.py'}: load() your model, predict() a batch, fit() to learn.")
    return 0


def _worker(args: argparse.Namespace) -> int:
    from labelzoo.registry import find_folder
    from labelzoo.training import run_rq_worker

    settings = Settings.from_env()
    if not settings.redis_url:
        raise LabelzooError("set REDIS_URL to the Redis server the labelzoo servers queue training jobs on")
    find_folder(args.backend)  # fail early on a typo; the job names its backend folder itself
    run_rq_worker(settings, burst=args.burst)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labelzoo", description="Label Studio ML backends")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve a backend for Label Studio (gunicorn)")
    serve.add_argument("backend", help="a backend name (yolo, spacy, whisper, sam, template) or a folder path")
    serve.add_argument("--host", help="address to bind (default 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port (default 9090 or $PORT)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1 or $WORKERS)")
    serve.add_argument("--threads", type=int, help="threads per worker (default 8 or $THREADS)")
    serve.set_defaults(func=_serve)

    backends = sub.add_parser("backends", help="list the available backends and what they label")
    backends.set_defaults(func=_backends)

    new = sub.add_parser("new", help="create a custom backend folder from the template backend")
    new.add_argument("directory")
    new.set_defaults(func=_new)

    worker = sub.add_parser("worker", help="run training jobs from the Redis queue (needs REDIS_URL)")
    worker.add_argument("backend", help="the backend the queue's jobs train")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.set_defaults(func=_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (LabelzooError, ValueError) as exc:
        message = exc.message if isinstance(exc, LabelzooError) else str(exc)
        print(f"labelzoo: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
