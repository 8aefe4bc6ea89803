"""The chapters as the handouts print them: a copy of each notebook, changed for paper.

``build_handouts.py`` stages the book with these copies; the sources are not touched.

- **No bookkeeping**: ``glue(...)`` statements are left out of the printed code, and so are
  assignments whose only use was a glue call; a cell left with no code and no visible
  output is not printed at all (``remove-cell``), one with output only prints the output.
- **Data frames as tables**: a pandas HTML table (and a result object's, e.g. an LR
  test's) becomes a booktabs LaTeX table (a
  ``{raw} latex`` block in a ``text/markdown`` output, rendered as MyST for that cell only),
  scaled down to the line width when it is wider; the monospace text, which pandas wraps
  with ``\\`` when it is wide, is not printed.
- **Solutions at the end of the chapter**: every ``{solution}`` and ``{solution-start}`` ...
  ``{solution-end}`` span moves, in order, under a last "Solutions" section, framed by
  LaTeX comments (``SOLUTIONS_BEGIN`` / ``SOLUTIONS_END``) so that the student handouts can
  be cut from the same LaTeX source.
- **Markdown tables** (three columns or more) get a ``{tabularcolumns}`` spec with
  ragged-right columns sized by their content, set smaller when the columns' longest
  words need it, so that no column runs into the next or past the margin.
"""

from __future__ import annotations

import ast
import copy
import functools
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
from render_notebooks import _find_block

SOLUTIONS_BEGIN = "%% mlm-course: solutions begin"
SOLUTIONS_END = "%% mlm-course: solutions end"
DATAFRAME_MARK = "%% mlm-course: data frame"
GLUE_PREFIX = "application/papermill.record/"


# --- glue bookkeeping ---------------------------------------------------------------------------


