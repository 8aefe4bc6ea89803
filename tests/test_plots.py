"""Tests of mlm_lessons.plots: what each figure draws, its labels, determinism, and errors.

The numbers drawn are checked against independent computations (numpy/scipy on the raw
data, the lme4 reference BLUPs), not against the plotting code itself.
"""

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from numpy.testing import assert_allclose
from scipy import stats

import mlm_lessons as mlm
from mlm_lessons.plots import PALETTE, STYLE

REF = json.loads((Path(__file__).parent / "reference" / "lme4_reference.json").read_text())

OKABE_ITO = {
    "#e69f00",
    "#56b4e9",
    "#009e73",
    "#f0e442",
    "#0072b2",
    "#d55e00",
    "#cc79a7",
    "#000000",
}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def tiny():
    """Three groups with hand-checkable means, slopes and spreads."""
    return pd.DataFrame(
        {
            "g": ["a", "a", "a", "b", "b", "b", "c", "c"],
            "x": [0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 1.0, 3.0],
            "y": [1.0, 2.0, 3.0, 5.0, 5.0, 5.0, 0.0, 4.0],
            "z": [0, 0, 0, 1, 1, 1, 1, 1],
        }
    )


@pytest.fixture(scope="module")
def sleep_fit(sleepstudy):
    return mlm.fit_random_coefficient(sleepstudy, "reaction", "subject", predictors=["days"])


@pytest.fixture(scope="module")
def hsb_null(hsb):
    return mlm.fit_null(hsb, "mathach", "school")


def _labelled(ax):
    assert isinstance(ax, Axes)
    assert ax.get_xlabel().strip() and ax.get_ylabel().strip()


def _errorbar_xy(ax):
    line = ax.containers[0].lines[0]
    return np.asarray(line.get_xdata()), np.asarray(line.get_ydata())


# --- palette and style -----------------------------------------------------------------------


def test_palette_is_okabe_ito():
    # Okabe & Ito (2008) list these eight colours; all must be present, none other.
    assert {c.lower() for c in PALETTE} == OKABE_ITO
    assert len(PALETTE) == 8


def test_style_applies_to_rcparams():
    with plt.rc_context(STYLE):
        colours = [to_hex(c) for c in plt.rcParams["axes.prop_cycle"].by_key()["color"]]
        assert colours == [c.lower() for c in PALETTE]
        assert plt.rcParams["axes.labelsize"] >= 11


# --- plot_group_means ------------------------------------------------------------------------


def test_group_means_values_and_t_intervals(tiny):
    ax = mlm.plot_group_means(tiny, "y", "g", ylabel="Mean y (points)")
    _labelled(ax)
    assert ax.get_ylabel() == "Mean y (points)"
    x, y = _errorbar_xy(ax)
    # hand means: a 2, b 5, c 2 -> sorted by mean (stable on ties by group label): a, c, b
    assert_allclose(y, [2.0, 2.0, 5.0])
    assert_allclose(x, [1, 2, 3])
    # interval of group a: sd 1, n 3, t(2) quantile 4.302653 (t table)
    segs = ax.containers[0].lines[2][0].get_segments()
    half = (segs[0][1][1] - segs[0][0][1]) / 2
    assert_allclose(half, 4.302653 / np.sqrt(3), rtol=1e-6)
    # grand mean line = mean of all rows (25/8), not of group means
    grand = [ln for ln in ax.lines if ln.get_label() == "grand mean"][0]
    assert_allclose(grand.get_ydata()[0], 25 / 8)


def test_group_means_hsb_count_and_order(hsb):
    ax = mlm.plot_group_means(hsb, "mathach", "school")
    x, y = _errorbar_xy(ax)
    assert len(x) == REF["icc_anova"]["J"]
    assert np.all(np.diff(y) >= 0)
    # mean of the plotted school means equals the lme4 script's school-mean summary:
    # sum of school means / J; checked against the raw data independently.
    assert_allclose(y.mean(), hsb.groupby("school")["mathach"].mean().mean(), rtol=1e-12)


def test_group_means_order_size(tiny):
    ax = mlm.plot_group_means(tiny, "y", "g", order="size")
    _, y = _errorbar_xy(ax)
    # sizes: c 2, a 3 (mean 2), b 3 (mean 5)
    assert_allclose(y, [2.0, 2.0, 5.0])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["c", "a", "b"]


