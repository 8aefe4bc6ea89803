"""model_table: the table holds the fits' own numbers; HTML parses; LaTeX compiles.

The reference for every entry is the fit it comes from (``fit.fixed``,
``fit.variance_components()``, ``fit.loglik``, ``fit.aic``, ``fit.ngroups``), which the
model tests check against lme4; here the numbers must be equal, not close. The LaTeX is
compiled with XeLaTeX, as the handouts are (skipped when TeX Live is missing, a failure
under MLM_REQUIRE_ALL=1).
"""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from _publishing import require

import mlm_lessons as mlm


@pytest.fixture(scope="module")
def ladder():
    hsb = mlm.center(mlm.load_dataset("hsb"), "ses", group="school", name="cses")
    return {
        "Null": mlm.fit_null(hsb, "mathach", "school"),
        "Random intercept": mlm.fit_random_intercept(hsb, "mathach", "school", predictors=["cses"]),
        "Random slope": mlm.fit_random_coefficient(hsb, "mathach", "school", predictors=["cses"]),
        "Full": mlm.fit_full_model(
            hsb, "mathach", "school", level1=["cses"], level2=["meanses", "catholic"]
        ),
    }


@pytest.fixture(scope="module")
def crossed():
    scots = mlm.load_dataset("scotssec")
    scots["social_s"] = scots.groupby("secondary")["social"].transform("mean")
    fx = "attain ~ female + social + social_s"
    return {
        "crossed": mlm.fit_mixed(scots, fx + " + (1 | primary) + (1 | secondary)"),
        "nested": mlm.fit_mixed(scots, fx + " + (1 | secondary/primary)"),
        "primary only": mlm.fit_mixed(scots, fx + " + (1 | primary)"),
    }


def _value(table, model, term, column="estimate"):
    t = table.tidy
    row = t[(t["model"] == model) & (t["term"] == term)]
    assert len(row) == 1, (model, term)
    return row[column].iloc[0]


def test_entries_are_the_fits_numbers(ladder):
    table = mlm.model_table(ladder)
    assert table.models == tuple(ladder)
    for name, fit in ladder.items():
        for r in fit.fixed.itertuples():
            assert _value(table, name, r.term) == r.estimate
            assert _value(table, name, r.term, "std_error") == r.std_error
            assert _value(table, name, r.term, "p_value") == r.p_value
        vc = fit.variance_components()
        for comp, r in vc.iterrows():
            term = "Residual: Var" if comp == "sigma2" else f"{r['level']}: {r['description']}"
            assert _value(table, name, term) == r["estimate"]
        assert _value(table, name, "deviance") == -2 * fit.loglik
        assert _value(table, name, "aic") == fit.aic
        assert _value(table, name, "bic") == fit.bic
        assert _value(table, name, "n_obs") == fit.n_obs
        assert _value(table, name, "groups: school") == fit.n_groups
        assert _value(table, name, "estimation", "text") == fit.method
    # a term that a model lacks has no row for it
    t = table.tidy
    assert t[(t["model"] == "Null") & (t["term"] == "cses")].empty


def test_text_layout_rounds_the_numbers(ladder):
    frame = mlm.model_table(ladder, digits=3).to_frame()
    full = ladder["Full"]
    g = full.fixed.set_index("term")
    cell = frame.loc[("Fixed effects", "meanses:cses"), "Full"]
    assert (
        cell
        == f"{g.loc['meanses:cses', 'estimate']:.3f} ({g.loc['meanses:cses', 'std_error']:.3f})"
    )
    assert frame.loc[("Fixed effects", "cses"), "Null"] == ""
    tau = full.taus["school"]
    assert frame.loc[("Random effects", "school: Cov(Intercept, cses)"), "Full"] == (
        f"{tau.loc['Intercept', 'cses']:.3f}"
    )
    assert frame.loc[("Model fit", "Deviance (\u22122 log L)"), "Null"] == (
        f"{-2 * ladder['Null'].loglik:.1f}"
    )
    assert frame.loc[("Sample size", "Groups: school"), "Full"] == "160"
    # rows in order: fixed effects in order of first appearance, residual variance last
    labels = list(frame.loc["Fixed effects"].index)
    assert labels[:2] == ["Intercept", "cses"] and labels[-1] == "catholic:cses"
    assert list(frame.loc["Random effects"].index)[-1] == "Residual: Var"
    assert list(frame.index.get_level_values(0).unique()) == [
        "Fixed effects",
        "Random effects",
        "Model fit",
        "Sample size",
    ]


