"""The student edition's lock: the pins of ``requirements.lock`` that running the notebooks needs.

    .venv/bin/python scripts/lean_lock.py            # prints the lean lock

The main lock pins everything the course's authors use (Sphinx, Jupyter Book, Playwright,
pytest, ...). A student needs only the scientific stack, JupyterLab with its kernel, and
what those require: the closure of ``ROOTS`` plus the dependencies that ``pyproject.toml``
declares for ``mlm_lessons``, following the requirements that the installed distributions
declare (``importlib.metadata``; environment markers evaluated for this interpreter, extras
followed where a requirement asks for them). Every pin is copied from the main lock; a
dependency missing from it, or installed at another version (run ``make env``), is an
error. ``make_student.py`` writes the result into the student edition; ``tests/test_student.py``
checks it.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
from book_toc import ROOT  # noqa: E402

# what the notebooks import or start, and setuptools, which the student's `make env` uses to
# install the folder's own mlm_lessons (`pip install --no-build-isolation -e .`)
ROOTS = (
    "numpy",
    "scipy",
    "pandas",
    "statsmodels",
    "matplotlib",
    "patsy",
    "threadpoolctl",
    "jupyterlab",
    "ipykernel",
    "setuptools",
)
PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)==(?P<version>[^\s;#]+)\s*$")


class LockError(ValueError):
    """The main lock cannot give the lean lock (a missing pin, a stale environment)."""


def read_lock(path: Path) -> dict[str, tuple[str, str]]:
    """canonical name -> (name as written, version), in the lock's order."""
    pins: dict[str, tuple[str, str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = PIN.match(line)
        if not m:
            raise LockError(f"{path.name}: {line!r} is not an exact pin (name==version)")
        pins[canonicalize_name(m.group("name"))] = (m.group("name"), m.group("version"))
    return pins


def package_dependencies(root: Path = ROOT) -> list[str]:
    """The names of the dependencies ``pyproject.toml`` declares for the package."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(r).name for r in project.get("dependencies", [])]


def requirements_of(name: str, extras: frozenset[str] = frozenset()) -> list[Requirement]:
    """What the installed distribution ``name`` requires (with ``extras``), markers applied."""
    env = default_environment()
    found = []
    for text in metadata.distribution(name).requires or []:
        req = Requirement(text)
        if req.marker is None:
            found.append(req)
            continue
        wanted = ("",) + tuple(sorted(extras))
        if any(req.marker.evaluate({**env, "extra": extra}) for extra in wanted):
            found.append(req)
    return found


def closure(roots: list[str], pins: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Every distribution the roots need: canonical name -> the reason it is included."""
    why: dict[str, str] = {}
    queue = [(canonicalize_name(r), frozenset(), "wanted by the student edition") for r in roots]
    seen: set[tuple[str, frozenset]] = set()
    while queue:
        name, extras, reason = queue.pop(0)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        if name not in pins:
            raise LockError(f"{name} ({reason}) is not pinned in requirements.lock")
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise LockError(f"{name} is pinned but not installed: run make env") from None
        if installed != pins[name][1]:
            raise LockError(
                f"{name} {installed} is installed, requirements.lock pins {pins[name][1]}: "
                "run make env"
            )
        why.setdefault(name, reason)
        for req in requirements_of(name, extras):
            queue.append(
                (canonicalize_name(req.name), frozenset(req.extras), f"required by {name}")
            )
    return why


def lean_lock(root: Path = ROOT) -> str:
    """The text of the lean lock (the main lock's lines, in its order)."""
    pins = read_lock(root / "requirements.lock")
    keep = closure(list(ROOTS) + package_dependencies(root), pins)
    lines = [
        "# The packages the student notebooks need, pinned as in the course's requirements.lock",
        "# (written by scripts/lean_lock.py; do not edit).",
    ]
    lines += [f"{n}=={v}" for key, (n, v) in pins.items() if key in keep]
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.stdout.write(lean_lock(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
