"""Write the rendered edition of the notebooks: plain Markdown that any Jupyter shows as the book does.

    .venv/bin/python scripts/render_notebooks.py          # what `make notebooks` runs

The chapters are written in MyST: ``{glue:text}`` roles, ``{eq}``/``{numref}``/``{cite}``
references, ``:::{admonition}`` fences, ``{exercise}``/``{solution}`` directives. JupyterLab
and Colab show those as raw markup. This script writes every notebook of ``_toc.yml`` with the
markup replaced by what the HTML book prints (``book_refs.BookRefs`` computes the numbers,
titles and glued values the same way Sphinx does):

- ``{glue:text}`key:fmt``` -> the stored value, formatted as myst-nb formats it (also
  ``other.ipynb::key``), ``{glue:md}`` -> the stored Markdown;
- ``{eq}`` -> "(6.1)", ``{numref}`` -> "Fig. 6.1" / "Exercise 6.1", ``{ref}``/``{doc}`` -> the
  title, ``{cite}`` -> "[Raudenbush and Bryk, 2002]", ``{cite:t}`` -> "Raudenbush and Bryk [2002]";
- ``$$ ... $$ (label)`` -> ``$$ ... \\tag{6.1} $$``; headings carry the book's section numbers;
- admonitions -> block quotes with a bold title; exercises -> "### Exercise 6.1" headings;
  solutions -> one collapsible ``<details>`` cell each (code and outputs included, shown, not
  run), marked ``metadata.mlm_course.solution`` so that the student edition can drop them;
- a figure's caption -> a Markdown cell "**Fig. 6.1** ..." after the figure;
- code cells that only glue values -> input collapsed (``jupyter.source_hidden``);
- a first code cell that installs ``mlm_lessons`` from the published repository
  (``repository.url`` of ``_config.yml``) when it is missing (Colab, Binder), and fetches the
  repository files a chapter reads by a relative path; where the package is installed (the
  repository, the student edition) it does nothing.

Output: ``_build/notebooks/``, what the deployment workflow (``.github/workflows/pages.yml``)
publishes on the repository's ``notebooks`` branch, where the book's Colab and Binder links
open ``<chapter>.ipynb`` (``scripts/sphinx_course.py``):

- ``NN-topic.ipynb``: every chapter, at the top (the chapters' folder, ``mlm_lab_root`` of
  ``_config.yml``, is left out of the path);
- the repository files a chapter opens by a relative path (e.g.
  ``tests/reference/lme4_reference.json``), under their repository paths, with the path in
  the chapter's code changed to match, so every notebook runs where it is;
- for Binder: ``requirements.txt`` (``mlm_lessons`` from the repository, its dependencies
  pinned as in ``requirements.lock``) and ``runtime.txt`` (Python 3.11); a ``README.md``.
"""

from __future__ import annotations

import argparse
import ast
import base64
import copy
import hashlib
import html
import re
import shutil
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from book_refs import (  # noqa: E402
    DIRECTIVE,
    FENCE,
    GLUE_PREFIX,
    HEADING,
    BookRefError,
    BookRefs,
)
from book_toc import ROOT  # noqa: E402

OUT = ROOT / "_build" / "notebooks"

ADMONITIONS = {
    "admonition": None,
    "note": "Note",
    "tip": "Tip",
    "hint": "Hint",
    "important": "Important",
    "warning": "Warning",
    "caution": "Caution",
    "attention": "Attention",
    "danger": "Danger",
    "error": "Error",
    "seealso": "See also",
}
CODE_DIRECTIVES = {"code", "code-block", "sourcecode", "code-cell"}
SOLUTION_DIRECTIVES = {"solution", "solution-start", "solution-end"}
ROLE = re.compile(r"\{(?P<name>[a-z][\w:.-]*)\}`(?P<body>[^`]*)`")
# an inline code span (kept as it is: `\usepackage{booktabs}` is code, not a role) or a role
INLINE = re.compile(r"(?P<code>``[^`]+``|`[^`]+`)|" + ROLE.pattern)
# what the tests look for: any MyST role or directive fence left in a markdown cell
MYST_LEFTOVER = re.compile(
    r"\{[a-z][\w:.-]*\}`|^[ \t>]*(`{3,}|:{3,}|~{3,})\{[\w:.-]+\}|^\s*:(label|class):|"
    r"\$\$\s*\([^)]*\)\s*$|^\([^()\s]+\)=\s*$",
    re.M,
)


