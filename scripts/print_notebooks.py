"""The chapters as the handouts print them: a copy of each notebook, changed for paper.

``build_handouts.py`` stages the book with these copies; the sources are not touched.

- **No bookkeeping**: ``glue(...)`` statements are left out of the printed code, and so are
  assignments whose only use was a glue call; a cell left with no code and no visible
  output is not printed at all (``remove-cell``), one with output only prints the output.
- **Data frames as tables**: a pandas HTML table becomes a booktabs LaTeX table (a
  ``{raw} latex`` block in a ``text/markdown`` output, rendered as MyST for that cell only),
  scaled down to the line width when it is wider; the monospace text, which pandas wraps
  with ``\\`` when it is wide, is not printed.
- **Solutions at the end of the chapter**: every ``{solution}`` and ``{solution-start}`` ...
  ``{solution-end}`` span moves, in order, under a last "Solutions" section, framed by
  LaTeX comments (``SOLUTIONS_BEGIN`` / ``SOLUTIONS_END``) so that the student handouts can
  be cut from the same LaTeX source.
- **Wide Markdown tables** (five columns or more) get a ``{tabularcolumns}`` spec with
  ragged-right columns sized by their content, so that no column runs past the margin.
"""

from __future__ import annotations

import ast
import copy
import re
from html.parser import HTMLParser

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

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("thead", "tbody"):
            self.section = self.head if tag == "thead" else self.body
        elif tag == "tr" and self.section is not None:
            self.section.append([])
        elif tag in ("th", "td") and self.section is not None:
            self.cell = [tag, "", int(a.get("colspan", 1)), int(a.get("rowspan", 1))]
        elif tag == "br" and self.cell is not None:
            self.cell[1] += " "

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self.cell is not None:
            self.cell[1] = " ".join(self.cell[1].split())
            self.section[-1].append(self.cell)
            self.cell = None
        elif tag in ("thead", "tbody"):
            self.section = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[1] += data


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
    """A booktabs ``tabular`` for a pandas HTML table (None if it is not one)."""
    if "<table" not in html:
        return None
    parser = _Table()
    parser.feed(html)
    head, body = _expand(parser.head), _expand(parser.body)
    if not body:
        return None
    n_index = max(_index_width(row) for row in body)
    width = max(sum(c[2] for c in row) for row in head + body)
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
            if columns[j] == "r" and value.startswith("-"):
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
            if not html or 'class="dataframe"' not in html:
                continue
            table = html_table_to_latex(html if isinstance(html, str) else "".join(html))
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


# --- wide Markdown tables -----------------------------------------------------------------------------


def _cell_text(cell: str) -> str:
    return re.sub(r"\\\|", "|", re.sub(r"`([^`]*)`", r"\1", cell)).strip()


def size_wide_tables(markdown: str, *, min_columns: int = 5) -> str:
    """Put a ``{tabularcolumns}`` spec before every pipe table of ``min_columns`` or more."""
    lines = markdown.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        is_table = (
            lines[i].lstrip().startswith("|")
            and i + 1 < len(lines)
            and re.match(r"^\s*\|?\s*:?-{3,}", lines[i + 1])
        )
        if not is_table:
            out.append(lines[i])
            i += 1
            continue
        j = i
        while j < len(lines) and lines[j].lstrip().startswith("|"):
            j += 1
        rows = [
            [_cell_text(c) for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
            for k, line in enumerate(lines[i:j])
            if k != 1
        ]
        ncol = max(len(r) for r in rows)
        if ncol >= min_columns:
            weights = []
            for c in range(ncol):
                texts = [r[c] for r in rows if c < len(r)]
                longest_word = max((len(w) for t in texts for w in t.split()), default=1)
                longest = max((len(t) for t in texts), default=1)
                weights.append(max(longest_word, min(longest, 24), 6))
            total = sum(weights)
            spec = "".join(
                rf">{{\raggedright\arraybackslash}}\Y{{{0.98 * w / total:.3f}}}" for w in weights
            )
            out += ["```{tabularcolumns} " + spec, "```", ""]
        out += lines[i:j]
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
            cell.source = size_wide_tables(cell.source)
    counts["hidden_cells"] = sum("remove-cell" in c.metadata.get("tags", []) for c in nb.cells)
    nb.nbformat, nb.nbformat_minor = 4, max(5, nb.get("nbformat_minor", 5))
    for i, cell in enumerate(nb.cells):  # nbformat 4.5: every cell has a unique id
        cell["id"] = f"cell-{i:03d}"
    return nb, counts
