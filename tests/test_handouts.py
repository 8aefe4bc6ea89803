"""The printable handouts (``make handouts``): what an instructor prints, page by page.

Builds ``_build/handouts/`` with ``scripts/build_handouts.py`` when a source is newer than
the last build, then reads the PDFs with poppler (pdftotext, pdfinfo, pdfimages) as a reader
would, and checks against the sources (``_toc.yml``, the notebooks), not against the build
script:

- both sets exist: the **student** set (book and parts) without a word of any solution, the
  **instructor** set with every solution, under "Solutions" at the end of its chapter;
- exercises are numbered as on the web ("Exercise 6.1"), never "6.6.1";
- no blank page and no page that carries only a running head;
- the cover names title, subtitle, authors, edition, version and date, licence; the PDFs'
  metadata hold no LaTeX; part pages name the part once; the bibliography is one unnumbered
  heading on the page of its first entries, in every PDF that has one;
- data frames and result objects are LaTeX tables (booktabs), the printed code holds no glue
  bookkeeping, no line of any handout runs past its box (no overfull box in the LaTeX logs),
  the cross-walk table keeps every code cell whole;
- the cheat sheet: two full pages, no code below 8.5 pt, computed critical values;
- chapter titles, embedded figures, no missing glyph, no unresolved reference.

Fast unit tests of the print staging (``print_notebooks.py``) run without TeX.
"""

from __future__ import annotations

import collections
import importlib
import json
import re
import shutil
import subprocess
import sys
import unicodedata
import zlib
from pathlib import Path

import nbformat
import pytest
import yaml
from _publishing import BUILD, ROOT, newest_source_mtime, require, run

OUT = BUILD / "handouts"
TOOLS = ("xelatex", "latexmk", "pdftotext", "pdfinfo", "pdfimages")
EDITIONS = ("student", "instructor")
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TITLE = CONFIG["title"]

pn = importlib.import_module("print_notebooks")
toc_module = importlib.import_module("book_toc")
TOC = toc_module.read_toc(ROOT)


# --- the build -------------------------------------------------------------------------------


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
    """A complete build (both editions, cheat sheet, all PDFs) newer than every source."""
    if not path.exists() or path.stat().st_mtime < newest_source_mtime():
        return False
    docs = json.loads(path.read_text())["documents"]
    editions = {d.get("edition") for d in docs if d["kind"] == "book"}
    return (
        editions == set(EDITIONS)
        and any(d["kind"] == "cheatsheet" for d in docs)
        and all((OUT / d["pdf"]).is_file() for d in docs)
    )


def _docs(manifest, kind, edition=None):
    return [
        d
        for d in manifest["documents"]
        if d["kind"] == kind and (edition is None or d.get("edition") == edition)
    ]


def _handouts(manifest, edition=None):
    """The book and part PDFs (of one edition)."""
    return _docs(manifest, "book", edition) + _docs(manifest, "part", edition)


# --- reading PDFs ------------------------------------------------------------------------------


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\u00ad", "")
    text = re.sub(r"-\s*\n\s*", "-", text)  # hyphenated line breaks
    return re.sub(r"\s+", " ", text).casefold()


_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def _squeeze(text: str) -> str:
    """Text without any white space (words broken across lines or cells compare equal)."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return re.sub(r"\s+", "", text).casefold()


_TEXT_CACHE: dict[tuple[Path, bool], str] = {}


def _raw_text(pdf: Path, layout: bool = False) -> str:
    key = (pdf, layout)
    if key not in _TEXT_CACHE:
        cmd = ["pdftotext"] + (["-layout"] if layout else []) + [str(pdf), "-"]
        _TEXT_CACHE[key] = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return _TEXT_CACHE[key]


def _text(pdf: Path) -> str:
    return _norm(_raw_text(pdf))


def _pages(pdf: Path) -> list[str]:
    """The text of each page (pdftotext ends every page with a form feed)."""
    return _raw_text(pdf, layout=True).split("\f")[:-1]


def _images_per_page(pdf: Path) -> collections.Counter:
    out = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True)
    rows = [r.split() for r in out.stdout.splitlines()[2:]]
    return collections.Counter(int(r[0]) for r in rows if r[2] == "image")


def _images(pdf: Path) -> int:
    return sum(_images_per_page(pdf).values())


def _info(pdf: Path) -> dict[str, str]:
    out = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    return dict(
        (k.strip(), v.strip()) for k, v in (line.split(":", 1) for line in out.stdout.splitlines())
    )


# a running head is the book's title; a folio is a page number, alone or with the chapter
_FOLIO = re.compile(r"^([ivxlcdm]+|\d+)(\s{2,}.*)?$|^.*\s{2,}([ivxlcdm]+|\d+)$", re.I)


def _body_lines(page: str) -> list[str]:
    """A page's lines without its running head and its folio line."""
    lines = [line.strip() for line in page.splitlines() if line.strip()]
    lines = [line for line in lines if line != TITLE]
    if lines and _FOLIO.match(lines[-1]):
        lines = lines[:-1]
    return lines


