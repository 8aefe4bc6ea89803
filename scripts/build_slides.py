"""Build one reveal.js slide deck per chapter from the notebooks as they are stored.

    .venv/bin/python scripts/build_slides.py [--out DIR] [book/NN-name.ipynb ...]

What `make slides` runs. Nothing is executed and nothing is downloaded: every number,
figure and table on a slide is the chapter notebook's stored output (the same values the
book shows), reveal.js comes from ``slides/vendor/reveal.js/`` and MathJax from
``assets/mathjax/``. Output in ``_build/slides/``: ``NN-name.html`` per chapter of
``_toc.yml`` and ``index.html``, with the figures and the two libraries beside them, so the
folder can be copied to a USB stick and opened anywhere.

How a notebook becomes slides (CONTRIBUTING.md, "Slides", says the same for authors):

Every notebook of a numbered part of ``_toc.yml`` (a chapter) gets a deck; the notebooks of
the unnumbered parts (the capstone brief and template) do not.

- ``# Title``: the title slide; "What you'll need" goes into its speaker notes and
  "What you'll learn" becomes the second slide.
- ``## Section`` starts a slide titled by the section, ``### Subsection`` a slide titled by
  the subsection under the section's name. A slide that grows too long continues on the
  next one, under the same title.
- A paragraph puts its first sentence on the slide and its whole text into the speaker
  notes. Display equations (with the book's numbers), lists, tables, code blocks and
  admonitions go on the slide whole.
- A code cell puts its code and its output (a data frame, printed text) on the slide; a
  figure gets a slide of its own with its number, caption and alt text. Cells tagged
  ``remove-cell`` (glue bookkeeping) and the import cell are left out.
- ``## Exercises``: the questions, numbered as in the book (the full text in the notes);
  solutions never reach a slide. ``## Summary`` and ``## Further reading`` close the deck.
- The roles resolve as the book resolves them: ``{glue:text}`` from the stored outputs
  (myst-nb's own formatter), ``{eq}`` to the equation's number, ``{numref}`` to the figure's,
  ``{cite}`` to author and year from ``book/references.bib``, ``{doc}`` to a link to that
  chapter's deck.
- Cell metadata ``"slides": "skip"`` leaves a cell out of the deck; ``"slides": "notes"``
  sends it to the speaker notes only; ``"slides": "new"`` starts a new slide at the cell.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import math
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from markdown_it import MarkdownIt
from mdit_py_plugins.colon_fence import colon_fence_plugin
from mdit_py_plugins.deflist import deflist_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.myst_role import myst_role_plugin
from myst_nb.core.variables import format_plain_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from book_toc import ROOT, read_toc  # noqa: E402

SLIDES_SRC = ROOT / "slides"
REVEAL = SLIDES_SRC / "vendor" / "reveal.js"
MATHJAX = ROOT / "assets" / "mathjax"
OUT = ROOT / "_build" / "slides"
GLUE_PREFIX = "application/papermill.record/"
COURSE = "Multilevel models in Python"

# how much a slide holds, in "lines" of body text at the deck's font size; a longer slide
# continues on the next (deck.js shrinks the font of a slide that still overflows)
BUDGET = 16.0
CHARS_PER_LINE = 80
# outputs shown on a slide: tables up to this many body rows, text up to this many lines
MAX_TABLE_ROWS = 12
MAX_TEXT_LINES = 14
# sections that close a deck, each with its own treatment
EXERCISES, SUMMARY, READING = "Exercises", "Summary", "Further reading"
_OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")
_ABBREVIATIONS = ("e.g", "i.e", "et al", "cf", "vs", "Fig", "Eq", "p", "pp", "ch", "approx")


class SlideError(ValueError):
    """A notebook cannot be turned into slides (e.g. a role names an unknown label)."""


# ---------------------------------------------------------------------------------------
# The book-wide index: chapter numbers, equation, figure and exercise numbers, citations
# ---------------------------------------------------------------------------------------


@dataclass
class Chapter:
    number: str  # "6"; "" for an unnumbered page
    docname: str  # "book/06-null-model"
    title: str
    path: Path
    glue: dict[str, dict] = field(default_factory=dict)  # key -> output data (mimebundle)

    @property
    def stem(self) -> str:
        return self.path.stem


@dataclass
class BookIndex:
    chapters: list[Chapter]
    equations: dict[str, str]  # label -> "6.1"
    figures: dict[str, str]  # name -> "6.1"
    exercises: dict[str, str]  # label -> "6.1"
    citations: dict[str, tuple[str, str]]  # key -> (authors, year)
    pages: dict[str, str] = field(default_factory=dict)  # stem of every toc page -> title

    @property
    def decks(self) -> list[Chapter]:
        """The chapters that get a deck: the notebooks of the numbered parts."""
        return [chapter for chapter in self.chapters if chapter.number]

    def chapter(self, docname: str) -> Chapter:
        for chapter in self.chapters:
            if chapter.docname == docname or chapter.stem == docname:
                return chapter
        raise SlideError(f"no chapter {docname!r} in _toc.yml")


def _directive_fences(text: str):
    """(name, argument, body) of every ```{name} or :::{name} block of a markdown text."""
    pattern = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}(?P<arg>.*)$")
    lines, i = text.split("\n"), 0
    while i < len(lines):
        m = pattern.match(lines[i].strip())
        if not m:
            i += 1
            continue
        fence = m.group("fence")
        close = re.compile(rf"^{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j].strip()):
            j += 1
        yield m.group("name"), m.group("arg").strip(), "\n".join(lines[i + 1 : j])
        i = j + 1


def _glue_outputs(nb) -> dict[str, dict]:
    found = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is None:
                continue
            data = {k.removeprefix(GLUE_PREFIX): v for k, v in out.get("data", {}).items()}
            found[name] = data
    return found


def _authors(field_value: list) -> str:
    last = [" ".join(p.last_names) for p in field_value]
    last = [_latex_to_text(name) for name in last]
    if len(last) == 1:
        return last[0]
    if len(last) == 2:
        return f"{last[0]} and {last[1]}"
    return f"{last[0]} et al."


def _latex_to_text(text: str) -> str:
    accents = {'\\"a': "ä", '\\"o': "ö", '\\"u': "ü", "\\'e": "é", "\\`e": "è", "\\'a": "á"}
    text = re.sub(r"\{\\([\"'`])\{?(\w)\}?\}", r"\\\1\2", text)
    for src, dst in accents.items():
        text = text.replace(src, dst)
    return text.replace("{", "").replace("}", "")


