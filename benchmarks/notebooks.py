"""Execution time of every chapter notebook in a fresh kernel.

Run: .venv/bin/python benchmarks/notebooks.py [book/NN-name.ipynb ...]

For each notebook listed in _toc.yml (or given on the command line) this starts a new
kernel in book/, runs every cell as a student would, and reports the wall time of the cells
and of the whole run including the kernel start. The notebooks on disk are not modified.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def toc_notebooks() -> list[Path]:
    files = re.findall(r"^\s+- file: (\S+)", (ROOT / "_toc.yml").read_text(), re.M)
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]


def run(path: Path) -> tuple[float, float]:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    with client.setup_kernel():
        t1 = time.perf_counter()
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
    t2 = time.perf_counter()
    return t2 - t1, t2 - t0


def main() -> None:
    paths = [Path(p).resolve() for p in sys.argv[1:]] or toc_notebooks()
    print("| notebook | cells (s) | with kernel start (s) |")
    print("|---|---:|---:|")
    total = 0.0
    for path in paths:
        cells, whole = run(path)
        total += whole
        print(f"| {path.name} | {cells:.1f} | {whole:.1f} |", flush=True)
    print(f"| total | | {total:.1f} |")


if __name__ == "__main__":
    main()
