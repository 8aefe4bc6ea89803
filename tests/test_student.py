"""The student edition (``make student``): no solution survives, its own lean lock, it runs.

The edition is built from ``_toc.yml`` into a temporary folder. Its notebooks are the
rendered edition's (no MyST markup) with every exercise and no solution. Its
``requirements.lock`` holds only what running the notebooks needs, each pin equal to the
course's. Then the student's own ``make env`` and ``make lab`` run in that folder, as root
if the tests run as root, with pip barred from any index: the folder's ``.venv`` is given
exactly the distributions of the lean lock (linked from the course environment, so nothing
is downloaded), so ``make env`` fails if the lean lock misses a dependency, JupyterLab must
start from it and answer, and every notebook must run in the student's own kernel, with
the folder's ``mlm_lessons`` and the data inside it (``mlm_lessons/datasets/``).
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import nbformat
import pytest
import yaml
from _jupyterlab import get, running_lab
from _publishing import ROOT, require  # puts scripts/ on sys.path
from packaging.utils import canonicalize_name

ms = importlib.import_module("make_student")
ll = importlib.import_module("lean_lock")
read_toc = importlib.import_module("book_toc").read_toc

code = nbformat.v4.new_code_cell
NOTEBOOKS = read_toc(ROOT).notebooks
# per cell: the book's execution timeout (_config.yml, measured on an idle machine) five
# times over, for test machines whose cores are shared
CELL_TIMEOUT = 5 * yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]["timeout"]
# what a student does not need; none of it may be in the lean lock
DEVELOPMENT = (
    "sphinx",
    "jupyter-book",
    "myst-nb",
    "myst-parser",
    "sphinx-exercise",
    "pydata-sphinx-theme",
    "playwright",
    "pytest",
    "nbval",
    "hypothesis",
    "ruff",
    "coverage",
)


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    archive = ms.build(ROOT, out)
    assert archive.is_file()
    return out / ms.NAME


def _student_path(edition: Path, page) -> Path:
    return edition / page.path.resolve().relative_to(ROOT.resolve())


def _solution_code(nb) -> list[str]:
    """Sources of the code cells inside solution-start ... solution-end in a notebook."""
    found, inside = [], False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            if "{solution-start}" in cell.source:
                inside = True
            if "{solution-end}" in cell.source:
                inside = False
        elif inside and cell.source.strip():
            found.append(cell.source.strip())
    return found


def _solution_text(nb) -> list[str]:
    """The prose lines of every solution of a source notebook (for a leak check)."""
    lines, inside = [], False
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for block in re.findall(r"(?s)```\{solution\}.*?\n```", cell.source):
            lines += block.splitlines()[1:-1]
        src = cell.source
        if "{solution-start}" in src:
            inside = True
            src = src.split("{solution-start}", 1)[1]
        if inside:
            part = src.split("{solution-end}", 1)[0]
            lines += part.splitlines()
        if "{solution-end}" in cell.source:
            inside = False
    # long plain lines only: short ones ("```", ":class: dropdown") are not evidence
    return [
        line.strip()
        for line in lines
        if len(line.strip()) > 40 and "{" not in line and "`" not in line and "$" not in line
    ]


def test_edition_has_every_notebook_data_package_and_licence(edition):
    for page in NOTEBOOKS:
        assert _student_path(edition, page).is_file()
    for name in ("README.md", "Makefile", "requirements.lock", "pyproject.toml", "LICENSE"):
        assert (edition / name).is_file(), name
    assert (edition / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
    assert "MIT" in (edition / "README.md").read_text()
    assert (edition / "mlm_lessons" / "__init__.py").is_file()
    registry = (edition / "mlm_lessons" / "datasets" / "registry.csv").read_text()
    for line in registry.splitlines()[1:]:
        assert (edition / "mlm_lessons" / "datasets" / line.split(",")[0]).is_file(), line
    with zipfile.ZipFile(edition.parent / f"{ms.NAME}.zip") as zf:
        names = set(zf.namelist())
    for page in NOTEBOOKS:
        assert f"{ms.NAME}/{_student_path(edition, page).relative_to(edition)}" in names
    for name in ("requirements.lock", "LICENSE", "mlm_lessons/datasets/registry.csv"):
        assert f"{ms.NAME}/{name}" in names, name


@pytest.mark.parametrize("page", NOTEBOOKS, ids=[p.path.stem for p in NOTEBOOKS])
def test_no_solution_survives_and_exercises_stay(edition, page):
    source = nbformat.read(page.path, as_version=4)
    student = nbformat.read(_student_path(edition, page), as_version=4)
    markdown = "\n".join(c.source for c in student.cells if c.cell_type == "markdown")
    assert "Solution to Exercise" not in markdown and "<details>" not in markdown
    assert not any("solution" in c.metadata.get("mlm_course", {}) for c in student.cells)
    student_code = {c.source.strip() for c in student.cells if c.cell_type == "code"}
    leaked = [src for src in _solution_code(source) if src in student_code]
    assert not leaked, f"solution code in the student notebook: {leaked}"
    text = [line for line in _solution_text(source) if line in markdown]
    assert not text, f"solution text in the student notebook: {text[:3]}"
    n_ex = sum(c.source.count("{exercise}") for c in source.cells)
    assert len(re.findall(r"^### Exercise \d+\.\d+", markdown, re.M)) == n_ex
    assert importlib.import_module("render_notebooks").leftover_markup(student) == []


# --- the lean lock ----------------------------------------------------------------------------


def _pins(path: Path) -> dict[str, str]:
    return {k: v for k, (_, v) in ll.read_lock(path).items()}


def test_lean_lock_pins_are_the_course_pins(edition):
    lean, main = _pins(edition / "requirements.lock"), _pins(ROOT / "requirements.lock")
    assert lean, "the lean lock is empty"
    differ = {k: (v, main.get(k)) for k, v in lean.items() if main.get(k) != v}
    assert not differ, f"pins that differ from requirements.lock: {differ}"
    for name in ll.ROOTS + tuple(ll.package_dependencies(ROOT)):
        assert canonicalize_name(name) in lean, f"{name} missing from the lean lock"
    dev = [name for name in DEVELOPMENT if canonicalize_name(name) in lean]
    assert not dev, f"development packages in the lean lock: {dev}"
    assert len(lean) < len(main)


def test_lean_lock_names_what_is_missing(tmp_path, monkeypatch):
    (tmp_path / "requirements.lock").write_text("numpy==0.0.1\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = []\n')
    with pytest.raises(ll.LockError, match="scipy .* is not pinned in requirements.lock"):
        ll.closure(["scipy"], ll.read_lock(tmp_path / "requirements.lock"))
    with pytest.raises(ll.LockError, match="numpy .* is installed, requirements.lock pins 0.0.1"):
        ll.closure(["numpy"], ll.read_lock(tmp_path / "requirements.lock"))


def test_student_lab_has_the_repository_offline_flags(edition):
    student = (edition / "Makefile").read_text()
    flags, overrides = ms.lab_settings(ROOT / "Makefile")
    assert flags in student and overrides in student
    assert "--notebook-dir=book $(LAB_FLAGS)" in student
    assert "$(if $(filter 0,$(shell id -u)),--allow-root)" in student


# --- the student's make env and make lab, offline -----------------------------------------------


def _link_distribution(name: str, venv: Path, site: Path) -> None:
    """Give ``venv`` the installed files of distribution ``name`` (links) and its scripts."""
    dist = metadata.distribution(name)
    for rel in dist.files or []:
        src = Path(dist.locate_file(rel))
        parts = Path(rel).parts
        if not src.is_file() or "__pycache__" in parts or (parts[:4] == ("..",) * 3 + ("bin",)):
            continue
        target = Path(os.path.normpath(site / rel))
        if not target.is_relative_to(venv) or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(src)
    for ep in dist.entry_points:
        if ep.group != "console_scripts":
            continue
        module, _, attr = ep.value.partition(":")
        script = venv / "bin" / ep.name
        script.write_text(
            f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom {module} import {attr.split('.')[0]}\n"
            f"sys.exit({attr}())\n"
        )
        script.chmod(0o755)


@pytest.fixture(scope="module")
def student_env(edition) -> Path:
    """The edition with a .venv holding exactly the lean lock, then its own `make env`."""
    require(shutil.which("make") is not None, "make not found")
    base = getattr(sys, "_base_executable", sys.executable)
    venv = edition / ".venv"
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)})
    site = Path(purelib)
    for name in [*_pins(edition / "requirements.lock"), "pip"]:
        _link_distribution(name, venv, site)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLM_DATA_DIR")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_CACHE_DIR="1")
    proc = subprocess.run(
        ["make", "env", f"PYTHON={base}"], cwd=edition, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, (
        "the student's make env failed (with only the lean lock's packages and no index):\n"
        + (proc.stdout + proc.stderr)[-3000:]
    )
    assert (venv / ".installed").is_file()
    return venv


def test_student_make_lab_starts_a_server_that_answers(edition, student_env, tmp_path):
    import json

    base = getattr(sys, "_base_executable", sys.executable)
    with running_lab(["make", "-s", "lab", f"PYTHON={base}"], edition, tmp_path) as (
        url,
        token,
        log,
    ):
        status, body = get(f"{url}/api/status", token)
        assert status == 200 and "started" in json.loads(body)
        _, body = get(f"{url}/api/kernelspecs", token)
        spec = json.loads(body)["kernelspecs"]["python3"]["spec"]
        assert Path(spec["argv"][0]) == student_env / "bin" / "python"
        status, _ = get(f"{url}/lab/tree/{NOTEBOOKS[0].path.name}", token)
        assert status == 200
        _, body = get(f"{url}/api/contents/{NOTEBOOKS[0].path.name}?content=0", token)
        assert json.loads(body)["type"] == "notebook"
    # as root, jupyter refuses to start without --allow-root: that it answered is the check


def _run(path: Path, folder: Path, venv: Path) -> str | None:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    # the notebook must use the package and data shipped in the folder, and the folder's
    # own interpreter (the student's kernel), not the course's
    nb.cells.append(
        code(
            "import sys, mlm_lessons as _m, pathlib as _p\n"
            f"_f = _p.Path({str(folder)!r}).resolve()\n"
            "assert _p.Path(_m.__file__).resolve().parent == _f / 'mlm_lessons', _m.__file__\n"
            "_d = _p.Path(_m.data_dir()).resolve()\n"
            "assert _d == _f / 'mlm_lessons' / 'datasets', _d\n"
            f"assert _p.Path(sys.prefix).resolve() == _p.Path({str(venv)!r}).resolve(), sys.prefix"
        )
    )
    specs = KernelSpecManager(kernel_dirs=[str(venv / "share" / "jupyter" / "kernels")])
    km = KernelManager(kernel_name="python3", kernel_spec_manager=specs)
    drop = ("MLM_DATA_DIR", "PYTHONPATH", "MPLBACKEND")  # a student's kernel has none of them
    env = {k: v for k, v in os.environ.items() if k not in drop}
    client = NotebookClient(
        nb,
        km=km,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(path.parent)}},
        allow_errors=False,
    )
    try:
        client.execute(env=env)
    except Exception as exc:  # noqa: BLE001 - report which notebook failed and why
        return f"{path.name}: {type(exc).__name__}: {str(exc)[-800:]}"
    return None


def test_every_student_notebook_runs_in_the_student_kernel(edition, student_env):
    paths = [_student_path(edition, p) for p in NOTEBOOKS]
    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        failures = [f for f in pool.map(lambda p: _run(p, edition, student_env), paths) if f]
    assert not failures, "\n".join(failures)