def _citations(bib: Path) -> dict[str, tuple[str, str]]:
    from pybtex.database import parse_file

    data = parse_file(str(bib))
    out = {}
    for key, entry in data.entries.items():
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        who = _authors(people) if people else _latex_to_text(entry.fields.get("title", key))
        out[key] = (who, entry.fields.get("year", "n.d."))
    return out


def build_index(root: Path = ROOT) -> BookIndex:
    """Number every chapter, equation, figure and exercise as the book numbers them.

    Chapters are numbered through the numbered parts of ``_toc.yml``; within a chapter,
    labelled display equations, captioned figures and exercises are numbered in document
    order, solutions included (Sphinx numbers what the page holds, dropdowns too).
    """
    toc = read_toc(root)
    chapters, equations, figures, exercises = [], {}, {}, {}
    number = 0
    for part in toc.parts:
        for page in part.pages:
            if part.numbered:
                number += 1
            if not page.is_notebook:
                continue
            nb = nbformat.read(page.path, as_version=4)
            chapter = Chapter(
                str(number) if part.numbered else "",
                page.docname,
                page.title,
                page.path,
                _glue_outputs(nb),
            )
            chapters.append(chapter)
            n_eq = n_fig = n_ex = 0
            for cell in nb.cells:
                if cell.cell_type == "markdown":
                    for label in re.findall(r"^[ \t>]*\$\$\s*\((?P<l>[^)\s]+)\)\s*$", cell.source, re.M):
                        n_eq += 1
                        equations[label] = f"{chapter.number}.{n_eq}"
                    for name, _, body in _directive_fences(cell.source):
                        if name == "exercise":
                            n_ex += 1
                            label = _options(body)[0].get("label")
                            if label:
                                exercises[label] = f"{chapter.number}.{n_ex}"
                elif cell.cell_type == "code":
                    fig = cell.metadata.get("mystnb", {}).get("figure", {})
                    if fig.get("name"):
                        n_fig += 1
                        figures[fig["name"]] = f"{chapter.number}.{n_fig}"
    pages = {Path(p.docname).name: p.title for p in [toc.root, *toc.pages]}
    return BookIndex(
        chapters, equations, figures, exercises, _citations(root / "book" / "references.bib"), pages
    )


def _options(body: str) -> tuple[dict[str, str], str]:
    """Split a directive body into its ``:key: value`` options and the rest."""
    options, lines = {}, body.split("\n")
    while lines and _OPTION.match(lines[0].strip()):
        m = _OPTION.match(lines.pop(0).strip())
        options[m.group("key")] = m.group("value").strip()
    return options, "\n".join(lines).strip("\n")


