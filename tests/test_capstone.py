"""The capstone project: its data, the solution's numbers against lme4, and who gets what.

- The Exam data shipped for it (``mlm_lessons/datasets/exam.csv``) equal, value by value,
  the reference suite's independent export from R (``tests/reference/data/exam.csv.gz``,
  written by ``suite_data.R``), and the loader codes them as the codebook says.
- Every number the instructor's solution (``instructor/capstone/solution.ipynb``) glues
  into its prose is checked against lme4 (``tests/reference/lme4_capstone.json``, written
  by ``lme4_capstone.R``) or a closed form from lme4's numbers; nbval checks that the
  stored outputs are what the notebook computes.
- The student edition carries the brief and the template and none of the solution.
"""

from __future__ import annotations

import json
import re
import zipfile

import nbformat
import numpy as np
import pandas as pd
import pytest
from _publishing import ROOT
from scipy import stats

import mlm_lessons as mlm

SOLUTION = ROOT / "instructor" / "capstone" / "solution.ipynb"
BRIEF = ROOT / "book" / "capstone.ipynb"
TEMPLATE = ROOT / "book" / "capstone-template.ipynb"
GLUE = "application/papermill.record/text/plain"


@pytest.fixture(scope="module")
def lme4():
    return json.loads((ROOT / "tests" / "reference" / "lme4_capstone.json").read_text())


@pytest.fixture(scope="module")
def glued() -> dict[str, object]:
    """The values the solution notebook stores for its prose (its glue outputs)."""
    nb = nbformat.read(SOLUTION, as_version=4)
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            name = o.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                text = o["data"][GLUE]
                out[name] = text.strip("'") if text.startswith("'") else float(text)
    assert len(out) > 60
    return out


# --- the data ---------------------------------------------------------------------------


def test_exam_equals_the_reference_suites_r_export():
    shipped = pd.read_csv(mlm.data_dir() / "exam.csv")
    suite = pd.read_csv(ROOT / "tests" / "reference" / "data" / "exam.csv.gz")
    assert len(shipped) == len(suite) == 4059
    for column in ["school", "student", "schgend", "vr", "intake", "type", "sex"]:
        assert (shipped[column].astype(str) == suite[column].astype(str)).all(), column
    for column in ["normexam", "standLRT", "schavg"]:
        np.testing.assert_allclose(shipped[column], suite[column], rtol=0, atol=1e-7)
    assert (suite["girl"] == (shipped["sex"] == "F")).all()


def test_exam_loader_codes_as_the_codebook_says():
    exam = mlm.load_dataset("exam")
    assert exam.shape == (4059, 11) and exam["school"].nunique() == 65
    assert list(exam["schgend"].cat.categories) == ["mixed", "boys", "girls"]
    assert list(exam["sex"].cat.categories) == ["M", "F"]
    assert ((exam["sex"] == "F") == (exam["girl"] == 1)).all()
    varies = exam.groupby("school", observed=True)[["vr", "schgend", "schavg", "intake"]].nunique()
    # the codebook's note: vr is constant within every school, intake is not
    assert (varies[["vr", "schgend", "schavg"]] == 1).all().all()
    assert (varies["intake"] > 1).sum() == 64
    # schavg is the school mean of the intake score (codebook: to 1e-6)
    mean = exam.groupby("school")["standlrt"].transform("mean")
    assert np.abs(mean - exam["schavg"]).max() < 1e-6


# --- the solution's numbers against lme4 ------------------------------------------------

# Tolerances: the glued values are rounded to 4 decimals (5e-5) and the engines agree to
# about 1e-6 on fixed effects and 1e-5 on variances (tests/test_reference_suite.py);
# profile bounds are root-found to 1e-7 in the SD scale but the correlation's profile is
# flat, where lme4's spline interpolation differs by up to 3e-4.
FIXED, VAR, LR, CI, COR_CI = 1e-4, 2e-4, 2e-3, 2e-4, 1e-3


def _se(fit, term):
    return fit["fixef_se"][term]


def test_null_model_and_icc(glued, lme4):
    null = lme4["null"]["REML"]
    tau00, sigma2 = null["T"][0][0], null["sigma2"]
    assert glued["sol-null-gamma00"] == pytest.approx(null["fixef"]["(Intercept)"], abs=FIXED)
    assert glued["sol-null-tau00"] == pytest.approx(tau00, abs=VAR)
    assert glued["sol-null-sigma2"] == pytest.approx(sigma2, abs=VAR)
    assert glued["sol-icc"] == pytest.approx(tau00 / (tau00 + sigma2), abs=VAR)
    assert glued["sol-icc-low"] < glued["sol-icc"] < glued["sol-icc-high"]
    # design effect 1 + (mean size - 1) * ICC, mean size from the data
    n_bar = 4059 / 65
    assert glued["sol-deff"] == pytest.approx(1 + (n_bar - 1) * tau00 / (tau00 + sigma2), abs=2e-3)


