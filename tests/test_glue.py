"""mlm_lessons.glue writes exactly what myst_nb.glue writes; IPython is needed only by glue."""

import subprocess
import sys
import textwrap
from unittest import mock

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from mlm_lessons import glue


@pytest.mark.parametrize("value", [0.1234, 42, "text", pd.DataFrame({"a": [1.5, 2.0]})])
@pytest.mark.parametrize("display", [True, False])
def test_same_output_as_myst_nb(value, display):
    import myst_nb.ext.glue as theirs

    with mock.patch("IPython.display.display") as a, \
            mock.patch.object(theirs, "ipy_display") as b:
        glue("key", value, display=display)
        theirs.glue("key", value, display=display)
    assert a.call_args == b.call_args
    bundle = a.call_args.args[0]
    assert all(k.startswith("application/papermill.record/") != display for k in bundle)


def test_figures_glue_like_myst_nb():
    import myst_nb.ext.glue as theirs

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    with mock.patch("IPython.display.display") as a, \
            mock.patch.object(theirs, "ipy_display") as b:
        glue("fig", fig, display=False)
        theirs.glue("fig", fig, display=False)
    plt.close(fig)
    assert a.call_args == b.call_args


# A Python without IPython: an import hook refuses it, as in an environment where only the
# package's declared dependencies are installed (tests/test_packaging.py checks a real one).
_NO_IPYTHON = """
import importlib.abc, sys

class _Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "IPython":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Refuse())
"""


def _run_without_ipython(code: str) -> subprocess.CompletedProcess:
    script = _NO_IPYTHON + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)


def test_import_does_not_need_ipython():
    proc = _run_without_ipython("""
        import mlm_lessons as mlm
        assert "IPython" not in sys.modules
        assert len(mlm.load_dataset("sleepstudy")) == 180
        assert not any(m.split(".")[0] == "IPython" for m in sys.modules)
    """)
    assert proc.returncode == 0, proc.stderr


def test_glue_without_ipython_says_what_is_missing():
    proc = _run_without_ipython("""
        import mlm_lessons as mlm
        try:
            mlm.glue("key", 1.0)
        except ImportError as exc:
            print(exc)
        else:
            raise SystemExit("glue ran without IPython")
    """)
    assert proc.returncode == 0, proc.stderr
    assert "needs IPython" in proc.stdout and "Jupyter kernel" in proc.stdout