# ---------------------------------------------------------------------------------------
# MyST markdown to HTML, with the book's roles resolved
# ---------------------------------------------------------------------------------------


class Renderer:
    """Markdown (MyST flavour) of one chapter to HTML for slides."""

    def __init__(self, index: BookIndex, chapter: Chapter):
        self.index, self.chapter = index, chapter
        md = MarkdownIt("commonmark", {"html": True})
        md.use(
            dollarmath_plugin,
            allow_labels=True,
            allow_space=True,
            allow_digits=True,
            double_inline=False,
        )
        md.use(colon_fence_plugin).use(myst_role_plugin).use(deflist_plugin).enable("table")
        # markdown-it calls a rule as rule(renderer, tokens, idx, options, env)
        for name, rule in (
            ("myst_role", self._role),
            ("math_inline", self._math_inline),
            ("math_block", self._math_block),
            ("math_block_label", self._math_block),
            ("fence", self._fence),
            ("colon_fence", self._fence),
        ):
            md.add_render_rule(name, _unbound(rule))
        self.md = md

    # -- roles ------------------------------------------------------------------------
    def _role(self, tokens, idx, options, env):
        token = tokens[idx]
        return self.role(token.meta["name"], token.content)

    def role(self, name: str, content: str) -> str:
        text, target = _explicit_target(content)
        if name == "glue:text" or name in ("glue", "glue:"):
            return f'<span class="glue">{html.escape(self.glue_text(target))}</span>'
        if name == "glue:md":
            key = target.rsplit(":", 1)[0] if target.count(":") else target
            data = self._glue_data(key)
            if "text/markdown" not in data:
                raise SlideError(f"{self.chapter.stem}: glue {key!r} has no text/markdown")
            return self.inline(data["text/markdown"])
        if name == "eq":
            if target not in self.index.equations:
                raise SlideError(f"{self.chapter.stem}: unknown equation label {target!r}")
            return f"({self.index.equations[target]})"
        if name == "numref":
            if target in self.index.figures:
                number, default = self.index.figures[target], "Fig. {}"
            elif target in self.index.exercises:
                number, default = self.index.exercises[target], "Exercise {}"
            else:
                raise SlideError(f"{self.chapter.stem}: unknown figure or exercise {target!r}")
            return html.escape(text.replace("%s", number) if text else default.format(number))
        if name == "ref":
            if target in self.index.exercises:
                return html.escape(text or f"Exercise {self.index.exercises[target]}")
            if target in self.index.figures:
                return html.escape(text or f"Fig. {self.index.figures[target]}")
            return html.escape(text or target)
        if name == "doc":
            stem = Path(target.removesuffix(".ipynb").removesuffix(".md")).name
            if stem not in self.index.pages:
                raise SlideError(f"{self.chapter.stem}: {{doc}} names no page: {target!r}")
            label = self.inline(text or self.index.pages[stem])
            if any(c.stem == stem for c in self.index.decks):
                return f'<a href="{stem}.html">{label}</a>'
            return f"<em>{label}</em>"  # a page of the book without a deck
        if name.startswith("cite"):
            return html.escape(self.cite(name, target))
        if name in ("term", "abbr", "sub", "sup", "math"):
            return html.escape(text or target) if name != "math" else f"\\({target}\\)"
        return html.escape(text or target)

    def _glue_data(self, key: str) -> dict:
        chapter = self.chapter
        if "::" in key:  # another page's value, as myst-nb's {glue:text}`doc.ipynb::key`
            path, key = key.split("::", 1)
            chapter = self.index.chapter(Path(path).stem)
        if key not in chapter.glue:
            raise SlideError(f"{self.chapter.stem}: no stored glue output {key!r} in "
                             f"{chapter.stem}")
        return chapter.glue[key]

    def glue_text(self, content: str) -> str:
        # myst-nb: the format spec follows the last colon (a key may hold "::")
        key, fmt = content.rsplit(":", 1) if ":" in content.replace("::", "") else (content, "")
        if key.endswith(":"):  # "doc::key" without a format
            key, fmt = content, ""
        data = self._glue_data(key)
        if "text/plain" not in data:
            raise SlideError(f"{self.chapter.stem}: glue {key!r} has no text/plain")
        return format_plain_text(data["text/plain"], fmt)

    def cite(self, name: str, keys: str) -> str:
        parts = []
        for key in (k.strip() for k in keys.split(",")):
            if key not in self.index.citations:
                raise SlideError(f"{self.chapter.stem}: unknown citation key {key!r}")
            who, year = self.index.citations[key]
            parts.append((who, year))
        # as sphinxcontrib-bibtex's author_year style prints them in the book
        if name == "cite:t":
            return "; ".join(f"{who} [{year}]" for who, year in parts)
        return "[" + "; ".join(f"{who}, {year}" for who, year in parts) + "]"

    # -- math and fences -------------------------------------------------------------
    def _math_inline(self, tokens, idx, options, env):
        return f"\\({html.escape(tokens[idx].content, quote=False)}\\)"

    def _math_block(self, tokens, idx, options, env):
        token = tokens[idx]
        tex = token.content.strip()
        tag = ""
        if token.type == "math_block_label":
            number = self.index.equations.get(token.info)
            tag = f" \\tag{{{number}}}" if number else ""
        return f'<div class="math">\\[{html.escape(tex, quote=False)}{tag}\\]</div>\n'

    def _fence(self, tokens, idx, options, env):
        token = tokens[idx]
        info = token.info.strip()
        m = re.match(r"^\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*)$", info)
        if m is None:
            lang = html.escape(info.split()[0]) if info else ""
            cls = f' class="language-{lang}"' if lang else ""
            return f"<pre><code{cls}>{html.escape(token.content)}</code></pre>\n"
        name, arg = m.group("name"), m.group("arg")
        options_, body = _options(token.content)
        if name in ("admonition", "note", "tip", "important", "warning", "seealso"):
            title = arg or name.capitalize()
            kind = options_.get("class", name)
            return (
                f'<div class="box box-{html.escape(kind)}"><p class="box-title">'
                f"{self.inline(title)}</p>{self.block(body)}</div>\n"
            )
        if name in ("math",):
            return f'<div class="math">\\[{html.escape(body, quote=False)}\\]</div>\n'
        if name in ("code-block", "code"):
            return f"<pre><code>{html.escape(body)}</code></pre>\n"
        return self.block(body)

    # -- entry points ----------------------------------------------------------------
    def inline(self, text: str) -> str:
        return self.md.renderInline(text)

    def block(self, text: str) -> str:
        return self.md.render(text)

    def parse(self, text: str):
        return self.md.parse(text)

    def render_tokens(self, tokens) -> str:
        return self.md.renderer.render(tokens, self.md.options, {})