def _empty_pages(pdf: Path) -> list[int]:
    """Pages with no text but a running head or a page number, and no image."""
    images = _images_per_page(pdf)
    return [
        n for n, page in enumerate(_pages(pdf), 1) if not _body_lines(page) and not images.get(n)
    ]


def _pdf_objects(data: bytes) -> dict[int, bytes]:
    """Every object of a PDF, those packed in object streams (PDF 1.5) included."""
    objects = {int(m[1]): m[2] for m in re.finditer(rb"(\d+) 0 obj(.*?)endobj", data, re.S)}
    for body in list(objects.values()):
        if b"/ObjStm" not in body:
            continue
        first = int(re.search(rb"/First\s+(\d+)", body)[1])
        text = zlib.decompressobj().decompress(body[body.index(b"stream") + 6 :].lstrip(b"\r\n"))
        head = list(map(int, text[:first].split()))
        offsets = list(zip(head[::2], head[1::2]))
        for k, (number, offset) in enumerate(offsets):
            end = first + offsets[k + 1][1] if k + 1 < len(offsets) else len(text)
            objects[number] = text[first + offset : end]
    return objects


def _font_sizes(pdf: Path) -> collections.Counter:
    """(font name, size in TeX points) of every font selection (``Tf``) in the pages."""
    objects = _pdf_objects(pdf.read_bytes())
    names: dict[str, str] = {}
    for body in objects.values():
        for fonts in re.findall(rb"/Font\s*<<(.*?)>>", body, re.S):
            for name, ref in re.findall(rb"/(\w+)\s+(\d+) 0 R", fonts):
                base = re.search(rb"/BaseFont\s*/([^\s/<>\[\]]+)", objects.get(int(ref), b""))
                if base:
                    names[name.decode()] = base[1].decode().split("+")[-1]
    sizes: collections.Counter = collections.Counter()
    for body in objects.values():
        if b"stream" not in body or b"/ObjStm" in body:
            continue
        try:
            text = zlib.decompressobj().decompress(
                body[body.index(b"stream") + 6 :].lstrip(b"\r\n")
            )
        except zlib.error:  # an image or a font
            continue
        for name, size in re.findall(rb"/(\w+)\s+([\d.]+)\s+Tf", text):
            points = round(float(size) * 72.27 / 72, 2)  # PDF big points to TeX points
            sizes[(names.get(name.decode(), name.decode()), points)] += 1
    return sizes