class RenderError(ValueError):
    """The notebook uses markup the rendered edition cannot show (named in the message)."""


# --- small helpers ----------------------------------------------------------------------------


def _options(body: list[str]) -> tuple[dict[str, str], list[str]]:
    """Split a directive body into its ``:key: value`` options and its content."""
    opts: dict[str, str] = {}
    i = 0
    while i < len(body):
        m = re.match(r"^\s*:([\w-]+):\s*(.*)$", body[i])
        if not m:
            break
        opts[m.group(1)] = m.group(2).strip()
        i += 1
    if i < len(body) and not body[i].strip():
        i += 1
    return opts, body[i:]


def _closing(fence: str) -> re.Pattern:
    return re.compile(rf"[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*")


def _find_block(lines: list[str], name: str, start: int = 0) -> tuple[int, int, str] | None:
    """(first, last, argument) of the first top-level ``{name}`` directive from ``start``."""
    i = start
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        close = _closing(m.group("fence"))
        j = i + 1
        while j < len(lines) and not close.fullmatch(lines[j]):
            j += 1
        d = DIRECTIVE.match(m.group("info").strip())
        if d and d.group("name") == name:
            return i, min(j, len(lines) - 1), d.group("arg").strip()
        i = j + 1
    return None


def _blockquote(lines: list[str]) -> list[str]:
    return [f"> {line}" if line.strip() else ">" for line in _unwrap(_protect_dollars(lines))]


def _protect_dollars(lines: list[str]) -> list[str]:
    """Code blocks that contain ``$``, as HTML ``<pre>`` with the ``$`` escaped.

    JupyterLab looks for math before it parses Markdown and skips only code fences that
    start a line; in a block quote the fence starts with ``>``, so ``vc$vcov`` in R code
    would be typeset as mathematics.
    """
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        close = _closing(m.group("fence"))
        j = i + 1
        while j < len(lines) and not close.fullmatch(lines[j]):
            j += 1
        body = lines[i + 1 : j]
        if any("$" in line for line in body):
            esc = [html.escape(line, quote=False).replace("$", "&#36;") for line in body]
            lang = m.group("info").strip()
            cls = f' class="language-{html.escape(lang)}"' if lang else ""
            esc[0] = f"<pre><code{cls}>" + esc[0] if esc else f"<pre><code{cls}>"
            out += esc[:-1] + [(esc[-1] if esc else "") + "</code></pre>"]
        else:
            out += lines[i : j + 1]
        i = j + 1
    return out


def _unwrap(lines: list[str]) -> list[str]:
    """Join the continuation lines of paragraphs and list items (not code or math).

    Inside a block quote every line starts with ``>``; inline math that ran over a line
    break would then contain the ``>``. One line per paragraph avoids that.
    """
    out: list[str] = []
    fence: re.Pattern | None = None
    joinable = False
    for line in lines:
        if fence is not None:
            out.append(line)
            if fence.fullmatch(line) or (fence.pattern == "</pre>" and "</pre>" in line):
                fence = None
            continue
        if line.lstrip().startswith("<pre") and "</pre>" not in line:
            fence = re.compile("</pre>")
            out.append(line)
            joinable = False
            continue
        m = FENCE.match(line)
        stripped = line.strip()
        if m:
            fence = _closing(m.group("fence"))
            out.append(line)
            joinable = False
        elif not stripped:
            out.append("")
            joinable = False
        elif stripped.startswith(("$$", "|", "#", "<", ">")):
            out.append(line)
            joinable = False
        elif re.match(r"^\s*([-*+]|\d+[.)])\s+", line) or not joinable:
            out.append(line.rstrip())
            joinable = True
        else:
            out[-1] = out[-1] + " " + stripped
    return out


def is_glue_only(source: str) -> bool:
    """True if every statement of a code cell only calls ``glue`` (loops of glue included)."""

    def glue_stmt(node: ast.stmt) -> bool:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            return name == "glue"
        if isinstance(node, (ast.For, ast.If, ast.With)):
            body = list(node.body) + list(getattr(node, "orelse", []))
            return bool(body) and all(glue_stmt(s) for s in body)
        return False

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return bool(tree.body) and all(glue_stmt(s) for s in tree.body)


