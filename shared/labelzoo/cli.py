"""``labelzoo`` command line: serve a backend, list backends, scaffold a new one, run workers, bulk-predict."""

from __future__ import annotations

import argparse
import re
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
    from labelzoo.store.writable import check_dir

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port), ("workers", args.workers),
                                   ("threads", args.threads)) if v is not None}
    settings = Settings.from_env(**overrides)
    check_dir(settings.model_dir.resolve(), create=True)  # here, not as every gunicorn worker's boot failure
    serve(str(find_folder(args.backend)), settings)
    return 0


def _backends(args: argparse.Namespace) -> int:
    from labelzoo.registry import iter_installed, load_backend

    for found in iter_installed():
        try:
            spec = load_backend(found.name)
        except ModuleNotFoundError as exc:  # a backend whose dependencies are not installed is still listed
            built_in = found.module == f"labelzoo_backends.{found.name}.model"
            hint = f"pip install 'labelzoo[{found.name}]'" if built_in else "install its requirements"
            print(f"{found.name:<10} not installed: needs {exc.name} ({hint})")
            continue
        except Exception as exc:
            print(f"{found.name:<10} {found.folder}  (cannot import: {type(exc).__name__}: {exc})")
            continue
        labels = ", ".join(str(t) for t in spec.cls.targets)
        flags = [f for f, on in (("interactive", spec.cls.interactive), ("learns", spec.cls.can_fit())) if on]
        extra = f" [{', '.join(flags)}]" if flags else ""
        print(f"{found.name:<10} {labels}{extra}\n{'':<10} {spec.cls.description}")
    return 0


def _new(args: argparse.Namespace) -> int:
    from labelzoo.registry import find_folder

    target = Path(args.directory)
    if target.exists() and any(target.iterdir()):
        raise LabelzooError(f"{target} exists and is not empty; choose a new folder")
    name = re.sub(r"\W", "_", target.resolve().name)
    shutil.copytree(find_folder(TEMPLATE), target, ignore=SCAFFOLD_SKIP, dirs_exist_ok=True)
    (target / f"test_{TEMPLATE}.py").rename(target / f"test_{name}.py")
    renames = {f"backends/{TEMPLATE}": f"backends/{name}", f"test_{TEMPLATE}.py": f"test_{name}.py",
               f"labelzoo-{TEMPLATE}": f"labelzoo-{name}", f"# {TEMPLATE} —": f"# {name} —"}
    for file in ("Dockerfile", "README.md", f"test_{name}.py"):  # paths in them assume backends/<name> of a checkout
        path = target / file
        text = path.read_text(encoding="utf-8")
        for old, new in renames.items():
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
    print(f"created {target} from the {TEMPLATE!r} backend.\n"
          f"  test it:   pytest {target}\n"
          f"  serve it:  labelzoo serve {target}\n"
          f"Edit {target / 'model.py'}: load() your model, predict() a batch, fit() to learn.")
    return 0


def _worker(args: argparse.Namespace) -> int:
    from labelzoo.bulk.rq import QUEUE_NAME as BULK_QUEUE
    from labelzoo.registry import find_folder
    from labelzoo.rq_worker import run_rq_worker
    from labelzoo.store.writable import check_dir
    from labelzoo.training.rq_queue import QUEUE_NAME as TRAINING_QUEUE

    settings = Settings.from_env()
    if not settings.redis_url:
        raise LabelzooError("set REDIS_URL to the Redis server the labelzoo servers queue training and bulk jobs on")
    find_folder(args.backend)  # fail early on a typo; the job names its backend folder itself
    check_dir(settings.model_dir.resolve(), create=True)  # training writes weights and logs there
    queues = {"training": (TRAINING_QUEUE,), "bulk": (BULK_QUEUE,)}.get(args.queue, (TRAINING_QUEUE, BULK_QUEUE))
    run_rq_worker(settings, queues, burst=args.burst)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from labelzoo.predict_command import run

    return run(args)


