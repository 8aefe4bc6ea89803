"""The package as a user installs it: built, checked, installed outside the repository, run.

The wheel is built from the repository (``python -m build --no-isolation``: sdist first,
then the wheel from the unpacked sdist, so the sdist is proved complete too), then installed
into a fresh virtual environment in a temporary folder, with no access to the project's
environment: ``pip install --no-index --find-links .venv/wheelhouse`` installs the wheel and
exactly the dependencies it declares, from the wheels that ``make env`` downloads at the
lock's versions. Nothing comes from the network or the repository, so whatever the wheel
forgot to carry or to declare fails here. From a temporary working directory, that
environment's Python then imports the package (without IPython, which the package must not
need), loads every data set and the published tables, and, once ipykernel is added as a
student's Jupyter would add it, runs chapter 8 top to bottom in a kernel of that
environment. About a minute; ``make test`` and CI run it (``-m packaging`` selects it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pandas as pd
import pytest
from _publishing import require

import mlm_lessons as mlm

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parent.parent
WHEELHOUSE = ROOT / ".venv" / "wheelhouse"
CFFCONVERT = ROOT / ".venv" / "cffconvert" / "bin" / "cffconvert"
CHAPTER = ROOT / "book" / "08-random-coefficient.ipynb"
DATA_FILES = set(pd.read_csv(mlm.data_dir() / "registry.csv")["file"])


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        pytest.fail(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{tail}")
    return proc


def _clean_env(**extra) -> dict[str, str]:
    """The environment of a user's shell: nothing pointing into the repository or its venv."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "MLM_DATA_DIR", "MPLBACKEND",
            "PYTHONSTARTUP", "PYTHONUSERBASE", "JUPYTER_PATH", "JUPYTER_CONFIG_DIR")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # no machine-wide index or find-links
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> SimpleNamespace:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT])
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(out.iterdir())
    return SimpleNamespace(wheel=wheels[0], sdist=sdists[0])


# --- the release files --------------------------------------------------------------------


def test_twine_check(dist):
    proc = _run([sys.executable, "-m", "twine", "check", "--strict", dist.wheel, dist.sdist])
    assert proc.stdout.count("PASSED") == 2, proc.stdout


def test_check_wheel_contents(dist):
    proc = _run([sys.executable, "-m", "check_wheel_contents", dist.wheel])
    assert proc.stdout.strip().endswith("OK"), proc.stdout