def setup_cell_source(repository: str, branch: str, files: list[str]) -> str:
    """The first code cell: install ``mlm_lessons`` where it is missing (Colab, Binder)."""
    lines = [
        "# Setup for Colab or Binder: installs the course's package `mlm_lessons` if it is",
        "# missing. In the course's own environment (`make env`) it does nothing.",
        "try:",
        "    import mlm_lessons  # noqa: F401",
        "except ImportError:",
    ]
    repo = repository.strip().rstrip("/")
    if not repo:
        lines += [
            "    raise ImportError(",
            '        "mlm_lessons is missing: in the course folder run make env, then make lab"',
            "    ) from None",
        ]
        return "\n".join(lines)
    if repo.endswith(".git"):
        repo = repo[: -len(".git")]
    lines.append(f'    %pip install --quiet "mlm-lessons @ git+{repo}.git@{branch}"')
    github = re.match(r"^https://github\.com/([^/]+/[^/]+)$", repo)
    if files and github:
        raw = f"https://raw.githubusercontent.com/{github.group(1)}/{branch}/"
        lines += [
            "    import pathlib",
            "    import urllib.request",
            "",
            "    # files of the repository that this chapter reads by a relative path",
            f"    for path, name in {[(rel, name) for rel, name in files]!r}:",
            "        if not pathlib.Path(path).exists():",
            "            pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)",
            f'            urllib.request.urlretrieve("{raw}" + name, path)',
        ]
    return "\n".join(lines)


_STRING = re.compile(r"""(?<![\w.])[rRbB]?(["'])([^"'\n]+?)\1""")


def referenced_files(nb, folder: Path, root: Path) -> list[Path]:
    """Repository files that the notebook's code opens by a path relative to its folder."""
    found = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for _, literal in _STRING.findall(cell.source):
            if "/" not in literal:
                continue
            try:
                path = (folder / literal).resolve()
            except (OSError, ValueError):
                continue
            if path.is_file() and path.is_relative_to(root) and ".venv" not in path.parts:
                found.add(path)
    return sorted(found)


# --- rendering one notebook ---------------------------------------------------------------------


