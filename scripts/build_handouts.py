"""Build the printable handouts through LaTeX: the whole book, one PDF per part, a cheat sheet.

    .venv/bin/python scripts/build_handouts.py            # what `make handouts` runs

Output in ``_build/handouts/``:

- ``mlm-course.pdf``: the whole book (Jupyter Book's LaTeX builder, XeLaTeX);
- ``mlm-course-part-N.pdf``: part N of ``_toc.yml`` (every part, the reference part
  included) with the bibliography. It is cut from the
  book's LaTeX source, so chapter, figure and equation numbers are those of the book, and
  references to other parts keep their numbers (``xr`` reads the book's ``.aux``);
- ``cheatsheet.pdf``: ``latex/cheatsheet.tex``; critical values are computed here (scipy) and
  passed in as macros, never typed;
- ``manifest.json``: every PDF with its pages, chapters and build time (read by the tests).

TeX Live comes from the system. When it is missing the script stops and names the Debian
packages to install. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from book_toc import ROOT, Toc, read_toc  # noqa: E402

DEBIAN_PACKAGES = (
    "texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended tex-gyre "
    "latexmk texlive-xetex fonts-freefont-otf poppler-utils"
)
TOOLS = ("xelatex", "latexmk", "makeindex", "pdfinfo")
TARGET = "mlm-course"


def check_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        sys.exit(
            f"make handouts needs TeX Live; not found: {', '.join(missing)}.\n"
            f"Install it (Debian/Ubuntu):\n"
            f"  sudo apt-get install --no-install-recommends {DEBIAN_PACKAGES}\n"
            f"(other systems: a TeX Live with XeLaTeX, latexmk and the FreeFont OTF fonts)."
        )


def run(cmd: list[str], cwd: Path, log: Path | None = None) -> None:
    env = dict(os.environ, LATEXOPTS="-interaction=nonstopmode -halt-on-error")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if log is not None:
        log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")


def latexmk(tex: Path) -> Path:
    """XeLaTeX through latexmk (Sphinx's latexmkrc maps -pdf to xelatex when present)."""
    run(["latexmk", "-pdf", "-dvi-", "-ps-", tex.name], tex.parent, tex.with_suffix(".latexmk"))
    return tex.with_suffix(".pdf")


def pages(pdf: Path) -> int:
    out = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    return int(re.search(r"^Pages:\s+(\d+)", out.stdout, re.M).group(1))


# --- the book's LaTeX source, cut into parts ----------------------------------------------


def split_book(tex: str) -> tuple[str, str, list[str], str]:
    """Return (preamble up to the table of contents, front matter, part blocks, back)."""
    start = tex.index("\\sphinxtableofcontents")
    start = tex.index("\n", start) + 1
    body_end = tex.find("\\renewcommand{\\indexname}")
    if body_end < 0:
        body_end = tex.index("\\end{document}")
    body = tex[start:body_end]
    blocks = re.split(r"(?m)^(?=\\part\{)", body)
    return tex[:start], blocks[0], blocks[1:], "\\end{document}\n"


def fix_exercise_refs(tex: str) -> str:
    """Make references to exercises resolve in LaTeX.

    sphinx-exercise labels an exercise ``exercise:LABEL`` and types its number into the box
    title ("Exercise 3.7.3"), while references point at ``DOC:LABEL``, so LaTeX prints "??".
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


def chapters_of(block: str) -> list[str]:
    """Split a part block into its chapters (each starting at ``\\chapter{``)."""
    return re.split(r"(?m)^(?=\\sphinxstepscope\s*\n\s*\n*\\chapter\{)", block)[1:]


def part_tex(head: str, parts: list[str], index: int, toc: Toc) -> str:
    """LaTeX source for the handout of part ``index`` (0-based)."""
    chapters_before = sum(len(chapters_of(p)) for p in parts[:index])
    bibliography = [
        ch
        for i, p in enumerate(parts)
        if i != index
        for ch in chapters_of(p)
        if "\\begin{sphinxthebibliography}" in ch
    ]
    caption = toc.parts[index].caption
    head = re.sub(
        r"\\title\{(.*?)\}\n",
        lambda m: "\\title{" + m.group(1) + "\\\\[1ex]\\Large " + _latex_escape(caption) + "}\n",
        head,
        count=1,
    )
    # numbers of the book: parts, chapters (hence figures, tables, equations)
    numbering = f"\\setcounter{{part}}{{{index}}}\n\\setcounter{{chapter}}{{{chapters_before}}}\n"
    # references to other parts take their numbers from the whole book's .aux
    head = head.replace(
        "\\begin{document}",
        f"\\usepackage{{xr}}\n\\externaldocument{{{TARGET}}}\n\\begin{{document}}",
        1,
    )
    # the table of contents lists only this part
    return head + numbering + parts[index] + "".join(bibliography) + "\\end{document}\n"


def _latex_escape(text: str) -> str:
    return re.sub(r"([&%$#_{}])", r"\\\1", text)


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
        jb = Path(sys.executable).with_name("jupyter-book")
        src = out / "book"
        run(
            [
                str(jb),
                "build",
                str(ROOT),
                "--builder",
                "latex",
                "-W",
                "--keep-going",
                "--path-output",
                str(src),
            ],
            ROOT,
            out / "sphinx-latex.log",
        )
        latex_dir = src / "_build" / "latex"
        book_tex = latex_dir / f"{TARGET}.tex"
        book_tex.write_text(fix_exercise_refs(book_tex.read_text()))
        book_pdf = latexmk(book_tex)
        record(book_pdf, "book", time.perf_counter() - t0, chapters=[p.title for p in toc.pages])

        head, _front, parts, _back = split_book((latex_dir / f"{TARGET}.tex").read_text())
        if len(parts) != len(toc.parts):
            sys.exit(f"the book's LaTeX has {len(parts)} parts, _toc.yml {len(toc.parts)}")
        for i, part in enumerate(toc.parts):
            t0 = time.perf_counter()
            tex = latex_dir / f"{TARGET}-part-{i + 1}.tex"
            tex.write_text(part_tex(head, parts, i, toc))
            record(
                latexmk(tex),
                "part",
                time.perf_counter() - t0,
                part=part.caption,
                chapters=[p.title for p in part.pages],
            )

    t0 = time.perf_counter()
    record(build_cheatsheet(out), "cheatsheet", time.perf_counter() - t0)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
