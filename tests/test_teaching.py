"""The instructors' page (book/teaching.md) stays true to the book it describes.

- The slide-to-chapter map lists the workshop's slides in order, each with a chapter of the
  book, and every section it names is a heading of that chapter.
- Every chapter is core or an elective, and every chapter has a place in the two-day plan,
  whose blocks follow each other without a gap or an overlap.
- The run times are the file the benchmark writes (``benchmarks/notebooks.py``), for every
  notebook of ``_toc.yml``: a chapter added without re-running the benchmark fails here.
"""

from __future__ import annotations

import csv
import re

import nbformat
import pytest
from _publishing import ROOT
from book_toc import read_toc

PAGE = ROOT / "book" / "teaching.md"
RESULTS = ROOT / "benchmarks" / "results"
N_SLIDES = 20  # the slides of the workshop deck (claibourn2013), title slide included


@pytest.fixture(scope="module")
def text() -> str:
    return PAGE.read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    start = text.index(f"## {heading}")
    end = text.find("\n## ", start + 3)
    return text[start : end if end > 0 else None]


def _chapters() -> dict[str, object]:
    toc = read_toc(ROOT)
    return {page.path.stem: page for part in toc.parts if part.numbered for page in part.pages}


def _headings(path) -> set[str]:
    nb = nbformat.read(path, as_version=4)
    return {
        re.sub(r"^#+\s+", "", line).strip()
        for cell in nb.cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if re.match(r"^#{2,3} ", line)
    }


def test_slide_map_names_real_sections_in_order(text):
    rows = re.findall(r"^\| (\d+) \| ([^|]+) \| ([^|]+) \| (.+) \|$", text, re.M)
    assert [int(r[0]) for r in rows] == list(range(1, N_SLIDES + 1))
    chapters = _chapters()
    checked = 0
    for number, _title, chapter, sections in rows:
        doc = re.search(r"\{doc\}`([\w-]+)`", chapter)
        if doc is None:
            continue
        stem = doc.group(1)
        if stem not in chapters:
            assert (ROOT / "book" / f"{stem}.md").is_file(), f"slide {number}: {stem}"
            continue
        headings = _headings(chapters[stem].path)
        for name in re.findall(r"\*([^*]+)\*", sections):
            assert name in headings, f"slide {number}: no section {name!r} in {stem}"
            checked += 1
    assert checked >= 30
    # every chapter of Part I is on the map
    part1 = [p.path.stem for p in read_toc(ROOT).parts[0].pages]
    assert all(f"{{doc}}`{stem}`" in text for stem in part1)


def test_every_chapter_is_core_or_elective_and_planned(text):
    numbers = {int(p.path.stem[:2]) for p in _chapters().values()}
    core = _section(text, "Core chapters and electives")
    listed = re.search(r"\*\*Core\*\*[^:]*: chapters ([\d ,and to]+)\.", core).group(1)
    core_set = set()
    for a, b in re.findall(r"(\d+)(?: to (\d+))?", listed):
        core_set |= set(range(int(a), int(b or a) + 1))
    electives = {int(m) for m in re.findall(r"\{doc\}`(\d\d)-", core)}
    assert core_set | electives == numbers and not core_set & electives
    plan = _section(text, "A two-day plan")
    planned = {int(n) for cell in re.findall(r"\| ([\d, ()or]+) \|$", plan, re.M)
               for n in re.findall(r"\d+", cell)}
    assert numbers <= planned, sorted(numbers - planned)


def test_plan_blocks_follow_each_other(text):
    plan = _section(text, "A two-day plan")
    for day in re.split(r"\*\*Day \d", plan)[1:]:
        spans = re.findall(r"^\| (\d\d):(\d\d)-(\d\d):(\d\d) \|", day, re.M)
        assert len(spans) >= 10
        minutes = [(int(a) * 60 + int(b), int(c) * 60 + int(d)) for a, b, c, d in spans]
        for (start, end), (next_start, _) in zip(minutes, minutes[1:]):
            assert start < end == next_start


def test_run_times_are_the_benchmarks_file_for_every_notebook(text):
    assert ":file: ../benchmarks/results/notebooks.csv" in text
    assert ":file: ../benchmarks/results/notebooks-machine.csv" in text
    with open(RESULTS / "notebooks.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    toc = [page.path.name for page in read_toc(ROOT).notebooks]
    assert [r["notebook"] for r in rows[:-1]] == toc, "re-run benchmarks/notebooks.py"
    assert rows[-1]["title"] == "all notebooks"
    total = sum(float(r["with kernel start (s)"]) for r in rows[:-1])
    assert float(rows[-1]["with kernel start (s)"]) == pytest.approx(total, abs=0.05 * len(rows))
    with open(RESULTS / "notebooks-machine.csv", newline="") as f:
        machine = dict(csv.reader(f))
    assert {"CPU", "cores", "Python", "date (UTC)"} <= set(machine)