def _is_glue_call(node: ast.AST) -> bool:
    """A ``glue(...)`` statement, or ``from ... import glue``."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        func = node.value.func
        return (func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)) == "glue"
    if isinstance(node, ast.ImportFrom):
        return [a.name for a in node.names] == ["glue"]
    return False


def _is_glue_block(node: ast.AST) -> bool:
    """A loop or branch whose body only computes values for glue calls and glues them."""
    if not isinstance(node, (ast.For, ast.If, ast.With)):
        return False
    body = list(node.body) + list(getattr(node, "orelse", []))

    def ok(stmt: ast.stmt) -> bool:
        return _is_glue_call(stmt) or _targets(stmt) is not None or _is_glue_block(stmt)

    return (
        bool(body)
        and all(ok(s) for s in body)
        and any(_is_glue_call(s) or _is_glue_block(s) for s in body)
    )


def _bound(node: ast.AST) -> set[str]:
    """Names a statement binds anywhere inside it (assignments, loop targets, definitions)."""
    names: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            names.add(sub.id)
        elif isinstance(sub, (ast.FunctionDef, ast.ClassDef)):
            names.add(sub.name)
        elif isinstance(sub, ast.arg):
            names.add(sub.arg)
    return names


def _loaded(nodes) -> set[str]:
    names: set[str] = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                names.add(sub.id)
    return names


def _targets(node: ast.stmt) -> set[str] | None:
    """Names a simple assignment binds (``a = ...``, ``a, b = ...``); None otherwise."""
    if not isinstance(node, (ast.Assign, ast.AnnAssign)):
        return None
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names: set[str] = set()
    for t in targets:
        elts = t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]
        for e in elts:
            if not isinstance(e, ast.Name):
                return None
            names.add(e.id)
    return names


def strip_glue(cells: list) -> None:
    """Remove glue statements (and what only fed them) from the code cells, in place."""
    trees: dict[int, ast.Module] = {}
    for i, cell in enumerate(cells):
        if cell.cell_type == "code":
            try:
                trees[i] = ast.parse(cell.source)
            except SyntaxError:  # IPython magics: printed as they are
                continue
    drop: dict[int, set[int]] = {i: set() for i in trees}
    glue_names: set[str] = set()
    for i, tree in trees.items():
        for k, stmt in enumerate(tree.body):
            if _is_glue_call(stmt):
                drop[i].add(k)
                glue_names |= _loaded([stmt])
    while True:  # loops, assignments and helpers that only fed glue calls, to a fixed point
        kept = [s for i, t in trees.items() for k, s in enumerate(t.body) if k not in drop[i]]
        changed = False
        for i, tree in trees.items():
            for k, stmt in enumerate(tree.body):
                if k in drop[i]:
                    continue
                # what the rest of the printed code reads without binding it itself
                others: set[str] = set()
                for other in kept:
                    if other is not stmt:
                        others |= _loaded([other]) - _bound(other)
                if _is_glue_block(stmt):
                    removable = not _bound(stmt) & others
                else:
                    names = _targets(stmt)
                    if isinstance(stmt, ast.FunctionDef):
                        names = {stmt.name}
                    removable = bool(names) and names <= glue_names and not names & others
                if removable:
                    drop[i].add(k)
                    glue_names |= _loaded([stmt])
                    changed = True
        if not changed:
            break
    for i, tree in trees.items():
        if not drop[i]:
            continue
        cell = cells[i]
        lines = cell.source.split("\n")
        gone: set[int] = set()
        for k in drop[i]:
            stmt = tree.body[k]
            gone.update(range(stmt.lineno - 1, stmt.end_lineno))
        kept_lines = [line for n, line in enumerate(lines) if n not in gone]
        source = re.sub(r"\n{3,}", "\n\n", "\n".join(kept_lines)).strip("\n")
        visible = [o for o in cell.get("outputs", []) if not _is_glue_output(o)]
        tags = list(cell.metadata.get("tags", []))
        if not re.sub(r"(?m)^\s*#.*$", "", source).strip():
            tags.append("remove-cell" if not visible else "remove-input")
        else:
            cell.source = source
        if tags:
            cell.metadata["tags"] = sorted(set(tags))


def _is_glue_output(output) -> bool:
    return any(k.startswith(GLUE_PREFIX) for k in output.get("data", {}))


# --- data frames --------------------------------------------------------------------------------


class _Table(HTMLParser):
    """The cells of a pandas ``to_html`` table: rows of (tag, text, colspan, rowspan)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.head: list[list[list]] = []
        self.body: list[list[list]] = []
        self.section = None
        self.cell = None
        self.caption: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "caption":
            self.caption = ""
        elif tag in ("thead", "tbody"):
            self.section = self.head if tag == "thead" else self.body
        elif tag == "tr" and self.section is not None:
            self.section.append([])
        elif tag in ("th", "td") and self.section is not None:
            self.cell = [tag, "", int(a.get("colspan", 1)), int(a.get("rowspan", 1))]
        elif tag == "br" and self.cell is not None:
            self.cell[1] += " "

    def handle_endtag(self, tag):
        if tag == "caption":
            self.caption = " ".join((self.caption or "").split())
        elif tag in ("th", "td") and self.cell is not None:
            self.cell[1] = " ".join(self.cell[1].split())
            self.section[-1].append(self.cell)
            self.cell = None
        elif tag in ("thead", "tbody"):
            self.section = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[1] += data
        elif self.caption is not None and self.section is None:
            self.caption += data


_NUMBER = re.compile(r"^[-+−]?(\d[\d,]*\.?\d*(e[-+]?\d+)?|\.\d+|nan|NaN|inf|-inf|<NA>|None)?%?$")


def latex_escape(text: str) -> str:
    out = []
    for ch in text:
        if ch == "\\":
            out.append(r"\textbackslash{}")
        elif ch in "&%$#_{}":
            out.append("\\" + ch)
        elif ch == "~":
            out.append(r"\textasciitilde{}")
        elif ch == "^":
            out.append(r"\textasciicircum{}")
        else:
            out.append(ch)
    return "".join(out)


def _expand(rows: list[list[list]]) -> list[list[tuple[str, str, int]]]:
    """Rows of (tag, text, colspan) with rowspans turned into empty cells below."""
    pending: dict[int, int] = {}
    grid = []
    for row in rows:
        out, col, cells = [], 0, list(row)
        while cells or pending.get(col):
            if pending.get(col):
                pending[col] -= 1
                out.append(("th", "", 1))
                col += 1
                continue
            tag, text, colspan, rowspan = cells.pop(0)
            if rowspan > 1:
                pending[col] = rowspan - 1
            out.append((tag, text, colspan))
            col += colspan
        grid.append(out)
    return grid


def _index_width(row: list[tuple[str, str, int]]) -> int:
    """How many leading header cells (the index) a body row has."""
    width = 0
    for tag, _, span in row:
        if tag != "th":
            break
        width += span
    return width


