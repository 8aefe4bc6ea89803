"""Helpers shared by the publishing tests (browser, handouts, student edition).

Tests that need a system tool (Chromium, TeX Live, poppler) skip with a clear reason when it
is missing. With ``MLM_REQUIRE_ALL=1`` (set by ``.ci/run``) a missing tool is a failure
instead, so CI proves the browser and PDF checks every time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
sys.path.insert(0, str(ROOT / "scripts"))


def strict() -> bool:
    return os.environ.get("MLM_REQUIRE_ALL", "") not in ("", "0")


def require(ok: bool, reason: str) -> None:
    """Skip (or, under MLM_REQUIRE_ALL=1, fail) when a requirement is not met."""
    if ok:
        return
    if strict():
        pytest.fail(f"{reason} (MLM_REQUIRE_ALL=1 turns this skip into a failure)")
    pytest.skip(f"{reason}; skipped (set MLM_REQUIRE_ALL=1 to make this a failure)")


def newest_source_mtime() -> float:
    """Modification time of the newest file that the book is built from."""
    paths = [ROOT / "_config.yml", ROOT / "_toc.yml"]
    for folder in ("book", "latex", "scripts", "assets"):
        paths.extend(p for p in (ROOT / folder).rglob("*") if p.is_file())
    return max(p.stat().st_mtime for p in paths if p.exists())


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
        pytest.fail(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{tail}")
    return proc
