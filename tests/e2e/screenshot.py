"""Screenshots of the template backend's predictions in a real Label Studio, for the documentation.

    .venv/bin/python -m tests.e2e.screenshot [--out docs/img]

Runs what the end-to-end tests run (Label Studio from ``.ls-venv``, the template backend under gunicorn,
both on 127.0.0.1): annotates a few reviews, trains through "Start Training", selects the new version,
retrieves predictions, then logs in with headless Chromium (Debian's ``chromium`` package) and saves

* ``ls-data-manager-scores.png``: the Data Manager sorted by "Prediction score", least confident first;
* ``ls-task-prediction.png``: a task opened in the labelling editor, pre-filled by the prediction.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.conftest import TEMPLATE_BACKEND, Server
from tests.e2e.chromium import Chromium
from tests.e2e.label_studio import REPO, LabelStudio, installed
from tests.e2e.project import LSProject, wait_for_job
from tests.e2e.reviews import sentiment

CONFIG = (TEMPLATE_BACKEND / "label_config.xml").read_text()
REVIEWS = [
    ("The hotel was wonderful and the staff friendly.", "Positive"),
    ("Awful service, rude staff and cold food.", "Negative"),
    ("A great film with a lovely score.", "Positive"),
    ("The phone arrived broken. Terrible.", "Negative"),
    ("Excellent book, a superb ending.", "Positive"),
    ("Dreadful concert, the sound was poor.", "Negative"),
    ("Delicious meal and a lovely dessert.", "Positive"),
    ("Dirty room, noisy and awful.", "Negative"),
    ("Friendly staff and a great breakfast.", "Positive"),
    ("Poor acting and a terrible plot.", "Negative"),
    ("Superb service, wonderful view.", "Positive"),
    ("Cold room, rude reception, dreadful stay.", "Negative"),
    ("Lovely hotel, excellent location.", "Positive"),
    ("The food was poor and the dessert awful.", "Negative"),
    ("A wonderful concert with superb sound.", None),
    ("Terrible phone, broken after a week.", None),
    ("The staff were friendly but the room was dirty.", None),
    ("Great film, excellent acting.", None),
    ("Rude waiter and cold, dreadful food.", None),
    ("The view was lovely, the breakfast poor.", None),
]
#: the Data Manager columns the score screenshot shows (the others are hidden)
SHOWN = {"tasks:id", "tasks:total_annotations", "tasks:total_predictions", "tasks:predictions_score",
         "tasks:data.text"}


def prepare(ls: LabelStudio, workdir: Path) -> tuple[LSProject, list[int]]:
    """A project whose unlabelled tasks carry predictions of a version trained through Label Studio."""
    server = Server(TEMPLATE_BACKEND, workdir, LABEL_STUDIO_URL=ls.url, LABEL_STUDIO_API_KEY=ls.pat,
                    TRAIN_AFTER_ANNOTATIONS="0")
    try:
        server.wait_ready()
        project = LSProject(ls.api(), "Reviews", CONFIG)
        ids = project.import_tasks({"text": text} for text, _ in REVIEWS)
        project.connect(server.url, "Template")
        for task, (_, label) in zip(ids, REVIEWS, strict=True):
            if label:
                project.annotate(task, sentiment(label))
        project.train()
        job = wait_for_job(server.url, project.id, lambda job: job["reason"] == "start_training")
        if job["status"] != "succeeded":
            raise RuntimeError(f"training failed: {job}")
        unlabelled = [task for task, (_, label) in zip(ids, REVIEWS, strict=True) if not label]
        project.retrieve_predictions(unlabelled)
        project.select_model_version(job["version"])  # LS accepts it once predictions of it exist
        return project, unlabelled
    finally:
        server.stop()


def score_view(project: LSProject) -> int:
    """A Data Manager tab sorted by prediction score, showing the columns that matter here."""
    columns = project.api.get("/api/dm/columns/", params={"project": project.id})["columns"]
    every = {f"tasks:{c['parent'] + '.' if c.get('parent') else ''}{c['id']}" for c in columns}
    hidden = sorted(every - SHOWN)
    view = project.api.post("/api/dm/views/", {"project": project.id, "data": {
        "title": "Least confident first", "type": "list", "target": "tasks",
        "hiddenColumns": {"explore": hidden, "labeling": hidden},
        "ordering": ["tasks:predictions_score"],
        "filters": {"conjunction": "and", "items": []},
    }})
    return int(view["id"])


def shoot(ls: LabelStudio, project: LSProject, task: int, out: Path) -> list[Path]:
    view = score_view(project)
    with ls.login() as session, Chromium() as browser:
        browser.open_page()
        browser.set_cookies(ls.url, dict(session.cookies))
        browser.goto(f"{ls.url}/projects/{project.id}/data?tab={view}")
        browser.wait_for(f"document.body.innerText.includes({REVIEWS[-1][0][:20]!r})")
        table = browser.screenshot(out / "ls-data-manager-scores.png")
        browser.goto(f"{ls.url}/projects/{project.id}/data?tab={view}&task={task}")
        browser.wait_for("document.body.innerText.includes('How does the reviewer feel?')")
        browser.wait_for("[...document.querySelectorAll('input[type=checkbox]')].some(c => c.checked)", timeout=20)
        editor = browser.screenshot(out / "ls-task-prediction.png")
    return [table, editor]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img", help="folder for the PNG files")
    args = parser.parse_args(argv)
    if not installed():
        print("Label Studio is not installed: run `make ls-venv`", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="labelzoo-screenshot-") as tmp:
        ls = LabelStudio(Path(tmp)).start()
        try:
            project, unlabelled = prepare(ls, Path(tmp))
            for path in shoot(ls, project, unlabelled[0], args.out):
                print(path)
        finally:
            ls.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
