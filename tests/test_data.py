"""The bundled data: registry, checksums, schema, and errors that name the file.

The data and the published reference tables ship inside the package
(``mlm_lessons/datasets/``); ``tests/test_packaging.py`` checks that an installed wheel
carries and loads all of them.
"""

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlm_lessons as mlm
from mlm_lessons import data as data_mod


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """A writable copy of the package's data folder that MLM_DATA_DIR points to."""
    folder = tmp_path / "data"
    shutil.copytree(mlm.data_dir(), folder)
    monkeypatch.setenv("MLM_DATA_DIR", str(folder))
    data_mod._read_verified.cache_clear()
    yield folder
    data_mod._read_verified.cache_clear()


def test_registry_checksums_match_files():
    registry = pd.read_csv(mlm.data_dir() / "registry.csv")
    for row in registry.itertuples():
        digest = hashlib.sha256((mlm.data_dir() / row.file).read_bytes()).hexdigest()
        assert digest == row.sha256, row.file


def test_data_ship_inside_the_package(monkeypatch):
    monkeypatch.delenv("MLM_DATA_DIR", raising=False)
    assert mlm.data_dir() == Path(mlm.__file__).resolve().parent / "datasets"
    assert (mlm.data_dir() / "README.md").is_file()  # the codebook travels with the data
    monkeypatch.setenv("MLM_DATA_DIR", "")  # empty: the default, as if unset
    assert mlm.data_dir() == Path(mlm.__file__).resolve().parent / "datasets"


def test_codebook_lists_every_file_with_its_checksum():
    codebook = (mlm.data_dir() / "README.md").read_text()
    for row in pd.read_csv(mlm.data_dir() / "registry.csv").itertuples():
        assert f"| `{row.file}` | {row.rows} | `{row.sha256}` |" in codebook, row.file


def test_every_csv_in_data_is_registered():
    registry = set(pd.read_csv(mlm.data_dir() / "registry.csv")["file"])
    on_disk = {p.name for p in mlm.data_dir().glob("*.csv")} - {"registry.csv"}
    assert on_disk == registry


def test_list_datasets_names_every_loader():
    listed = mlm.list_datasets()
    assert {"hsb", "hsb_schools", "sleepstudy"} <= set(listed["name"])
    for name in listed["name"]:
        assert len(mlm.load_dataset(name)) > 0


def test_hsb_matches_published_facts():
    # Raudenbush & Bryk (2002, ch. 4): N = 7185 students, J = 160 schools, 14 to 67 per
    # school, 70 Catholic schools with 3543 students; sum of MathAch from shared/data/README.
    hsb = mlm.load_dataset("hsb")
    sizes = hsb.groupby("school").size()
    assert len(hsb) == 7185 and len(sizes) == 160
    assert (sizes.min(), sizes.max()) == (14, 67)
    assert hsb.loc[hsb["sector"] == "Catholic", "school"].nunique() == 70
    assert (hsb["sector"] == "Catholic").sum() == 3543
    np.testing.assert_allclose(hsb["mathach"].sum(), 91593.321, atol=1e-6)


def test_hsb_schema():
    hsb = mlm.load_dataset("hsb")
    assert list(hsb["sector"].cat.categories) == ["Public", "Catholic"]  # Public = reference
    assert set(hsb["minority"].unique()) == {0, 1} and set(hsb["female"].unique()) == {0, 1}
    assert hsb["school"].map(type).eq(str).all()
    assert not hsb.isna().any().any()
    # the school file's MEANSES is merged in, and agrees with the student file's copy
    raw = pd.read_csv(mlm.data_dir() / "hsb_students.csv")
    np.testing.assert_allclose(hsb["meanses"].to_numpy(), raw["MEANSES"].to_numpy())
    # MEANSES as distributed differs from the sample mean by at most 0.0065 (data README)
    sample_mean = hsb.groupby("school")["ses"].transform("mean")
    assert np.max(np.abs(sample_mean - hsb["meanses"])) < 0.0066


def test_load_returns_a_fresh_copy():
    a = mlm.load_dataset("hsb")
    a.loc[0, "mathach"] = -999.0
    assert mlm.load_dataset("hsb").loc[0, "mathach"] != -999.0


def test_unknown_dataset():
    with pytest.raises(KeyError, match="unknown dataset 'hbs'; available: hsb"):
        mlm.load_dataset("hbs")


def test_missing_file_names_it(data_copy):
    (data_copy / "hsb_schools.csv").unlink()
    with pytest.raises(FileNotFoundError, match="'hsb_schools.csv' not found"):
        mlm.load_dataset("hsb")


def test_altered_file_fails_checksum(data_copy):
    path = data_copy / "sleepstudy.csv"
    path.write_text(path.read_text().replace("249.56", "249.57"))
    with pytest.raises(ValueError, match="'sleepstudy.csv' does not match its checksum"):
        mlm.load_dataset("sleepstudy")


def test_renamed_column_is_reported(data_copy):
    path = data_copy / "sleepstudy.csv"
    path.write_text(path.read_text().replace('"Days"', '"Day"', 1))
    registry = pd.read_csv(data_copy / "registry.csv")
    registry.loc[registry.file == "sleepstudy.csv", "sha256"] = hashlib.sha256(
        path.read_bytes()
    ).hexdigest()
    registry.to_csv(data_copy / "registry.csv", index=False)
    with pytest.raises(ValueError, match=r"'sleepstudy.csv' has columns .*'Day'"):
        mlm.load_dataset("sleepstudy")