class Renderer:
    """Turns the MyST of one chapter into plain Markdown; records what it substituted."""

    def __init__(self, refs: BookRefs, docname: str):
        self.refs = refs
        self.docname = docname
        self.chapter = refs.chapter(docname)
        self.number = self.chapter.number
        self.sections = [0] * 6
        self.exercises = 0
        self.log: list[tuple[str, str]] = []  # (kind, text) in document order
        self.attachments: dict[str, dict] = {}

    def fail(self, message: str) -> RenderError:
        return RenderError(f"{self.chapter.page.path.name}: {message}")

    # inline ----------------------------------------------------------------------------------

    def inline(self, text: str) -> str:
        def role(m: re.Match) -> str:
            if m.group("code"):
                return m.group("code")
            name, body = m.group("name"), m.group("body")
            try:
                if name.startswith("glue"):
                    kind = "glue:md" if name == "glue:md" else "glue"
                    value = self.refs.glue_value(self.docname, name, body)
                elif name == "eq":
                    kind, value = "eq", self.refs.eq(body)
                elif name == "numref":
                    kind, value = "numref", self.refs.numref(body)
                elif name == "ref":
                    kind, value = "ref", self.refs.ref(body)
                elif name == "doc":
                    kind, value = "doc", self.refs.doc(self.docname, body)
                elif name in ("cite", "cite:p", "cite:t", "cite:ps", "cite:ts"):
                    kind, value = "cite", self.refs.cite(name, body)
                elif name == "math":
                    return f"${body}$"
                elif name in ("term", "abbr"):
                    return re.sub(r"\s*<[^<>]+>\s*$", "", body).strip()
                else:
                    raise self.fail(f"role {{{name}}} is not supported by the rendered edition")
            except BookRefError as exc:
                raise self.fail(str(exc)) from None
            self.log.append((kind, value))
            return value

        return INLINE.sub(role, text)

    # blocks ----------------------------------------------------------------------------------

    def markdown(self, text: str, *, top: bool = True, quoted: bool = False) -> str:
        return "\n".join(self.block_lines(text.split("\n"), top=top, quoted=quoted))

    def block_lines(self, lines: list[str], *, top: bool, quoted: bool) -> list[str]:
        out: list[str] = []
        para: list[str] = []

        def flush() -> None:
            if para:
                out.extend(self.inline("\n".join(para)).split("\n"))
                para.clear()

        i = 0
        while i < len(lines):
            line = lines[i]
            m = FENCE.match(line)
            if m:
                flush()
                close = _closing(m.group("fence"))
                j = i + 1
                while j < len(lines) and not close.fullmatch(lines[j]):
                    j += 1
                body = lines[i + 1 : j]
                d = DIRECTIVE.match(m.group("info").strip())
                if d:
                    out.extend(self.directive(d.group("name"), d.group("arg").strip(), body))
                else:
                    out.extend([line, *body, lines[j] if j < len(lines) else m.group("fence")])
                i = j + 1
                continue
            if line.lstrip().startswith("$$"):
                flush()
                j = i
                rest = line.lstrip()[2:]
                if "$$" not in rest:
                    j = i + 1
                    while j < len(lines) and "$$" not in lines[j]:
                        j += 1
                out.extend(self.display_math(lines[i : j + 1], quoted=quoted))
                i = j + 1
                continue
            h = HEADING.match(line)
            if h and top:
                flush()
                out.append(self.heading(len(h.group("hashes")), h.group("title")))
                i += 1
                continue
            if re.match(r"^\([^()\s]+\)=\s*$", line):
                i += 1  # a MyST target: the heading it labels is numbered anyway
                continue
            para.append(line)
            i += 1
        flush()
        return out

    def heading(self, level: int, title: str) -> str:
        title = self.inline(title)
        if self.number is None:
            return f"{'#' * level} {title}"
        if level == 1:
            number = f"{self.number}."
        else:
            self.sections[level - 2] += 1
            for k in range(level - 1, len(self.sections)):
                self.sections[k] = 0
            number = ".".join(map(str, [self.number, *self.sections[: level - 1]])) + "."
        self.log.append(("section", number))
        return f"{'#' * level} {number} {title}"

    def display_math(self, lines: list[str], *, quoted: bool) -> list[str]:
        text = "\n".join(lines).strip()
        m = re.search(r"\$\$\s*\((?P<label>[^()\s]+)\)\s*$", text)
        tag = ""
        if m:
            target = self.refs.target(m.group("label"), "eq")
            text = text[: m.start()].rstrip()
            if target.number is not None:
                tag = f" \\tag{{{target.number}}}"
                self.log.append(("equation", f"({target.number})"))
        else:
            text = text[: text.rindex("$$")].rstrip()
        body = text[2:].strip()
        if quoted:  # one line: a block quote's ">" must not land inside the formula
            return [f"$$ {' '.join(body.split())}{tag} $$"]
        return ["$$", body + tag, "$$"]

    def directive(self, name: str, arg: str, body: list[str]) -> list[str]:
        opts, content = _options(body)
        if name in ADMONITIONS:
            title = self.inline(arg) if name == "admonition" else ADMONITIONS[name]
            if name == "admonition" and not arg:
                raise self.fail("an {admonition} without a title")
            inner = self.block_lines(content, top=False, quoted=True)
            if "dropdown" in opts.get("class", "").split():
                return [
                    "<details>",
                    f"<summary><b>{title}</b></summary>",
                    "",
                    *inner,
                    "",
                    "</details>",
                ]
            return _blockquote([f"**{title}**", "", *inner])
        if name == "exercise":
            self.exercises += 1
            number = f"{self.number}.{self.exercises}" if self.number is not None else None
            label = opts.get("label")
            if label:
                expected = self.refs.target(label, "exercise").number
                if expected != number:
                    raise self.fail(f"exercise {label!r} numbered {number}, the book {expected}")
            heading = f"Exercise {number}" if number else "Exercise"
            if arg:
                heading += f" ({self.inline(arg)})"
            self.log.append(("exercise", heading.split(" (")[0]))
            inner = self.block_lines(content, top=False, quoted=False)
            return [f"### {heading}", "", *inner]
        if name == "solution":
            return self.solution_block(arg, self.block_lines(content, top=False, quoted=False))
        if name in ("solution-start", "solution-end"):
            raise self.fail(f"{{{name}}} inside another directive")
        if name in CODE_DIRECTIVES:
            return [f"```{arg}", *content, "```"]
        if name == "math":
            label = opts.get("label")
            tag = ""
            if label:
                number = self.refs.target(label, "eq").number
                if number:
                    tag = f" \\tag{{{number}}}"
                    self.log.append(("equation", f"({number})"))
            return ["$$", "\n".join(content).strip() + tag, "$$"]
        raise self.fail(f"directive {{{name}}} is not supported by the rendered edition")

    def solution_title(self, label: str) -> str:
        target = self.refs.target(label, "solution")
        if target.kind != "exercise":
            raise self.fail(f"solution of {label!r}, which is no exercise")
        return f"Solution to Exercise {target.number}"

    def solution_block(self, label: str, inner: list[str]) -> list[str]:
        return [
            "<details>",
            f"<summary><b>{self.solution_title(label)}</b></summary>",
            "",
            *inner,
            "",
            "</details>",
        ]

    # outputs inside a solution -----------------------------------------------------------------

    def outputs_markdown(self, cell) -> list[str]:
        out: list[str] = []
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "stream":
                out += ["*Output:*", "", "```text", output.get("text", "").rstrip("\n"), "```", ""]
                continue
            if kind == "error":
                tb = "\n".join(output.get("traceback", []))
                out += ["*Output:*", "", "```text", tb, "```", ""]
                continue
            data = output.get("data", {})
            if any(k.startswith(GLUE_PREFIX) for k in data):
                continue
            if "image/png" in data:
                png = data["image/png"]
                png = png if isinstance(png, str) else "".join(png)
                digest = hashlib.sha256(base64.b64decode(png)).hexdigest()[:16]
                name = f"output-{digest}.png"
                self.attachments[name] = {"image/png": png.strip()}
                alt = ((cell.metadata.get("mystnb") or {}).get("image") or {}).get("alt")
                alt = re.sub(r"[\[\]\n]", " ", alt or "Figure of the solution")
                out += [f"![{alt}](attachment:{name})", ""]
            elif "text/html" in data and "<table" in data["text/html"]:
                html = re.sub(r"(?s)<style.*?</style>", "", data["text/html"]).strip()
                out += [html, ""]
            elif "text/markdown" in data:
                out += [data["text/markdown"], ""]
            elif "text/plain" in data:
                out += ["*Output:*", "", "```text", data["text/plain"].rstrip("\n"), "```", ""]
        return out


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def render_notebook(
    nb,
    refs: BookRefs,
    docname: str,
    *,
    solutions: bool = True,
    setup: str | None = None,
) -> tuple[nbformat.NotebookNode, list[tuple[str, str]]]:
    """The rendered copy of ``nb`` and the log of what was substituted, in document order.

    ``solutions=False`` leaves out the solutions (the student edition). The input is not
    modified.
    """
    nb = copy.deepcopy(nb)
    r = Renderer(refs, docname)
    cells: list = []
    span: dict | None = None  # an open solution-start ... solution-end

    def emit_markdown(text: str, **meta) -> None:
        if text.strip():
            cell = nbformat.v4.new_markdown_cell(text.strip("\n"))
            if meta:
                cell.metadata["mlm_course"] = meta
            cells.append(cell)

    def close_span() -> None:
        nonlocal span
        assert span is not None
        cell = nbformat.v4.new_markdown_cell(
            "\n".join(r.solution_block(span["label"], span["lines"])).strip("\n")
        )
        cell.metadata["mlm_course"] = {"solution": span["label"]}
        if r.attachments:
            cell.attachments = dict(r.attachments)
            r.attachments.clear()
        cells.append(cell)
        span = None

    for cell in nb.cells:
        source = _source(cell)
        if cell.cell_type == "code":
            if span is not None:
                span["lines"] += ["```python", source, "```", ""]
                span["lines"] += r.outputs_markdown(cell)
                caption = _caption(r, cell)
                if caption:
                    span["lines"] += [caption, ""]
                continue
            if is_glue_only(source) or "remove-cell" in cell.metadata.get("tags", []):
                cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
            cells.append(cell)
            caption = _caption(r, cell)
            if caption:
                emit_markdown(caption, figure=True)
            continue
        if cell.cell_type != "markdown":
            cells.append(cell)
            continue
        lines = source.split("\n")
        while lines:
            if span is not None:
                end = _find_block(lines, "solution-end")
                if end is None:
                    span["lines"] += r.block_lines(lines, top=False, quoted=False) + [""]
                    lines = []
                    break
                span["lines"] += r.block_lines(lines[: end[0]], top=False, quoted=False)
                close_span()
                lines = lines[end[1] + 1 :]
                continue
            start = _find_block(lines, "solution-start")
            sol = _find_block(lines, "solution")
            first = min((b for b in (start, sol) if b), default=None, key=lambda b: b[0])
            if first is None:
                if _find_block(lines, "solution-end"):
                    raise r.fail("a {solution-end} without a {solution-start}")
                emit_markdown(r.markdown("\n".join(lines)))
                break
            emit_markdown(r.markdown("\n".join(lines[: first[0]])))
            if first is start:
                span = {"label": start[2], "lines": []}
                r.solution_title(start[2])  # the label must be an exercise
            else:
                body = lines[first[0] + 1 : first[1]]
                _, content = _options(body)
                inner = r.block_lines(content, top=False, quoted=False)
                cell_md = nbformat.v4.new_markdown_cell(
                    "\n".join(r.solution_block(first[2], inner))
                )
                cell_md.metadata["mlm_course"] = {"solution": first[2]}
                cells.append(cell_md)
            lines = lines[first[1] + 1 :]
    if span is not None:
        raise r.fail("a {solution-start} without a {solution-end}")

    if setup is not None:
        first_code = next((i for i, c in enumerate(cells) if c.cell_type == "code"), len(cells))
        setup_cell = nbformat.v4.new_code_cell(setup)
        setup_cell.metadata["mlm_course"] = {"setup": True}
        cells.insert(first_code, setup_cell)
    if not solutions:
        cells = [c for c in cells if "solution" not in c.metadata.get("mlm_course", {})]
    nb.cells = cells
    nb.metadata["mlm_course"] = {"edition": "rendered" if solutions else "student"}
    nb.nbformat, nb.nbformat_minor = 4, max(5, nb.get("nbformat_minor", 5))
    for i, cell in enumerate(nb.cells):  # nbformat 4.5: every cell has a unique id
        cell["id"] = f"cell-{i:03d}"
    return nb, r.log