def test_level1_and_random_slope(glued, lme4):
    m1, m2 = lme4["level1"]["ML"], lme4["slope"]["ML"]
    assert glued["sol-m1-slope"] == pytest.approx(m1["fixef"]["cstandlrt"], abs=FIXED)
    assert glued["sol-m1-slope-se"] == pytest.approx(_se(m1, "cstandlrt"), abs=FIXED)
    assert glued["sol-m1-girl"] == pytest.approx(m1["fixef"]["girl"], abs=FIXED)
    assert glued["sol-m2-tau11"] == pytest.approx(m2["T"][1][1], abs=VAR / 10)
    assert glued["sol-lr-level1"] == pytest.approx(lme4["lr"]["level1_vs_null"], abs=LR)
    lr = lme4["lr"]["slope_vs_level1"]
    assert glued["sol-lr-slope"] == pytest.approx(lr, abs=LR)
    assert glued["sol-lr-slope-df"] == 2
    # the boundary mixture 0.5 chi2(1) + 0.5 chi2(2), from lme4's likelihood ratio
    mixture = 0.5 * stats.chi2.sf(lr, 1) + 0.5 * stats.chi2.sf(lr, 2)
    assert glued["sol-p-slope-mixture"] == pytest.approx(mixture, rel=2e-3)
    assert glued["sol-p-slope-naive"] == pytest.approx(stats.chi2.sf(lr, 2), rel=2e-3)


def test_contextual_effect(glued, lme4):
    fit = lme4["contextual"]["REML"]
    names = fit["fixef_names"]
    V = np.array(fit["vcov_fixef"])
    w, b = names.index("cstandlrt"), names.index("schavg")
    assert glued["sol-within"] == pytest.approx(fit["fixef"]["cstandlrt"], abs=FIXED)
    assert glued["sol-between"] == pytest.approx(fit["fixef"]["schavg"], abs=FIXED)
    contextual = fit["fixef"]["schavg"] - fit["fixef"]["cstandlrt"]
    se = np.sqrt(V[b, b] + V[w, w] - 2 * V[b, w])
    assert glued["sol-contextual"] == pytest.approx(contextual, abs=FIXED)
    assert glued["sol-contextual-se"] == pytest.approx(se, abs=FIXED)
    assert glued["sol-contextual-low"] == pytest.approx(contextual - 1.959964 * se, abs=2e-4)


def test_school_variables_and_cross_level_interaction(glued, lme4):
    slope, level2, cross = (lme4[k]["ML"] for k in ("slope", "level2", "cross"))
    assert glued["sol-lr-level2"] == pytest.approx(lme4["lr"]["level2_vs_slope"], abs=LR)
    assert glued["sol-lr-level2-df"] == 3
    assert glued["sol-lr-cross"] == pytest.approx(lme4["lr"]["cross_vs_level2"], abs=LR)
    p_cross = stats.chi2.sf(lme4["lr"]["cross_vs_level2"], 1)
    assert glued["sol-p-cross"] == pytest.approx(p_cross, abs=1e-4)
    # proportional reduction of each variance component (chapter 9), in percent
    pre00 = 100 * (1 - level2["T"][0][0] / slope["T"][0][0])
    pre11 = 100 * (1 - cross["T"][1][1] / level2["T"][1][1])
    assert glued["sol-pre-tau00"] == pytest.approx(pre00, abs=0.02)
    assert glued["sol-pre-tau11"] == pytest.approx(pre11, abs=0.05)
    for term, key in [("schgendboys", "boys"), ("schgendgirls", "girls")]:
        assert glued[f"sol-m4-{key}"] == pytest.approx(cross["fixef"][term], abs=FIXED)
        assert glued[f"sol-m4-{key}-se"] == pytest.approx(_se(cross, term), abs=FIXED)
    assert glued["sol-m4-cross"] == pytest.approx(cross["fixef"]["cstandlrt:schavg"], abs=FIXED)
    assert glued["sol-m4-deviance"] == pytest.approx(-2 * cross["logLik"], abs=0.01)  # 2 decimals


