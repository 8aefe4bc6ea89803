"""Give the glue bookkeeping of the chapters cells of its own, hidden from the book.

Every number in the prose is glued (``glue(name, value, display=False)``). A code cell that
does some analysis and also glues its numbers shows the reader a block of glue calls. This
tool moves, in every code cell that calls ``glue``, the statements that serve only the glue
into a new cell right after it, tagged ``remove-cell`` (the book leaves it out; the notebook
keeps it, so the chapter still runs top to bottom):

- the statements that call ``glue`` (a loop of glue calls moves whole), and
- assignments whose names are read only by moved statements, in no other cell.

The glue outputs (``application/papermill.record/...``) move with them; the remaining code
and its visible outputs stay as they were. A cell left with no statement is tagged instead
of split. A cell is left alone (and reported) when moving would change what runs: a later
statement that stays rebinds a name that a moved one reads, or a moved statement shows
something. Running the tool again changes nothing.

    python scripts/split_glue_cells.py book/*.ipynb        # rewrite in place
    python scripts/split_glue_cells.py --check book/*.ipynb  # exit 1 if a cell would change

Stored outputs are moved, not recomputed: check the result with nbval (the glue outputs are
compared cell by cell).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

HIDE = "remove-cell"
GLUE_MIME = "application/papermill.record/"
SHOWS = {"print", "display", "show"}


def calls_glue(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "glue"
        for n in ast.walk(node)
    )


def _shows(node: ast.AST) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            name = (
                f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            )
            if name in SHOWS:
                return True
            if name == "glue" and any(
                k.arg == "display"
                and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                for k in n.keywords
            ):
                return True
            if name == "glue" and not any(k.arg == "display" for k in n.keywords):
                return True  # glue displays by default
    return False


def _loads(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _stores(node: ast.AST) -> set[str]:
    names = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            names.add(n.id)
        elif isinstance(n, (ast.Subscript, ast.Attribute)) and isinstance(n.ctx, ast.Store):
            base = n.value
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                base = base.value
            if isinstance(base, ast.Name):
                names.add(base.id)
    return names


def _simple_assign(stmt: ast.stmt) -> set[str] | None:
    """Names bound by an assignment to plain names (tuples of names too), else None."""
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        targets = [stmt.target]
    else:
        return None
    names = set()
    for t in targets:
        elts = t.elts if isinstance(t, ast.Tuple) else [t]
        for e in elts:
            if not isinstance(e, ast.Name):
                return None
            names.add(e.id)
    return names


def plan(source: str, other_loads: set[str]) -> tuple[list[int], str | None]:
    """Indices of the top-level statements to move, and a reason if the cell must stay."""
    tree = ast.parse(source)
    body = tree.body
    moved = {i for i, s in enumerate(body) if calls_glue(s)}
    changed = True
    while changed:
        changed = False
        for i, stmt in enumerate(body):
            if i in moved:
                continue
            names = _simple_assign(stmt)
            if not names or names & other_loads:
                continue
            readers = [j for j, s in enumerate(body) if j > i and names & _loads(s)]
            if readers and all(j in moved for j in readers):
                moved.add(i)
                changed = True
    for i in sorted(moved):
        if _shows(body[i]):
            return [], f"statement {i + 1} shows something"
        reads = _loads(body[i])
        binds = _stores(body[i])
        for j in range(i + 1, len(body)):
            if j in moved:
                continue
            if _stores(body[j]) & reads:
                return [], f"statement {j + 1} rebinds {sorted(_stores(body[j]) & reads)}"
            if _loads(body[j]) & binds:
                return [], f"statement {j + 1} reads {sorted(_loads(body[j]) & binds)}"
    return sorted(moved), None


def _spans(source: str, tree: ast.Module, indices: list[int]) -> list[tuple[int, int]]:
    """Line spans (0-based, end exclusive) of statements, with the comments right above."""
    lines = source.splitlines()
    spans = []
    for i in indices:
        stmt = tree.body[i]
        start = stmt.lineno - 1
        while start > 0 and lines[start - 1].lstrip().startswith("#"):
            start -= 1
        spans.append((start, stmt.end_lineno))
    return spans


def _to_source_lines(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    out, blank = [], False
    for line in lines:
        if not line.strip():
            if blank:
                continue
            blank = True
        else:
            blank = False
        out.append(line)
    return [line + "\n" for line in out[:-1]] + out[-1:]


def _is_glue_output(output: dict) -> bool:
    return any(k.startswith(GLUE_MIME) for k in output.get("data", {}))


def split_notebook(nb: dict) -> tuple[int, list[str]]:
    """Split the notebook's glue cells in place; the number changed and the problems."""
    cells = nb["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    loads = {id(c): _loads(ast.parse("".join(c["source"]))) for c in code}
    out, n_changed, problems = [], 0, []
    for cell in cells:
        out.append(cell)
        if cell["cell_type"] != "code":
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        source = "".join(cell["source"])
        tree = ast.parse(source)
        if HIDE in tags or not any(calls_glue(s) for s in tree.body):
            continue
        others = set().union(*(loads[id(c)] for c in code if c is not cell))
        indices, reason = plan(source, others)
        if reason:
            problems.append(f"cell {cell.get('id', '?')}: {reason}; split it by hand")
            continue
        n_changed += 1
        if len(indices) == len(tree.body):
            cell.setdefault("metadata", {})["tags"] = [*tags, HIDE]
            continue
        lines = source.splitlines()
        spans = _spans(source, tree, indices)
        take = {k for a, b in spans for k in range(a, b)}
        kept = [line for k, line in enumerate(lines) if k not in take]
        moved = [line for k, line in enumerate(lines) if k in take]
        cell["source"] = _to_source_lines(kept)
        outputs = cell.get("outputs", [])
        cell["outputs"] = [o for o in outputs if not _is_glue_output(o)]
        glue_cell = {
            "cell_type": "code",
            "execution_count": cell.get("execution_count"),
            "id": f"{cell['id']}-glue" if "id" in cell else None,
            "metadata": {"tags": [HIDE]},
            "outputs": [o for o in outputs if _is_glue_output(o)],
            "source": _to_source_lines(moved),
        }
        if glue_cell["id"] is None:
            del glue_cell["id"]
        out.append(glue_cell)
    nb["cells"] = out
    return n_changed, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if needed")
    args = parser.parse_args(argv)
    status = 0
    for path in args.notebooks:
        text = path.read_text(encoding="utf-8")
        nb = json.loads(text)
        n, problems = split_notebook(nb)
        for p in problems:
            print(f"{path}: {p}", file=sys.stderr)
            status = 1
        if n and args.check:
            print(f"{path}: {n} cell(s) show glue calls")
            status = 1
        elif n:
            path.write_text(
                json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n",
                encoding="utf-8",
            )
            print(f"{path}: {n} cell(s) split or hidden")
    return status


if __name__ == "__main__":
    sys.exit(main())
