"""The pins: one lock file, mirrored in environment.yml, and what is installed matches."""

import re
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)$")


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            m = PIN.match(line)
            assert m, f"requirements.lock: {line!r} is not an exact pin (name==version)"
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def _environment() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        m = re.match(r"^\s+-\s+([A-Za-z0-9_.\-]+)==(\S+)$", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_environment_yml_has_the_lock_pins():
    assert _environment() == _lock(), "run scripts/write_environment.py"


def test_key_packages_are_pinned():
    lock = _lock()
    assert lock["jupyter-book"].startswith("1."), "Jupyter Book 2 cannot build offline"
    for name in ["numpy", "pandas", "statsmodels", "matplotlib", "myst-nb", "nbval", "pytest"]:
        assert name in lock, f"{name} must be pinned"


@pytest.mark.parametrize("name", ["numpy", "scipy", "pandas", "statsmodels", "matplotlib"])
def test_installed_versions_match_the_lock(name):
    # stored notebook outputs depend on these versions
    assert metadata.version(name) == _lock()[name]