def test_group_means_conf_level_changes_width(tiny):
    def width(level):
        ax = mlm.plot_group_means(tiny, "y", "g", conf_level=level)
        seg = ax.containers[0].lines[2][0].get_segments()[0]
        return seg[1][1] - seg[0][1]

    ratio = width(0.99) / width(0.95)
    assert_allclose(ratio, stats.t.ppf(0.995, 2) / stats.t.ppf(0.975, 2), rtol=1e-10)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"order": "median"}, ValueError, "order must be"),
        ({"conf_level": 95}, ValueError, "conf_level must be between"),
    ],
)
def test_group_means_bad_options(tiny, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        mlm.plot_group_means(tiny, "y", "g", **kwargs)


def test_group_means_missing_column(tiny):
    with pytest.raises(KeyError, match="'score' not in data"):
        mlm.plot_group_means(tiny, "score", "g")
    with pytest.raises(KeyError, match="'school' not in data"):
        mlm.plot_group_means(tiny, "y", "school")


def test_uses_given_axes(tiny):
    fig, (a1, a2) = plt.subplots(1, 2)
    assert mlm.plot_group_means(tiny, "y", "g", ax=a2) is a2
    assert not a1.has_data()


# --- plot_within_spread ----------------------------------------------------------------------


def test_within_spread_sample_and_order(hsb):
    ax = mlm.plot_within_spread(hsb, "mathach", "school", n_groups=12, seed=3)
    _labelled(ax)
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert len(ticks) == 12 and len(set(ticks)) == 12
    assert set(ticks) <= set(hsb["school"])
    med = hsb.groupby("school")["mathach"].median()
    assert np.all(np.diff(med[ticks].to_numpy()) >= 0)
    # one scatter per group holding exactly that group's rows
    sizes = hsb.groupby("school").size()
    assert [len(c.get_offsets()) for c in ax.collections] == list(sizes[ticks])


def test_within_spread_deterministic_and_seed_matters(hsb):
    def ticks(seed):
        ax = mlm.plot_within_spread(hsb, "mathach", "school", n_groups=10, seed=seed)
        return [t.get_text() for t in ax.get_xticklabels()]

    assert ticks(1) == ticks(1)
    assert ticks(1) != ticks(2)


def test_within_spread_all_groups(tiny):
    ax = mlm.plot_within_spread(tiny, "y", "g", n_groups=None)
    # medians: a 2, c 2, b 5
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "c", "b"]


def test_within_spread_bad_n_groups(hsb):
    with pytest.raises(ValueError, match="n_groups must be an integer >= 1"):
        mlm.plot_within_spread(hsb, "mathach", "school", n_groups=0)


def test_within_spread_missing_values(tiny):
    bad = tiny.assign(y=tiny["y"].where(tiny.index != 0))
    with pytest.raises(ValueError, match="'y' has 1 missing"):
        mlm.plot_within_spread(bad, "y", "g")


# --- plot_spaghetti --------------------------------------------------------------------------


def test_spaghetti_lines_are_group_ols(tiny):
    ax = mlm.plot_spaghetti(tiny, "y", "x", "g", xlabel="x (units)", ylabel="y (points)")
    _labelled(ax)
    assert len(ax.lines) == 3
    for line in ax.lines:
        xs, ys = line.get_xdata(), line.get_ydata()
        slope = (ys[1] - ys[0]) / (xs[1] - xs[0])
        # groups a (slope 1, x 0..2), b (0, x 0..2), c (2, x 1..3) by hand
        assert (xs[0], xs[1], round(slope, 12)) in {
            (0.0, 2.0, 1.0),
            (0.0, 2.0, 0.0),
            (1.0, 3.0, 2.0),
        }


def test_spaghetti_sleepstudy_slopes_match_polyfit(sleepstudy):
    ax = mlm.plot_spaghetti(sleepstudy, "reaction", "days", "subject")
    assert len(ax.lines) == 18
    got = sorted((ln.get_ydata()[1] - ln.get_ydata()[0]) / 9 for ln in ax.lines)
    want = sorted(
        np.polyfit(d["days"], d["reaction"], 1)[0] for _, d in sleepstudy.groupby("subject")
    )
    assert_allclose(got, want, rtol=1e-9)


def test_spaghetti_sample_and_hue(hsb):
    ax = mlm.plot_spaghetti(hsb, "mathach", "ses", "school", n_groups=25, seed=0, hue="sector")
    assert len(ax.lines) == 25
    assert len(ax.get_legend().get_texts()) == 2
    colours = {to_hex(ln.get_color()) for ln in ax.lines}
    assert len(colours) == 2 and colours <= OKABE_ITO


def test_spaghetti_skips_constant_predictor(tiny):
    flat = tiny.assign(x=np.where(tiny["g"] == "c", 1.0, tiny["x"]))
    assert len(mlm.plot_spaghetti(flat, "y", "x", "g").lines) == 2


def test_spaghetti_hue_must_be_level2(tiny):
    with pytest.raises(ValueError, match="hue column 'x' varies within 3 group"):
        mlm.plot_spaghetti(tiny, "y", "x", "g", hue="x")


