"""Read the book's table of contents (``_toc.yml``): parts, chapters and their titles.

Every publishing script (handouts, student edition) and its tests take the list of chapters
from here, so a chapter appears everywhere once its line in ``_toc.yml`` is uncommented.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SUFFIXES = (".ipynb", ".md")


@dataclass(frozen=True)
class Page:
    docname: str  # e.g. "book/01-multilevel-data"
    path: Path  # the source file
    title: str  # the first level-1 heading

    @property
    def is_notebook(self) -> bool:
        return self.path.suffix == ".ipynb"


@dataclass(frozen=True)
class Part:
    caption: str
    numbered: bool
    pages: list[Page] = field(default_factory=list)


@dataclass(frozen=True)
class Toc:
    root: Page
    parts: list[Part]

    @property
    def pages(self) -> list[Page]:
        return [page for part in self.parts for page in part.pages]

    @property
    def notebooks(self) -> list[Page]:
        return [page for page in self.pages if page.is_notebook]


def _source(root: Path, docname: str) -> Path:
    for suffix in SUFFIXES:
        path = root / f"{docname}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(f"_toc.yml lists {docname!r} but no {docname}.ipynb or .md exists")


def _heading(text: str) -> str | None:
    for line in text.splitlines():
        m = re.match(r"^#\s+(.+?)\s*$", line)
        if m:
            return m.group(1)
    return None


def page_title(path: Path) -> str:
    """The first ``# Title`` of a notebook's markdown cells or of a markdown page."""
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if cell["cell_type"] == "markdown":
                title = _heading("".join(cell["source"]))
                if title:
                    return title
    else:
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)  # front matter
        title = _heading(text)
        if title:
            return title
    raise ValueError(f"{path.name} has no '# Title' heading")


def _page(root: Path, docname: str) -> Page:
    path = _source(root, docname)
    return Page(docname, path, page_title(path))


def read_toc(root: Path = ROOT) -> Toc:
    """Parse ``root/_toc.yml`` (jb-book format with ``parts``, or ``chapters`` only)."""
    data = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    parts_raw = data.get("parts")
    if parts_raw is None:
        parts_raw = [{"caption": "", "numbered": False, "chapters": data.get("chapters", [])}]
    parts = []
    for raw in parts_raw or []:
        pages = [_page(root, ch["file"]) for ch in raw.get("chapters") or [] if "file" in ch]
        parts.append(Part(raw.get("caption", ""), bool(raw.get("numbered", False)), pages))
    return Toc(_page(root, data["root"]), parts)
