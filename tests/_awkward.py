"""Frames, fits and the case runner of the adversarial suites (tests/test_adversarial*.py).

Every case calls one public function with one awkward input and asserts the exception (or
warning) class and a message pattern that names the culprit. The runner also checks that
the frame passed in, and every shared frame of this module, are unchanged afterwards (values,
dtypes, index, column labels and attrs), so "the input is never modified" is tested on every
case, including the ones that fail.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

import mlm_lessons as mlm


def _two_level(seed: int = 20240611, J: int = 24, n: int = 8) -> pd.DataFrame:
    """A random-slope data set: x varies within and between groups, z is level 2."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(1, J + 1), n)
    x = rng.normal(size=J * n) + 0.5 * rng.normal(size=J)[g - 1]
    z = rng.normal(size=J)[g - 1]
    u0, u1 = rng.normal(size=J)[g - 1], 0.7 * rng.normal(size=J)[g - 1]
    y = 10 + x + 0.5 * z + u0 + u1 * x + rng.normal(size=J * n)
    b = (y + rng.normal(size=J * n) > np.median(y)).astype("int64")
    w = rng.normal(size=J * n)
    cat = rng.choice(np.array(["a", "b", "c"]), size=J * n)
    k = rng.poisson(np.exp(0.5 + 0.3 * x + 0.4 * rng.normal(size=J)[g - 1]))  # counts
    return pd.DataFrame({
        "g": g, "gs": np.char.add("s", g.astype(str)), "x": x, "z": z,
        "w": w, "y": y, "b": b, "cat": cat,
        "r": np.char.add("region", ((g - 1) // 4).astype(str)),  # level 3: groups in regions
        "k": k, "n": np.full(J * n, 5),  # counts; trials of a binomial outcome
    })


def _three_level(seed: int = 7, S: int = 10, C: int = 5, T: int = 4) -> pd.DataFrame:
    """Measurements t within children c (unique ids) within schools s."""
    rng = np.random.default_rng(seed)
    s = np.repeat(np.arange(S), C * T)
    c = np.repeat(np.arange(S * C), T)
    t = np.tile(np.arange(T, dtype=float), S * C)
    y = (1 + 0.5 * t + rng.normal(size=S)[s] + 0.8 * rng.normal(size=S * C)[c]
         + rng.normal(size=S * C * T))
    return pd.DataFrame({"s": np.char.add("school", s.astype(str)), "c": c, "t": t, "y": y})


def _crossed(seed: int = 11, A: int = 15, B: int = 10, reps: int = 2) -> pd.DataFrame:
    """Subjects a crossed with items b, ``reps`` rows per pair."""
    rng = np.random.default_rng(seed)
    a = np.repeat(np.arange(A), B * reps)
    b = np.tile(np.repeat(np.arange(B), reps), A)
    x = rng.normal(size=A * B * reps)
    y = 2 + x + rng.normal(size=A)[a] + 0.7 * rng.normal(size=B)[b] + rng.normal(size=len(a))
    return pd.DataFrame({"a": np.char.add("subj", a.astype(str)), "b": b, "x": x, "y": y})


TWO = _two_level()
THREE = _three_level()
CROSSED = _crossed()
SHARED = {"TWO": TWO, "THREE": THREE, "CROSSED": CROSSED}
PRISTINE = {name: frame.copy(deep=True) for name, frame in SHARED.items()}


@functools.cache
def fits() -> dict:
    """The fits the cases compare and probe (fitted once, without warnings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", mlm.MLMWarning)
        out = {
            "null": mlm.fit_null(TWO, "y", "g"),
            "ri": mlm.fit_mixed(TWO, "y ~ x", "g"),
            "rs": mlm.fit_mixed(TWO, "y ~ x", "g", re_formula="x"),
            "ri_z": mlm.fit_mixed(TWO, "y ~ x + z", "g"),
            "ri_ml": mlm.fit_mixed(TWO, "y ~ x", "g", method="ML"),
            "three": mlm.fit_three_level(THREE, "y ~ t", "c", "s"),
            "crossed": mlm.fit_mixed(CROSSED, "y ~ x + (1 | a) + (1 | b)"),
            "logit": mlm.fit_logistic_mixed(TWO, "b ~ x", "g"),
            "glmm_b": mlm.fit_glmm(TWO, "b ~ x + (1 | g)"),
            "glmm_p": mlm.fit_glmm(TWO, "k ~ x + (1 | g)", family="poisson"),
            "glmm_ps": mlm.fit_glmm(TWO, "k ~ x + (1 + x | g)", family="poisson"),
        }
    return out


def assert_same_frame(after: pd.DataFrame, before: pd.DataFrame) -> None:
    """Values, dtypes, index, column labels and attrs unchanged."""
    pd.testing.assert_frame_equal(after, before, check_exact=True, check_index_type=True,
                                  check_column_type=True, check_frame_type=True,
                                  check_flags=True)
    assert after.index.equals(before.index) and list(after.columns) == list(before.columns)
    assert after.attrs == before.attrs


def assert_pristine() -> None:
    for name, frame in SHARED.items():
        assert_same_frame(frame, PRISTINE[name])


@dataclass(frozen=True)
class Case:
    """One awkward call: ``call(frame)`` must raise ``error`` (or warn) matching ``match``.

    ``frame`` builds the data passed to ``call`` (None: the call needs no frame); it is
    copied before the call and compared with the copy afterwards.
    """

    id: str
    call: Callable
    error: type
    match: str
    frame: Callable[[], pd.DataFrame] | None = None
    warns: bool = False


def run(case: Case):
    data = case.frame() if case.frame is not None else None
    before = data.copy(deep=True) if isinstance(data, pd.DataFrame) else None
    if case.warns:
        with pytest.warns(case.error, match=case.match) as record:
            case.call(data)
        # warnings point at the caller's line, not into the package
        ours = [w for w in record if issubclass(w.category, mlm.MLMWarning)]
        assert ours and all("mlm_lessons" not in w.filename for w in ours), [
            w.filename for w in ours]
    else:
        with pytest.raises(case.error, match=case.match):
            case.call(data)
    if before is not None:
        assert_same_frame(data, before)
    assert_pristine()


def params(cases: list[Case]):
    """pytest parameters of ``cases`` with their ids (which must be unique)."""
    ids = [c.id for c in cases]
    dup = {i for i in ids if ids.count(i) > 1}
    assert not dup, dup
    return [pytest.param(c, id=c.id) for c in cases]
