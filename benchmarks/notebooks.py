"""Execution time of every chapter notebook in a fresh kernel.

Run: .venv/bin/python benchmarks/notebooks.py [--out DIR] [book/NN-name.ipynb ...]

For each notebook listed in _toc.yml (or given on the command line) this starts a new
kernel in the notebook's folder, runs every cell as a student would, and reports the wall
time of the cells and of the whole run including the kernel start. The notebooks on disk
are not modified.

Besides the table it prints, a run over the whole table of contents writes two CSV files
into ``--out`` (default ``benchmarks/results/``), which the instructors' page
(``book/teaching.md``) shows as they are, so that no run time there is typed by hand:

- ``notebooks.csv``: one row per notebook (chapter number, title, seconds for the cells,
  seconds with the kernel start) and a last row with the totals;
- ``notebooks-machine.csv``: where and when the numbers were measured (CPU model, cores,
  load average at the start, Python and date).

A run on a few named notebooks only prints its table.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from book_toc import read_toc  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def toc_notebooks() -> list[tuple[str, str, Path]]:
    """(chapter number, title, path) of every notebook of _toc.yml, in book order."""
    toc, out, number = read_toc(ROOT), [], 0
    for part in toc.parts:
        for page in part.pages:
            if part.numbered:
                number += 1
            if page.is_notebook:
                out.append((str(number) if part.numbered else "", page.title, page.path))
    return out


def run(path: Path) -> tuple[float, float]:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    t0 = time.perf_counter()
    with client.setup_kernel():
        t1 = time.perf_counter()
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
    t2 = time.perf_counter()
    return t2 - t1, t2 - t0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    """Where and when: CPU, cores, load average, Python, date (UTC)."""
    load = f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "n/a"
    return {
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count()),
        "load average (1 min) at the start": load,
        "Python": platform.python_version(),
        "date (UTC)": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help="folder for notebooks.csv and notebooks-machine.csv",
    )
    args = parser.parse_args(argv)
    if args.notebooks:
        entries = [("", p.stem, p.resolve()) for p in args.notebooks]
    else:
        entries = toc_notebooks()
    about = machine()
    print("| notebook | cells (s) | with kernel start (s) |")
    print("|---|---:|---:|")
    rows, total_cells, total = [], 0.0, 0.0
    for number, title, path in entries:
        cells, whole = run(path)
        total_cells += cells
        total += whole
        rows.append([number, title, path.name, f"{cells:.1f}", f"{whole:.1f}"])
        print(f"| {path.name} | {cells:.1f} | {whole:.1f} |", flush=True)
    print(f"| total | {total_cells:.1f} | {total:.1f} |")
    if args.notebooks:
        return
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "notebooks.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["chapter", "title", "notebook", "cells (s)", "with kernel start (s)"])
        writer.writerows(rows)
        writer.writerow(["", "all notebooks", "", f"{total_cells:.1f}", f"{total:.1f}"])
    with open(args.out / "notebooks-machine.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["measured on", "value"])
        writer.writerows(about.items())
    shown = args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out
    print(f"wrote {shown}/notebooks.csv and notebooks-machine.csv")


if __name__ == "__main__":
    main()
