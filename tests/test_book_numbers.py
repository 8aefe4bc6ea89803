"""No number is typed into the prose of the book: every result comes from code (glue).

A number typed by hand goes stale the day the data, the model or the code changes, and
nobody notices; a glued number is recomputed with the notebook and checked by nbval. This
test reads the prose a reader sees (markdown cells of the chapters, figure captions in the
cell metadata, the welcome page and the glossary) and fails on any digit that is left after
removing what is not typed prose:

- mathematics (``$...$``, ``$$...$$`` with its label, ``\\(...\\)``), where digits are
  notation or the hypothetical values of an exercise (``$n = 5$``), not results;
- code (fenced blocks, inline code) and MyST roles (``{glue:text}`key:.2f```, ``{eq}``,
  ``{numref}``, ``{doc}``, ``{cite}``, ...), including exercise labels and directive
  options (``:label: ch06-ex-range``);
- HTML tags and link targets, and digits inside words and identifiers (``lme4``,
  ``tau00``, ``ch03``);
- the documented allow-list ``ALLOWED`` below: references to chapters, sections, tables
  and equations of this book or of a cited book, the levels of a multilevel model
  (``level-1``, ``level 2``), the text's own numbered steps and assumptions, years of a
  citation, the conventional levels of tests and intervals (95%, 5%, 80% power), the
  Python version and the version of Stata a command needs (``Stata 17``), the numbers of the concept checks (``**3.**``), and a few fixed names (``50:50`` mixture, ``0/1`` coding).

Alt texts (``metadata.image.alt``) are not prose that can be glued; they describe what the
figure shows and are not checked here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from _publishing import ROOT  # noqa: F401  (puts scripts/ on sys.path)
from book_toc import read_toc

# The chapters (the numbered parts). The capstone brief and its template are an assignment:
# their numbers are its rules (a word limit, the rubric's points, the numbered sections of
# the report, the ages at which the study's tests were taken), not results of code.
NOTEBOOKS = [page.path for part in read_toc(ROOT).parts if part.numbered
             for page in part.pages if page.is_notebook]
PAGES = [ROOT / "book" / "00-welcome.md", ROOT / "book" / "glossary.md"]

# Directives whose body is prose (checked) rather than code (removed).
PROSE_DIRECTIVES = {
    "exercise", "solution", "solution-start", "admonition", "note", "tip", "warning",
    "important", "hint", "seealso", "caution", "attention", "glossary", "margin", "sidebar",
    "dropdown", "epigraph", "topic",
}

# What may contain digits in prose, each with its reason.
ALLOWED = [
    # references to parts of this book or of a cited work: chapter 8, chapters 6-9,
    # ch. 4, section 5.1, Table 4.2, Tables 4.2-4.5, equation (3), equations (1) to (3)
    # (and the text's own numbered steps and assumptions: step 6, assumption 4)
    r"\b(?:[Cc]hapters?|ch\.|[Ss]ections?|sec\.|§|[Tt]ables?|[Ff]igures?|[Ee]quations?|"
    r"[Pp]arts?|pp?\.|[Ss]teps?|[Aa]ssumptions?)\s*\(?\d+(?:\.\d+)*\)?"
    r"(?:\s*(?:-|–|to|and|,|or)\s*\(?\d+(?:\.\d+)*\)?)*",
    # the levels of a model: level-1, level 2, levels 1 and 2, level-2
    r"\b[Ll]evels?[- ]\d(?:\s*(?:and|to|-|–|or)\s*\d)?",
    # years of a citation, after an author's name: Snijders 2005, Bryk (2002, ch. 9),
    # (Harville 1977), Zeger et al. 1988
    r"\b[A-Z][\w'-]+(?: et al\.)?,? \(?(?:19|20)\d\d[a-z]?\b",
    # conventional levels of tests, intervals and power
    r"(?<![\d.])(?:95|99|90|80|5|10|1)\s?%",
    r"\b95th\b",
    # the number of a concept check: **3.**
    r"\*\*\d+\.\*\*",
    # the Python version the course requires
    r"\bPython 3\.\d+\b",
    # the version of another program that a command needs: Stata 17 and later
    r"\bStata \d+\b",
    # fixed names: the 50:50 chi-bar-square mixture, 0/1 coding
    r"\b50:50\b",
    r"\b0/1\b",
]
_ALLOWED = re.compile("|".join(f"(?:{a})" for a in ALLOWED))

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,}|:{3,})\s*(\{([\w-]+)\})?(.*)$")
_ROLE = re.compile(r"\{[\w:.-]+\}`[^`]*`")
_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
_DISPLAY_MATH = re.compile(r"\$\$.*?\$\$(?:\s*\([\w-]+\))?", re.S)
_INLINE_MATH = re.compile(r"(?<!\\)\$(?:\\.|[^$\\])+?\$", re.S)
_PAREN_MATH = re.compile(r"\\\(.*?\\\)|\\\[.*?\\\]", re.S)
_LINK = re.compile(r"\]\([^)]*\)|<https?://[^>]*>|https?://\S+")
_TAG = re.compile(r"<[^>]*>")
_LIST_MARK = re.compile(r"^\s*\d+\.\s", re.M)
_DIGIT = re.compile(r"(?<![\w.])\d[\d,.:]*(?:\s?%)?")


def prose(text: str) -> str:
    """The typed prose of a markdown text: code, math, roles, tags and options removed."""
    out, stack = [], []  # open fences, innermost last: (marker, body is prose)
    for line in text.splitlines():
        m = _FENCE.match(line)
        if m and stack:
            marker = stack[-1][0]
            bare = line.strip()
            if bare and set(bare) == {marker[0]} and len(bare) >= len(marker):
                stack.pop()  # the closing fence of the innermost block
                continue
        if stack and not stack[-1][1]:
            continue  # inside a code block
        if m:
            marker, name = m.group(2), m.group(4)
            keeps = name in PROSE_DIRECTIVES
            stack.append((marker, keeps))
            if name == "admonition":
                out.append(m.group(5))  # an admonition's title is prose
            continue
        if stack and re.match(r"^\s*:[\w-]+:", line):
            continue  # a directive option, e.g. ":label: ch06-ex-range"
        out.append(line)
    text = "\n".join(out)
    text = _DISPLAY_MATH.sub(" ", text)
    text = _ROLE.sub(" ", text)
    text = _CODE.sub(" ", text)
    text = _PAREN_MATH.sub(" ", text)
    text = _INLINE_MATH.sub(" ", text)
    text = _LINK.sub("]", text)
    text = _TAG.sub(" ", text)
    text = _LIST_MARK.sub(" ", text)
    return _ALLOWED.sub(" ", text)


def typed_numbers(text: str) -> list[str]:
    """Each digit run left in the prose, with a little context."""
    clean = prose(text)
    return [
        clean[max(0, m.start() - 30) : m.end() + 30].replace("\n", " ")
        for m in _DIGIT.finditer(clean)
    ]


def _texts(path: Path):
    """(where, markdown) for every piece of prose of a page."""
    if path.suffix == ".md":
        yield path.name, path.read_text(encoding="utf-8")
        return
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown":
            yield f"{path.name} cell {i}", "".join(cell["source"])
        caption = cell.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("caption")
        if caption:
            yield f"{path.name} cell {i} (caption)", caption


@pytest.mark.parametrize("path", NOTEBOOKS + PAGES, ids=lambda p: p.name)
def test_no_number_is_typed_in_the_prose(path):
    assert len(NOTEBOOKS) >= 19, "the chapters were not found in _toc.yml"
    found = [f"{where}: ...{hit}..." for where, text in _texts(path) for hit in
             typed_numbers(text)]
    assert not found, "glue these numbers (or write notation as math):\n" + "\n".join(found)


@pytest.mark.parametrize(
    "text, typed",
    [
        ("There are 7185 students in 160 schools.", True),
        ("The ICC is 0.18.", True),
        ("Figure caption: 1000 simulated data sets", True),
        ("an ICC of 0.2", True),
        ("The data hold {glue:text}`ch01-n:,` students.", False),
        ("With $n = 5$ pupils and $$\\rho = 0.25$$ (ch04-x)", False),
        ("Chapter 8 and chapters 6-9; Table 4.2; ch. 4; section 5.1; equations (1) to (3)",
         False),
        ("the level-1 and level 2 models", False),
        ("Raudenbush and Bryk (2002, ch. 9); (Snijders 2005; Raudenbush 1997)", False),
        ("a 95% interval, a 5% test and 80% power", False),
        ("the 50:50 mixture of a 0/1 outcome", False),
        ("lme4 and `fit_mixed(x, 3)` and tau00", False),
        ("```python\nx = 3\n```\nno digits here", False),
        ("```{exercise}\n:label: ch06-ex-1\nA school of 10 students.\n```", True),
        ('<summary>(a) <span class="math">\\(\\tau = 4\\)</span></summary>', False),
        ("- (b) 25 schools", True),
        ("1. a numbered list item", False),
        ("`etable` (Stata 17 and later)", False),
        ("Stata fitted 17 models", True),
    ],
)
def test_the_detector(text, typed):
    assert bool(typed_numbers(text)) is typed, prose(text)