def test_spaghetti_non_numeric_predictor(tiny):
    with pytest.raises(TypeError, match="'g' must be numeric"):
        mlm.plot_spaghetti(tiny, "y", "g", "x")


# --- plot_fitted_lines -----------------------------------------------------------------------


def test_fitted_lines_match_lme4_coefficients(sleep_fit):
    ax = mlm.plot_fitted_lines(sleep_fit, "days", ylabel="Reaction time (ms)")
    _labelled(ax)
    assert len(ax.lines) == 18 + 1
    # population line: lme4 fixef of sleep_random_slope (REML); fixed effects agree to 1e-5
    fx = REF["sleep_random_slope"]["REML"]["fixef"]
    pop = ax.lines[-1]
    assert_allclose(pop.get_ydata(), fx["(Intercept)"] + fx["Days"] * pop.get_xdata(), rtol=1e-5)
    assert pop.get_linewidth() > ax.lines[0].get_linewidth()
    # each subject's line = lme4 fixef + BLUP for the first five subjects (sorted ids);
    # BLUPs of a random-slope model agree with lme4 to about 1e-3 relative
    ranef = REF["sleep_random_slope"]["REML"]["ranef_first5"]
    order = list(pd.unique(sleep_fit.data["subject"]))
    for k, sid in enumerate(ranef["group_ids"]):
        line = ax.lines[order.index(sid)]
        xs, ys = line.get_xdata(), line.get_ydata()
        assert_allclose(xs, [0, 9])
        b0 = fx["(Intercept)"] + ranef["values"]["(Intercept)"][k]
        b1 = fx["Days"] + ranef["values"]["Days"][k]
        assert_allclose(ys, b0 + b1 * xs, rtol=2e-3)


def test_fitted_lines_sample_is_deterministic(hsb):
    fit = mlm.fit_random_intercept(hsb, "mathach", "school", predictors=["ses"])

    def ys(seed):
        ax = mlm.plot_fitted_lines(fit, "ses", n_groups=15, seed=seed)
        return [tuple(ln.get_ydata()) for ln in ax.lines]

    a = ys(4)
    assert len(a) == 16
    assert a == ys(4)
    assert a != ys(5)
    # random-intercept model: every group line is parallel to the population line
    ax = mlm.plot_fitted_lines(fit, "ses", n_groups=15, seed=4)
    slopes = [np.diff(ln.get_ydata())[0] / np.diff(ln.get_xdata())[0] for ln in ax.lines]
    assert_allclose(slopes, fit.params["ses"], rtol=1e-10)


def test_fitted_lines_errors(sleep_fit, tiny):
    with pytest.raises(KeyError, match="predictor 'hours' not in data"):
        mlm.plot_fitted_lines(sleep_fit, "hours")
    with pytest.raises(TypeError, match="fit must be a MixedFit"):
        mlm.plot_fitted_lines(tiny, "x")


# --- plot_caterpillar ------------------------------------------------------------------------


def test_caterpillar_against_lme4(hsb_null):
    ax = mlm.plot_caterpillar(hsb_null)
    _labelled(ax)
    x, y = _errorbar_xy(ax)
    assert len(x) == 160
    assert np.all(np.diff(y) >= 0)
    # lme4 ranef(m, condVar=TRUE) of hsb_null for the first five schools (sorted ids);
    # BLUPs and conditional SDs depend on tau00 and sigma2, which agree to ~1e-4 relative.
    ref = REF["hsb_null"]["REML"]["ranef_first5"]
    segs = ax.containers[0].lines[2][0].get_segments()
    halves = np.array([(sg[1][1] - sg[0][1]) / 2 for sg in segs])
    for est, sd in zip(ref["values"]["(Intercept)"], ref["condsd"]["(Intercept)"]):
        k = int(np.argmin(np.abs(y - est)))
        assert_allclose(y[k], est, rtol=1e-3)
        # the interval is z(0.975) = 1.959964 times the conditional SD
        assert_allclose(halves[k], 1.959964 * sd, rtol=1e-3)


def test_caterpillar_slope_term(sleep_fit):
    ax = mlm.plot_caterpillar(sleep_fit, term="days", conf_level=0.9)
    x, _ = _errorbar_xy(ax)
    assert len(x) == 18
    assert len(ax.get_xticklabels()) == 18


def test_caterpillar_errors(sleep_fit):
    with pytest.raises(ValueError, match="term 'Days' is not a random effect"):
        mlm.plot_caterpillar(sleep_fit, term="Days")
    with pytest.raises(ValueError, match="conf_level must be between"):
        mlm.plot_caterpillar(sleep_fit, conf_level=1.5)


