"""The student edition (``make student``): no solution survives, every notebook still runs.

Unit tests of the solution stripping on small notebooks, then the whole edition built from
``_toc.yml`` into a temporary folder: its notebooks must hold every exercise and no
solution, and each must run top to bottom in a fresh kernel started in the student folder's
``book/``, with that folder's ``mlm_lessons`` first on the path (what its ``make env``
installs) and the data inside it: nothing may come from the repository.
"""

from __future__ import annotations

import importlib
import os
import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from _publishing import ROOT  # puts scripts/ on sys.path

ms = importlib.import_module("make_student")
read_toc = importlib.import_module("book_toc").read_toc

md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell


def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def _all_text(nb) -> str:
    return "\n".join(cell.source for cell in nb.cells)


# --- stripping ----------------------------------------------------------------------------


def test_solution_directive_removed_exercise_kept():
    nb = _nb(
        md(
            "## Exercises\n\n```{exercise}\n:label: ex-a\nHow many?\n```\n\n"
            "```{solution} ex-a\n:class: dropdown\nThere are 160.\n```\n\nAfter."
        )
    )
    text = _all_text(ms.strip_notebook(nb))
    assert "{exercise}" in text and "How many?" in text and "After." in text
    assert "solution" not in text and "160" not in text


def test_longer_and_colon_fences_with_nested_code():
    nb = _nb(
        md("````{solution} ex-a\nUse\n```python\nsecret = 42\n```\n````\n\nKept."),
        md(":::{solution} ex-b\n:class: dropdown\nhidden answer\n:::\n"),
    )
    out = ms.strip_notebook(nb)
    assert _all_text(out) == "Kept."  # the second cell is empty and dropped


def test_solution_start_end_span_removes_cells_between():
    nb = _nb(
        md("```{exercise}\n:label: ex-c\nCompute it.\n```"),
        md("```{solution-start} ex-c\n:class: dropdown\n```\nWe compute:"),
        code("answer = 6 * 7"),
        md("Then print it."),
        code("print(answer)"),
        md("```{solution-end}\n```\n\nText after the solution."),
        code("other = 1"),
    )
    out = ms.strip_notebook(nb)
    sources = [c.source for c in out.cells]
    assert sources == [
        "```{exercise}\n:label: ex-c\nCompute it.\n```",
        "Text after the solution.",
        "other = 1",
    ]
    assert out.metadata["mlm_course"]["edition"] == "student"
    assert len(nb.cells) == 7, "the input notebook is not modified"


def test_solution_start_and_end_in_one_cell():
    nb = _nb(md("Before.\n\n```{solution-start} ex\n```\nhidden\n```{solution-end}\n```\nAfter."))
    assert _all_text(ms.strip_notebook(nb)) == "Before.\n\nAfter."


@pytest.mark.parametrize(
    "cells, message",
    [
        ([md("```{solution-start} ex\n```"), code("x = 1")], "without a {solution-end}"),
        ([code("x = 1"), md("```{solution-end}\n```")], "without a {solution-start}"),
    ],
)
def test_unbalanced_markers_raise(cells, message):
    with pytest.raises(ms.SolutionMarkupError, match=re.escape(message)):
        ms.strip_notebook(_nb(*cells))


# --- the edition built from the book --------------------------------------------------------

NOTEBOOKS = read_toc(ROOT).notebooks


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    archive = ms.build(ROOT, out)
    assert archive.is_file()
    return out / ms.NAME


def _solution_code(nb) -> list[str]:
    """Sources of the code cells inside solution-start ... solution-end in a notebook."""
    found, inside = [], False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            if "{solution-start}" in cell.source:
                inside = True
            if "{solution-end}" in cell.source:
                inside = False
        elif inside and cell.source.strip():
            found.append(cell.source.strip())
    return found


def _labels(text: str, directive: str) -> set[str]:
    pattern = rf"\{{{directive}\}}[ \t]*\n(?:.*\n)*?:label:[ \t]*(\S+)"
    return set(re.findall(pattern, text))


def _student_path(edition: Path, page) -> Path:
    return edition / page.path.resolve().relative_to(ROOT.resolve())


def test_edition_has_every_notebook_data_and_package(edition):
    if not NOTEBOOKS:
        pytest.skip("no chapter notebook in _toc.yml yet")
    for page in NOTEBOOKS:
        assert _student_path(edition, page).is_file()
    for name in ("README.md", "Makefile", "requirements.lock", "pyproject.toml"):
        assert (edition / name).is_file(), name
    assert (edition / "mlm_lessons" / "__init__.py").is_file()
    registry = (edition / "mlm_lessons" / "datasets" / "registry.csv").read_text()
    for line in registry.splitlines()[1:]:
        assert (edition / "mlm_lessons" / "datasets" / line.split(",")[0]).is_file(), line
    with zipfile.ZipFile(edition.parent / f"{ms.NAME}.zip") as zf:
        names = set(zf.namelist())
    assert {
        f"{ms.NAME}/{_student_path(edition, p).relative_to(edition)}" for p in NOTEBOOKS
    } <= names
    assert f"{ms.NAME}/mlm_lessons/datasets/registry.csv" in names


@pytest.mark.parametrize("page", NOTEBOOKS, ids=[p.path.stem for p in NOTEBOOKS])
def test_no_solution_survives_and_exercises_stay(edition, page):
    source = nbformat.read(page.path, as_version=4)
    student = nbformat.read(_student_path(edition, page), as_version=4)
    text = _all_text(student)
    assert not re.search(r"\{solution(-start|-end)?\}", text)
    student_code = {c.source.strip() for c in student.cells if c.cell_type == "code"}
    leaked = [src for src in _solution_code(source) if src in student_code]
    assert not leaked, f"solution code in the student notebook: {leaked}"
    assert _labels(text, "exercise") == _labels(_all_text(source), "exercise")


def test_referenced_files_are_found(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "table.csv").write_text("a\n1\n")
    nb = _nb(code("pd.read_csv('../tests/table.csv')\nopen(\"missing.txt\")\nx = 'a.b'"))
    found = ms.referenced_files(nb, tmp_path / "book", tmp_path)
    assert found == [tmp_path / "tests" / "table.csv"]


def _run(path: Path, folder: Path) -> str | None:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    # the notebook must use the package and data shipped beside it, not the repository's
    nb.cells.append(
        code(
            "import mlm_lessons as _m, pathlib as _p\n"
            f"assert _p.Path(_m.__file__).parent.parent == _p.Path({str(folder)!r})\n"
            f"assert _m.data_dir() == _p.Path({str(folder)!r}) / 'mlm_lessons' / 'datasets'"
        )
    )
    drop = ("MLM_DATA_DIR", "PYTHONPATH", "MPLBACKEND")  # a student's kernel has none of them
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = str(folder)  # the student folder's package, as its make env installs
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        allow_errors=False,
    )
    try:
        client.execute(env=env)
    except Exception as exc:  # noqa: BLE001 - report which notebook failed and why
        return f"{path.name}: {type(exc).__name__}: {str(exc)[-800:]}"
    return None


def test_every_student_notebook_runs(edition):
    if not NOTEBOOKS:
        pytest.skip("no chapter notebook in _toc.yml yet")
    paths = [_student_path(edition, p) for p in NOTEBOOKS]
    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        failures = [f for f in pool.map(lambda p: _run(p, edition), paths) if f]
    assert not failures, "\n".join(failures)
