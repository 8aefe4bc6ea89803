"""Write the student edition: the rendered notebooks without solutions, ready to hand out.

    .venv/bin/python scripts/make_student.py           # what `make student` runs

The notebooks are those of the rendered edition (``render_notebooks.py``: numbers, glued
values and references written in, readable in any JupyterLab or Colab) with every solution
left out; the exercises stay. Output in ``_build/student/``: the folder
``mlm-course-student/``, laid out like the course repository, and the same folder zipped,
``mlm-course-student.zip``:

- ``book/``: the notebooks, and any other repository file a notebook opens by a relative
  path;
- ``mlm_lessons/``, which carries its data (``mlm_lessons/datasets/``), and ``pyproject.toml``;
- ``requirements.lock``: the *lean* lock (``lean_lock.py``), only what running the
  notebooks needs, every pin equal to the course's;
- ``LICENSE``, a ``README.md`` and a ``Makefile`` whose ``make env`` installs the lean lock
  and the folder's own ``mlm_lessons``, and whose ``make lab`` starts JupyterLab with the
  same offline flags as the repository's ``make lab`` (``--allow-root`` when run as root).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import zipfile
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from book_refs import BookRefs  # noqa: E402
from book_toc import ROOT  # noqa: E402
from lean_lock import lean_lock  # noqa: E402
from render_notebooks import (  # noqa: E402
    RenderError,
    leftover_markup,
    referenced_files,
    render_notebook,
    repository,
    setup_cell_source,
)

NAME = "mlm-course-student"

STUDENT_README = """# Multilevel models in Python: student notebooks

The notebooks of the course, with the exercises and without their solutions. Numbers,
equations and references are written into the text, so the notebooks read the same in
JupyterLab, in Colab or in any other Jupyter.

```bash
make env    # once: creates .venv with the packages the notebooks need (Python 3.11)
make lab    # opens JupyterLab on the notebooks in book/
```

Without `make`: `python3.11 -m venv .venv`, `.venv/bin/pip install -r requirements.lock`,
`.venv/bin/pip install --no-deps --no-build-isolation -e .`, then
`.venv/bin/jupyter lab --notebook-dir=book`. The notebooks use the course's helper package
`mlm_lessons/`, which carries the data sets (`mlm_lessons/datasets/`); nothing is downloaded
once the packages are installed. `requirements.lock` pins only what the notebooks need (the scientific Python
stack, JupyterLab and their dependencies), at the versions the course was tested with.

Chapters:

{chapters}

## Licence

The code (`mlm_lessons/`, the notebooks' code) is under the MIT licence in `LICENSE`. The
data sets come with their own sources, licences and citations: see the data README
({data_readme}).
"""

STUDENT_MAKEFILE = """# Student notebooks: `make env` once, then `make lab`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: env lab
env: $(STAMP)
$(STAMP): requirements.lock pyproject.toml
\t@command -v $(PYTHON) >/dev/null || {{ echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'"; exit 1; }}
\ttest -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
\t$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
\t$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \\
\t\t--no-build-isolation -e .
\t$(BIN)/python -m ipykernel install --sys-prefix --name python3 \\
\t\t--display-name "Python 3 (mlm-course)" >/dev/null
\ttouch $(STAMP)

# JupyterLab fetches nothing: no update check, no news (and no question about news), no
# PyPI extension manager; --allow-root when run as root (workshop containers).
{lab_flags}
{lab_overrides}
lab: env $(LAB_OVERRIDES)
\t$(BIN)/jupyter lab --notebook-dir=book $(LAB_FLAGS) \\
\t\t$(if $(filter 0,$(shell id -u)),--allow-root)
"""


def lab_settings(makefile: Path) -> tuple[str, str]:
    """The repository Makefile's ``LAB_FLAGS`` and ``LAB_OVERRIDES`` definitions, verbatim."""
    text = makefile.read_text(encoding="utf-8")
    flags = re.search(r"(?m)^LAB_FLAGS :=(?:.*\\\n)*.*$", text)
    overrides = re.search(r"(?m)^LAB_OVERRIDES :=.*\n\$\(LAB_OVERRIDES\):.*\n(?:\t.*\n)+", text)
    if not flags or not overrides:
        raise ValueError(f"{makefile}: no LAB_FLAGS / LAB_OVERRIDES definition for make lab")
    return flags.group(0), overrides.group(0).rstrip("\n")


def _copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(
        src,
        dst,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".ipynb_checkpoints"),
        dirs_exist_ok=True,
    )


def build(root: Path = ROOT, out: Path | None = None) -> Path:
    """Write the student folder and zip under ``out``; return the zip's path."""
    root = Path(root).resolve()
    out = (out or root / "_build" / "student").resolve()
    folder = out / NAME
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    refs = BookRefs(root)
    url, branch = repository(refs)
    titles, extra = [], set()
    for page in refs.toc.notebooks:
        nb = nbformat.read(page.path, as_version=4)
        src_folder = page.path.resolve().parent
        files = referenced_files(nb, src_folder, root)
        extra.update(files)
        pairs = [(_rel(f, src_folder), f.relative_to(root).as_posix()) for f in files]
        student, _ = render_notebook(
            nb,
            refs,
            page.docname,
            solutions=False,
            setup=setup_cell_source(url, branch, pairs),
        )
        left = leftover_markup(student)
        if left:
            raise RenderError(f"{page.path.name}: MyST markup left: {left[:5]}")
        target = folder / page.path.resolve().relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(student, target)
        number = refs.chapter(page.docname).number
        label = f"{number}. {page.title}" if number else page.title
        titles.append(f"- `{target.relative_to(folder).as_posix()}`: {label}")
    for path in sorted(extra):
        target = folder / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    _copy_tree(root / "mlm_lessons", folder / "mlm_lessons")  # with mlm_lessons/datasets/
    for name in ("pyproject.toml", "LICENSE"):
        shutil.copy2(root / name, folder / name)
    (folder / "requirements.lock").write_text(lean_lock(root))
    data_readme = folder / "mlm_lessons" / "datasets" / "README.md"
    if not data_readme.is_file():
        raise FileNotFoundError(f"{data_readme.relative_to(folder)}: the data sets' codebook")
    (folder / "README.md").write_text(
        STUDENT_README.format(
            chapters="\n".join(titles),
            data_readme=f"`{data_readme.relative_to(folder).as_posix()}`",
        )
    )
    flags, overrides = lab_settings(root / "Makefile")
    (folder / "Makefile").write_text(
        STUDENT_MAKEFILE.format(lab_flags=flags, lab_overrides=overrides)
    )
    archive = out / f"{NAME}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(out).as_posix())
    return archive


def _rel(path: Path, folder: Path) -> str:
    import os

    return os.path.relpath(path, folder).replace(os.sep, "/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="default: _build/student")
    args = parser.parse_args(argv)
    archive = build(ROOT, args.out)
    folder = archive.with_suffix("")
    n = len(list((folder / "book").glob("*.ipynb")))
    pins = sum(
        1 for line in (folder / "requirements.lock").read_text().splitlines() if "==" in line
    )
    shown = archive.relative_to(ROOT) if archive.is_relative_to(ROOT) else archive
    size = archive.stat().st_size / 1e6
    print(
        f"{shown}: {n} notebooks without solutions, mlm_lessons, data, {pins} pins, {size:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
