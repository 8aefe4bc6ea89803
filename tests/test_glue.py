"""mlm_lessons.glue writes exactly what myst_nb.glue writes."""

from unittest import mock

import matplotlib.pyplot as plt
import pandas as pd
import pytest

import mlm_lessons._glue as ours
from mlm_lessons import glue


@pytest.mark.parametrize("value", [0.1234, 42, "text", pd.DataFrame({"a": [1.5, 2.0]})])
@pytest.mark.parametrize("display", [True, False])
def test_same_output_as_myst_nb(value, display):
    import myst_nb.ext.glue as theirs

    with mock.patch.object(ours, "ipy_display") as a, \
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
    with mock.patch.object(ours, "ipy_display") as a, \
            mock.patch.object(theirs, "ipy_display") as b:
        glue("fig", fig, display=False)
        theirs.glue("fig", fig, display=False)
    plt.close(fig)
    assert a.call_args == b.call_args