def _caption(r: Renderer, cell) -> str | None:
    fig = (cell.metadata.get("mystnb") or {}).get("figure") or {}
    if not fig.get("caption"):
        return None
    number = r.refs.target(fig["name"], "figure").number if fig.get("name") else None
    if number:
        r.log.append(("figure", f"Fig. {number}"))
    caption = r.markdown(fig["caption"], top=False)
    return f"**Fig. {number}** {caption}" if number else f"**Figure.** {caption}"


def leftover_markup(nb) -> list[str]:
    """Every MyST role or fence left in the markdown cells (what a plain Jupyter shows raw)."""
    found = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found += [m.group(0) for m in MYST_LEFTOVER.finditer(_source(cell))]
    return found


# --- the edition ----------------------------------------------------------------------------------


def repository(refs: BookRefs) -> tuple[str, str]:
    repo = refs.config.get("repository") or {}
    return (repo.get("url") or "").strip(), (repo.get("branch") or "main").strip()


def notebook_root(refs: BookRefs) -> Path:
    """The chapters' folder (``mlm_lab_root`` in ``_config.yml``, default ``book``)."""
    config = (refs.config.get("sphinx") or {}).get("config") or {}
    return refs.root / str(config.get("mlm_lab_root") or "book").strip("/")


def edition_path(refs: BookRefs, page) -> Path:
    """Where the rendered edition puts a chapter, relative to its top folder."""
    top = notebook_root(refs).resolve()
    path = page.path.resolve()
    if not path.is_relative_to(top):
        raise RenderError(f"{page.path}: a chapter outside {top.name}/ (mlm_lab_root)")
    return path.relative_to(top)