def _unbound(method):
    def rule(renderer, tokens, idx, options, env):
        return method(tokens, idx, options, env)

    return rule


def _explicit_target(content: str) -> tuple[str, str]:
    """``text <target>`` -> (text, target); ``target`` -> ("", target)."""
    m = re.match(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", content.strip(), re.S)
    if m and m.group("text"):
        return m.group("text"), m.group("target")
    return "", content.strip()


def lead_sentence(text: str) -> str:
    """The first sentence of a paragraph's markdown source (math, code and roles intact)."""
    masked = _mask(text)
    for m in re.finditer(r"[.!?](?=\s+[A-Z(\[*_$`{\"'])", masked):
        before = masked[: m.start()].rsplit(None, 1)[-1] if masked[: m.start()].strip() else ""
        if before.rstrip(".").split("(")[-1] in _ABBREVIATIONS or len(before) == 1:
            continue
        return text[: m.end()].strip()
    return text.strip()


def _mask(text: str) -> str:
    """Replace inline math, code spans and roles by same-length filler (no sentence ends)."""

    def fill(m):
        return "x" * len(m.group(0))

    text = re.sub(r"\{[\w:-]+\}`[^`]*`", fill, text)
    text = re.sub(r"`[^`]*`", fill, text)
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$", fill, text, flags=re.S)
    return text


# ---------------------------------------------------------------------------------------
# Notebook -> elements -> slides
# ---------------------------------------------------------------------------------------


@dataclass
class Item:
    """One thing on a slide: its HTML and how much room it takes (in body lines)."""

    html: str
    weight: float
    kind: str = "text"


@dataclass
class Slide:
    title: str  # HTML
    kicker: str = ""  # the section a subsection slide belongs to (HTML)
    items: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    kind: str = "content"  # title | learn | content | figure | exercises | summary | reading

    @property
    def weight(self) -> float:
        return sum(item.weight for item in self.items)


def _lines(text_html: str) -> float:
    text = re.sub(r"<[^>]+>", "", text_html)
    text = re.sub(r"\\\(.*?\\\)", "xxxxxx", text)
    return max(1.0, math.ceil(len(text) / CHARS_PER_LINE))


def _math_weight(tex: str) -> float:
    rows = tex.count("\\\\") + 1
    tall = 0.6 if re.search(r"\\frac|\\sum|\\begin\{bmatrix\}|\\prod|\\int", tex) else 0.0
    return 1.0 + 1.1 * rows + tall


def _table_html(raw: str) -> tuple[str, int] | None:
    """A data frame's HTML without its inline style block, and its number of body rows."""
    raw = re.sub(r"<style.*?</style>", "", raw, flags=re.S)
    body = re.search(r"<tbody>(.*?)</tbody>", raw, re.S)
    rows = len(re.findall(r"<tr", body.group(1))) if body else len(re.findall(r"<tr", raw))
    return raw, rows


class DeckBuilder:
    """The slides of one chapter."""

    def __init__(self, index: BookIndex, chapter: Chapter, figures: Path):
        self.index, self.chapter = index, chapter
        self.r = Renderer(index, chapter)
        self.figures = figures  # folder for the figure files
        self.slides: list[Slide] = []
        # the latest heading: a continued slide takes its title, kicker and kind
        self.title, self.kicker, self.kind = "", "", "content"
        self.section = ""  # the latest ## heading (HTML)
        self.n_images = 0
        self.skipped_code = False

    # -- slide bookkeeping -------------------------------------------------------------
    @property
    def current(self) -> Slide:
        return self.slides[-1]

    def new_slide(self, title: str, kicker: str = "", kind: str = "content") -> Slide:
        self.slides.append(Slide(title, kicker, kind=kind))
        return self.current

    def continue_slide(self) -> Slide:
        """A new slide under the latest heading (after a figure, or when a slide is full)."""
        return self.new_slide(self.title, self.kicker, self.kind)

    def add(self, item: Item) -> None:
        slide = self.current
        if slide.kind in ("title", "figure", "learn") or (
            slide.items and slide.weight + item.weight > BUDGET
        ):
            slide = self.continue_slide()
        slide.items.append(item)

    def note(self, text_html: str) -> None:
        self.current.notes.append(text_html)

    # -- building ----------------------------------------------------------------------
    def build(self) -> list[Slide]:
        nb = nbformat.read(self.chapter.path, as_version=4)
        in_solution = False
        seen_import = False
        for cell in nb.cells:
            mode = cell.metadata.get("slides", "")
            if mode == "skip":
                continue
            if cell.cell_type == "markdown":
                in_solution = self.markdown(
                    cell.source, in_solution, notes_only=mode == "notes", new=mode == "new"
                )
            elif cell.cell_type == "code" and not in_solution:
                tags = set(cell.metadata.get("tags", []))
                if "remove-cell" in tags or not self.slides:
                    continue
                if not seen_import and _is_import_cell(cell.source):
                    seen_import = True
                    continue
                if mode == "new":
                    self.continue_slide()
                self.code(cell, tags, notes_only=mode == "notes")
        if in_solution:
            raise SlideError(f"{self.chapter.stem}: a {{solution-start}} without an end")
        return [s for s in self.slides if s.items or s.kind in ("title", "figure")]

    def markdown(self, source: str, in_solution: bool, *, notes_only=False, new=False) -> bool:
        tokens = self.r.parse(source)
        if new and self.slides:
            self.continue_slide()
        i = 0
        while i < len(tokens):
            j = _block_end(tokens, i)
            block = tokens[i : j + 1]
            i = j + 1
            first = block[0]
            if first.type in ("fence", "colon_fence"):
                m = re.match(r"^\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*)$", first.info.strip())
                name = m.group("name") if m else ""
                if name == "solution-start":
                    in_solution = True
                    continue
                if name == "solution-end":
                    in_solution = False
                    continue
                if in_solution or name == "solution":
                    continue
                if name == "exercise":
                    self.exercise(first.content)
                    continue
                if name == "admonition" and m:
                    if self.admonition(m.group("arg"), first.content, notes_only):
                        continue
            if in_solution:
                continue
            if first.type == "heading_open":
                self.heading(int(first.tag[1]), block[1].content)
                continue
            if not self.slides:
                continue
            html_ = self.r.render_tokens(block)
            if notes_only:
                self.note(html_)
                continue
            if first.type == "paragraph_open":
                self.paragraph(block[1].content, html_)
            elif first.type in ("math_block", "math_block_label"):
                self.add(Item(html_, _math_weight(first.content), "math"))
            elif first.type in ("bullet_list_open", "ordered_list_open"):
                items = [t.content for t in block if t.type == "inline"]
                weight = sum(_lines(self.r.inline(t)) for t in items) + 0.2 * len(items)
                self.add(Item(html_, weight, "list"))
            elif first.type in ("fence", "colon_fence"):
                weight = 1.0 + 0.75 * html_.count("\n")
                self.add(Item(html_, weight, "box" if 'class="box' in html_ else "code"))
            elif first.type == "table_open":
                self.add(
                    Item(
                        f'<div class="table">{html_}</div>', 0.8 * (html_.count("<tr") + 1), "table"
                    )
                )
            else:
                self.note(html_)
        return in_solution

    def heading(self, level: int, text: str) -> None:
        title = self.r.inline(text)
        if level == 1:
            number = f"Chapter {self.chapter.number}" if self.chapter.number else ""
            slide = self.new_slide(title, kind="title")
            slide.items.append(Item(f'<p class="chapter-number">{number}</p>', 0, "meta"))
            self.title, self.kicker, self.kind = title, "", "content"
            self.section = title
            return
        if level == 2:
            kind = {EXERCISES: "exercises", SUMMARY: "summary", READING: "reading"}.get(
                text.strip(), "content"
            )
            self.title, self.kicker, self.kind = title, "", kind
            self.section = title
        else:
            self.title, self.kicker, self.kind = title, self.section, "content"
        self.new_slide(self.title, self.kicker, self.kind)

    def paragraph(self, source: str, full_html: str) -> None:
        slide = self.current
        if slide.kind == "reading":
            self.add(
                Item(
                    f'<p class="lead">{self.r.inline(lead_sentence(source))}</p>',
                    _lines(self.r.inline(lead_sentence(source))),
                )
            )
            self.note(full_html)
            return
        lead = lead_sentence(source)
        lead_html = self.r.inline(lead)
        self.add(Item(f'<p class="lead">{lead_html}</p>', _lines(lead_html) + 0.3))
        self.note(full_html)

    def admonition(self, arg: str, content: str, notes_only: bool) -> bool:
        """The chapter's opening admonitions; False for any other (shown as a box)."""
        title = arg.strip()
        _, body = _options(content)
        if title == "What you'll need" and self.slides:
            self.slides[0].notes.append(
                f"<p><strong>{html.escape(title)}</strong></p>" + self.r.block(body)
            )
            return True
        if title == "What you'll learn":
            slide = self.new_slide(html.escape(title), kind="learn")
            tokens = self.r.parse(body)
            items = [t.content for t in tokens if t.type == "inline"]
            weight = sum(_lines(self.r.inline(t)) for t in items)
            slide.items.append(Item(self.r.block(body), weight, "list"))
            return True
        return False

    def exercise(self, content: str) -> None:
        """An exercise: its number and whole question on the slide (the practical's sheet)."""
        options, body = _options(content)
        number = self.index.exercises.get(options.get("label", ""), "")
        if self.current.kind != "exercises":
            self.title, self.kicker, self.kind = html.escape(EXERCISES), "", "exercises"
            self.continue_slide()
        question = self.r.block(body)
        question = question.replace("<p>", f"<p><strong>Exercise {number}</strong> ", 1)
        self.add(
            Item(f'<div class="exercise">{question}</div>', _lines(question) + 0.6, "exercise")
        )
        self.note(f"<p>Exercise {number}: its solution is in the book, never on a slide.</p>")

    def code(self, cell, tags: set[str], *, notes_only: bool) -> None:
        source = cell.source.strip()
        outputs = [o for o in cell.get("outputs", []) if not _is_glue(o)]
        images = [o for o in outputs if "image/png" in o.get("data", {})]
        if images:
            for out in images:
                self.figure(cell, out)
            return
        show_code = not tags & {"remove-input", "hide-input"} and source
        parts, weight = [], 0.0
        if show_code:
            parts.append(
                f'<pre class="code"><code class="language-python">'
                f"{html.escape(source)}</code></pre>"
            )
            weight += 0.75 * (source.count("\n") + 1) + 0.6
        for out in outputs:
            shown = self.output(out)
            if shown is not None:
                parts.append(shown[0])
                weight += shown[1]
        if len(parts) == int(bool(show_code)):
            return  # a cell without output (an assignment) stays off the slides
        block = '<div class="cell">' + "".join(parts) + "</div>"
        if notes_only:
            self.note(block)
        else:
            self.add(Item(block, weight, "cell"))

    def output(self, out) -> tuple[str, float] | None:
        if out.get("output_type") == "stream":
            text = out.get("text", "")
            if out.get("name") == "stderr" or text.count("\n") >= MAX_TEXT_LINES:
                return None
            return (
                f'<pre class="output">{html.escape(text.rstrip())}</pre>',
                0.7 * (text.count("\n") + 1),
            )
        data = out.get("data", {})
        if "text/html" in data:
            table = _table_html(data["text/html"])
            if table and table[1] <= MAX_TABLE_ROWS:
                return f'<div class="output table">{table[0]}</div>', 0.75 * (table[1] + 1.5)
            return None
        if "text/plain" in data:
            text = data["text/plain"]
            if text.count("\n") >= MAX_TEXT_LINES:
                return None
            return (
                f'<pre class="output">{html.escape(text.rstrip())}</pre>',
                0.7 * (text.count("\n") + 1),
            )
        return None

    def figure(self, cell, out) -> None:
        meta = cell.metadata.get("mystnb", {})
        fig, image = meta.get("figure", {}), meta.get("image", {})
        self.n_images += 1
        name = f"{self.chapter.stem}-{self.n_images}.png"
        (self.figures / name).write_bytes(base64.b64decode(out["data"]["image/png"]))
        number = self.index.figures.get(fig.get("name", ""), "")
        caption = self.r.inline(fig.get("caption", "")) if fig.get("caption") else ""
        alt = image.get("alt") or re.sub(r"<[^>]+>", "", caption) or "Figure"
        label = f"Fig. {number}" if number else "Figure"
        slide = self.new_slide(self.title, self.kicker, kind="figure")
        slide.items.append(
            Item(
                f'<figure><img src="figures/{name}" alt="{html.escape(alt)}">'
                f'<figcaption><span class="fig-number">{label}</span> {caption}</figcaption>'
                f"</figure>",
                BUDGET,
                "figure",
            )
        )
        slide.notes.append(f"<p><strong>{label}.</strong> {caption}</p>")
        slide.notes.append(f"<p><em>Alt text:</em> {html.escape(alt)}</p>")


def _block_end(tokens, i: int) -> int:
    """Index of the last token of the top-level block that starts at ``tokens[i]``."""
    token = tokens[i]
    if token.nesting != 1:
        return i
    depth, j = 0, i
    while j < len(tokens):
        depth += tokens[j].nesting
        if depth == 0:
            return j
        j += 1
    return len(tokens) - 1


def _is_glue(out) -> bool:
    return "scrapbook" in out.get("metadata", {})


def _is_import_cell(source: str) -> bool:
    lines = [ln for ln in source.splitlines() if ln.strip() and not ln.startswith("#")]
    return bool(lines) and all(
        ln.startswith(("import ", "from ", "plt.rcParams", "%", "pd.set_option", "np.set_"))
        for ln in lines
    )


# ---------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------

MATHJAX_CONFIG = {
    "tex": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]], "tags": "none"},
    # speaker notes keep their TeX: the speaker view is a separate window without MathJax
    "options": {"ignoreHtmlClass": "notes|tex2jax_ignore"},
    "chtml": {"displayAlign": "center"},
}