def _bootstrap(args: argparse.Namespace) -> int:
    from labelzoo.media import LabelStudioClient
    from labelzoo.quickstart import bootstrap, pick_label_config, wait_until_up
    from labelzoo.registry import find_folder

    settings = Settings.from_env()
    if not settings.media.label_studio_url or not settings.media.api_key:
        raise LabelzooError("set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY for the bootstrap step")
    folder = find_folder(args.backend)  # only its example configs are read: no model code is imported
    config_path = Path(args.label_config) if args.label_config else pick_label_config(folder)
    wait_until_up(settings.media.label_studio_url + "/health", timeout=args.timeout)
    wait_until_up(args.backend_url.rstrip("/") + "/health", timeout=args.timeout)
    demo = bootstrap(
        LabelStudioClient.from_settings(settings.media),
        backend_url=args.backend_url,
        backend_name=folder.name,
        label_config=config_path.read_text(),
        interactive=args.interactive,
        public_url=args.public_url or settings.media.label_studio_url,
    )
    login = f" and log in as {args.username}" if args.username else ""
    print(f"labelzoo {folder.name} is connected to project {demo.project_id} (model version {demo.model_version}).\n"
          f"Open {demo.url}{login}.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labelzoo", description="Label Studio ML backends")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve a backend for Label Studio (gunicorn)")
    serve.add_argument("backend", help="a backend name (`labelzoo backends` lists them) or a folder path")
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

    worker = sub.add_parser("worker", help="run training and bulk-prediction jobs from Redis (needs REDIS_URL)")
    worker.add_argument("backend", help="the backend the queue's jobs train or predict with")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.add_argument("--queue", choices=("all", "training", "bulk"), default="all",
                        help="which jobs to take: training, bulk-prediction chunks, or both (default)")
    worker.set_defaults(func=_worker)

    predict = sub.add_parser("predict", help="pre-annotate many tasks: a task file or media folder (offline), or "
                             "a Label Studio project (posted through its API)")
    predict.add_argument("backend", help="a backend name (template, yolo, …) or a backend folder")
    predict.add_argument("--tasks", type=Path, help="offline: a JSON task file, or a folder of media files")
    predict.add_argument("--out", type=Path, help="offline: the predictions file to write (Label Studio import format)")
    predict.add_argument("--label-config", type=Path,
                         help="offline: the label config XML file (default: the backend folder's label_config.xml)")
    predict.add_argument("--data-prefix", help="offline, media folder: write each file's task data as PREFIX + its "
                         "path relative to the folder, e.g. '/data/local-files/?d=photos/' (default: absolute paths)")
    predict.add_argument("--project", help="the Label Studio project id; offline, it picks the project's trained "
                         "model version from MODEL_DIR (default: the base model)")
    predict.add_argument("--label-studio-url", help="Label Studio's URL (default: $LABEL_STUDIO_URL)")
    predict.add_argument("--api-key", help="a Personal Access Token (default: $LABEL_STUDIO_API_KEY, which other "
                         "users of the machine cannot see in the process list)")
    predict.add_argument("--chunk-size", type=int, help="tasks per chunk (default: $BULK_CHUNK_SIZE or 256)")
    predict.add_argument("--rate-limit", type=float,
                         help="Label Studio requests per second (default: $BULK_RATE_LIMIT or 10; 0: no limit)")
    auto = predict.add_argument_group(
        "auto-labelling (with --project)", "annotate the tasks the model is sure of, predict the others; see "
        "docs/auto-labeling.md")
    sure = auto.add_mutually_exclusive_group()
    sure.add_argument("--auto-label-threshold", type=float, metavar="SCORE",
                      help="annotate the unannotated tasks whose task score is at least SCORE")
    sure.add_argument("--target-precision", type=float, metavar="P",
                      help="annotate above the lowest threshold whose precision on the held-out human annotations "
                      "reaches P (e.g. 0.95)")
    auto.add_argument("--min-support", type=int, default=None, metavar="N",
                      help="held-out tasks a chosen threshold needs above it (default 20)")
    auto.add_argument("--confidence", type=float, default=None, metavar="C",
                      help="how sure the chosen threshold's precision is to reach P (default 0.9)")
    auto.add_argument("--dry-run", action="store_true",
                      help="print the threshold, expected precision and coverage; write nothing")
    auto.add_argument("--undo", metavar="JOB", help="delete the annotations auto-label job JOB posted (those a "
                      "person changed since are kept)")
    predict.add_argument("--calibrate", action="store_true",
                         help="with --project: fit the map from the current version's task scores to the probability "
                         "that its pre-label is right, on the project's human annotations it did not learn from; "
                         "posts nothing (see docs/active-learning.md)")
    predict.set_defaults(func=_predict)

    boot = sub.add_parser("bootstrap", help="create a demo project in Label Studio and connect a backend to it")
    boot.add_argument("backend", help="the backend's name or folder (for its example label config)")
    boot.add_argument("--backend-url", required=True, help="the backend as Label Studio reaches it")
    boot.add_argument("--public-url", help="Label Studio's URL as the user opens it (default LABEL_STUDIO_URL)")
    boot.add_argument("--label-config", help="label config file (default: the backend's demo config)")
    boot.add_argument("--username", help="the login to print")
    boot.add_argument("--interactive", action="store_true", help="use the backend for smart tools (SAM)")
    boot.add_argument("--timeout", type=float, default=300, help="seconds to wait for both services")
    boot.set_defaults(func=_bootstrap)
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
