"""Write the student edition: the chapters' notebooks without solutions, ready to hand out.

    .venv/bin/python scripts/make_student.py           # what `make student` runs

For every notebook in ``_toc.yml``:

- ``{solution}`` directives in markdown cells are removed (the exercises stay);
- a ``{solution-start}`` ... ``{solution-end}`` span is removed with every cell inside it
  (code cells and their outputs included); text after ``{solution-end}`` in the same cell stays.

Output in ``_build/student/``: the folder ``mlm-course-student/`` laid out like the
course repository (``book/`` with the notebooks, the ``mlm_lessons`` package with its data, any
other repository file a notebook opens by a relative path, ``requirements.lock``,
``pyproject.toml``, a README and a Makefile with ``make env`` and ``make lab``) and the same
folder zipped, ``mlm-course-student.zip``. ``make env`` installs the pinned packages and the
folder's own ``mlm_lessons``, which carries its data (``mlm_lessons/datasets/``); nothing else
needs configuring.
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import sys
import zipfile
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from book_toc import ROOT, read_toc  # noqa: E402

NAME = "mlm-course-student"

# an opening fence (``` or :::, three or more) with a directive name, and its closing fence
_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}.*$")


class SolutionMarkupError(ValueError):
    """The solution markup of a notebook is malformed (e.g. an unmatched solution-start)."""


def _find_blocks(lines: list[str]) -> list[tuple[int, int, str]]:
    """Top-level directive blocks as (first line, last line, name); nested ones are skipped."""
    blocks, i = [], 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        fence = m.group("fence")
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        blocks.append((i, min(j, len(lines) - 1), m.group("name")))
        i = j + 1
    return blocks


def strip_solution_directives(text: str) -> str:
    """Remove every ``{solution}`` directive block from a markdown text."""
    lines = text.split("\n")
    drop: set[int] = set()
    for first, last, name in _find_blocks(lines):
        if name == "solution":
            drop.update(range(first, last + 1))
    kept = [line for k, line in enumerate(lines) if k not in drop]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip("\n")


def _marker(text: str, name: str) -> tuple[int, int] | None:
    """(first, last) line of the first ``{name}`` directive block in text, if any."""
    for first, last, found in _find_blocks(text.split("\n")):
        if found == name:
            return first, last
    return None


def strip_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with every solution removed (exercises, other cells kept)."""
    out = copy.deepcopy(nb)
    cells, inside = [], False
    for cell in out.cells:
        if cell.cell_type != "markdown":
            if not inside:
                cells.append(cell)
            continue
        text = cell.source
        if inside:
            end = _marker(text, "solution-end")
            if end is None:
                continue  # a markdown cell inside the solution
            text = "\n".join(text.split("\n")[end[1] + 1 :])
            inside = False
        while True:
            start = _marker(text, "solution-start")
            if start is None:
                break
            lines = text.split("\n")
            before, rest = lines[: start[0]], "\n".join(lines[start[1] + 1 :])
            end = _marker(rest, "solution-end")
            if end is None:
                text, inside = "\n".join(before), True
                break
            text = "\n".join(before + rest.split("\n")[end[1] + 1 :])
        if _marker(text, "solution-end") is not None:
            raise SolutionMarkupError("a {solution-end} without a {solution-start}")
        text = strip_solution_directives(text)
        if text.strip():
            cell.source = text
            cells.append(cell)
    if inside:
        raise SolutionMarkupError("a {solution-start} without a {solution-end}")
    out.cells = cells
    out.metadata["mlm_course"] = {"edition": "student"}
    return out


STUDENT_README = """# Multilevel models in Python: student notebooks

The notebooks of the course, with the exercises and without their solutions.

```bash
make env    # once: creates .venv with the course's pinned packages (needs Python 3.11)
make lab    # opens JupyterLab on the notebooks in book/
```

Without `make`: `python3.11 -m venv .venv`, `.venv/bin/pip install -r requirements.lock`,
`.venv/bin/pip install --no-deps -e .`, then `.venv/bin/jupyter lab --notebook-dir=book`.
The notebooks use the course's helper package `mlm_lessons/`, which carries the data sets
(`mlm_lessons/datasets/`); nothing is downloaded once the packages are installed.

Chapters:

{chapters}
"""

STUDENT_MAKEFILE = """# Student notebooks: `make env` once, then `make lab`.
PYTHON ?= python3.11
BIN := .venv/bin

.PHONY: env lab
env: .venv/.installed
.venv/.installed: requirements.lock pyproject.toml
\ttest -x $(BIN)/python || $(PYTHON) -m venv .venv
\t$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
\t$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \\
\t\t--no-build-isolation -e .
\t$(BIN)/python -m ipykernel install --sys-prefix --name python3 \\
\t\t--display-name "Python 3 (mlm-course)" >/dev/null
\ttouch $@
lab: env
\t$(BIN)/jupyter lab --notebook-dir=book
"""


_STRING = re.compile(r"""(?<![\w.])[rRbB]?(["'])([^"'\n]+?)\1""")


def referenced_files(nb: nbformat.NotebookNode, folder: Path, root: Path) -> list[Path]:
    """Repository files that the notebook's code opens by a path relative to its folder."""
    found = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for _, literal in _STRING.findall(cell.source):
            if "/" not in literal and "." not in literal:
                continue
            try:
                path = (folder / literal).resolve()
            except (OSError, ValueError):
                continue
            if path.is_file() and path.is_relative_to(root) and ".venv" not in path.parts:
                found.add(path)
    return sorted(found)


def build(root: Path = ROOT, out: Path | None = None) -> Path:
    """Write the student folder and zip under ``out``; return the zip's path."""
    out = (out or root / "_build" / "student").resolve()
    folder = out / NAME
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    root = root.resolve()
    toc = read_toc(root)
    titles, extra = [], set()
    for page in toc.notebooks:
        nb = nbformat.read(page.path, as_version=4)
        target = folder / page.path.resolve().relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        student = strip_notebook(nb)
        nbformat.write(student, target)
        extra.update(referenced_files(student, page.path.resolve().parent, root))
        titles.append(f"- `{target.relative_to(folder)}`: {page.title}")
    for path in sorted(extra):
        target = folder / path.relative_to(root)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    shutil.copytree(
        root / "mlm_lessons",
        folder / "mlm_lessons",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        dirs_exist_ok=True,
    )
    for name in ("requirements.lock", "pyproject.toml"):
        shutil.copy2(root / name, folder / name)
    (folder / "README.md").write_text(STUDENT_README.format(chapters="\n".join(titles)))
    (folder / "Makefile").write_text(STUDENT_MAKEFILE)
    archive = out / f"{NAME}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(out).as_posix())
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="default: _build/student")
    args = parser.parse_args(argv)
    archive = build(ROOT, args.out)
    n = len(read_toc(ROOT).notebooks)
    shown = archive.relative_to(ROOT) if archive.is_relative_to(ROOT) else archive
    print(f"{shown}: {n} notebooks without solutions, with data and mlm_lessons")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