def html_table_to_latex(html: str) -> str | None:
    """A booktabs ``tabular`` for an HTML table (None if it is not one).

    pandas' ``to_html`` tables (index and column headers, spans), and the course's result
    objects' tables (``class="mlm-result"``: a caption, then one header cell and one value
    per row; the caption becomes a header over both columns).
    """
    if "<table" not in html:
        return None
    parser = _Table()
    parser.feed(html)
    head, body = _expand(parser.head), _expand(parser.body)
    if not body:
        return None
    n_index = max(_index_width(row) for row in body)
    width = max(sum(c[2] for c in row) for row in head + body)
    if not head and parser.caption:
        head = [[("th", parser.caption, width)]]
    # pandas puts the index names in a last header row of their own: merge it upwards
    if len(head) >= 2:
        last = head[-1]
        names, rest = last[:n_index], last[n_index:]
        above = head[-2]
        if all(not t for _, t, _ in rest) and all(not t for _, t, _ in above[:n_index]):
            head[-2] = [
                (tag, names[k][1] if k < len(names) else text, span)
                for k, (tag, text, span) in enumerate(above)
            ]
            head.pop()
    columns = []
    for j in range(width):
        values = [row[j][1] for row in body if j < len(row)]
        numeric = j >= n_index and all(_NUMBER.match(v.replace(" ", "")) for v in values)
        columns.append("r" if numeric else "l")
    lines = [
        DATAFRAME_MARK,
        r"\begin{center}\small",
        r"\begin{adjustbox}{max width=\linewidth}",
        r"\begin{tabular}{" + "".join(columns) + "}",
        r"\toprule",
    ]
    for row in head:
        cells, rules, col = [], [], 0
        for _, text, span in row:
            cell = r"\textbf{" + latex_escape(text) + "}" if text else ""
            if span > 1:
                cells.append(rf"\multicolumn{{{span}}}{{c}}{{{cell}}}")
                if span < width:  # a rule under a group of columns, not under a caption
                    rules.append(rf"\cmidrule(lr){{{col + 1}-{col + span}}}")
            else:
                cells.append(cell)
            col += span
        lines.append(" & ".join(cells) + r" \\")
        if rules:
            lines.append(" ".join(rules))
    lines.append(r"\midrule")
    for row in body:
        cells = []
        for j, (tag, text, _) in enumerate(row):
            value = latex_escape(text)
            if value.startswith("-") and _NUMBER.match(value.replace(" ", "")):
                value = "−" + value[1:]  # a minus sign, not a hyphen
            cells.append(value)
        cells += [""] * (width - len(cells))
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{adjustbox}", r"\end{center}"]
    return "\n".join(lines)


def tables_to_latex(cells: list) -> int:
    """Give every data-frame output a LaTeX table to print; return how many."""
    n = 0
    for cell in cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            html = data.get("text/html")
            html = html if isinstance(html, str) else "".join(html or [])
            if 'class="dataframe"' not in html and 'class="mlm-result"' not in html:
                continue
            table = html_table_to_latex(html)
            if table is None:
                continue
            output["data"] = {"text/markdown": f"```{{raw}} latex\n{table}\n```"}
            cell.metadata.setdefault("mystnb", {})["markdown_format"] = "myst"
            n += 1
    return n


# --- solutions to the end of the chapter ------------------------------------------------------------


def move_solutions(nb) -> int:
    """Move the solutions under a final "Solutions" section, in place; return how many."""
    kept, moved = [], []
    span: list | None = None
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            (span if span is not None else kept).append(cell)
            continue
        lines = cell.source.split("\n")
        out: list[str] = []
        while lines:
            if span is not None:
                end = _find_block(lines, "solution-end")
                if end is None:
                    span.append(nbformat.v4.new_markdown_cell("\n".join(lines)))
                    lines = []
                    break
                span.append(nbformat.v4.new_markdown_cell("\n".join(lines[: end[1] + 1])))
                moved.append(span)
                span = None
                lines = lines[end[1] + 1 :]
                continue
            start = _find_block(lines, "solution-start")
            sol = _find_block(lines, "solution")
            first = min((b for b in (start, sol) if b), default=None, key=lambda b: b[0])
            if first is None:
                out += lines
                break
            out += lines[: first[0]]
            block = "\n".join(lines[first[0] : first[1] + 1])
            if first is start:
                span = [nbformat.v4.new_markdown_cell(block)]
            else:
                moved.append([nbformat.v4.new_markdown_cell(block)])
            lines = lines[first[1] + 1 :]
        text = "\n".join(out).strip("\n")
        if text.strip():
            cell.source = text
            kept.append(cell)
    if span is not None:
        raise ValueError("a {solution-start} without a {solution-end}")
    if moved:
        kept.append(
            nbformat.v4.new_markdown_cell(
                f"```{{raw}} latex\n{SOLUTIONS_BEGIN}\n```\n\n## Solutions"
            )
        )
        for group in moved:
            kept.extend(group)
        kept.append(nbformat.v4.new_markdown_cell(f"```{{raw}} latex\n{SOLUTIONS_END}\n```"))
    nb.cells = kept
    return len(moved)