def test_wheel_carries_data_licence_and_types(dist):
    with zipfile.ZipFile(dist.wheel) as zf:
        names = set(zf.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(info).decode()
    datasets = {n.removeprefix("mlm_lessons/datasets/") for n in names
                if n.startswith("mlm_lessons/datasets/")}
    assert datasets == DATA_FILES | {"registry.csv", "README.md"}
    assert "mlm_lessons/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    # only the package: no tests, book, notebooks or build leftovers
    assert {n.split("/")[0] for n in names} == {"mlm_lessons", info.split("/")[0]}
    assert f"Version: {mlm.__version__}\n" in metadata
    assert "License-Expression: MIT\n" in metadata
    assert "Project-URL: Repository, https://github.com/mlm-course/mlm-course\n" in metadata
    requires = re.findall(r"^Requires-Dist: ([A-Za-z0-9_.-]+)[^;\n]*$", metadata, re.M)
    assert set(requires) == {"numpy", "scipy", "pandas", "statsmodels", "patsy", "matplotlib",
                             "cycler", "threadpoolctl"}
    assert "Description-Content-Type: text/markdown" in metadata


def test_sdist_has_what_the_wheel_is_built_from(dist):
    with tarfile.open(dist.sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    for name in ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "CITATION.cff",
                 "mlm_lessons/__init__.py", "mlm_lessons/py.typed",
                 "mlm_lessons/datasets/registry.csv", "mlm_lessons/datasets/README.md"):
        assert name in names, name
    assert {f"mlm_lessons/datasets/{f}" for f in DATA_FILES} <= names
    assert not any(n.startswith(("tests/", "book/", "data/")) for n in names)


def test_one_version_everywhere(dist):
    version = mlm.__version__
    assert dist.wheel.name == f"mlm_lessons-{version}-py3-none-any.whl"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and "\nversion =" not in pyproject.split(
        "[tool.setuptools.dynamic]")[0], "the version's one source is mlm_lessons.__version__"
    citation = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^version: (\S+)$", citation, re.M).group(1) == version
    newest = re.search(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert newest.group(1) == version, "the newest CHANGELOG.md entry is the package's version"


def test_citation_cff_is_valid():
    require(CFFCONVERT.exists(), f"{CFFCONVERT} not found (make env installs it)")
    proc = _run([CFFCONVERT, "--validate", "-i", ROOT / "CITATION.cff"])
    assert "valid according to schema version 1.2.0" in proc.stdout


def test_cffconvert_rejects_a_broken_citation(tmp_path):
    # the validator really validates: a key the schema does not know fails
    require(CFFCONVERT.exists(), f"{CFFCONVERT} not found (make env installs it)")
    bad = tmp_path / "CITATION.cff"
    bad.write_text((ROOT / "CITATION.cff").read_text() + "\nrelease-notes: none\n")
    proc = subprocess.run([str(CFFCONVERT), "--validate", "-i", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "release-notes" in proc.stdout + proc.stderr


# --- installed outside the repository -------------------------------------------------------

_PROBE = """
import importlib.util, json, sys
from pathlib import Path

assert importlib.util.find_spec("IPython") is None, "IPython is installed"
import mlm_lessons as mlm

report = {"file": mlm.__file__, "data_dir": str(mlm.data_dir()), "prefix": sys.prefix,
          "version": mlm.__version__, "ipython_imported": "IPython" in sys.modules,
          "datasets": {}}
for name in mlm.list_datasets()["name"]:
    frame = mlm.load_dataset(name)
    report["datasets"][name] = [list(frame.shape), list(frame.columns),
                                round(float(frame.select_dtypes("number").to_numpy().sum()), 6)]
published = mlm.load_reference("raudenbush_bryk_2002")
report["reference"] = [list(published.shape), float(published["published"].sum())]
try:
    mlm.glue("x", 1)
except ImportError as exc:
    report["glue"] = str(exc)
fit = mlm.fit_random_coefficient(mlm.center(mlm.load_dataset("hsb"), "ses", group="school",
                                            name="cses"), "mathach", "school",
                                 predictors=["cses"])
report["loglik"] = round(fit.loglik, 6)
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory) -> SimpleNamespace:
    """A fresh environment with the wheel; probed without IPython, then given ipykernel."""
    require(WHEELHOUSE.is_dir() and any(WHEELHOUSE.glob("numpy-*.whl")),
            f"{WHEELHOUSE} has no wheels (make env downloads them)")
    base = tmp_path_factory.mktemp("user")
    assert not base.resolve().is_relative_to(ROOT)
    venv, work = base / "venv", base / "work"
    work.mkdir()
    env = _clean_env()
    # the base interpreter, not the project's venv; no system site-packages
    _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", venv], env=env)
    python = venv / "bin" / "python"
    pip = [python, "-m", "pip", "install", "--quiet", "--no-index", "--find-links", WHEELHOUSE]
    _run([*pip, dist.wheel], env=env, cwd=work)
    _run([python, "-m", "pip", "check"], env=env, cwd=work)
    probe = _run([python, "-c", _PROBE], env=env, cwd=work)
    report = json.loads(probe.stdout.strip().splitlines()[-1])
    _run([*pip, "ipykernel"], env=env, cwd=work)
    return SimpleNamespace(venv=venv, python=python, work=work, env=env, report=report)


def test_installed_package_is_the_wheel_not_the_repository(installed):
    report = installed.report
    site = Path(report["file"]).resolve()
    assert site.is_relative_to(installed.venv.resolve()), report["file"]
    assert "site-packages" in site.parts and not site.is_relative_to(ROOT)
    assert Path(report["data_dir"]).resolve() == site.parent / "datasets"
    assert report["version"] == mlm.__version__


def test_import_works_without_ipython(installed):
    assert installed.report["ipython_imported"] is False
    assert "needs IPython" in installed.report["glue"]


def test_installed_package_loads_every_dataset_as_the_repository_does(installed):
    expected = {}
    for name in mlm.list_datasets()["name"]:
        frame = mlm.load_dataset(name)
        expected[name] = [list(frame.shape), list(frame.columns),
                          round(float(frame.select_dtypes("number").to_numpy().sum()), 6)]
    assert installed.report["datasets"] == expected
    published = mlm.load_reference("raudenbush_bryk_2002")
    assert installed.report["reference"] == [list(published.shape),
                                             float(published["published"].sum())]
    # and fits: lme4's REML log-likelihood of the Table 4.4 model, -23357.117 (atol 1e-3)
    assert installed.report["loglik"] == pytest.approx(-23357.117, abs=1e-3)


def _glued(nb) -> dict[str, str]:
    prefix = "application/papermill.record/text/plain"
    return {out["metadata"]["scrapbook"]["name"]: out["data"][prefix]
            for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", [])
            if out.get("output_type") == "display_data" and prefix in out.get("data", {})}


def test_chapter_runs_against_the_installed_package(installed):
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    stored = nbformat.read(CHAPTER, as_version=4)
    nb = nbformat.read(CHAPTER, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(textwrap.dedent(f"""\
        import sys, pathlib, mlm_lessons
        assert pathlib.Path(sys.prefix).resolve() == pathlib.Path({str(installed.venv)!r}).resolve()
        assert pathlib.Path(mlm_lessons.__file__).resolve().is_relative_to(
            pathlib.Path({str(installed.venv)!r}).resolve())
        assert pathlib.Path.cwd().resolve() == pathlib.Path({str(installed.work)!r}).resolve()
        print(mlm_lessons.__file__)""")))
    kernels = installed.work.parent / "kernels"
    (kernels / "wheel").mkdir(parents=True, exist_ok=True)
    (kernels / "wheel" / "kernel.json").write_text(json.dumps({
        "argv": [str(installed.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "mlm_lessons from the wheel", "language": "python",
        "env": {"PYTHONHASHSEED": "0"},
    }))
    km = KernelManager(kernel_name="wheel",
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    client = NotebookClient(nb, km=km, timeout=300, allow_errors=False,
                            resources={"metadata": {"path": str(installed.work)}})
    client.execute(env=installed.env)
    streams = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
               if out.get("output_type") == "stream"]
    assert not [s for s in streams if s["name"] == "stderr"], "the chapter wrote to stderr"
    assert Path(streams[-1]["text"].strip()).resolve().is_relative_to(installed.venv.resolve())
    # every number glued into the prose is the one stored in the repository's notebook
    assert _glued(nb) == _glued(stored)
