"""Start a real ``make lab`` for a test: a free port on 127.0.0.1, a token, no browser.

Used by ``tests/test_lab.py`` (the repository's ``make lab``, the rendered edition) and
``tests/test_student.py`` (the student edition's ``make lab``). Jupyter's configuration,
runtime, data and settings directories are private to the test, so nothing is read from or
written to the user's own Jupyter set-up; the server is stopped through its process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, token: str):
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.read()


@contextlib.contextmanager
def running_lab(cmd: list[str], cwd: Path, tmp: Path, *, settings: dict | None = None):
    """Run ``cmd`` (a ``make lab``) in ``cwd``; yield (base URL, token, log path)."""
    config = tmp / "config"
    config.mkdir(parents=True, exist_ok=True)
    port, token = free_port(), secrets.token_hex(16)
    (config / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "ServerApp": {
                    "ip": "127.0.0.1",
                    "port": port,
                    "port_retries": 0,
                    "open_browser": False,
                },
                "IdentityProvider": {"token": token},
            }
        )
    )
    user_settings = tmp / "settings"
    for name, values in (settings or {}).items():  # e.g. "@jupyterlab/notebook-extension:tracker"
        plugin, _, key = name.partition(":")
        path = user_settings / plugin / f"{key}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTER_DATA_DIR=str(tmp / "data"),
        JUPYTERLAB_SETTINGS_DIR=str(user_settings),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
    )
    for name in ("MPLBACKEND", "PYTHONPATH", "MLM_DATA_DIR"):
        env.pop(name, None)
    log = tmp / "lab.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                get(f"{base}/api/status", token)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"{' '.join(cmd)} exited:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        else:
            pytest.fail(f"JupyterLab did not answer in 120 s:\n{log.read_text()[-3000:]}")
        yield base, token, log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the process group this test started
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