def _word_boxes(pdf: Path) -> list[tuple[float, float, list[tuple[float, float, float, float]]]]:
    """Per page: width, height and the (xMin, yMin, xMax, yMax) of every word."""
    out = subprocess.run(
        ["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    pages = []
    for m in re.finditer(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', out, re.S):
        boxes = [
            tuple(map(float, b))
            for b in re.findall(
                r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">', m[3]
            )
        ]
        pages.append((float(m[1]), float(m[2]), boxes))
    return pages


# --- what the sources say -------------------------------------------------------------------------


def _chapter_numbers() -> dict[str, int]:
    """docname -> chapter number, in the order of the numbered parts of ``_toc.yml``."""
    numbers, n = {}, 0
    for part in TOC.parts:
        if not part.numbered:
            continue
        for page in part.pages:
            n += 1
            numbers[page.docname] = n
    return numbers


def _exercises() -> dict[str, int]:
    """docname -> how many exercises the chapter has."""
    return {
        page.docname: sum(
            len(re.findall(r"(?m)^[ \t]*(`{3,}|:{3,})\{exercise\}", c.source))
            for c in nbformat.read(page.path, as_version=4).cells
            if c.cell_type == "markdown"
        )
        for page in TOC.notebooks
    }


def _solution_samples() -> list[str]:
    """Distinctive lines of every solution in the sources: prose and code.

    Prose lines of ``{solution}`` blocks and of ``{solution-start}`` ... ``{solution-end}``
    spans, and the code of the cells inside the spans; only lines long enough to be evidence
    and without markup that the PDF prints differently (roles, maths, emphasis).
    """
    samples: list[str] = []
    for page in TOC.notebooks:
        inside = False
        for cell in nbformat.read(page.path, as_version=4).cells:
            if cell.cell_type == "code":
                if inside:
                    samples += [line for line in cell.source.splitlines() if "glue" not in line]
                continue
            if cell.cell_type != "markdown":
                continue
            src = cell.source
            for block in re.findall(r"(?s)(`{3,}|:{3,})\{solution\}[^\n]*\n(.*?)\n\1", src):
                samples += block[1].splitlines()
            # the markers in their order: a cell may end one span and start the next
            pieces = re.split(r"\{solution-(start|end)\}", src)
            if inside:
                samples += pieces[0].splitlines()
            for marker, text in zip(pieces[1::2], pieces[2::2]):
                inside = marker == "start"
                if inside:
                    samples += text.split("\n", 1)[-1].splitlines()  # past the marker's line
    return [
        line.strip()
        for line in samples
        if len(line.strip()) > 45
        and not re.search(r"[{}`$*_\\\[\]<>|#]|^:|^\s*[-+]\s", line)
        and not line.strip().startswith(("```", ":::"))
    ]


def _visible_outputs(kind: str) -> tuple[int, int]:
    """Outputs of shown cells whose HTML is a table of ``kind`` (a CSS class).

    Returns (all of them, those outside solutions).
    """
    n = outside = 0
    for page in TOC.notebooks:
        inside = False
        for cell in nbformat.read(page.path, as_version=4).cells:
            if cell.cell_type == "markdown":
                # the last marker counts: a cell may end one span and start the next
                markers = re.findall(r"\{solution-(start|end)\}", cell.source)
                inside = markers[-1] == "start" if markers else inside
                continue
            tags = cell.metadata.get("tags", [])
            if cell.cell_type != "code" or {"remove-cell", "remove-output"} & set(tags):
                continue
            for output in cell.get("outputs", []):
                html = output.get("data", {}).get("text/html", "")
                html = html if isinstance(html, str) else "".join(html)
                found = f'class="{kind}"' in html
                n += found
                outside += found and not inside
    return n, outside


# --- both sets ---------------------------------------------------------------------------------------


def test_both_sets_and_the_cheat_sheet_exist(manifest):
    parts = [p.caption for p in TOC.parts]
    for edition in EDITIONS:
        assert len(_docs(manifest, "book", edition)) == 1, edition
        assert [d["part"] for d in _docs(manifest, "part", edition)] == parts, edition
    assert len(_docs(manifest, "cheatsheet")) == 1
    for doc in manifest["documents"]:
        pdf = OUT / doc["pdf"]
        assert pdf.is_file() and pdf.stat().st_size > 10_000, pdf
        assert doc["pages"] >= 1


def test_student_handouts_hold_no_solution(manifest):
    samples = _solution_samples()
    assert len(samples) >= 50, "too few solution lines found in the sources to test with"
    squeezed = [_squeeze(s) for s in samples]
    # the instructor book prints (nearly) all of them: the samples are evidence
    instructor = _squeeze(_raw_text(OUT / _docs(manifest, "book", "instructor")[0]["pdf"]))
    found = sum(s in instructor for s in squeezed)
    assert found >= 0.9 * len(samples), f"only {found} of {len(samples)} in the instructor book"
    for doc in _handouts(manifest, "student"):
        raw = _raw_text(OUT / doc["pdf"])
        text = _squeeze(raw)
        leaked = [s for s, q in zip(samples, squeezed) if q in text]
        assert not leaked, f"{doc['pdf']}: solution text printed: {leaked[:3]}"
        assert "Solution to Exercise" not in raw, doc["pdf"]
        assert not re.search(r"(?m)^\s*\d+\.\d+\s+Solutions\s*$", raw), doc["pdf"]


def test_instructor_solutions_close_each_chapter(manifest):
    numbers, counts = _chapter_numbers(), _exercises()
    text = _raw_text(OUT / _docs(manifest, "book", "instructor")[0]["pdf"], layout=True)
    for docname, n_ex in counts.items():
        if not n_ex:
            continue
        c = numbers[docname]
        heading = re.search(rf"(?m)^\s*{c}\.\d+\s+Solutions\s*$", text)
        assert heading, f"chapter {c} has no Solutions section"
        following = re.search(rf"(?m)^\s*CHAPTER {c + 1}\s*$|^\s*APPENDIX A\s*$", text)
        section = text[heading.end() : following.start() if following else len(text)]
        for k in range(1, n_ex + 1):
            assert f"Solution to Exercise {c}.{k}" in section, f"chapter {c}: exercise {k}"
            # the exercise itself comes before the solutions
            assert f"Exercise {c}.{k}" in text[: heading.start()], f"exercise {c}.{k}"


def test_exercises_are_numbered_as_on_the_web(manifest):
    numbers, counts = _chapter_numbers(), _exercises()
    expected = {f"{numbers[d]}.{k}" for d, n in counts.items() for k in range(1, n + 1)}
    assert len(expected) == sum(counts.values()) >= 1
    for doc in _docs(manifest, "book"):
        raw = _raw_text(OUT / doc["pdf"])
        assert not re.search(r"Exercise \d+\.\d+\.\d+", raw), doc["pdf"]
        printed = set(re.findall(r"(?m)^Exercise (\d+\.\d+)\s*$", raw))
        assert printed == expected, f"{doc['pdf']}: {sorted(expected ^ printed)[:5]}"


# --- pages -----------------------------------------------------------------------------------------


def test_no_blank_page_and_no_page_with_only_a_running_head(manifest):
    for doc in _handouts(manifest) + _docs(manifest, "cheatsheet"):
        empty = _empty_pages(OUT / doc["pdf"])
        assert not empty, f"{doc['pdf']}: pages {empty} are empty but for a head or folio"


def test_the_empty_page_check_sees_an_empty_page():
    page = f"  {TITLE}\n\n\n\n  38                      Chapter 3. Why a special model?\n"
    assert not _body_lines(page)
    assert not _body_lines("\n\n   vi\n")
    assert _body_lines(f"{TITLE}\nSome text on the page.\n12   Chapter 1. Data\n")


def test_cover_is_the_courses_own(manifest):
    version = re.search(
        r'(?m)^__version__\s*=\s*"([^"]+)"', (ROOT / "mlm_lessons" / "__init__.py").read_text()
    )[1]
    for doc in _handouts(manifest):
        cover = _norm(_pages(OUT / doc["pdf"])[0])
        for phrase in (TITLE, CONFIG["author"], f"version {version}", "mit licence", "edition"):
            assert _norm(phrase) in cover, f"{doc['pdf']}: cover lacks {phrase!r}"
        assert re.search(r"\d{1,2} [a-z]+ 20\d\d", cover), f"{doc['pdf']}: no date"
        assert ("without their solutions" in cover) == (doc["edition"] == "student")
        assert "release" not in cover  # Sphinx's default title page says "Release"
        if doc["kind"] == "part":
            assert _norm(doc["part"].split(": ", 1)[-1]) in cover


def test_pdf_metadata_hold_no_latex(manifest):
    for doc in manifest["documents"]:
        info = _info(OUT / doc["pdf"])
        for key in ("Title", "Author", "Subject"):
            value = info.get(key, "")
            assert value, f"{doc['pdf']}: no {key}"
            assert not re.search(r"[\\{}]", value), f"{doc['pdf']}: {key} {value!r}"
        assert info["Title"].startswith(TITLE), doc["pdf"]
        if doc["kind"] == "part":
            assert info["Title"] == f"{TITLE}, {doc['part']}", doc["pdf"]


def test_part_pages_name_the_part_once(manifest):
    numerals = ["I", "II", "III", "IV", "V", "VI"]
    numbered = [p for p in TOC.parts if p.numbered]
    for doc in _handouts(manifest):
        pages = [_body_lines(p) for p in _pages(OUT / doc["pdf"])]
        for k, part in enumerate(numbered):
            if doc["kind"] == "part" and doc["part"] != part.caption:
                continue
            name = part.caption.split(": ", 1)[-1]
            found = [p for p in pages if p and p[0] == f"PART {numerals[k]}"]
            assert len(found) == 1, f"{doc['pdf']}: {len(found)} pages for part {numerals[k]}"
            # "PART I" and the name, nothing else (no second "Part I: ...")
            assert _norm(" ".join(found[0])) == _norm(f"PART {numerals[k]} {name}"), found[0]


def test_bibliography_is_one_unnumbered_heading_on_its_first_page(manifest):
    for doc in _handouts(manifest):
        pages = _pages(OUT / doc["pdf"])
        heads = [n for n, p in enumerate(pages) if _body_lines(p)[:1] == ["Bibliography"]]
        assert len(heads) == 1, f"{doc['pdf']}: bibliography headings on pages {heads}"
        first = _body_lines(pages[heads[0]])
        assert len(first) > 5 and re.match(r"\[\w", first[1]), first[:3]
        text = _raw_text(OUT / doc["pdf"])
        assert not re.search(r"(?i)chapter\s+(twenty|\d+)\s+bibliography", text), doc["pdf"]


# --- content ----------------------------------------------------------------------------------------


def test_book_has_every_chapter_title(manifest):
    for doc in _docs(manifest, "book"):
        text = _text(OUT / doc["pdf"])
        missing = [p.title for p in TOC.pages if _norm(p.title) not in text]
        assert not missing, f"{doc['pdf']}: chapter titles missing: {missing}"


def test_each_part_handout_has_its_chapters(manifest):
    parts = {p.caption: p for p in TOC.parts}
    for doc in _docs(manifest, "part"):
        text = _text(OUT / doc["pdf"])
        assert _norm(doc["part"].split(": ", 1)[-1]) in text
        missing = [p.title for p in parts[doc["part"]].pages if _norm(p.title) not in text]
        assert not missing, f"{doc['pdf']}: chapter titles missing: {missing}"


def test_data_frames_and_results_are_latex_tables(manifest):
    latex = OUT / "book" / "_build" / "latex"
    frames, results = _visible_outputs("dataframe"), _visible_outputs("mlm-result")
    every, outside = frames[0] + results[0], frames[1] + results[1]
    assert every >= 100 and outside < every
    for edition in EDITIONS:
        name = "mlm-course" + ("" if edition == "student" else "-instructor")
        tex = (latex / f"{name}.tex").read_text()
        tables = tex.split(pn.DATAFRAME_MARK)[1:]
        # the student set has the tables of the chapters, not those of the solutions
        assert len(tables) == (every if edition == "instructor" else outside), edition
        for table in tables:
            assert "\\toprule" in table[:300] and "\\bottomrule" in table
    # and no data frame is printed as text: pandas wraps wide ones with a backslash
    for doc in _handouts(manifest):
        wrapped = re.findall(r"(?m)^.*\S\s+\\$", _raw_text(OUT / doc["pdf"], layout=True))
        assert not wrapped, f"{doc['pdf']}: {wrapped[:3]}"


def test_printed_code_holds_no_glue_bookkeeping(manifest):
    for doc in _docs(manifest, "part"):
        if any(p.caption == doc["part"] and p.numbered for p in TOC.parts):
            text = _raw_text(OUT / doc["pdf"])
            assert "glue(" not in text and "import glue" not in text, doc["pdf"]


def test_no_line_runs_past_its_box(manifest):
    # an overfull box is material LaTeX could not fit: text past a table column or the
    # margin (hbox), a page whose content runs into the foot (vbox)
    for doc in _handouts(manifest) + _docs(manifest, "cheatsheet"):
        log = (OUT / doc["log"]).read_text(errors="replace")
        over = [
            m.group(0)
            for m in re.finditer(r"Overfull \\[hv]box \(([\d.]+)pt too (?:wide|high)\)[^\n]*", log)
            if float(m.group(1)) > 1.0
        ]
        assert not over, f"{doc['log']}: {over[:5]}"


def _margins_pt() -> tuple[float, float]:
    """The handouts' left/right and bottom margins in PDF points (from the build's geometry)."""
    bh = importlib.import_module("build_handouts")
    setup = bh.LATEX_ELEMENTS["sphinxsetup"]
    h = float(re.search(r"hmargin=\{([\d.]+)cm", setup)[1])
    v = float(re.search(r"vmargin=\{[\d.]+cm,([\d.]+)cm\}", setup)[1])
    return h / 2.54 * 72, v / 2.54 * 72


def test_no_text_runs_into_the_foot_or_past_the_margin(manifest):
    # a box that cannot break (code in an admonition) once ran over the foot of the page
    side, foot_margin = _margins_pt()
    for doc in _handouts(manifest):
        pages = _word_boxes(OUT / doc["pdf"])
        # the foot line: the lowest line of most pages
        foot = collections.Counter(round(max(b[3] for b in p[2])) for p in pages if p[2])
        foot_y = foot.most_common(1)[0][0]
        for n, (width, height, boxes) in enumerate(pages, 1):
            if n == 1:  # the cover has its own layout
                continue
            bottom = height - foot_margin
            low = [b for b in boxes if b[3] > bottom + 9 and abs(b[3] - foot_y) > 3]
            assert not low, f"{doc['pdf']}, page {n}: text below the text area"
            wide = [b for b in boxes if b[2] > width - side + 2 or b[0] < side - 2]
            assert not wide, f"{doc['pdf']}, page {n}: text in the margin at {wide[0]}"


def _options_tables() -> list[str]:
    """The pipe tables of the cross-walk's "Options at a glance" (linear models, GLMMs)."""
    source = (ROOT / "book" / "appendix-crosswalk.md").read_text()
    section = source[source.index("## Options at a glance") :].split("\n## ")[0]
    return [b for b in section.split("\n\n") if b.lstrip().startswith("|")]


def test_cross_walk_table_keeps_every_code_cell_whole(manifest):
    tables = _options_tables()
    assert len(tables) == 2
    codes = {c.replace("\\|", "|") for t in tables for c in re.findall(r"`([^`]+)`", t)}
    assert "fit(reml=True / False)" in codes and "fit.rate_ratios()" in codes
    for doc in _handouts(manifest):
        if "Software cross-walk" not in doc.get("chapters", []):
            continue
        # reading order (not -layout), in which a cell's lines follow one another
        pages = _raw_text(OUT / doc["pdf"]).split("\f")
        first = next(
            k for k, p in enumerate(pages) if re.search(r"(?m)^\S+ Options at a glance$", p)
        )
        page = _squeeze("".join(pages[first : first + 2]))  # the tables may go on overleaf
        missing = [c for c in sorted(codes) if _squeeze(c) not in page]
        assert not missing, f"{doc['pdf']}: cut or hyphenated: {missing}"


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


def test_figures_are_embedded(manifest):
    # the instructor set prints every figure; the student set all but the solutions'
    expected = _figure_outputs(TOC.pages)
    assert _images(OUT / _docs(manifest, "book", "instructor")[0]["pdf"]) >= expected
    assert _images(OUT / _docs(manifest, "book", "student")[0]["pdf"]) >= 0.8 * expected
    for doc in _docs(manifest, "part", "instructor"):
        part = next(p for p in TOC.parts if p.caption == doc["part"])
        assert _images(OUT / doc["pdf"]) >= _figure_outputs(part.pages), doc["pdf"]


def test_no_unresolved_references(manifest):
    # LaTeX prints ?? for a reference it cannot resolve; part handouts take the numbers of
    # other parts from the whole book's .aux (xr), so they have none either
    for doc in _handouts(manifest):
        text = _text(OUT / doc["pdf"])
        at = text.find("??")
        assert at < 0, f"{doc['pdf']}: unresolved reference near {text[at - 80 : at + 20]!r}"


# --- the cheat sheet ------------------------------------------------------------------------------


def test_cheatsheet_is_two_full_pages_with_computed_values(manifest):
    from scipy import stats

    doc = _docs(manifest, "cheatsheet")[0]
    pdf = OUT / doc["pdf"]
    assert doc["pages"] == 2
    text = _text(pdf)
    for phrase in ["intraclass correlation", "likelihood-ratio", "boundary", "stata", "lmer("]:
        assert phrase in text, phrase
    # independent check of the computed critical values: chi2(1) at 5 % and the
    # 50:50 mixture of chi2(0) and chi2(1), whose 5 % point is chi2(1) at 10 %
    assert f"{stats.chi2.isf(0.05, 1):.2f}" in text
    assert f"{stats.chi2.isf(0.10, 1):.2f}" in text
    # both columns of both pages reach the last tenth of the page's text height
    for n, (width, height, boxes) in enumerate(_word_boxes(pdf), 1):
        top = min(b[1] for b in boxes)
        bottom = max(b[3] for b in boxes)
        for side, column in (
            ("left", [b for b in boxes if b[2] < width / 2]),
            ("right", [b for b in boxes if b[0] > width / 2]),
        ):
            lowest = max(b[3] for b in column)
            assert lowest > bottom - 0.1 * (bottom - top), f"page {n}, {side} column ends early"


def test_cheatsheet_code_is_never_below_8_5_pt(manifest):
    sizes = _font_sizes(OUT / _docs(manifest, "cheatsheet")[0]["pdf"])
    mono = {size for (font, size) in sizes if "Mono" in font}
    assert mono, f"no monospaced font found in {sorted(sizes)}"
    assert min(mono) >= 8.45, sorted(mono)
    # and no text font (roman, sans) is smaller either, but for sub- and superscripts
    text = {
        (font, size)
        for (font, size) in sizes
        if re.match(r"LM(Roman|Sans)\d", font) and not re.match(r"LMRoman[5-7]-", font)
    }
    assert all(size >= 8.45 for _, size in text), sorted(text)


def test_font_sizes_are_read_from_the_pdf(tmp_path):
    # a PDF with one font at 7 pt, written by hand: the reader must find it
    stream = zlib.compress(b"BT /F1 7.0 Tf (x) Tj ET")
    pdf = (
        b"%PDF-1.4\n1 0 obj<</Type/Font/BaseFont/ABCDEF+LMMono9-Regular>>endobj\n"
        b"2 0 obj<</Resources<</Font<</F1 1 0 R>>>>>>endobj\n"
        b"3 0 obj<</Length "
        + str(len(stream)).encode()
        + b">>stream\n"
        + stream
        + b"\nendstream\nendobj\n"
    )
    path = tmp_path / "t.pdf"
    path.write_bytes(pdf)
    assert _font_sizes(path) == {("LMMono9-Regular", round(7.0 * 72.27 / 72, 2)): 1}


# --- the print staging, without TeX -----------------------------------------------------------------


def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def test_glue_statements_and_what_only_fed_them_are_not_printed():
    code = nbformat.v4.new_code_cell
    nb = _nb(
        code("fit = mlm.fit_null(hsb, 'y', 'g')\nicc = fit.icc()\nglue('icc', icc, display=False)"),
        code("from myst_nb import glue\nglue('n', len(hsb), display=False)"),
        code("fit.summary()"),
    )
    printed, _ = pn.print_notebook(nb)
    assert printed.cells[0].source == "fit = mlm.fit_null(hsb, 'y', 'g')"
    assert "remove-cell" in printed.cells[1].metadata["tags"]
    assert printed.cells[2].source == "fit.summary()"
    assert "glue" in nb.cells[0].source  # the input is not changed


def test_a_data_frame_becomes_a_booktabs_table():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {"estimate": [12.6, -2.1], "std_error": [0.24, 0.11]}, index=["Intercept", "ses"]
    )
    table = pn.html_table_to_latex(frame.to_html(classes="dataframe"))
    assert table.startswith(pn.DATAFRAME_MARK)
    assert "\\begin{tabular}{lrr}" in table and "\\toprule" in table
    assert "std\\_error" in table and "−2.1" in table  # escaped; a minus sign
    result = pn.html_table_to_latex(
        '<table class="mlm-result"><caption>LRTResult</caption><tbody>'
        '<tr><th scope="row">statistic</th><td>9.76</td></tr></tbody></table>'
    )
    assert "\\multicolumn{2}{c}{\\textbf{LRTResult}}" in result and "statistic & 9.76" in result


def test_solutions_move_to_a_last_section_between_markers():
    md = nbformat.v4.new_markdown_cell
    nb = _nb(
        md("```{exercise}\n:label: a-ex1\nAsk.\n```\n\n```{solution} a-ex1\nAnswer one.\n```"),
        md("## Summary\n\nDone."),
    )
    printed, counts = pn.print_notebook(nb)
    sources = [c.source for c in printed.cells]
    assert counts["solutions"] == 1
    assert "Answer one" not in sources[0] and sources[1].startswith("## Summary")
    assert pn.SOLUTIONS_BEGIN in sources[2] and "## Solutions" in sources[2]
    assert "Answer one" in sources[3] and pn.SOLUTIONS_END in sources[4]


def test_a_wide_table_gets_widths_that_fit_and_a_smaller_font_only_if_needed():
    narrow = "| a | b | c |\n|---|---|---|\n| x | y | z |"
    size, fractions = pn.table_layout([r.split("|")[1:-1] for r in narrow.split("\n")[::2]])
    assert size == "" and sum(fractions) <= pn.USABLE + 1e-9
    # six columns of 11 monospaced characters: too wide at 10 pt (6 x 78 pt > 457 pt)
    cells = " | ".join(f"`{k}_234567890`" for k in range(6))
    wide = f"| {cells} |\n|{'---|' * 6}\n| {cells} |"
    out = pn.size_tables(wide)
    assert out.startswith("```{raw} latex\n\\begingroup\\small\n```")
    assert out.rstrip().endswith("\\endgroup\n```") and wide in out
    spec = re.search(r"\{tabularcolumns\} (.*)", out).group(1)
    widths = [float(w) for w in re.findall(r"\\Y\{([\d.]+)\}", spec)]
    assert len(widths) == 6 and sum(widths) <= pn.USABLE + 1e-3
    # each column holds its longest word at 9 pt
    assert all(w * pn.LINE_WIDTH_PT - pn.CELL_PADDING_PT >= 11 * 0.6 * 9 - 0.01 for w in widths)
    # the cross-walk tables of the book: every column holds its longest unbreakable piece
    for table in _options_tables():
        rows = [pn._split_row(r) for k, r in enumerate(table.splitlines()) if k != 1]
        command, fractions = pn.table_layout(rows)
        points = {c: s for s, c in pn.TABLE_SIZES}[command]
        for c, f in enumerate(fractions):
            need = max(pn._cell_widths(r[c], k == 0, points)[0] for k, r in enumerate(rows))
            assert f * pn.LINE_WIDTH_PT - pn.CELL_PADDING_PT >= need - 0.01, (c, rows[0][c])
    # code breaks after "=", ",", the "(" of a call of a call and a path's "/", nowhere else
    widest, _ = pn._cell_widths("`offset(log(expected))` and `(1 \\| school/child)`", False, 10)
    assert abs(widest - len("log(expected))") * 6) < 1e-9  # offset( log(expected))
    assert (
        pn._cell_widths("`VarCorr(m)`", False, 10)[0]
        == pn._cell_widths("`VarCorr(m)`", False, 10)[1]
    )
    # a {doc} reference is as wide as the title it prints
    assert (
        pn._cell_widths("{doc}`18-glmm`", False, 10)[1]
        > 2 * pn._cell_widths("18-glmm", False, 10)[1]
    )
    # two columns are left as they are
    assert pn.size_tables("| a | b |\n|---|---|\n| x | y |") == "| a | b |\n|---|---|\n| x | y |"


def test_a_tall_table_of_the_page_becomes_a_longtable():
    row = "| a long enough first cell of text | and a second cell that wraps over lines |"
    tall = "\n".join(["| a | b |", "|---|---|"] + [row] * 40)
    out = pn.size_tables(tall)
    assert "````{table}\n:class: longtable\n" in out and "{tabularcolumns}" in out
    # inside a directive (a box, which a longtable cannot be in) it stays a tabular
    boxed = pn.size_tables(f"```{{note}}\n{tall}\n```")
    assert "longtable" not in boxed
    bh = importlib.import_module("build_handouts")
    continued = r"\tablename\ \thetable{} \textendash{} continued from previous page"
    tex = "\\begin{longtable}{ll}" + continued + "\\end{longtable}"
    assert bh.fix_longtable_continued(tex) == tex.replace(continued, "continued from previous page")
    assert bh.fix_longtable_continued(tex.replace("{ll}", "{ll}\\caption{x}")).count("thetable")
    # an empty cell adds no blank line to its row
    row = "\\begin{longtable}{ll}\n\\sphinxAtStartPar\nBreak\n&\n\\sphinxAtStartPar\n\n\\\\\n\\end{longtable}"
    assert bh.drop_empty_cell_lines(row) == row.replace("\\sphinxAtStartPar\n\n", "")


def test_solutions_lose_their_box_and_admonitions_inside_keep_theirs():
    bh = importlib.import_module("build_handouts")
    tex = (
        "\\begin{sphinxadmonition}{note}{Solution to Exercise 1.1}\nOutside.\n"
        "\\end{sphinxadmonition}\n"
        f"{pn.SOLUTIONS_BEGIN}\n"
        "\\begin{sphinxadmonition}{note}{Solution to Exercise 1.1}\nA\n"
        "\\begin{sphinxadmonition}{note}{Note}\nB\n\\end{sphinxadmonition}\n"
        "\\end{sphinxadmonition}\n"
        f"{pn.SOLUTIONS_END}\n"
    )
    out = bh.unframe_solutions(tex)
    inside = out[out.index(pn.SOLUTIONS_BEGIN) :]
    assert inside.count("\\begin{mlmsolution}{Solution to Exercise 1.1}") == 1
    assert inside.count("\\end{mlmsolution}") == 1
    assert "\\begin{sphinxadmonition}{note}{Note}\nB\n\\end{sphinxadmonition}" in inside
    assert out.startswith("\\begin{sphinxadmonition}{note}{Solution to")  # outside: kept
    assert bh.cut_solutions(out).count("mlmsolution") == 0


def test_the_welcome_page_gets_a_heading_and_loses_the_web_contents():
    bh = importlib.import_module("build_handouts")
    tex = (
        "\\sphinxtableofcontents\n\\pagestyle{normal}\nHello.\n\n"
        "\\begin{DUlineblock}{0em}\n\\item[] \\sphinxstylestrong{\\Large Who it is for}\n"
        "\\end{DUlineblock}\nText.\n"
        "\\begin{itemize}\n\\item {} \n\\sphinxAtStartPar\nPart I\n\\begin{itemize}\n"
        "\\item {} \n\\sphinxAtStartPar\n{\\hyperref[x]{\\sphinxcrossref{Data}}}\n"
        "\\end{itemize}\n\\end{itemize}\n\n\\sphinxstepscope\n\n\n\\part{Models}\n"
    )
    out = bh.fix_front_matter(tex)
    assert "\\chapter*{Welcome}\\addcontentsline{toc}{chapter}{Welcome}" in out
    assert "\\section*{Who it is for}" in out and "DUlineblock" not in out
    assert "hyperref" not in out and "Text." in out and out.endswith("\\part{Models}\n")


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
