"""`make lab` starts JupyterLab on the book with the course kernel, at the launch links' URL.

The test runs the real ``make lab`` (with a private Jupyter config: a free port on
127.0.0.1, a token, no browser) and asks the server's REST API for the kernel and the
notebooks. That every notebook then runs top to bottom in that kernel is nbval's job.
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from _publishing import ROOT, require  # puts scripts/ on sys.path

read_toc = importlib.import_module("book_toc").read_toc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str):
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.read()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require(shutil.which("make") is not None, "make not found")
    config = tmp_path_factory.mktemp("jupyter-config")
    port, token = _free_port(), secrets.token_hex(16)
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
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config))
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path_factory.mktemp("jupyter-runtime"))
    log = config / "lab.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["make", "-s", "lab", f"PYTHON={sys.executable}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                _get(f"{base}/api/status", token)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"make lab exited:\n{log.read_text()[-2000:]}")
                time.sleep(0.5)
        else:
            pytest.fail(f"JupyterLab did not answer in 60 s:\n{log.read_text()[-2000:]}")
        yield base, token
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the process group this test started
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def test_course_kernel_is_the_default(lab):
    base, token = lab
    _, body = _get(f"{base}/api/kernelspecs", token)
    specs = json.loads(body)
    assert specs["default"] == "python3"
    spec = specs["kernelspecs"]["python3"]["spec"]
    assert spec["display_name"] == "Python 3 (mlm-course)"
    # the kernel is the course environment's interpreter
    assert Path(spec["argv"][0]).resolve() == Path(sys.executable).resolve()


def test_every_notebook_is_served_where_the_launch_links_point(lab):
    base, token = lab
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    lab_root = ROOT / config["mlm_lab_root"]
    assert config["mlm_lab_url"].startswith("http://localhost:8888/lab/tree")
    notebooks = read_toc(ROOT).notebooks
    if not notebooks:
        pytest.skip("no chapter notebook in _toc.yml yet")
    for page in notebooks:
        rel = page.path.resolve().relative_to(lab_root.resolve()).as_posix()
        status, body = _get(f"{base}/api/contents/{rel}?content=0", token)
        assert status == 200 and json.loads(body)["type"] == "notebook", rel
        status, _ = _get(f"{base}/lab/tree/{rel}", token)
        assert status == 200, rel