def repath_code(nb, paths: dict[str, str]) -> int:
    """Replace the string literals ``paths`` maps (old -> new) in the code cells; count them."""
    n = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or (cell.metadata.get("mlm_course") or {}).get("setup"):
            continue
        source = _source(cell)
        for old, new in paths.items():
            for quote_ in ('"', "'"):
                n += source.count(quote_ + old + quote_)
                source = source.replace(quote_ + old + quote_, quote_ + new + quote_)
        cell.source = source
    return n


def binder_files(root: Path, url: str, branch: str) -> dict[str, str]:
    """``requirements.txt``, ``runtime.txt`` and ``README.md`` of the published notebooks."""
    from lean_lock import closure, package_dependencies, read_lock

    pins = read_lock(root / "requirements.lock")
    keep = closure(package_dependencies(root), pins)
    lines = [
        "# Binder installs these: mlm_lessons from the course's repository, and its",
        "# dependencies at the versions of the course's requirements.lock",
        "# (written by scripts/render_notebooks.py; do not edit).",
    ]
    repo = url.strip().rstrip("/").removesuffix(".git")
    if repo:
        lines.append(f"mlm-lessons @ git+{repo}.git@{branch}")
    lines += [f"{n}=={v}" for key, (n, v) in pins.items() if key in keep]
    source = f"[the course's repository]({repo})" if repo else "the course's repository"
    readme = (
        "# Multilevel models in Python: the chapters as notebooks\n\n"
        "The chapters of the book with their numbers, equations and references written in, "
        "so that they read as the book does in JupyterLab, Colab or Binder. Each chapter's "
        "first cell installs the course's package `mlm_lessons` where it is missing. "
        f"Generated from {source} by `make notebooks`; do not edit here.\n"
    )
    return {
        "requirements.txt": "\n".join(lines) + "\n",
        "runtime.txt": "python-3.11\n",
        "README.md": readme,
    }