# --- Markdown tables ------------------------------------------------------------------------------

# The page of the handouts (build_handouts.py sets the LaTeX margins from these).
PAPER_WIDTH_CM = 21.0  # A4
H_MARGIN_CM = 2.3
LINE_WIDTH_PT = (PAPER_WIDTH_CM - 2 * H_MARGIN_CM) / 2.54 * 72.27
# Sphinx's \Y{f} column is f * \linewidth wide, less 2 \tabcolsep (6 pt each) of padding
CELL_PADDING_PT = 12.0
# what the widths of FreeSerif's characters (an estimate here) may add up to beyond it: a
# column sized to "09:00-09:20" exactly broke it at the hyphen
WIDTH_SLACK_PT = 3.0
PAPER_HEIGHT_CM = 29.7
V_MARGINS_CM = (2.4, 2.6)
TEXT_HEIGHT_PT = (PAPER_HEIGHT_CM - sum(V_MARGINS_CM)) / 2.54 * 72.27
# a table estimated taller than this share of the page is set as a longtable, which breaks
# between rows (a tabular is one box: a long one ran into the foot of the page, a shorter
# one left the rest of a page blank)
LONG_TABLE_SHARE = 0.3
# font sizes a table may be set in, largest first (the body is 10 pt)
TABLE_SIZES = ((10.0, ""), (9.0, r"\small"), (8.0, r"\footnotesize"))
# one column's share of the line that Sphinx's tables leave for rules
USABLE = 0.98


def _char_em(ch: str, kind: str) -> float:
    """Width of a character in em: FreeMono for code, FreeSans bold (headers), FreeSerif."""
    if kind == "code":
        return 0.6
    if ch.isspace():
        return 0.25
    bold = kind == "head"
    if ch.isupper():
        return 0.72 if bold else 0.68
    if ch.isdigit():
        return 0.56 if bold else 0.5
    if ch.isalpha():
        return 0.56 if bold else 0.46
    return 0.33


def _math_text(tex: str) -> str:
    """Roughly what a math span prints: commands dropped, their arguments kept."""
    tex = re.sub(r"\\(mathbf|mathrm|text|boldsymbol|operatorname)\{([^{}]*)\}", r"\2", tex)
    tex = re.sub(r"\\[a-zA-Z]+", "x", tex)  # a Greek letter or symbol: one character
    return re.sub(r"[{}^_]", "", tex)


BOOK = Path(__file__).resolve().parent.parent / "book"


@functools.lru_cache(maxsize=None)
def _doc_title(name: str) -> str:
    """The title a ``{doc}`` reference prints: the page's first level-1 heading."""
    for path in (BOOK / f"{name}.md", BOOK / f"{name}.ipynb"):
        if not path.is_file():
            continue
        if path.suffix == ".md":
            sources = [path.read_text(encoding="utf-8")]
        else:
            nb = nbformat.read(path, as_version=4)
            sources = [c.source for c in nb.cells if c.cell_type == "markdown"]
        for source in sources:
            m = re.search(r"(?m)^# +(.+?)\s*$", source)
            if m:
                return m.group(1)
    return name