# --- plot_shrinkage --------------------------------------------------------------------------


def test_shrinkage_null_model_closed_form(hsb, hsb_null):
    ax = mlm.plot_shrinkage(hsb_null)
    _labelled(ax)
    pts = ax.collections[0].get_offsets()
    assert len(pts) == 160
    # closed form of the null model's EB estimate: gamma00 + lambda_j (ybar_j - gamma00),
    # lambda_j = tau00 / (tau00 + sigma2 / n_j)
    g = hsb.groupby("school", sort=False)["mathach"].agg(["size", "mean"])
    tau00, s2 = float(hsb_null.tau.iloc[0, 0]), hsb_null.sigma2
    lam = tau00 / (tau00 + s2 / g["size"])
    g00 = hsb_null.params["Intercept"]
    assert_allclose(pts[:, 0], g["mean"], rtol=1e-12)
    assert_allclose(pts[:, 1], g00 + lam * (g["mean"] - g00), rtol=1e-8)
    # every estimate moves toward gamma00
    assert np.all(np.abs(pts[:, 1] - g00) <= np.abs(pts[:, 0] - g00) + 1e-12)
    # larger points for larger schools
    sizes = ax.collections[0].get_sizes()
    assert np.argmax(sizes) == np.argmax(g["size"].to_numpy())


def test_shrinkage_slopes(sleepstudy, sleep_fit):
    ax = mlm.plot_shrinkage(sleep_fit, predictor="days")
    pts = ax.collections[0].get_offsets()
    ols = sleepstudy.groupby("subject", sort=False).apply(
        lambda d: np.polyfit(d["days"], d["reaction"], 1)[0]
    )
    assert_allclose(pts[:, 0], ols.to_numpy(), rtol=1e-9)
    assert_allclose(pts[:, 1], sleep_fit.group_coefficients()["days"], rtol=1e-12)


def test_shrinkage_wrong_model(sleep_fit, hsb):
    with pytest.raises(ValueError, match="pass predictor= or fit mlm.fit_null"):
        mlm.plot_shrinkage(sleep_fit)
    with pytest.raises(ValueError, match="predictor 'reaction' must be the only fixed"):
        mlm.plot_shrinkage(sleep_fit, predictor="reaction")


# --- plot_proposition ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "boxes", "arrows"), [("micro", 2, 1), ("macro", 2, 1), ("macro-micro", 3, 3)]
)
def test_proposition_structure(kind, boxes, arrows):
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    ax = mlm.plot_proposition(kind)
    assert sum(isinstance(p, FancyBboxPatch) for p in ax.patches) == boxes
    assert sum(isinstance(p, FancyArrowPatch) for p in ax.patches) == arrows
    texts = [t.get_text() for t in ax.texts]
    assert any("Level 2" in t for t in texts) and any("Level 1" in t for t in texts)


def test_proposition_labels():
    ax = mlm.plot_proposition("macro", labels={"Z": "sector", "Y": "school mean"})
    texts = {t.get_text() for t in ax.texts}
    assert {"sector", "school mean"} <= texts
    assert "x" not in texts


def test_proposition_errors():
    with pytest.raises(ValueError, match="kind must be one of"):
        mlm.plot_proposition("micro-macro")
    with pytest.raises(ValueError, match=r"unknown labels key\(s\) \['X'\]"):
        mlm.plot_proposition("micro", labels={"X": "SES"})


# --- plot_icc_curves -------------------------------------------------------------------------


def test_icc_curves_closed_form():
    tau2 = np.array([8.0, 0.0, 2.0, 40.0])
    ax = mlm.plot_icc_curves(tau2, [10.0, 40.0])
    _labelled(ax)
    assert len(ax.lines) == 2
    xs = ax.lines[1].get_xdata()
    assert_allclose(xs, [0.0, 2.0, 8.0, 40.0])
    assert_allclose(ax.lines[1].get_ydata(), xs / (xs + 40.0))
    # the HSB null-model ICC from lme4, as one point of the curve
    vc = REF["icc_anova"]
    ax = mlm.plot_icc_curves([8.61402483714869], [39.1483218909986])
    assert_allclose(ax.lines[0].get_ydata()[0], vc["icc_reml_null"], rtol=1e-9)


@pytest.mark.parametrize(
    ("tau2", "sigma2", "match"),
    [
        ([-1.0, 2.0], [1.0], "tau2_values must be finite and non-negative"),
        ([1.0], [0.0], "sigma2_values must be finite and positive"),
        ([], [1.0], "at least one value"),
    ],
)
def test_icc_curves_errors(tau2, sigma2, match):
    with pytest.raises(ValueError, match=match):
        mlm.plot_icc_curves(tau2, sigma2)