def test_sd_scale_and_stars(ladder):
    table = mlm.model_table(ladder, random="sd", stars=True, se=False)
    rs = ladder["Random slope"]
    vc = rs.variance_components()
    assert _value(table, "Random slope", "school: SD(cses)") == vc.loc["tau11", "std_dev"]
    assert (
        _value(table, "Random slope", "school: Corr(Intercept, cses)")
        == (vc.loc["tau01", "correlation"])
    )
    assert _value(table, "Random slope", "Residual: SD") == np.sqrt(rs.sigma2)
    frame = table.to_frame()
    p = ladder["Full"].fixed.set_index("term")["p_value"]
    assert p["cses"] < 0.001 and frame.loc[("Fixed effects", "cses"), "Full"].endswith("***")
    assert "(" not in frame.loc[("Fixed effects", "cses"), "Full"]  # se=False
    assert any("p < 0.05" in n for n in table.notes)


def test_notes_say_what_the_numbers_can_compare(ladder, crossed):
    reml = mlm.model_table(ladder)
    assert any("REML log-likelihood" in n for n in reml.notes)
    assert any("same fixed effects" in n for n in reml.notes)
    same_fixed = mlm.model_table(crossed)
    assert not any("same fixed effects" in n for n in same_fixed.notes)
    ml = mlm.model_table({k: f.refit(method="ML") for k, f in ladder.items()})
    assert any("ML log-likelihood" in n for n in ml.notes)
    assert not any("same fixed effects" in n for n in ml.notes)
    hsb = mlm.load_dataset("hsb")
    half = mlm.fit_null(hsb.iloc[: len(hsb) // 2], "mathach", "school")
    mixed = mlm.model_table({"all": ladder["Null"], "half": half})
    assert any("different data" in n for n in mixed.notes)
    extra = mlm.model_table(ladder, notes=["Data: High School and Beyond."])
    assert extra.notes[-1] == "Data: High School and Beyond."


def test_fit_statistics_choose_the_fit_rows(ladder):
    table = mlm.model_table(ladder, fit_statistics=("bic", "estimation"))
    frame = table.to_frame()
    assert list(frame.loc["Model fit"].index) == ["BIC", "Estimation"]
    bare = mlm.model_table(ladder, fit_statistics=())
    assert "Model fit" not in bare.to_frame().index.get_level_values(0)
    # without deviances, no note about comparing them
    assert bare.notes == ("Standard errors in parentheses.",)
    assert r"\emph{Model fit}" not in bare.to_latex()
    with pytest.raises(ValueError, match="fit_statistics must be distinct names"):
        mlm.model_table(ladder, fit_statistics=("loglik",))
    with pytest.raises(ValueError, match="fit_statistics must be distinct names"):
        mlm.model_table(ladder, fit_statistics=("aic", "aic"))
    with pytest.raises(TypeError, match="fit_statistics must be a list of names"):
        mlm.model_table(ladder, fit_statistics="aic")


def test_crossed_and_nested_factors_get_their_own_rows(crossed):
    table = mlm.model_table(crossed)
    frame = table.to_frame()
    sizes = frame.loc["Sample size"]
    assert sizes.loc["Groups: primary", "crossed"] == "148"
    assert sizes.loc["Groups: secondary:primary", "nested"] == "303"
    assert sizes.loc["Groups: secondary", "primary only"] == ""
    assert (
        _value(table, "crossed", "secondary: Var(Intercept)")
        == (crossed["crossed"].taus["secondary"].iloc[0, 0])
    )


def test_html_is_well_formed_and_accessible(ladder):
    table = mlm.model_table(ladder, title="HSB: the model ladder", stars=True)
    html = table.to_html()
    assert table._repr_html_() == html
    root = ET.fromstring(html)  # well-formed: parses as XML
    assert root.tag == "table" and root.get("class") == "mlm-model-table"
    assert root.find("caption").text == "HSB: the model ladder"
    cols = root.findall("./thead/tr/th")
    assert [c.text for c in cols] == list(ladder) and all(c.get("scope") == "col" for c in cols)
    bodies = root.findall("./tbody")
    assert [b.find("./tr/th").text for b in bodies] == [
        "Fixed effects",
        "Random effects",
        "Model fit",
        "Sample size",
    ]
    for body in bodies:
        head, *rows = body.findall("./tr")
        assert head.find("th").get("scope") == "rowgroup"
        for row in rows:
            assert row.find("th").get("scope") == "row"
            assert len(row.findall("td")) == len(ladder)
    foot = root.find("./tfoot/tr/td")
    assert foot.get("colspan") == str(len(ladder) + 1)
    # a minus sign, not a hyphen, in negative numbers; escaping of markup in names
    assert "\u22121.64" in html
    odd = mlm.model_table({"<b>&": ladder["Null"]}).to_html()
    assert "&lt;b&gt;&amp;" in odd
    ET.fromstring(odd)


def test_latex_structure(crossed):
    latex = mlm.model_table(
        crossed, labels={"social_s": "Mean social class, secondary (%)"}
    ).to_latex()
    lines = latex.splitlines()
    assert lines[0] == r"\begin{tabular}{lccc}" and lines[-1] == r"\end{tabular}"
    assert lines.index(r"\toprule") < lines.index(r"\bottomrule")
    assert latex.count(r"\midrule") == 4
    assert r"Mean social class, secondary (\%)" in latex
    assert r"primary only" in latex and "social\\_s" not in latex  # the label replaced it
    # every data row has as many cells as columns
    for line in lines:
        if line.endswith(r"\\") and not line.startswith(r"\multicolumn"):
            assert line.count("&") == 3, line
    wrapped = mlm.model_table(crossed).to_latex(caption="Crossed and nested", label="tab:x")
    assert wrapped.startswith("\\begin{table}[htbp]\n\\centering\n\\caption{Crossed and nested}")
    assert "\\label{tab:x}" in wrapped and wrapped.rstrip().endswith(r"\end{table}")


@pytest.mark.latex
def test_latex_compiles_with_xelatex(ladder, crossed, tmp_path):
    require(shutil.which("xelatex") is not None, "xelatex (TeX Live) not found")
    tables = [
        mlm.model_table(ladder, stars=True, title="The HSB ladder").to_latex(label="tab:hsb"),
        mlm.model_table(
            crossed,
            random="sd",
            labels={"social_s": "Social mix_2 & 100% #1", "female": "Female × σ² − τ"},
        ).to_latex(),
    ]
    doc = "\n".join(
        [
            r"\documentclass{article}",
            r"\usepackage{booktabs}",
            r"\begin{document}",
            *tables,
            r"\end{document}",
        ]
    )
    (tmp_path / "t.tex").write_text(doc, encoding="utf-8")
    proc = subprocess.run(
        ["xelatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    log = (tmp_path / "t.log").read_text(errors="replace")
    assert "Missing character" not in log and "Undefined control sequence" not in log
    assert (tmp_path / "t.pdf").stat().st_size > 1000
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", str(tmp_path / "t.pdf"), "-"], capture_output=True, text=True
        ).stdout
        assert "Random slope" in text and "Social mix_2 & 100% #1" in text
        assert "Female×σ2−τ" in text.replace(" ", "")  # symbols set in math mode


def test_bad_input(ladder):
    with pytest.raises(TypeError, match="fits must be a dict"):
        mlm.model_table(list(ladder.values()))
    with pytest.raises(ValueError, match="fits is empty"):
        mlm.model_table({})
    with pytest.raises(TypeError, match=r"fits\['x'\] must be a MixedFit"):
        mlm.model_table({"x": 1.0})
    with pytest.raises(ValueError, match="digits must be an integer >= 0"):
        mlm.model_table(ladder, digits=-1)
    with pytest.raises(TypeError, match="fit_digits must be an integer"):
        mlm.model_table(ladder, fit_digits=1.5)
    with pytest.raises(TypeError, match="se must be True or False"):
        mlm.model_table(ladder, se="yes")
    with pytest.raises(ValueError, match="random must be 'variance' or 'sd'"):
        mlm.model_table(ladder, random="sds")
    with pytest.raises(ValueError, match=r"labels name terms that are in no model: \['ces'\]"):
        mlm.model_table(ladder, labels={"ces": "SES"})
    with pytest.raises(TypeError, match="labels must be a dict"):
        mlm.model_table(ladder, labels={"cses": 1})
    with pytest.raises(TypeError, match="notes must be a list of strings"):
        mlm.model_table(ladder, notes="one note")