def _cell_runs(cell: str, head: bool) -> list[tuple[str, str]]:
    """A Markdown table cell as characters with their font: (char, code|math|head|text)."""
    base = "head" if head else "text"
    runs: list[tuple[str, str]] = []
    # MyST roles by roughly what they print
    cell = re.sub(r"\{doc\}`([^`<]*)<[^`]*>`", r"\1", cell)  # {doc}`text <page>`
    cell = re.sub(r"\{doc\}`([^`]*)`", lambda m: _doc_title(m.group(1).strip()), cell)
    cell = re.sub(r"\{eq\}`[^`]*`", "(00.0)", cell)
    cell = re.sub(r"\{numref\}`[^`]*`", "Fig. 00.0", cell)
    cell = re.sub(r"\{glue(?::\w+)?\}`[^`]*`", "0.000", cell)
    cell = re.sub(r"\{[\w:.-]+\}`([^`<]*)(?:<[^`]*>)?`", r"\1", cell)
    for m in re.finditer(r"`([^`]*)`|\$([^$]*)\$|\\\||\*\*|([^`$\\*]+|.)", cell):
        if m.group(1) is not None:
            runs += [(ch, "code") for ch in m.group(1).replace("\\|", "|")]
        elif m.group(2) is not None:
            runs.append((_math_text(m.group(2)), "math"))
        elif m.group(0) == "\\|":
            runs.append(("|", base))
        elif m.group(0) == "**":
            continue
        else:
            runs += [(ch, base) for ch in m.group(0)]
    return runs


def _code_break(runs: list[tuple[str, str]], k: int) -> bool:
    """Whether code may break after ``runs[k]``, a ``(`` or ``/`` between names.

    After the ``(`` of a call whose argument is itself a call (``offset(`` ``log(x))``, not
    ``VarCorr(m)``) and after the ``/`` of ``school/child``.
    """
    text = runs[k][0]
    if text not in "(/" or not k or not (runs[k - 1][0].isalnum() or runs[k - 1][0] == "_"):
        return False
    name = ""
    for ch, kind in runs[k + 1 :]:
        if kind != "code" or not (ch.isalnum() or ch in "_."):
            return bool(name) and name[0].isalpha() and (text == "/" or ch == "(")
        name += ch
    return bool(name) and name[0].isalpha() and text == "/"


def _between_letters(runs: list[tuple[str, str]], k: int) -> bool:
    """Whether ``runs[k]`` joins two words (``log-likelihood``; not ``09:00-09:20``)."""
    return 0 < k < len(runs) - 1 and runs[k - 1][0].isalpha() and runs[k + 1][0].isalpha()


def _cell_widths(cell: str, head: bool, size: float) -> tuple[float, float]:
    """(widest unbreakable piece, whole cell on one line) of a cell, in points at ``size``.

    Lines break at spaces and, in code, after ``=`` and ``,``, after the ``(`` of a call of
    a call, as in ``offset(`` ``log(expected))``, and after the ``/`` of ``school/child``
    (``break_code_in_tables`` of ``build_handouts.py`` allows those breaks), and text after
    the hyphen of two joined words; a math span never breaks.
    """
    widest = current = total = 0.0
    runs = _cell_runs(cell, head)
    for k, (text, kind) in enumerate(runs):
        if kind == "math":
            w = 0.55 * len(text) * size
            current += w
            total += w
            continue
        w = _char_em(text, kind) * size
        total += w
        if text.isspace():
            widest, current = max(widest, current), 0.0
            continue
        current += w
        if (kind == "code" and (text in "=," or _code_break(runs, k))) or (
            kind != "code" and text == "-" and _between_letters(runs, k)  # log-likelihood
        ):
            widest, current = max(widest, current), 0.0
    return max(widest, current), total


def table_layout(rows: list[list[str]]) -> tuple[str, list[float]]:
    """The font size command and column fractions of a pipe table (header row first).

    The largest size at which every column holds its widest unbreakable piece is chosen; the
    line is then shared out in proportion to what each column needs beyond that, so that
    narrow columns are not squeezed and wide ones wrap.
    """
    ncol = max(len(r) for r in rows)
    avail = USABLE * LINE_WIDTH_PT
    for size, command in TABLE_SIZES:
        mins, nats = [0.0] * ncol, [0.0] * ncol
        for k, row in enumerate(rows):
            for c, cell in enumerate(row):
                lo, hi = _cell_widths(cell, k == 0, size)
                mins[c] = max(mins[c], lo + CELL_PADDING_PT)
                nats[c] = max(nats[c], hi + CELL_PADDING_PT)
        if sum(mins) <= avail:
            break
    # a little room beyond the estimate, as far as the line has it at this size
    slack = min(WIDTH_SLACK_PT, max(0.0, (avail - sum(mins)) / ncol))
    mins = [m + slack for m in mins]
    nats = [n + slack for n in nats]
    if sum(nats) <= avail:
        widths = [n * avail / sum(nats) for n in nats]
    else:
        extra = [n - m for n, m in zip(nats, mins)]
        spare = avail - sum(mins)
        widths = [m + spare * e / sum(extra) for m, e in zip(mins, extra)]
    return command, [w / LINE_WIDTH_PT for w in widths]


