"""Result objects display readably: text for print() and notebooks, HTML for the book.

Every public frozen dataclass of mlm_lessons derives from ``_display.ResultDisplay``; its
``repr`` stays the exact dataclass repr, its displays round for reading and never change a
value.
"""

from __future__ import annotations

import dataclasses
import html.parser
import math

import numpy as np
import pandas as pd
import pytest
from IPython.core.formatters import format_display_data
from IPython.lib.pretty import pretty

import mlm_lessons as mlm
from mlm_lessons._display import ResultDisplay, _format_float, format_value


def _public_dataclasses():
    objs = (getattr(mlm, name) for name in mlm.__all__)
    return [o for o in objs if isinstance(o, type) and dataclasses.is_dataclass(o)]


def test_every_public_result_class_has_the_displays():
    classes = _public_dataclasses()
    names = {c.__name__ for c in classes}
    # the results named in the course's issues, among all the others
    assert {"WaldResult", "LRTResult", "BootstrapLRTResult", "ICCResult", "GLSResult"} <= names
    assert {"GroupInfluence", "MixedFit"} <= names
    # a table (ModelTable) lays itself out: its own text and HTML, not a list of fields
    own = {c.__name__ for c in classes if "_repr_html_" in vars(c) and "__str__" in vars(c)}
    assert own <= {"ModelTable"}, own
    missing = [c.__name__ for c in classes
               if not issubclass(c, ResultDisplay) and c.__name__ not in own]
    assert not missing, f"no ResultDisplay base: {missing}"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (48.23344482540527, "48.23"),  # the WaldResult statistic
        (3.893689357821984e-146, "3.894e-146"),
        (-23557.94, "-23557.9"),  # a log-likelihood keeps one decimal
        (0.95, "0.95"),  # an exact value keeps no padding zeros
        (552.04, "552.0"),
        (0.1736, "0.1736"),
        (0.00099, "9.900e-04"),
        (12345678.9, "1.235e+07"),
        (0.0, "0"),
        (math.nan, "NaN"),
        (-math.inf, "-inf"),
    ],
)
def test_numbers_to_four_significant_digits(value, text):
    assert _format_float(value) == text
    assert format_value(np.float64(value)) == text


def test_other_values():
    assert format_value(True) == "True" and format_value(np.bool_(False)) == "False"
    assert format_value(np.int64(7185)) == "7185"
    assert format_value(("ses", "meanses")) == "ses, meanses"
    assert format_value(()) == "(none)"
    assert format_value(0.9, ".0%") == "90%"
    draws = np.array([0.5, 1.0, np.nan, 4.0])
    assert format_value(draws) == "4 values; min 0.5, median 1, max 4; 1 NaN"


@dataclasses.dataclass(frozen=True)
class _Example(ResultDisplay):
    statistic: float
    label: str
    table: pd.DataFrame
    share: float = dataclasses.field(default=0.25, metadata={"format": ".0%"})
    secret: object = dataclasses.field(default=None, repr=False)


class _Cells(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def test_text_and_html_of_a_result():
    frame = pd.DataFrame({"term": ["a", "b"], "estimate": [1.23456, -0.000012345]})
    r = _Example(48.23344482540527, "<b>x</b>", frame, secret="hidden")
    text = str(r)
    assert text.splitlines()[:3] == ["_Example", "  statistic  48.23", "  label      <b>x</b>"]
    assert "1.235" in text and "-1.234e-05" in text  # the frame, formatted like the scalars
    assert "share      25%" in text
    assert "secret" not in text and "hidden" not in text
    assert pretty(r) == text  # what a notebook's plain-text display shows

    page = r._repr_html_()
    parser = _Cells()
    parser.feed(page)
    assert parser.tags.count("table") == 2  # the result and its nested frame
    assert "<b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page  # strings are escaped
    assert "48.23" in parser.text and "25%" in parser.text and "hidden" not in page
    assert repr(r).startswith("_Example(statistic=48.23344482540527, label=")  # exact


@pytest.fixture(scope="module")
def fits(hsb):
    null = mlm.fit_null(hsb, "mathach", "school")
    fit = mlm.fit_random_intercept(hsb, "mathach", "school", predictors=["ses", "meanses"])
    return null, fit


def test_course_results_in_a_notebook(fits):
    null, fit = fits
    results = [
        mlm.wald_test(fit, ["ses", "meanses"]),
        mlm.lrt(null, fit),
        mlm.icc_anova(fit.data, "mathach", "school"),
        fit,
        fit.matrices(),
        fit.fingerprint,
        mlm.fit_glmm(fit.data.assign(high=lambda d: (d.mathach > 15).astype(int)),
                     "high ~ ses + (1 | school)", family="binomial"),
    ]
    for r in results:
        bundle, _ = format_display_data(r)
        assert bundle["text/plain"] == str(r)
        assert bundle["text/html"].startswith('<table class="mlm-result">')
        fields = [name for name, _, _ in r._display_fields()]
        if type(r)._display_fields is ResultDisplay._display_fields:
            assert fields == [f.name for f in dataclasses.fields(r) if f.repr]
        elif hasattr(r, "loglik"):  # a fit chooses its lines: the model, statistics, tables
            assert {"formula", "n_obs", "loglik", "fixed", "variance components"} <= set(fields)
        for name in fields:
            assert f'<th scope="row">{name}</th>' in bundle["text/html"]
        assert "_design" not in bundle["text/html"]  # internals (repr=False) stay out
        # scalar lines stay short: no 17-digit floats running out of the box
        scalar_lines = [line for line in str(r).splitlines()
                        if not line.startswith("    ") and not line.startswith("  formula ")]
        assert max(map(len, scalar_lines)) < 60, str(r)
    wald = results[0]
    assert f"statistic  {_format_float(wald.statistic)}" in str(wald)
    assert wald.statistic == pytest.approx(float(str(wald).split()[2]), rel=1e-3)
