"""Count each backend's model-specific code lines: no blank lines, comments, docstrings or imports.

    python scripts/backend_lines.py [backends/]

Prints one line per backend (and per file with ``-v``). A backend folder holding a ``kinds/`` package
(YOLO: one recipe per task kind) is reported per kind as well, each kind's module on its own plus the
backend's shared modules once. Tests (``test_*.py``) are not counted.
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
import tokenize
from pathlib import Path


def code_lines(source: str) -> int:
    """Lines holding code, once blank lines, comments, docstrings and import statements are left out."""
    tree = ast.parse(source)
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            skipped.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
                first.value.value, str
            ):
                skipped.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            skipped.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                          tokenize.ENDMARKER):
            continue
        lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - skipped)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def count_files(files: list[Path]) -> dict[Path, int]:
    return {f: code_lines(f.read_text(encoding="utf-8")) for f in files}


def backend_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if not p.name.startswith("test_") and "__pycache__" not in p.parts)


def report(root: Path, verbose: bool) -> list[str]:
    out = []
    for folder in sorted(p for p in root.iterdir() if (p / "model.py").is_file()):
        counts = count_files(backend_files(folder))
        kinds = {f: n for f, n in counts.items() if f.parent.name == "kinds" and f.name != "__init__.py"}
        shared = sum(n for f, n in counts.items() if f not in kinds)
        out.append(f"{folder.name:10s} {sum(counts.values()):5d}")
        for kind_file, n in sorted(kinds.items()):
            label = f"{folder.name}:{kind_file.stem}"
            out.append(f"{label:16s} {n:5d} in kinds/{kind_file.name} (+ {shared} shared by every kind)")
        if verbose:
            out.extend(f"    {f.relative_to(root)}: {n}" for f, n in counts.items())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=str(Path(__file__).resolve().parents[1] / "backends"))
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per file too")
    args = parser.parse_args(argv)
    print("\n".join(report(Path(args.root), args.verbose)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
