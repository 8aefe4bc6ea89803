"""The bundled data: registry, checksums, schema, and errors that name the file."""

import hashlib
import shutil

import numpy as np
import pandas as pd
import pytest

import mlm_lessons as mlm
from mlm_lessons import data as data_mod


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """A writable copy of data/ that MLM_DATA_DIR points to."""
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