def render_deck(chapter: Chapter, slides: list[Slide], index: BookIndex) -> str:
    sections = []
    for k, slide in enumerate(slides):
        body = "".join(item.html for item in slide.items)
        kicker = f'<p class="kicker">{slide.kicker}</p>' if slide.kicker else ""
        notes = "".join(slide.notes)
        aside = f'<aside class="notes">{notes}</aside>' if notes else ""
        if slide.kind == "title":
            sections.append(
                f'<section class="slide-title" data-slide-kind="title">'
                f"{body}<h1>{slide.title}</h1>"
                f'<p class="course">{html.escape(COURSE)}</p>{aside}</section>'
            )
            continue
        heading = "h2"
        sections.append(
            f'<section class="slide-{slide.kind}" data-slide-kind="{slide.kind}">{kicker}'
            f"<{heading}>{slide.title}</{heading}>"
            f'<div class="body">{body}</div>{aside}</section>'
        )
    number = f"{chapter.number} " if chapter.number else ""
    title = html.escape(f"{number}{chapter.title} (slides)")
    return TEMPLATE.format(
        title=title,
        sections="\n".join(sections),
        mathjax_config=json.dumps(MATHJAX_CONFIG),
    )


TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{title}</title>
<link rel="stylesheet" href="_static/reveal.js/dist/reset.css">
<link rel="stylesheet" href="_static/reveal.js/dist/reveal.css">
<link rel="stylesheet" href="_static/reveal.js/dist/theme/white.css">
<link rel="stylesheet" href="_static/deck.css">
</head>
<body>
<main>
<div class="reveal">
<div class="slides">
{sections}
</div>
</div>
</main>
<script src="_static/reveal.js/dist/reveal.js"></script>
<script src="_static/reveal.js/dist/plugin/notes.js"></script>
<script>window.MathJax = Object.assign({mathjax_config}, {{startup: {{ready: () => {{
  MathJax.startup.defaultReady();
  MathJax.startup.promise.then(() => window.mlmDeckMathDone && window.mlmDeckMathDone());
}}}}}});</script>
<script src="_static/deck.js"></script>
<script async id="MathJax-script" src="_static/mathjax/tex-mml-chtml.js"></script>
</body>
</html>
"""


def render_index(decks: list[tuple[Chapter, int]], parts: list[tuple[str, list[str]]]) -> str:
    by_doc = {chapter.docname: (chapter, n) for chapter, n in decks}
    blocks = []
    for caption, docnames in parts:
        rows = []
        for docname in docnames:
            if docname not in by_doc:
                continue
            chapter, n = by_doc[docname]
            number = f"{chapter.number}. " if chapter.number else ""
            rows.append(
                f'<li><a href="{chapter.stem}.html">{html.escape(number + chapter.title)}'
                f'</a> <span class="count">({n} slides)</span></li>'
            )
        if rows:
            blocks.append(f"<h2>{html.escape(caption)}</h2>\n<ul>\n" + "\n".join(rows) + "\n</ul>")
    return INDEX_TEMPLATE.format(course=html.escape(COURSE), parts="\n".join(blocks))


INDEX_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{course}: slides</title>
<link rel="stylesheet" href="_static/index.css">
</head>
<body>
<main>
<h1>{course}: slides</h1>
<p>One deck per chapter, made from the chapter's notebook: the same equations, figures and
numbers as the book. Keys: <kbd>&rarr;</kbd>/<kbd>Space</kbd> next slide,
<kbd>S</kbd> speaker view with the notes, <kbd>F</kbd> full screen, <kbd>Esc</kbd>
overview, <kbd>?</kbd> all keys. The speaker view needs the decks served over HTTP:
<code>python3 -m http.server --directory _build/slides</code>, then open
<code>http://localhost:8000/</code>. To print or save a deck as PDF, add
<code>?print-pdf</code> to its address and print from Chromium.</p>
{parts}
</main>
</body>
</html>
"""


