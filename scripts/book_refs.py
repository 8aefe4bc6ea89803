"""What the book's cross-references print: numbers, titles, glued values, citation labels.

The HTML book gets these from Sphinx; the rendered notebooks (``render_notebooks.py``) and the
handouts need the same text without running Sphinx. ``BookRefs`` computes it from
``_toc.yml`` and the sources, with the numbering rules of the web book:

- chapters of the numbered parts are numbered 1, 2, ... across parts (``use_multitoc_numbering``);
  the pages of an unnumbered part have no number;
- sections: ``N.k`` for the ``##`` headings of chapter N, ``N.k.m`` for ``###``;
- equations (``$$ ... $$ (label)``), figures (a ``mystnb.figure.name``) and exercises are
  numbered ``N.k`` within their chapter, in document order (``numfig_secnum_depth = 1``);
- citations in the author-year style of ``sphinxcontrib-bibtex``: ``[Raudenbush and Bryk,
  2002]`` for ``{cite}``/``{cite:p}``, ``Raudenbush and Bryk [2002]`` for ``{cite:t}``.

``tests/test_notebooks.py`` checks every number and label against the HTML build.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml
from book_toc import ROOT, Page, read_toc

# an opening fence (``` ::: ~~~, three or more) with its info string
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|:{3,}|~{3,})(?P<info>.*)$")
DIRECTIVE = re.compile(r"^\{(?P<name>[\w:.-]+)\}\s*(?P<arg>.*)$")
HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<title>.+?)\s*#*\s*$")
MATH_LABEL = re.compile(r"\$\$\s*\((?P<label>[^()\s]+)\)\s*$")
GLUE_PREFIX = "application/papermill.record/"
NUMFIG_FORMAT = {
    "figure": "Fig. %s",
    "table": "Table %s",
    "code-block": "Listing %s",
    "section": "Section %s",
    "exercise": "Exercise %s",
    "equation": "(%s)",
}


class BookRefError(ValueError):
    """A reference, glue key or citation that the book does not define."""


@dataclass(frozen=True)
class Target:
    """Something a role can point at."""

    kind: str  # "equation" | "figure" | "exercise" | "section" | "doc"
    docname: str
    number: str | None
    title: str


@dataclass
class Chapter:
    page: Page
    number: int | None
    cells: list[dict] = field(default_factory=list)  # notebook cells ([] for .md pages)

    @property
    def docname(self) -> str:
        return self.page.docname


def markdown_lines_outside_code(text: str):
    """Yield (line, in_directive_depth) for lines that are not inside a literal code fence."""
    stack: list[tuple[str, int, bool]] = []  # (char, length, is_directive)
    for line in text.split("\n"):
        m = FENCE.match(line)
        if stack:
            char, length, is_directive = stack[-1]
            closing = re.fullmatch(rf"[ \t]*{re.escape(char)}{{{length},}}[ \t]*", line)
            if closing:
                stack.pop()
                continue
            if not is_directive:
                continue  # inside a literal code block
        if m:
            fence = m.group("fence")
            is_directive = DIRECTIVE.match(m.group("info").strip()) is not None
            stack.append((fence[0], len(fence), is_directive))
            continue
        yield line, len(stack)


def split_role_target(body: str) -> tuple[str | None, str]:
    """``text <target>`` -> (text, target); ``target`` -> (None, target)."""
    m = re.fullmatch(r"(?s)\s*(.*?)\s*<([^<>]+)>\s*", body)
    if m and m.group(1):
        return m.group(1), m.group(2).strip()
    return None, body.strip()


def _plain(text: str) -> str:
    """Markdown heading text to plain text (what Sphinx shows in a reference)."""
    text = re.sub(r"`([^`]*)`", r"\1", text)
    text = re.sub(r"\*\*([^*]+)\*\*|\*([^*]+)\*", lambda m: m.group(1) or m.group(2), text)
    return text.strip()


class BookRefs:
    """Numbers, titles, glued outputs and citation labels of the whole book."""

    def __init__(self, root: Path = ROOT):
        self.root = Path(root).resolve()
        self.toc = read_toc(self.root)
        self.config = yaml.safe_load((self.root / "_config.yml").read_text(encoding="utf-8"))
        self.chapters: dict[str, Chapter] = {}
        self.targets: dict[str, Target] = {}
        self.glue: dict[str, dict[str, dict]] = {}
        number = 0
        for part in self.toc.parts:
            for page in part.pages:
                if part.numbered:
                    number += 1
                self._add_page(page, number if part.numbered else None)
        self._add_page(self.toc.root, None)
        self.citations = self._read_bibliography()

    # --- the sources ----------------------------------------------------------------------

    def _add_page(self, page: Page, number: int | None) -> None:
        cells: list[dict] = []
        if page.is_notebook:
            cells = json.loads(page.path.read_text(encoding="utf-8"))["cells"]
            for cell in cells:
                cell["source"] = "".join(cell["source"])
            self.glue[page.docname] = self._glue_of(cells)
            markdown = [c["source"] for c in cells if c["cell_type"] == "markdown"]
        else:
            text = page.path.read_text(encoding="utf-8")
            markdown = [re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)]
        chapter = Chapter(page, number, cells)
        self.chapters[page.docname] = chapter
        self.targets[f"doc:{page.docname}"] = Target("doc", page.docname, _num(number), page.title)
        counters = {"equation": 0, "figure": 0, "exercise": 0}
        sections = [0, 0, 0, 0, 0, 0]

        def numbered(kind: str) -> str | None:
            counters[kind] += 1
            return None if number is None else f"{number}.{counters[kind]}"

        def add(label: str, target: Target) -> None:
            if label in self.targets and self.targets[label] != target:
                raise BookRefError(f"label {label!r} is defined twice ({page.path.name})")
            self.targets[label] = target

        pending_label = None
        cell_iter = (
            cells if page.is_notebook else [{"cell_type": "markdown", "source": markdown[0]}]
        )
        for cell in cell_iter:
            if cell["cell_type"] == "code":
                fig = (cell.get("metadata", {}).get("mystnb") or {}).get("figure") or {}
                if fig.get("name"):
                    add(fig["name"], Target("figure", page.docname, numbered("figure"), ""))
                continue
            if cell["cell_type"] != "markdown":
                continue
            lines = list(markdown_lines_outside_code(cell["source"]))
            for i, (line, depth) in enumerate(lines):
                m = re.match(r"^\((?P<label>[^()\s]+)\)=\s*$", line)
                if m and depth == 0:
                    pending_label = m.group("label")
                    continue
                h = HEADING.match(line)
                if h and depth == 0:
                    level = len(h.group("hashes"))
                    title = _plain(h.group("title"))
                    secnum = None
                    if level >= 2:
                        sections[level - 2] += 1
                        for k in range(level - 1, len(sections)):
                            sections[k] = 0
                        if number is not None:
                            secnum = ".".join(map(str, [number, *sections[: level - 1]]))
                    if pending_label:
                        add(pending_label, Target("section", page.docname, secnum, title))
                    pending_label = None
                    continue
                m = MATH_LABEL.search(line)
                if m:
                    add(
                        m.group("label"), Target("equation", page.docname, numbered("equation"), "")
                    )
            # exercises: the directive's :label:, in document order
            for m in re.finditer(
                r"^[ \t]*(`{3,}|:{3,})\{exercise\}[^\n]*\n(?P<opts>(?:[ \t]*:[\w-]+:.*\n)*)",
                cell["source"] + "\n",
                re.M,
            ):
                opts = dict(re.findall(r":([\w-]+):[ \t]*(.*)", m.group("opts")))
                if "nonumber" in opts:
                    continue
                exnum = numbered("exercise")
                if "label" in opts:
                    add(opts["label"].strip(), Target("exercise", page.docname, exnum, ""))

    @staticmethod
    def _glue_of(cells: list[dict]) -> dict[str, dict]:
        """Glued outputs of a notebook: key -> mime bundle without the papermill prefix."""
        found: dict[str, dict] = {}
        for cell in cells:
            for output in cell.get("outputs", []):
                meta = (output.get("metadata") or {}).get("scrapbook")
                if not meta or "name" not in meta:
                    continue
                prefix = meta.get("mime_prefix", "")
                data = {
                    k[len(prefix) :]: "".join(v) if isinstance(v, list) else v
                    for k, v in output.get("data", {}).items()
                    if k.startswith(prefix)
                }
                found[meta["name"]] = data
        return found

    def _read_bibliography(self) -> dict[str, tuple[str, str]]:
        from pybtex.database import parse_file
        from pybtex.richtext import Text

        found: dict[str, tuple[str, str]] = {}
        for bib in self.config.get("bibtex_bibfiles", []):
            data = parse_file(str(self.root / bib))
            for key, entry in data.entries.items():
                people = entry.persons.get("author") or entry.persons.get("editor") or []
                last = [
                    Text.from_latex(" ".join(p.prelast_names + p.last_names)).render_as("text")
                    for p in people
                ]
                if len(last) >= 3:
                    authors = f"{last[0]} et al."
                elif len(last) == 2:
                    authors = f"{last[0]} and {last[1]}"
                else:
                    authors = last[0] if last else key
                found[key] = (authors, entry.fields.get("year", "n.d."))
        return found

    # --- what a role prints ---------------------------------------------------------------

    def chapter(self, docname: str) -> Chapter:
        return self.chapters[docname]

    def resolve_doc(self, current: str, target: str) -> str:
        """The docname a ``{doc}`` target names, relative to the current document."""
        target = re.sub(r"\.(ipynb|md)$", "", target)
        if target.startswith("/"):
            doc = target.lstrip("/")
        else:
            doc = str(PurePosixPath(current).parent / target)
            parts: list[str] = []
            for piece in doc.split("/"):
                if piece == "..":
                    parts.pop()
                elif piece not in ("", "."):
                    parts.append(piece)
            doc = "/".join(parts)
        if doc not in self.chapters:
            raise BookRefError(f"{{doc}} target {target!r} is not a page of _toc.yml")
        return doc

    def target(self, label: str, role: str) -> Target:
        try:
            return self.targets[label]
        except KeyError:
            raise BookRefError(f"{{{role}}} target {label!r} is not defined in the book") from None

    def eq(self, body: str) -> str:
        text, label = split_role_target(body)
        t = self.target(label, "eq")
        if t.kind != "equation":
            raise BookRefError(f"{{eq}} target {label!r} is a {t.kind}, not an equation")
        return text or f"({t.number})"

    def numref(self, body: str) -> str:
        text, label = split_role_target(body)
        t = self.target(label, "numref")
        if t.number is None:
            raise BookRefError(f"{{numref}} target {label!r} has no number")
        template = text or NUMFIG_FORMAT[t.kind]
        return template.replace("%s", t.number).replace("{number}", t.number)

    def ref(self, body: str) -> str:
        text, label = split_role_target(body)
        if text:
            self.target(label, "ref")
            return text
        t = self.target(label, "ref")
        if t.kind == "exercise":
            return NUMFIG_FORMAT["exercise"] % t.number
        if not t.title:
            raise BookRefError(f"{{ref}} target {label!r} has no title; use {{numref}}")
        return t.title

    def doc(self, current: str, body: str) -> str:
        text, target = split_role_target(body)
        doc = self.resolve_doc(current, target)
        return text or self.chapters[doc].page.title

    def cite(self, role: str, body: str) -> str:
        keys = [k.strip() for k in body.split(",") if k.strip()]
        missing = [k for k in keys if k not in self.citations]
        if missing:
            raise BookRefError(f"citation key(s) {missing} not in the bibliography")
        entries = [self.citations[k] for k in keys]
        if role in ("cite:t", "cite:ts"):
            return ", ".join(f"{a} [{y}]" for a, y in entries)
        # as sphinxcontrib-bibtex prints it in the HTML book: [A, 2009, B, 2020]
        return "[" + ", ".join(f"{a}, {y}" for a, y in entries) + "]"

    def glue_value(self, current: str, role: str, body: str) -> str:
        """What ``{glue:text}`` (and ``{glue}``, ``{glue:md}``) prints, as myst-nb does."""
        from myst_nb.core.variables import format_plain_text

        if role == "glue:md":
            key_fmt = body.rsplit(":", 1)
            key = key_fmt[0]
            doc, key = self._glue_doc(current, key)
            data = self._glue_data(doc, key)
            if "text/markdown" not in data:
                raise BookRefError(f"glue key {key!r} has no text/markdown")
            return data["text/markdown"].strip()
        if role == "glue:text":
            key_fmt = body.rsplit(":", 1)  # myst-nb: the format spec follows the last colon
            key, fmt = (key_fmt[0], key_fmt[1]) if len(key_fmt) == 2 else (key_fmt[0], "s")
        else:  # {glue}, {glue:}, {glue:any}: the value's text, unformatted
            key, fmt = body, None
        doc, key = self._glue_doc(current, key)
        data = self._glue_data(doc, key)
        if "text/plain" not in data:
            raise BookRefError(f"glue key {key!r} of {doc} has no text/plain")
        if fmt is None:
            return data["text/plain"]
        return format_plain_text(data["text/plain"], fmt)

    def _glue_doc(self, current: str, key: str) -> tuple[str, str]:
        if "::" in key:
            path, key = key.split("::", 1)
            return self.resolve_doc(current, path), key
        return current, key

    def _glue_data(self, doc: str, key: str) -> dict:
        try:
            return self.glue[doc][key]
        except KeyError:
            raise BookRefError(f"glue key {key!r} is not stored in {doc}") from None


def _num(number: int | None) -> str | None:
    return None if number is None else str(number)