def table_height(rows: list[list[str]], command: str, fractions: list[float]) -> float:
    """Roughly how tall a pipe table prints, in points, with ``table_layout``'s layout."""
    size = {c: s for s, c in TABLE_SIZES}[command]
    height = 0.0
    for k, row in enumerate(rows):
        lines = 1
        for c, cell in enumerate(row):
            room = max(fractions[c] * LINE_WIDTH_PT - CELL_PADDING_PT, 1.0)
            lines = max(lines, math.ceil(_cell_widths(cell, k == 0, size)[1] / room))
        height += lines * 1.2 * size + 4.0  # the lines, and the row's padding and rule
    return height


def _fence(line: str) -> tuple[str, str] | None:
    """(the fence, what follows it) if ``line`` opens or closes a fenced block."""
    m = re.match(r"^\s*(`{3,}|:{3,})(.*)$", line)
    return (m.group(1), m.group(2).strip()) if m else None


def _split_row(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def size_tables(markdown: str, *, min_columns: int = 3) -> str:
    """Give every pipe table of ``min_columns`` or more (and every tall one) its column widths
    and font size.

    A ``{tabularcolumns}`` spec with ragged-right columns (``table_layout``) goes before
    the table, and a table set smaller than the text is framed by raw LaTeX that selects
    the size; nothing runs past a column or the margin, and code is never hyphenated. A
    table of the page's own text (not inside a directive, which may be a box) that would
    fill more than ``LONG_TABLE_SHARE`` of a page is set as a longtable, which breaks between
    rows.
    """
    lines = markdown.split("\n")
    out: list[str] = []
    fences: list[str] = []  # the fenced blocks the line is inside
    i = 0
    while i < len(lines):
        is_table = (
            lines[i].lstrip().startswith("|")
            and i + 1 < len(lines)
            and re.match(r"^\s*\|?\s*:?-{3,}", lines[i + 1])
        )
        if not is_table:
            fence = _fence(lines[i])
            if fence and fences and fence[0] == fences[-1] and not fence[1]:
                fences.pop()
            elif fence and not (fences and fences[-1].startswith("`")):  # not inside code
                fences.append(fence[0])
            out.append(lines[i])
            i += 1
            continue
        j = i
        while j < len(lines) and lines[j].lstrip().startswith("|"):
            j += 1
        rows = [_split_row(line) for k, line in enumerate(lines[i:j]) if k != 1]
        top = not fences and not lines[i].startswith((" ", "\t"))
        command, fractions = table_layout(rows)
        tall = top and table_height(rows, command, fractions) > LONG_TABLE_SHARE * TEXT_HEIGHT_PT
        if max(len(r) for r in rows) < min_columns and not tall:
            out += lines[i:j]
            i = j
            continue
        spec = "".join(rf">{{\raggedright\arraybackslash}}\Y{{{f:.3f}}}" for f in fractions)
        if command:
            out += ["```{raw} latex", rf"\begingroup{command}", "```", ""]
        out += ["```{tabularcolumns} " + spec, "```", ""]
        if tall:
            out += ["````{table}", ":class: longtable", "", *lines[i:j], "````"]
        else:
            out += lines[i:j]
        if command:
            out += ["", "```{raw} latex", r"\endgroup", "```"]
        i = j
    return "\n".join(out)


# --- one notebook --------------------------------------------------------------------------------------


def print_notebook(nb) -> tuple[nbformat.NotebookNode, dict[str, int]]:
    """The printed copy of a chapter notebook and counts of what changed."""
    nb = copy.deepcopy(nb)
    strip_glue(nb.cells)
    counts = {"tables": tables_to_latex(nb.cells), "solutions": move_solutions(nb)}
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = size_tables(cell.source)
    counts["hidden_cells"] = sum("remove-cell" in c.metadata.get("tags", []) for c in nb.cells)
    nb.nbformat, nb.nbformat_minor = 4, max(5, nb.get("nbformat_minor", 5))
    for i, cell in enumerate(nb.cells):  # nbformat 4.5: every cell has a unique id
        cell["id"] = f"cell-{i:03d}"
    return nb, counts