# ---------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------


def copy_static(out: Path) -> None:
    static = out / "_static"
    static.mkdir(parents=True, exist_ok=True)
    for name, src in (("reveal.js", REVEAL), ("mathjax", MATHJAX)):
        target = static / name
        if not src.is_dir():
            raise SlideError(
                f"{src.relative_to(ROOT)} is missing; run `make vendor-reveal`"
                if name == "reveal.js"
                else f"{src} is missing"
            )
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(src, target)
    for name in ("deck.css", "deck.js", "index.css"):
        shutil.copy2(SLIDES_SRC / name, static / name)


def build_deck(index: BookIndex, chapter: Chapter, out: Path) -> int:
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for old in figures.glob(f"{chapter.stem}-*.png"):
        old.unlink()
    slides = DeckBuilder(index, chapter, figures).build()
    (out / f"{chapter.stem}.html").write_text(render_deck(chapter, slides, index), encoding="utf-8")
    return len(slides)


def build(root: Path = ROOT, out: Path = OUT, only: list[Path] | None = None) -> dict[str, int]:
    """Write every deck (or those of ``only``) and the index into ``out``; slide counts."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    index = build_index(root)
    copy_static(out)
    wanted = {p.resolve() for p in only} if only else None
    counts, decks = {}, []
    for chapter in index.decks:
        if wanted is not None and chapter.path.resolve() not in wanted:
            continue
        n = build_deck(index, chapter, out)
        counts[chapter.stem] = n
        decks.append((chapter, n))
    toc = read_toc(root)
    parts = [(part.caption, [p.docname for p in part.pages]) for part in toc.parts]
    (out / "index.html").write_text(render_index(decks, parts), encoding="utf-8")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=OUT, help="default: _build/slides")
    args = parser.parse_args(argv)
    try:
        counts = build(ROOT, args.out, args.notebooks or None)
    except SlideError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = args.out.resolve()
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    print(
        f"{shown}: {len(counts)} decks, {sum(counts.values())} slides "
        f"({min(counts.values())} to {max(counts.values())} per deck)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
