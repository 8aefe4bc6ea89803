"""Build the printable handouts through LaTeX: a student set, an instructor set, a cheat sheet.

    .venv/bin/python scripts/build_handouts.py            # what `make handouts` runs

Output in ``_build/handouts/``:

- ``mlm-course.pdf`` and ``mlm-course-part-N.pdf``: the **student set**, the whole book and
  one PDF per part of ``_toc.yml``, with the exercises and without the solutions;
- ``mlm-course-instructor.pdf`` and ``mlm-course-part-N-instructor.pdf``: the **instructor
  set**, the same with every chapter's solutions in a last "Solutions" section;
- ``cheatsheet.pdf``: ``latex/cheatsheet.tex``, two pages; its critical values are computed
  here (scipy) and passed in as macros, never typed;
- ``manifest.json``: every PDF with its edition, pages, chapters and build time (read by the
  tests).

How: the book is staged in ``_build/handouts/source/`` with its notebooks changed for paper
(``print_notebooks.py``: no glue bookkeeping in the code, data frames as booktabs tables,
solutions moved to the end of the chapter, wide tables sized to the page) and built once by
Jupyter Book's LaTeX builder with the print settings below (A4, one-sided, chapters open on
any page, a cover, digits in chapter headings, no index) and ``sphinx_print.py`` (the web
book's exercise numbers). The LaTeX is then finished (part titles without the repeated "Part
I:", the reference part as appendices, the bibliography as one unnumbered chapter, exercise
references) and written twice: with the solutions (instructor) and with them cut out
(student). The part PDFs are cut from it, so chapter, figure and equation numbers are those
of the book, and references to other parts keep their numbers (``xr`` reads the book's
``.aux``).

TeX Live comes from the system. When it is missing the script stops and names the Debian
packages to install. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from book_toc import ROOT, Toc, read_toc  # noqa: E402
from print_notebooks import (  # noqa: E402
    SOLUTIONS_BEGIN,
    SOLUTIONS_END,
    print_notebook,
    size_tables,
)

DEBIAN_PACKAGES = (
    "texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended tex-gyre "
    "latexmk texlive-xetex fonts-freefont-otf poppler-utils"
)
TOOLS = ("xelatex", "latexmk", "makeindex", "pdfinfo")
MORE_APPENDICES = "%% mlm-course: more appendices"
TARGET = "mlm-course"
EDITIONS = {
    "student": ("", "Student edition: the exercises, without their solutions"),
    "instructor": (
        "-instructor",
        "Instructor edition: with the solutions at the end of each chapter",
    ),
}
SUBTITLE = "Linear mixed-effects models for grouped data, computed and checked in Python"
DESCRIPTION = (
    "Students sit in schools, patients in hospitals, repeated measurements in people. This "
    "course teaches the linear mixed-effects model for such multilevel data, from the first "
    "picture of grouped data to the general model in matrix form, with estimation and "
    "inference, model checking, three-level, generalized and longitudinal models. Every "
    "number is computed by the course's notebooks with the \\texttt{mlm\\_lessons} package "
    "and checked against R's lme4 and the published tables."
)

# Print settings of the LaTeX build (the web book's configuration is not changed).
LATEX_ELEMENTS = {
    "papersize": "a4paper",
    "pointsize": "10pt",
    # one-sided, chapters on the next page, not the next odd one: no blank pages
    "extraclassoptions": "openany,oneside",
    "fncychap": "",
    "sphinxsetup": "hmargin={2.3cm,2.3cm}, vmargin={2.4cm,2.6cm}",
    "maketitle": r"\mlmcover",
    "makeindex": "",
    "printindex": "",
    "preamble": "\\usepackage{mlmprint}\n%% mlm-course: settings of this build\n",
}


def check_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        sys.exit(
            f"make handouts needs TeX Live; not found: {', '.join(missing)}.\n"
            f"Install it (Debian/Ubuntu):\n"
            f"  sudo apt-get install --no-install-recommends {DEBIAN_PACKAGES}\n"
            f"(other systems: a TeX Live with XeLaTeX, latexmk and the FreeFont OTF fonts)."
        )


def run(cmd: list[str], cwd: Path, log: Path | None = None, *, check: bool = True) -> bool:
    """Run ``cmd``; on failure stop with its output's tail (or return False if not ``check``)."""
    env = dict(os.environ, LATEXOPTS="-interaction=nonstopmode -halt-on-error")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if log is not None:
        log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 and check:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc.returncode == 0