def test_missing_registry(data_copy):
    (data_copy / "registry.csv").unlink()
    with pytest.raises(FileNotFoundError, match="registry.csv"):
        mlm.load_dataset("hsb")


def test_missing_registry_under_mlm_data_dir_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MLM_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"registry.csv.*MLM_DATA_DIR must name a folder"):
        mlm.load_dataset("hsb")


def test_mlm_data_dir_overrides_the_package_data(data_copy):
    assert mlm.data_dir() == data_copy
    (data_copy / "raudenbush_bryk_2002.csv").unlink()
    with pytest.raises(FileNotFoundError, match="'raudenbush_bryk_2002.csv' not found"):
        mlm.load_reference("raudenbush_bryk_2002")


def test_dataset_name_must_be_a_string():
    with pytest.raises(TypeError, match="name must be a string"):
        mlm.load_dataset(["hsb"])


# --- the published reference tables ------------------------------------------------------


def test_reference_table_of_raudenbush_bryk():
    published = mlm.load_reference("raudenbush_bryk_2002")
    assert list(published.columns) == ["table", "model", "quantity", "published", "note"]
    assert published.groupby("table").size().to_dict() == {
        "Table 4.2": 5, "Table 4.3": 4, "Table 4.4": 6, "Table 4.5": 10,
    }
    assert published["published"].dtype == np.float64
    assert not published[["table", "model", "quantity", "published"]].isna().any().any()
    # values the book prints (Raudenbush & Bryk 2002, ch. 4), two decimals
    by = published.set_index(["table", "quantity"])["published"]
    assert by["Table 4.2", "fixef[(Intercept)]"] == 12.64
    assert by["Table 4.4", "T[cses,cses]"] == 0.68
    assert by["Table 4.5", "fixef[cses:catholic]"] == -1.64
    # every quantity is one that compare_with_published understands
    pattern = r"^(fixef\[[^\]]+\]|se\[[^\]]+\]|T\[[^\],]+,[^\]]+\]|sigma2|icc)$"
    assert published["quantity"].str.match(pattern).all()


def test_reference_is_a_fresh_copy():
    a = mlm.load_reference()
    a.loc[0, "published"] = -1.0
    assert mlm.load_reference().loc[0, "published"] == 12.64


def test_unknown_reference():
    with pytest.raises(KeyError, match="unknown reference table 'rb2002'; available: raudenbush"):
        mlm.load_reference("rb2002")
    with pytest.raises(TypeError, match="name must be a string"):
        mlm.load_reference(2002)


def test_altered_reference_fails_checksum(data_copy):
    path = data_copy / "raudenbush_bryk_2002.csv"
    path.write_text(path.read_text().replace("12.64", "12.65", 1))
    with pytest.raises(ValueError, match="'raudenbush_bryk_2002.csv' does not match its checksum"):
        mlm.load_reference("raudenbush_bryk_2002")


# --- the crossed designs ---------------------------------------------------------------------


def test_scotssec_is_a_partial_cross_classification():
    # mlmRev's ScotsSec (Paterson 1991): 3435 pupils, 148 primary and 19 secondary schools;
    # counts from R: table(ScotsSec$primary, ScotsSec$second), table(ScotsSec$sex)
    scots = mlm.load_dataset("scotssec")
    assert list(scots.columns) == ["pupil", "primary", "secondary", "attain", "verbal",
                                   "social", "female", "sex"]
    assert len(scots) == 3435 and scots["pupil"].is_unique
    assert scots["primary"].nunique() == 148 and scots["secondary"].nunique() == 19
    feeds = scots.groupby("primary")["secondary"].nunique()
    assert (feeds > 1).sum() == 91  # not nested: 91 primaries send pupils to several
    assert scots.groupby("secondary")["primary"].nunique().min() == 7
    assert scots["female"].sum() == 1696 and (scots["sex"] == "Male").sum() == 1739
    assert list(scots["sex"].cat.categories) == ["Male", "Female"]
    assert (scots["attain"].min(), scots["attain"].max()) == (1, 10)
    assert scots[["primary", "secondary"]].map(type).eq(str).all().all()
    raw = pd.read_csv(mlm.data_dir() / "scotssec.csv")
    np.testing.assert_array_equal(scots["secondary"], raw["second"].astype(str))


def test_penicillin_is_fully_crossed_and_balanced():
    pen = mlm.load_dataset("penicillin")
    assert list(pen.columns) == ["plate", "sample", "diameter"]
    cells = pd.crosstab(pen["plate"], pen["sample"])
    assert cells.shape == (24, 6) and (cells == 1).all().all()
    assert sorted(pen["sample"].unique()) == list("ABCDEF")


def test_shipped_lme4_tables_equal_the_r_output():
    """load_reference("lme4_hsb") and ("lme4_egsingle") are the R output of tests/reference/,
    value by value (scripts/export_lme4_references.py copies them)."""
    import importlib.util

    path = Path(__file__).parent.parent / "scripts" / "export_lme4_references.py"
    spec = importlib.util.spec_from_file_location("export_lme4_references", path)
    export = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(export)
    for name, expected in export.tables().items():
        shipped = mlm.load_reference(name.removesuffix(".csv"))
        pd.testing.assert_frame_equal(shipped, expected, check_exact=False, rtol=1e-14)
    hsb = mlm.load_reference("lme4_hsb").set_index(["model", "method", "quantity"])["lme4"]
    assert hsb["hsb_full", "REML", "loglik"] == pytest.approx(-23251.832058, abs=1e-6)
