"""What the book's pages show of the chapter notebooks, checked on the notebooks themselves.

Glue bookkeeping (``glue(..., display=False)``, the calls that put numbers into the prose)
lives in cells of its own tagged ``remove-cell`` (``scripts/split_glue_cells.py`` does the
split); a reader sees the analysis, not the bookkeeping. A hidden cell must show nothing,
so that hiding it never takes a table, figure or printed line away from the page.
``tests/test_browser.py`` counts the same in the built HTML.
"""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path

import pytest
from _publishing import ROOT  # (also puts scripts/ on sys.path)
from book_toc import read_toc
from split_glue_cells import GLUE_MIME, HIDE, calls_glue, split_notebook

NOTEBOOKS = [page.path for page in read_toc(ROOT).notebooks]


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _hidden(cell) -> bool:
    tags = cell.get("metadata", {}).get("tags", [])
    return HIDE in tags or "remove-input" in tags


def visible_glue_cells(path) -> list[int]:
    """Indices of code cells that call glue and are shown in the book."""
    return [
        i
        for i, cell in enumerate(_cells(path))
        if cell["cell_type"] == "code"
        and not _hidden(cell)
        and calls_glue(ast.parse("".join(cell["source"])))
    ]


def test_no_reader_sees_a_glue_call():
    counts = {p.name: len(visible_glue_cells(p)) for p in NOTEBOOKS}
    assert sum(counts.values()) == 0, {k: v for k, v in counts.items() if v}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_hidden_cells_show_nothing(path):
    for i, cell in enumerate(_cells(path)):
        if cell["cell_type"] != "code" or HIDE not in cell.get("metadata", {}).get("tags", []):
            continue
        shown = [
            o
            for o in cell.get("outputs", [])
            if not any(k.startswith(GLUE_MIME) for k in o.get("data", {}))
        ]
        assert not shown, f"{path.name}: hidden cell {i} has visible output {shown[0]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_glue_cells_are_split_as_the_tool_would(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    changed, problems = split_notebook(copy.deepcopy(nb))
    assert (changed, problems) == (0, []), "run scripts/split_glue_cells.py on it"


def test_the_splitter_moves_glue_and_keeps_the_analysis():
    source = (
        "fit = mlm.fit_null(hsb, 'mathach', 'school')\n"
        "tau = fit.tau.iloc[0, 0]\n"
        "glue('tau', round(tau, 4), display=False)\n"
        "fit.fixed.round(3)\n"
    )
    record = {"output_type": "display_data", "data": {GLUE_MIME + "text/plain": "8.6"}}
    table = {"output_type": "execute_result", "data": {"text/plain": "table"}}
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "id": "c1",
                "metadata": {},
                "execution_count": 3,
                "source": source.splitlines(keepends=True),
                "outputs": [record, table],
            }
        ]
    }
    assert split_notebook(nb) == (1, [])
    shown, hidden = nb["cells"]
    assert "".join(shown["source"]) == (
        "fit = mlm.fit_null(hsb, 'mathach', 'school')\nfit.fixed.round(3)"
    )
    assert shown["outputs"] == [table]
    assert "".join(hidden["source"]) == (
        "tau = fit.tau.iloc[0, 0]\nglue('tau', round(tau, 4), display=False)"
    )
    assert hidden["outputs"] == [record] and hidden["metadata"]["tags"] == [HIDE]
    assert hidden["id"] == "c1-glue"
    assert split_notebook(nb) == (0, [])  # idempotent


def test_the_splitter_refuses_a_move_that_changes_what_runs():
    source = "x = 1\nglue('x', x, display=False)\nx = 2\nprint(x)\n"
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "source": source.splitlines(keepends=True),
                "outputs": [],
            }
        ]
    }
    changed, problems = split_notebook(nb)
    assert changed == 0 and "rebinds ['x']" in problems[0]


def test_numbered_chapters_carry_their_file_number():
    """The web book numbers the chapters in the order of _toc.yml, across parts; prose, slides
    and handouts say "chapter 18" after the file name, so the two must agree."""
    numbered = [p for part in read_toc(ROOT).parts if part.numbered for p in part.pages]
    assert numbered, "no numbered part in _toc.yml"
    for position, page in enumerate(numbered, start=1):
        prefix = Path(page.docname).name.split("-")[0]
        assert prefix.isdigit() and int(prefix) == position, (
            f"{page.docname} is chapter {position} of the book but its file says {prefix}: "
            f"rename the file or move its line in _toc.yml"
        )