def latexmk(tex: Path) -> Path:
    """XeLaTeX through latexmk (Sphinx's latexmkrc maps -pdf to xelatex when present).

    The auxiliary files of the last build are reused (fewer LaTeX runs). If the build fails
    with them (an interrupted build leaves a truncated ``.aux``), it is redone from none.
    """
    cmd = ["latexmk", "-pdf", "-dvi-", "-ps-", tex.name]
    log = tex.with_suffix(".latexmk")
    if not run(cmd, tex.parent, log, check=False):
        run(["latexmk", "-C", tex.name], tex.parent)
        run(cmd, tex.parent, log)
    return tex.with_suffix(".pdf")


def pages(pdf: Path) -> int:
    out = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    return int(re.search(r"^Pages:\s+(\d+)", out.stdout, re.M).group(1))


# --- the staged source -------------------------------------------------------------------------


def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file already holds it (Sphinx then re-reads only changes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def print_config(root: Path) -> dict:
    """``_config.yml`` with the settings of the printed book."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    sphinx = config.setdefault("sphinx", {})
    extensions = dict(sphinx.get("local_extensions") or {})
    extensions["sphinx_print"] = "scripts/"
    sphinx["local_extensions"] = extensions
    conf = sphinx.setdefault("config", {})
    conf["latex_elements"] = {**LATEX_ELEMENTS, **(conf.get("latex_elements") or {})}
    extra = list(conf.get("latex_additional_files") or [])
    conf["latex_additional_files"] = extra + ["latex/mlmprint.sty"]
    conf["latex_domain_indices"] = False  # no "Python Module Index" pages
    config.setdefault("latex", {}).setdefault("latex_documents", {})["targetname"] = f"{TARGET}.tex"
    return config


def stage(root: Path, dest: Path) -> dict[str, dict[str, int]]:
    """Copy the book into ``dest`` with its notebooks changed for print; return the counts."""
    dest.mkdir(parents=True, exist_ok=True)
    _write_if_changed(dest / "_config.yml", yaml.safe_dump(print_config(root), sort_keys=False))
    _write_if_changed(dest / "_toc.yml", (root / "_toc.yml").read_text(encoding="utf-8"))
    for folder in ("scripts", "latex"):
        for path in sorted((root / folder).glob("*")):
            if path.is_file() and not path.name.endswith(".pyc"):
                _write_if_changed(dest / folder / path.name, path.read_text(encoding="utf-8"))
    results = root / "benchmarks" / "results"  # tables the teaching page reads (csv-table)
    for path in sorted(results.glob("*.csv")):
        _write_if_changed(
            dest / "benchmarks" / "results" / path.name, path.read_text(encoding="utf-8")
        )
    assets = dest / "assets"  # html_static_path must exist, though LaTeX does not use it
    if not assets.exists() and (root / "assets").exists():
        assets.symlink_to((root / "assets").resolve(), target_is_directory=True)
    counts: dict[str, dict[str, int]] = {}
    for path in sorted((root / "book").iterdir()):
        target = dest / "book" / path.name
        if path.suffix == ".ipynb":
            nb, counts[path.stem] = print_notebook(nbformat.read(path, as_version=4))
            _write_if_changed(target, nbformat.writes(nb) + "\n")
        elif path.suffix == ".md":
            _write_if_changed(target, size_tables(path.read_text(encoding="utf-8")))
        elif path.is_file():
            _write_if_changed(target, path.read_text(encoding="utf-8"))
    return counts


# --- the book's LaTeX, finished ------------------------------------------------------------------


def split_book(tex: str) -> tuple[str, str, list[str], str]:
    """Return (preamble up to the table of contents, front matter, part blocks, back)."""
    start = tex.index("\\sphinxtableofcontents")
    start = tex.index("\n", start) + 1
    body_end = tex.find("\\renewcommand{\\indexname}")
    if body_end < 0:
        body_end = tex.index("\\end{document}")
    body = tex[start:body_end]
    blocks = re.split(r"(?m)^(?<!\\appendix\n)(?=(?:\\appendix\n)?\\part\*?\{)", body)
    return tex[:start], blocks[0], blocks[1:], "\\end{document}\n"


def fix_exercise_refs(tex: str) -> str:
    """Make references to exercises resolve in LaTeX.

    sphinx-exercise labels an exercise ``exercise:LABEL`` and types its number into the box
    title ("Exercise 3.7"), while references point at ``DOC:LABEL``, so LaTeX prints "??".
    Each referenced exercise gets the missing labels, carrying its number.
    """
    targets: dict[str, set[str]] = {}
    for full in re.findall(r"\\ref\{\\detokenize\{([^}]+)\}\}", tex):
        doc, _, label = full.rpartition(":")
        if doc:
            targets.setdefault(label, set()).add(full)
    pattern = re.compile(
        r"(\\phantomsection\s*\\label\{exercise:([^}]+)\})"
        r"(?=\s*\\begin\{sphinxadmonition\}\{note\}\{Exercise ([0-9.]+)\})"
    )

    def add_labels(m: re.Match) -> str:
        fulls = sorted(targets.get(m.group(2), ()))
        if not fulls:
            return m.group(1)
        labels = "".join(f"\\label{{\\detokenize{{{full}}}}}" for full in fulls)
        number = m.group(3)
        return f"{m.group(1)}\\makeatletter\\def\\@currentlabel{{{number}}}\\makeatother{labels}"

    return pattern.sub(add_labels, tex)


def fix_parts(tex: str, toc: Toc) -> str:
    """Part pages say "Part I" and the caption once; the unnumbered parts are appendices.

    Jupyter Book writes ``\\part{Part I: Multilevel models}``, under which LaTeX prints "Part
    I" again. The unnumbered parts (unnumbered in the web book too) are set as appendices,
    ``\\appendix`` before the first of them: their chapters are lettered on to the end of the
    book (A, B in one part, C in the next), and their part pages carry no number.
    """
    appendix = False
    for part in toc.parts:
        caption = latex_escape(part.caption)
        old = f"\\part{{{caption}}}"
        if old not in tex:
            raise ValueError(f"the book's LaTeX has no {old}")
        if part.numbered:
            short = re.sub(r"^Part\s+[IVXLC]+\s*[:.]\s*", "", caption)
            new = f"\\part{{{short}}}"
        else:
            new = f"\\part*{{{caption}}}\\addcontentsline{{toc}}{{part}}{{{caption}}}"
            # the first unnumbered part starts the appendices; those after it go on with
            # their letters (B, C after A), and say so for the part handouts
            new = f"\\appendix\n{new}" if not appendix else f"{new}{MORE_APPENDICES}\n"
            appendix = True
        tex = tex.replace(old, new, 1)
    return tex


def fix_bibliography(tex: str) -> str:
    """One bibliography heading, unnumbered, on the page of its first entries.

    The bibliography page's own ``\\chapter{Bibliography}`` was followed by the
    bibliography environment, which starts another (starred) chapter: an empty numbered
    chapter page ("Chapter Twenty" in a part handout), then the list.
    """
    pattern = re.compile(
        r"\\chapter\{Bibliography\}\n((?:\\label\{[^\n]*\}\s*)*)"
        r"(\\begin\{sphinxthebibliography\}\{[^}]*\})"
    )
    return pattern.sub(
        lambda m: m.group(2) + "\n\\phantomsection" + m.group(1).rstrip() + "\n", tex, count=1
    )


def fix_front_matter(tex: str, title: str = "Welcome") -> str:
    """The welcome page as an unnumbered chapter, as printed books open.

    Sphinx sets the root document's text right after the contents without a heading, its
    sections as bold lines of three sizes, and the running foot still says "Contents". Here
    it gets a heading (in the contents and the running head), its sections are unnumbered
    sections, and the list of chapters that ends it on the web (the contents, again) goes.
    """
    m = re.search(
        r"(\\sphinxtableofcontents\n\\pagestyle\{normal\}\n)(.*?)(?=\\sphinxstepscope\s*\n\s*\\part\{)",
        tex,
        re.S,
    )
    if m is None:
        raise ValueError("the book's LaTeX has no front matter between the contents and Part I")
    front = re.sub(
        r"\\begin\{DUlineblock\}\{0em\}\n\\item\[\] \\sphinxstylestrong\{\\(?:Large|large|normalsize)\s+"
        r"((?:[^{}]|\{[^{}]*\})*)\}\n\\end\{DUlineblock\}",
        r"\\section*{\1}",
        m.group(2),
    )
    # the lists of chapters at its end (one per part): top-level itemizes that link pages
    while (end := front.rstrip()).endswith("\\end{itemize}"):
        depth, pos = 0, len(end)
        for tok in reversed(list(re.finditer(r"\\(begin|end)\{itemize\}", end))):
            depth += 1 if tok.group(1) == "end" else -1
            if depth == 0:
                pos = tok.start()
                break
        if "\\hyperref[" not in end[pos:]:
            break
        front = end[:pos].rstrip() + "\n\n"
    heading = (
        f"\\chapter*{{{title}}}\\addcontentsline{{toc}}{{chapter}}{{{title}}}"
        f"\\markboth{{{title}}}{{{title}}}\n"
    )
    return tex[: m.start(2)] + heading + front + tex[m.end(2) :]


def break_code_in_tables(tex: str) -> str:
    """Inline code in table cells may break after ``=`` and ``,``, after the ``(`` of a call
    of a call (``offset(`` ``log(expected))``, not ``VarCorr(m)``) and after the ``/`` of
    ``school/child`` (as ``print_notebooks._cell_widths`` assumes); never hyphenated."""

    def cell_code(m: re.Match) -> str:
        inner = re.sub(
            r"([=,])(?=.)|(?<=\w)(\()(?=[A-Za-z](?:\w|\\_|\.)*\()|(?<=\w)(/)(?=[A-Za-z])",
            r"\1\2\3\\allowbreak{}",
            m.group(1),
        )
        return "\\sphinxupquote{" + inner + "}"

    def table(m: re.Match) -> str:
        return re.sub(r"\\sphinxupquote\{((?:[^{}]|\\[{}]|\{[^{}]*\})*)\}", cell_code, m.group(0))

    return re.sub(r"(?s)\\begin\{(tabular|tabulary|longtable)\}.*?\\end\{\1\}", table, tex)


def drop_empty_cell_lines(tex: str) -> str:
    """An empty table cell is empty: Sphinx starts a paragraph in it, a blank line."""

    def table(m: re.Match) -> str:
        return re.sub(r"\\sphinxAtStartPar\n\n(?=\\\\\n|&)", "", m.group(0))

    return re.sub(r"(?s)\\begin\{(tabular|tabulary|longtable)\}.*?\\end\{\1\}", table, tex)


def fix_longtable_continued(tex: str) -> str:
    """A longtable without a caption says "continued from previous page", not "Table 1.1 -"."""

    def table(m: re.Match) -> str:
        if "\\caption" in m.group(0):
            return m.group(0)
        return m.group(0).replace(
            "\\tablename\\ \\thetable{} \\textendash{} continued", "continued"
        )

    return re.sub(r"(?s)\\begin\{longtable\}.*?\\end\{longtable\}", table, tex)


def latex_escape(text: str) -> str:
    return re.sub(r"([&%$#_{}])", r"\\\1", text)


def _pdf_text(text: str) -> str:
    """A string for the PDF's information dictionary (no TeX left in it)."""
    return re.sub(r"([\\{}])", "", text)


def package_version() -> str:
    """``mlm_lessons.__version__``, the version pyproject.toml takes (read, not imported)."""
    init = (ROOT / "mlm_lessons" / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r"(?m)^__version__\s*=\s*[\"']([^\"']+)[\"']", init)
    return m.group(1) if m else ""


def edition_date() -> dt.date:
    """The date of the sources: the last commit's, so that a rebuild prints the same date."""
    proc = subprocess.run(
        ["git", "log", "-1", "--format=%cs"], cwd=ROOT, capture_output=True, text=True
    )
    try:
        return dt.date.fromisoformat(proc.stdout.strip())
    except ValueError:  # not a git checkout (e.g. an unpacked archive)
        return dt.date.today()


def settings(config: dict, edition: str, part: str = "") -> str:
    """The macros ``mlmprint.sty``'s cover reads, and the PDF's title metadata."""
    title = config.get("title", "")
    author = config.get("author", "")
    version = package_version()
    url = ((config.get("repository") or {}).get("url") or "").strip()
    copyright_ = config.get("copyright", "")
    licence = (
        f"\\copyright{{}} {latex_escape(str(copyright_))} {latex_escape(author)}. The code of "
        "the course is under the MIT licence (\\texttt{LICENSE}); the data sets keep their own "
        "sources, licences and citations (\\texttt{mlm\\_lessons/datasets/README.md})."
    )
    if url:
        licence += f" Source: \\url{{{url}}}."
    full_title = f"{title}, {part}" if part else title
    macros = {
        "mlmtitle": latex_escape(title),
        "mlmsubtitle": latex_escape(SUBTITLE),
        "mlmauthor": latex_escape(author),
        "mlmedition": EDITIONS[edition][1],
        "mlmpart": latex_escape(part),
        "mlmdate": edition_date().strftime("%-d %B %Y"),
        "mlmversion": f"Version {latex_escape(version)}" if version else "",
        "mlmdescription": DESCRIPTION,
        "mlmlicence": licence,
    }
    lines = [f"\\renewcommand{{\\{k}}}{{{v}}}" for k, v in macros.items()]
    lines.append(
        f"\\hypersetup{{pdftitle={{{_pdf_text(full_title)}}}, pdfauthor={{{_pdf_text(author)}}}, "
        f"pdfsubject={{{_pdf_text(EDITIONS[edition][1])}}}}}"
    )
    return "\n".join(lines) + "\n"


def with_settings(tex: str, text: str) -> str:
    marker = "%% mlm-course: settings of this build\n"
    if marker not in tex:
        raise ValueError("the LaTeX preamble has no mlm-course settings marker")
    return tex.replace(marker, marker + text, 1)


def unframe_solutions(tex: str) -> str:
    """Set the solutions of each chapter's Solutions section without a box (``mlmsolution``).

    sphinx-exercise writes every solution as an admonition, a framed box; framed boxes break
    across pages poorly, and in the instructor set a solution's table ran into the foot of
    the page. Admonitions inside a solution keep their box.
    """
    pattern = re.compile(re.escape(SOLUTIONS_BEGIN) + r".*?" + re.escape(SOLUTIONS_END), re.S)
    token = re.compile(
        r"\\begin\{sphinxadmonition\}\{note\}\{(Solution to (?:[^{}]|\{[^{}]*\})*)\}"
        r"|\\begin\{sphinxadmonition\}|\\end\{sphinxadmonition\}"
    )

    def section(m: re.Match) -> str:
        text, out, pos, stack = m.group(0), [], 0, []
        for t in token.finditer(text):
            out.append(text[pos : t.start()])
            if t.group(1) is not None and not stack:
                out.append(f"\\begin{{mlmsolution}}{{{t.group(1)}}}")
                stack.append("mlmsolution")
            elif t.group(0).startswith("\\begin"):
                out.append(t.group(0))
                stack.append("sphinxadmonition")
            else:
                if not stack:
                    raise ValueError("an \\end{sphinxadmonition} without a begin in Solutions")
                out.append(f"\\end{{{stack.pop()}}}")
            pos = t.end()
        if stack:
            raise ValueError("an unclosed admonition in a Solutions section")
        return "".join(out) + text[pos:]

    return pattern.sub(section, tex)


def cut_solutions(tex: str) -> str:
    """The LaTeX without the chapters' Solutions sections (the student edition)."""
    pattern = re.compile(re.escape(SOLUTIONS_BEGIN) + r".*?" + re.escape(SOLUTIONS_END), re.S)
    cut, n = pattern.subn("", tex)
    if n and (SOLUTIONS_BEGIN in cut or SOLUTIONS_END in cut):
        raise ValueError("unmatched solutions markers in the LaTeX")
    return cut


def chapters_of(block: str) -> list[str]:
    """Split a part block into its chapters (each starting at ``\\chapter{``)."""
    return re.split(r"(?m)^(?=\\sphinxstepscope\s*\n\s*\n*\\chapter\{)", block)[1:]


def part_tex(head: str, parts: list[str], index: int, book: str, settings_text: str) -> str:
    """LaTeX source for the handout of part ``index`` (0-based) of the book ``book``."""
    appendices = ["\\appendix" in p or MORE_APPENDICES in p for p in parts]
    chapters_before = sum(len(chapters_of(p)) for p, a in zip(parts[:index], appendices) if not a)
    block = parts[index]
    if MORE_APPENDICES in block:  # letters after those of the appendix parts before it
        letters_before = sum(len(chapters_of(p)) for p, a in zip(parts[:index], appendices) if a)
        block = block.replace(
            MORE_APPENDICES, f"\\appendix\\setcounter{{chapter}}{{{letters_before}}}", 1
        )
    bibliography = [
        block[block.index("\\begin{sphinxthebibliography}") :].split("\\sphinxstepscope")[0]
        for i, block in enumerate(parts)
        if i != index and "\\begin{sphinxthebibliography}" in block
    ]
    head = with_settings(head, settings_text)
    # numbers of the book: parts, chapters (hence figures, tables, equations)
    numbering = f"\\setcounter{{part}}{{{index}}}\n\\setcounter{{chapter}}{{{chapters_before}}}\n"
    # references to other parts take their numbers from the whole book's .aux
    head = head.replace(
        "\\begin{document}",
        f"\\usepackage{{xr}}\n\\externaldocument{{{book}}}\n\\begin{{document}}",
        1,
    )
    # the table of contents lists only this part
    return head + numbering + block + "".join(bibliography) + "\\end{document}\n"


def finish(tex: str, toc: Toc) -> str:
    tex = fix_parts(fix_exercise_refs(tex), toc)
    tex = break_code_in_tables(fix_bibliography(fix_front_matter(tex)))
    return unframe_solutions(fix_longtable_continued(drop_empty_cell_lines(tex)))


# --- cheat sheet --------------------------------------------------------------------------


def cheatsheet_values() -> str:
    """Critical values of the boundary mixtures, computed (not typed) for the cheat sheet."""
    from scipy import optimize, stats

    def mixture_crit(df_low: int, alpha: float = 0.05) -> float:
        # 0.5 chi2(df_low) + 0.5 chi2(df_low + 1); chi2(0) is a point mass at 0
        def tail(x: float) -> float:
            low = stats.chi2.sf(x, df_low) if df_low > 0 else 0.0
            return 0.5 * low + 0.5 * stats.chi2.sf(x, df_low + 1) - alpha

        return optimize.brentq(tail, 1e-9, 50)

    values = {
        "critChiOne": stats.chi2.isf(0.05, 1),
        "critChiTwo": stats.chi2.isf(0.05, 2),
        "critMixZeroOne": mixture_crit(0),
        "critMixOneTwo": mixture_crit(1),
    }
    return "".join(f"\\newcommand{{\\{k}}}{{{v:.2f}}}\n" for k, v in values.items())


def build_cheatsheet(out: Path) -> Path:
    work = out / "cheatsheet"
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "latex" / "cheatsheet.tex", work / "cheatsheet.tex")
    (work / "cheatsheet-values.tex").write_text(cheatsheet_values())
    run(
        ["latexmk", "-xelatex", "-interaction=nonstopmode", "-halt-on-error", "cheatsheet.tex"],
        work,
        work / "cheatsheet.latexmk",
    )
    return work / "cheatsheet.pdf"


# --- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "handouts")
    parser.add_argument("--no-book", action="store_true", help="only the cheat sheet")
    args = parser.parse_args(argv)
    check_tools()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"documents": []}
    previous = out / "manifest.json"
    if args.no_book and previous.exists():  # keep the book's entries, redo the cheat sheet
        kept = json.loads(previous.read_text())["documents"]
        manifest["documents"] = [d for d in kept if d["kind"] != "cheatsheet"]

    def record(pdf: Path, kind: str, seconds: float, **extra) -> None:
        target = out / pdf.name
        shutil.copy(pdf, target)
        log = pdf.with_suffix(".log")
        entry = {
            "kind": kind,
            "pdf": target.name,
            "pages": pages(target),
            "seconds": round(seconds, 1),
            "log": str(log.relative_to(out)),
            **extra,
        }
        manifest["documents"].append(entry)
        print(
            f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}: "
            f"{entry['pages']} pages, {entry['seconds']} s"
        )

    if not args.no_book:
        toc = read_toc(ROOT)
        t0 = time.perf_counter()
        source = out / "source"
        counts = stage(ROOT, source)
        config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
        jb = Path(sys.executable).with_name("jupyter-book")
        src = out / "book"
        run(
            [
                str(jb),
                "build",
                str(source),
                "--builder",
                "latex",
                "-W",
                "--keep-going",
                "--path-output",
                str(src),
            ],
            source,
            out / "sphinx-latex.log",
        )
        latex_dir = src / "_build" / "latex"
        tex = finish((latex_dir / f"{TARGET}.tex").read_text(encoding="utf-8"), toc)
        (latex_dir / f"{TARGET}-finished.tex").write_text(tex)
        sphinx_seconds = time.perf_counter() - t0
        manifest["staged"] = counts
        for edition, (suffix, _) in EDITIONS.items():
            t0 = time.perf_counter()
            text = tex if edition == "instructor" else cut_solutions(tex)
            name = f"{TARGET}{suffix}"
            book_tex = latex_dir / f"{name}.tex"
            book_tex.write_text(with_settings(text, settings(config, edition)))
            record(
                latexmk(book_tex),
                "book",
                time.perf_counter() - t0 + (sphinx_seconds if edition == "student" else 0),
                edition=edition,
                chapters=[p.title for p in toc.pages],
            )
            head, _front, parts, _back = split_book(text)
            if len(parts) != len(toc.parts):
                sys.exit(f"the book's LaTeX has {len(parts)} parts, _toc.yml {len(toc.parts)}")
            for i, part in enumerate(toc.parts):
                t0 = time.perf_counter()
                part_file = latex_dir / f"{TARGET}-part-{i + 1}{suffix}.tex"
                part_file.write_text(
                    part_tex(head, parts, i, name, settings(config, edition, part.caption))
                )
                record(
                    latexmk(part_file),
                    "part",
                    time.perf_counter() - t0,
                    edition=edition,
                    part=part.caption,
                    chapters=[p.title for p in part.pages],
                )

    t0 = time.perf_counter()
    record(build_cheatsheet(out), "cheatsheet", time.perf_counter() - t0)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