def test_final_model_and_its_intervals(glued, lme4):
    final = lme4["cross"]["REML"]
    for term, key in [("(Intercept)", "int"), ("cstandlrt", "slope"), ("schavg", "schavg"),
                      ("girl", "girl"), ("cstandlrt:schavg", "cross")]:
        assert glued[f"sol-final-{key}"] == pytest.approx(final["fixef"][term], abs=FIXED)
        assert glued[f"sol-final-{key}-se"] == pytest.approx(_se(final, term), abs=FIXED)
    T = np.array(final["T"])
    assert glued["sol-final-sd0"] == pytest.approx(np.sqrt(T[0, 0]), abs=VAR)
    assert glued["sol-final-sd1"] == pytest.approx(np.sqrt(T[1, 1]), abs=VAR)
    assert glued["sol-final-cor"] == pytest.approx(T[0, 1] / np.sqrt(T[0, 0] * T[1, 1]), abs=1e-3)
    assert glued["sol-final-sigma"] == pytest.approx(np.sqrt(final["sigma2"]), abs=VAR)
    ci = lme4["cross"]["ML"]["confint"]
    bounds = dict(zip(ci["parameter"], zip(ci["low"], ci["high"])))
    for name, key, tol in [("sd_(Intercept)|school", "sd0", CI), ("sd_cstandlrt|school", "sd1", CI),
                           ("cor_cstandlrt.(Intercept)|school", "cor", COR_CI),
                           ("sigma", "sigma", CI)]:
        low, high = bounds[name]
        assert glued[f"sol-ci-{key}-low"] == pytest.approx(low, abs=tol), name
        assert glued[f"sol-ci-{key}-high"] == pytest.approx(high, abs=tol), name


def test_influence_check(glued, lme4):
    worst = lme4["cross"]["REML"]["leave_one_out"]
    assert glued["sol-infl-school"] == worst["school"]
    assert glued["sol-infl-std"] == pytest.approx(worst["std_change"], abs=1e-3)
    assert glued["sol-infl-max-abs"] == pytest.approx(abs(worst["std_change"]), abs=1e-3)


def test_every_glued_key_of_the_prose_is_stored(glued):
    nb = nbformat.read(SOLUTION, as_version=4)
    used = set()
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            used |= {k.split(":")[0] for k in re.findall(r"\{glue:text\}`([^`]+)`", cell.source)}
    assert used and used <= set(glued), sorted(used - set(glued))
    assert not re.search(r"\{glue", "".join(c.source for c in nb.cells if c.cell_type == "code"
                                              and "glue(" not in c.source))


# --- what students get ------------------------------------------------------------------


def _headings(path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [
        line[3:].strip()
        for cell in nb.cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if line.startswith("## ")
    ]


def test_solution_follows_the_template():
    assert _headings(SOLUTION) == _headings(TEMPLATE)
    assert len(_headings(TEMPLATE)) == 9


def test_rubric_adds_up():
    text = "".join(c.source for c in nbformat.read(BRIEF, as_version=4).cells)
    rubric = text[text.index("## How it is marked") :]
    points = [int(p) for p in re.findall(r"^\| [A-Z][^|]+\| (\d+) \|", rubric, re.M)]
    assert len(points) == 6 and sum(points) == 100
    assert "Out of 100 points" in rubric


def test_student_edition_has_the_brief_and_no_solution(tmp_path):
    import make_student

    archive = make_student.build(ROOT, tmp_path)
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        texts = {n: zf.read(n).decode("utf-8", "replace") for n in names
                 if n.endswith((".ipynb", ".md", ".py", ".txt", ".csv", ".json", ".R"))}
    assert not [n for n in names if "/instructor/" in n or n.endswith("solution.ipynb")]
    assert any(n.endswith("book/capstone.ipynb") for n in names)
    assert any(n.endswith("book/capstone-template.ipynb") for n in names)
    solution = nbformat.read(SOLUTION, as_version=4)
    # what only the solution has: its marking notes, its glue keys and its analysis code
    # (every line that names the capstone's outcome or its centred intake score)
    markers = ["Instructor's copy", "Marking notes", 'glue("sol-'] + [
        line.strip()
        for cell in solution.cells
        if cell.cell_type == "code"
        for line in cell.source.splitlines()
        if "normexam" in line or "cstandlrt" in line
    ]
    assert len(markers) > 10
    leaked = {m: n for m in markers for n, t in texts.items() if m in t}
    assert not leaked, f"capstone solution text in the student edition: {leaked}"
