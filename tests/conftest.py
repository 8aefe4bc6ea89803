"""Shared fixtures: bundled datasets, loaded once per session (tests must not modify them)."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

import mlm_lessons as mlm  # noqa: E402


@pytest.fixture(scope="session")
def hsb():
    """HSB students merged with school variables, plus group-mean-centred SES (``cses``)."""
    return mlm.center(mlm.load_dataset("hsb"), "ses", group="school", name="cses")


@pytest.fixture(scope="session")
def sleepstudy():
    return mlm.load_dataset("sleepstudy")