def render_book(
    root: Path = ROOT,
    out: Path = OUT,
    *,
    solutions: bool = True,
    refs: BookRefs | None = None,
) -> dict[str, list[tuple[str, str]]]:
    """Render every notebook of ``_toc.yml`` into ``out`` (layout: the module docstring).

    Returns the substitution log of each notebook, by docname.
    """
    root = Path(root).resolve()
    refs = refs or BookRefs(root)
    url, branch = repository(refs)
    out = Path(out).resolve()
    logs: dict[str, list[tuple[str, str]]] = {}
    extra: set[Path] = set()
    for page in refs.toc.notebooks:
        nb = nbformat.read(page.path, as_version=4)
        folder = page.path.resolve().parent
        target = out / edition_path(refs, page)
        files = referenced_files(nb, folder, root)
        extra.update(files)
        # a file keeps its repository path in the edition; the chapter's code points at it
        moved = {
            _relpath(f, folder): _relpath(out / f.relative_to(root), target.parent) for f in files
        }
        pairs = [(moved[_relpath(f, folder)], f.relative_to(root).as_posix()) for f in files]
        rendered, log = render_notebook(
            nb,
            refs,
            page.docname,
            solutions=solutions,
            setup=setup_cell_source(url, branch, pairs),
        )
        repath_code(rendered, {old: new for old, new in moved.items() if old != new})
        leftover = leftover_markup(rendered)
        if leftover:
            raise RenderError(f"{page.path.name}: MyST markup left: {leftover[:5]}")
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(rendered, target)
        logs[page.docname] = log
    for path in sorted(extra):
        target = out / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    for name, text in binder_files(root, url, branch).items():
        (out / name).write_text(text, encoding="utf-8")
    return logs


def _relpath(path: Path, folder: Path) -> str:
    import os

    return os.path.relpath(path, folder).replace(os.sep, "/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="default: _build/notebooks")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    refs = BookRefs(ROOT)
    if not repository(refs)[0]:
        print(
            "note: repository.url in _config.yml is empty, so the setup cells cannot install "
            "mlm_lessons outside the course's environment (Colab, Binder)",
            file=sys.stderr,
        )
    logs = render_book(ROOT, out, refs=refs)
    counts: dict[str, int] = {}
    for log in logs.values():
        for kind, _ in log:
            counts[kind] = counts.get(kind, 0) + 1
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    print(f"{shown}: {len(logs)} notebooks rendered ({summary})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
