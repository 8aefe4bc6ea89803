"""The slide decks (`make slides`, scripts/build_slides.py) as built from the notebooks.

Checked here without a browser: every chapter of ``_toc.yml`` gets a deck with enough
slides, every labelled equation outside the solutions is on a slide with the book's number,
every figure is a file with alt text, every glued number is the notebook's stored value,
no solution reaches a slide or a speaker note, nothing points off the machine, and the
roles fail loudly on a label the book does not define. ``test_slides_browser.py`` opens the
decks in Chromium.
"""

from __future__ import annotations

import html
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from _publishing import BUILD, ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import build_slides as bs  # noqa: E402
from book_toc import read_toc  # noqa: E402

MIN_SLIDES = 10  # every chapter of the course makes at least this many slides


@pytest.fixture(scope="module")
def decks(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("slides")
    counts = bs.build(ROOT, out)
    assert counts, "no deck was built"
    return out


@pytest.fixture(scope="module")
def index() -> bs.BookIndex:
    return bs.build_index(ROOT)


def _sections(deck_html: str) -> list[str]:
    return re.findall(r"<section\b.*?</section>", deck_html, re.S)


def _without_notes(section: str) -> str:
    return re.sub(r'<aside class="notes">.*?</aside>', "", section, flags=re.S)


def test_every_chapter_has_a_deck_and_the_index_lists_it(decks):
    toc = read_toc(ROOT)
    index_page = (decks / "index.html").read_text()
    numbered = [page for part in toc.parts if part.numbered for page in part.pages]
    for page in (p for p in numbered if p.is_notebook):
        deck = decks / f"{page.path.stem}.html"
        assert deck.is_file(), f"no deck for {page.path.name}"
        sections = _sections(deck.read_text())
        assert len(sections) >= MIN_SLIDES, f"{deck.name}: {len(sections)} slides"
        assert f'href="{deck.name}"' in index_page
        assert f"({len(sections)} slides)" in index_page


def test_deck_anatomy(decks, index):
    for chapter in index.decks:
        sections = _sections((decks / f"{chapter.stem}.html").read_text())
        kinds = [re.search(r'data-slide-kind="(\w+)"', s).group(1) for s in sections]
        assert kinds[0] == "title", chapter.stem
        assert f"Chapter {chapter.number}" in sections[0]
        assert chapter.title in html.unescape(re.sub(r"<[^>]+>", "", sections[0]))
        assert kinds[1] == "learn", f"{chapter.stem}: 'What you'll learn' is not slide 2"
        for wanted in ("exercises", "summary"):
            assert wanted in kinds, f"{chapter.stem}: no {wanted} slide"
        with_notes = sum('<aside class="notes">' in s for s in sections)
        assert with_notes >= len(sections) / 2, f"{chapter.stem}: notes on {with_notes} slides"


def _solution_free(nb) -> tuple[list[str], list[nbformat.NotebookNode]]:
    """Labels of the display equations outside solutions, and the solutions' code cells."""
    labels, solution_code, inside = [], [], False
    for cell in nb.cells:
        if cell.cell_type == "code":
            if inside:
                solution_code.append(cell)
            continue
        text = cell.source
        for line in text.split("\n"):
            if "{solution-start}" in line:
                inside = True
            elif "{solution-end}" in line:
                inside = False
            elif not inside:
                m = re.match(r"^\$\$\s*\((\S+)\)\s*$", line)
                if m:
                    labels.append(m.group(1))
    return labels, solution_code


def test_equations_carry_the_book_numbers(decks, index):
    for chapter in index.decks:
        deck = (decks / f"{chapter.stem}.html").read_text()
        slides = "".join(_without_notes(s) for s in _sections(deck))
        labels, _ = _solution_free(nbformat.read(chapter.path, as_version=4))
        for label in labels:
            number = index.equations[label]
            assert number.startswith(f"{chapter.number}."), (label, number)
            assert f"\\tag{{{number}}}" in slides, f"{chapter.stem}: equation {label} missing"


def test_book_numbering_of_chapter_6(index):
    # the numbers the built book prints (checked against the HTML in test_slides_browser)
    assert index.equations["ch06-level1"] == "6.1"
    assert index.equations["ch06-reliability"] == "6.6"
    assert index.figures["fig-ch06-reliability"] == "6.1"
    assert index.exercises["ch06-ex-students"] == "6.2"


def test_no_solution_on_a_slide_or_in_the_notes(decks, index):
    checked = 0
    for chapter in index.decks:
        deck = html.unescape((decks / f"{chapter.stem}.html").read_text())
        nb = nbformat.read(chapter.path, as_version=4)
        _, solution_code = _solution_free(nb)
        # a line that also stands outside the solutions (an exercise quoting the call it
        # asks for, the chapter's own code) may be on a slide
        elsewhere = "\n".join(c.source for c in nb.cells if c not in solution_code)
        for cell in solution_code:
            for line in cell.source.splitlines():
                if len(line.strip()) >= 25 and line.strip() not in elsewhere:
                    # a whole statement, not the tail of a longer name (null_ml = ... is
                    # the chapter's own code where a solution writes ml = ...)
                    pattern = rf"(?<![\w.]){re.escape(line.strip())}"
                    assert not re.search(pattern, deck), f"{chapter.stem}: solution code {line!r}"
                    checked += 1
        assert "{solution" not in deck
    assert checked > 50  # the check saw real solution code


def test_glued_numbers_are_the_stored_outputs(decks, index):
    from myst_nb.core.variables import format_plain_text

    chapter = index.chapter("06-null-model")
    deck = (decks / "06-null-model.html").read_text()
    glued = set(re.findall(r'<span class="glue">([^<]*)</span>', deck))
    stored = chapter.glue["ch06-icc"]["text/plain"]
    assert format_plain_text(stored, ".3f") in glued
    assert len(glued) >= 10
    for chapter in index.decks:
        deck = (decks / f"{chapter.stem}.html").read_text()
        assert "{glue" not in deck and "{eq}" not in deck and "{numref}" not in deck


def test_figures_are_files_with_alt_text(decks, index):
    for chapter in index.decks:
        deck = (decks / f"{chapter.stem}.html").read_text()
        for src, alt in re.findall(r'<img src="([^"]+)" alt="([^"]*)"', deck):
            assert (decks / src).is_file(), src
            assert len(alt) > 20, f"{chapter.stem}: alt text {alt!r}"
        # a figure slide per captioned figure outside the solutions
        n_slides = deck.count('data-slide-kind="figure"')
        assert n_slides == len(re.findall(r'<img src="figures/', deck))


def test_nothing_points_off_the_machine(decks):
    for page in decks.glob("*.html"):
        text = page.read_text()
        for attr, url in re.findall(r'\b(src|href)="([^"]*)"', text):
            assert not re.match(r"^(https?:)?//", url), f"{page.name}: {attr}={url}"
            assert not url.startswith(("/", "file:")), f"{page.name}: {attr}={url}"
    for name in ("reveal.js/dist/reveal.js", "mathjax/tex-mml-chtml.js", "deck.js"):
        assert (decks / "_static" / name).is_file()


def test_vendored_reveal_is_pinned_with_its_licence():
    folder = ROOT / "slides" / "vendor" / "reveal.js"
    version = re.search(r"^REVEAL_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert version, "the Makefile pins no REVEAL_VERSION"
    assert version.group(1) in (folder / "VERSION.txt").read_text()
    assert "Permission is hereby granted, free of charge" in (folder / "LICENSE").read_text()
    # the library carries its version as a string constant
    assert f"`{version.group(1)}`" in (folder / "dist" / "reveal.js").read_text()


def test_lead_sentence():
    assert bs.lead_sentence("One. Two.") == "One."
    # no cut inside math, code, roles or after an abbreviation
    text = "Fit it, e.g. by REML ($\\hat\\rho = 0.18. A$) with `x.y` and {eq}`a. B`. Next one."
    assert bs.lead_sentence(text) == text[: text.index(" Next")]
    assert bs.lead_sentence("No end") == "No end"


def _chapter_with(tmp_path: Path, markdown: str) -> tuple[bs.BookIndex, bs.Chapter]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# A title\n\n## A section\n\n{markdown}")]
    path = tmp_path / "99-test.ipynb"
    nbformat.write(nb, path)
    chapter = bs.Chapter("99", "book/99-test", "A title", path)
    index = bs.build_index(ROOT)
    index.chapters.append(chapter)
    return index, chapter


@pytest.mark.parametrize(
    ("markdown", "message"),
    [
        ("See {eq}`ch99-nowhere`.", "unknown equation label 'ch99-nowhere'"),
        ("See {numref}`fig-ch99-nowhere`.", "unknown figure or exercise 'fig-ch99-nowhere'"),
        ("The ICC is {glue:text}`ch99-icc:.3f`.", "no stored glue output 'ch99-icc'"),
        ("As {cite:t}`nobody1999` says.", "unknown citation key 'nobody1999'"),
        ("Read {doc}`99-nowhere`.", "names no page"),
        ("```{solution-start} x\n```\n\ntext", "without an end"),
    ],
)
def test_a_broken_reference_is_an_error_that_names_it(tmp_path, markdown, message):
    index, chapter = _chapter_with(tmp_path, markdown)
    with pytest.raises(bs.SlideError, match=re.escape(message)):
        bs.DeckBuilder(index, chapter, tmp_path).build()


def test_cell_metadata_controls(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# T\n\n## S\n\nShown first. More."),
        nbformat.v4.new_markdown_cell("Skipped entirely.", metadata={"slides": "skip"}),
        nbformat.v4.new_markdown_cell("Only spoken.", metadata={"slides": "notes"}),
        nbformat.v4.new_markdown_cell("On a new slide.", metadata={"slides": "new"}),
    ]
    path = tmp_path / "98-meta.ipynb"
    nbformat.write(nb, path)
    index = bs.build_index(ROOT)
    chapter = bs.Chapter("98", "book/98-meta", "T", path)
    slides = bs.DeckBuilder(index, chapter, tmp_path).build()
    shown = ["".join(i.html for i in s.items) for s in slides]
    notes = ["".join(s.notes) for s in slides]
    assert "Shown first." in shown[1] and "More." not in shown[1] and "More." in notes[1]
    assert not any("Skipped" in s or "Skipped" in n for s, n in zip(shown, notes))
    assert "Only spoken." in notes[1] and "Only spoken." not in shown[1]
    assert "On a new slide." in shown[2]


def test_make_slides_writes_the_build_folder():
    """``make slides`` output lives in _build/slides/ (what the README and .ci/run use)."""
    assert bs.OUT == BUILD / "slides"
    assert shutil.which("make")
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^slides: env\n\t\$\(BIN\)/python scripts/build_slides.py$", makefile, re.M)
