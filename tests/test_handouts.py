"""The printable handouts (``make handouts``): every PDF exists and is complete.

Builds ``_build/handouts/`` with ``scripts/build_handouts.py`` when a source is newer than
the last build, then checks with poppler (pdftotext, pdfinfo, pdfimages) that

- the book, one handout per part and the cheat sheet exist;
- the text of each holds the title of every chapter it should contain (from ``_toc.yml``);
- the LaTeX logs report no "Missing character" (a glyph silently dropped by XeLaTeX);
- figures are embedded (as many images as the chapters have figure outputs);
- the cheat sheet has at most two pages and its critical values match scipy.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from _publishing import BUILD, ROOT, newest_source_mtime, require, run

pytestmark = pytest.mark.latex

OUT = BUILD / "handouts"
TOOLS = ("xelatex", "latexmk", "pdftotext", "pdfinfo", "pdfimages")


@pytest.fixture(scope="module")
def manifest() -> dict:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    require(
        not missing,
        f"TeX Live / poppler not found ({', '.join(missing)}); see scripts/build_handouts.py",
    )
    path = OUT / "manifest.json"
    if not _up_to_date(path):
        run([sys.executable, "scripts/build_handouts.py", "--out", str(OUT)])
    return json.loads(path.read_text())


def _up_to_date(path: Path) -> bool:
    """A complete build (book, parts, cheat sheet, all PDFs) newer than every source."""
    if not path.exists() or path.stat().st_mtime < newest_source_mtime():
        return False
    docs = json.loads(path.read_text())["documents"]
    kinds = {d["kind"] for d in docs}
    return {"book", "cheatsheet"} <= kinds and all((OUT / d["pdf"]).is_file() for d in docs)


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\u00ad", "")
    text = re.sub(r"-\s*\n\s*", "-", text)  # hyphenated line breaks
    return re.sub(r"\s+", " ", text).casefold()


def _text(pdf: Path) -> str:
    out = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True)
    return _norm(out.stdout)


def _images(pdf: Path) -> int:
    out = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True)
    rows = out.stdout.splitlines()[2:]
    return sum(1 for row in rows if row.split()[2] == "image")


def _figure_outputs(pages) -> int:
    """Image outputs stored in the chapters' notebooks (each is a figure in the PDF)."""
    n = 0
    for page in pages:
        if not page.is_notebook:
            continue
        nb = json.loads(page.path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            for output in cell.get("outputs", []):
                if any(k.startswith("image/") for k in output.get("data", {})):
                    n += 1
    return n


def _docs(manifest, kind):
    return [d for d in manifest["documents"] if d["kind"] == kind]


def test_every_handout_exists(manifest):
    from book_toc import read_toc

    toc = read_toc(ROOT)
    parts = [p.caption for p in toc.parts]
    assert len(_docs(manifest, "book")) == 1
    assert [d["part"] for d in _docs(manifest, "part")] == parts
    assert len(_docs(manifest, "cheatsheet")) == 1
    for doc in manifest["documents"]:
        pdf = OUT / doc["pdf"]
        assert pdf.is_file() and pdf.stat().st_size > 10_000, pdf
        assert doc["pages"] >= 1


def test_book_has_every_chapter_title(manifest):
    from book_toc import read_toc

    toc = read_toc(ROOT)
    text = _text(OUT / _docs(manifest, "book")[0]["pdf"])
    missing = [p.title for p in toc.pages if _norm(p.title) not in text]
    assert not missing, f"chapter titles missing from the book PDF: {missing}"


def test_each_part_handout_has_its_chapters(manifest):
    from book_toc import read_toc

    parts = {p.caption: p for p in read_toc(ROOT).parts}
    for doc in _docs(manifest, "part"):
        text = _text(OUT / doc["pdf"])
        assert _norm(doc["part"]) in text
        missing = [p.title for p in parts[doc["part"]].pages if _norm(p.title) not in text]
        assert not missing, f"{doc['pdf']}: chapter titles missing: {missing}"


def test_no_missing_characters_in_latex_logs(manifest):
    for doc in manifest["documents"]:
        log = OUT / doc["log"]
        assert log.is_file(), log
        bad = [
            line
            for line in log.read_text(errors="replace").splitlines()
            if "Missing character" in line
        ]
        assert not bad, f"{log.name}: {bad[:5]}"


def test_figures_are_embedded(manifest):
    from book_toc import read_toc

    toc = read_toc(ROOT)
    expected = _figure_outputs(toc.pages)
    assert _images(OUT / _docs(manifest, "book")[0]["pdf"]) >= expected
    for doc in _docs(manifest, "part"):
        part = next(p for p in toc.parts if p.caption == doc["part"])
        assert _images(OUT / doc["pdf"]) >= _figure_outputs(part.pages), doc["pdf"]


def test_cheatsheet_is_two_sided_at_most_with_computed_values(manifest):
    from scipy import stats

    doc = _docs(manifest, "cheatsheet")[0]
    assert doc["pages"] <= 2
    text = _text(OUT / doc["pdf"])
    for phrase in ["intraclass correlation", "likelihood-ratio", "boundary", "stata", "lmer("]:
        assert phrase in text, phrase
    # independent check of the computed critical values: chi2(1) at 5 % and the
    # 50:50 mixture of chi2(0) and chi2(1), whose 5 % point is chi2(1) at 10 %
    assert f"{stats.chi2.isf(0.05, 1):.2f}" in text
    assert f"{stats.chi2.isf(0.10, 1):.2f}" in text


def test_no_unresolved_references(manifest):
    # LaTeX prints ?? for a reference it cannot resolve; part handouts take the numbers of
    # other parts from the whole book's .aux (xr), so they have none either
    for doc in _docs(manifest, "book") + _docs(manifest, "part"):
        text = _text(OUT / doc["pdf"])
        assert "??" not in text, (
            f"{doc['pdf']}: unresolved reference near {text[text.find('??') - 80 : text.find('??') + 20]!r}"
        )


def test_missing_tex_stops_with_the_packages_to_install(monkeypatch):
    # runs everywhere: pretend no TeX tool is installed
    build_handouts = importlib.import_module("build_handouts")
    monkeypatch.setattr(build_handouts.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit) as exc:
        build_handouts.check_tools()
    message = str(exc.value)
    assert "xelatex" in message
    for package in ("texlive-xetex", "texlive-latex-extra", "latexmk", "fonts-freefont-otf"):
        assert package in message
