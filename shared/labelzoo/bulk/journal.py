"""The offline run's resumable journal (``<out>.partial``) and its atomic final write.

The journal is JSON lines: a header naming the run (input fingerprint, model version, task count),
then one line per predicted task, ``{"i": <index>, "p": <the /predict item>}``, flushed and synced
after every chunk. A run killed at any moment leaves at most a torn last line, which is dropped on
resume. Only a journal with the same header is resumed; the output file appears, complete, at the end
(written to a temporary name, synced, renamed), and the journal is then deleted.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from labelzoo.errors import LabelzooError

FORMAT = 1


class Journal:
    def __init__(self, out: Path, header: Mapping[str, Any]) -> None:
        self.path = out.with_name(out.name + ".partial")
        self.header = {"labelzoo_bulk_journal": FORMAT, **header}
        self._file: IO[str] | None = None

    def load(self) -> dict[int, dict[str, Any]]:
        """Items predicted by an earlier run of the same input: task index → item (failed ones excluded)."""
        if not self.path.exists():
            return {}
        lines = self.path.read_text(encoding="utf-8").split("\n")
        try:
            header = json.loads(lines[0])
        except json.JSONDecodeError:
            header = None
        if header != self.header:
            raise LabelzooError(
                f"{self.path} belongs to another run (other tasks, label config or model version): "
                "delete it to start over, or run the command that created it"
            )
        done: dict[int, dict[str, Any]] = {}
        for line in lines[1:]:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # the torn last line of a killed run, or the final empty string
            if "result" in entry["p"]:
                done[int(entry["i"])] = entry["p"]
        return done

    def open(self) -> None:
        fresh = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        if fresh:
            self._file.write(json.dumps(self.header) + "\n")
        else:
            self._file.write("\n")  # ends a torn last line; empty lines are skipped on load
        self._sync()

    def append(self, entries: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
        assert self._file is not None, "open() the journal first"
        self._file.write("".join(json.dumps({"i": i, "p": item}) + "\n" for i, item in entries))
        self._sync()

    def close(self, *, remove: bool) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if remove:
            self.path.unlink(missing_ok=True)

    def _sync(self) -> None:
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())


def write_atomically(path: Path, data: Any) -> None:
    """Write JSON to ``path`` so that readers see the old file or the complete new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
