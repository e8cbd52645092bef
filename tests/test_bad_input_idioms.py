"""Malformed and tricky input, second round: R/brms idioms, odd data, names, priors, families,
parameterization arguments and comment injection, each case only building the model (never fitting).

Complements test_bad_input.py (no case repeats one there). One table, four kinds of case, each its
own parametrized test (ids are the case names):

- ``ok``: the call returns; the bundled stanc accepts the program (if the call made one) and the
  case's check holds;
- ``err``: the call raises the given lmmformula error whose message holds every needle (substring
  or pattern), has no ANSI escape and no foreign exception chained above it;
- ``either``: one of the two, for input where accepting (right) and refusing (clearly) are both fine;
- ``Inject``: a hostile name or level leaves the program, comments aside, equal to the plain one.

Every kind also checks that the caller's data frame (values, dtypes, columns, index), priors and
parameterization argument are unchanged. Left out on purpose: ``x %in% f`` as ``x:f`` and
polynomial contrasts for ordered categoricals (decided against for now).
"""

from __future__ import annotations

import copy
import decimal
import re
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

import lmmformula as lf
from lmmformula.stanc import check_program

from .conftest import prior_arguments
from .corpus import base, foreign_chain, rx, strip_comments

# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------

ROWS = np.arange(72)


def setcols(**columns) -> Callable[[], pd.DataFrame]:
    """A data factory: ``base()`` with each column set to its value, or to ``value(frame)``."""

    def make() -> pd.DataFrame:
        frame = base()
        for name, value in columns.items():
            frame[name] = value(frame) if callable(value) else value
        return frame

    return make


def renamed(**names) -> Callable[[], pd.DataFrame]:
    """A data factory: ``base()`` with columns renamed (old=new)."""
    return lambda: base().rename(columns=names)


def with_na(values, positions, dtype: str):
    """A nullable pandas array of ``values`` with pd.NA at ``positions``."""
    array = pd.array(values, dtype=dtype).copy()
    for i in positions:
        array[i] = pd.NA
    return array


def decimals(column: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda d: pd.Series([decimal.Decimal(f"{v:.3f}") for v in d[column]], dtype=object)


def cells(make) -> Callable[[pd.DataFrame], pd.Series]:
    """An object column of ``make(i)`` for rows i = 0..71."""
    return lambda d: pd.Series([make(i) for i in range(72)], dtype=object)


def objects(values) -> Callable[[pd.DataFrame], pd.Series]:
    """An object column cycling through ``values``."""
    return cells(lambda i: values[i % len(values)])


def ordered_f(d: pd.DataFrame) -> pd.Categorical:
    return pd.Categorical(d["f"], categories=["lo", "mid", "hi"], ordered=True)


def wide(n: int = 200, p: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"x{i}" for i in range(1, p + 1)])
    frame["g"] = np.resize([f"g{i}" for i in range(10)], n)
    frame["y"] = rng.normal(size=n)
    return frame


def many_groups(n: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n)})
    for j in range(1, 9):
        frame[f"k{j}"] = rng.permutation(np.resize([f"L{i}" for i in range(3 + j)], n))
    return frame


def offset_index_with_nan() -> pd.DataFrame:
    frame = base()
    frame.index = pd.RangeIndex(100, 100 + 3 * len(frame), 3)
    frame.loc[frame.index[[3, 9]], "y"] = np.nan
    return frame


def multiindex_rows() -> pd.DataFrame:
    frame = base()
    frame.index = pd.MultiIndex.from_arrays([np.repeat(["a", "b"], 36), np.arange(72)])
    frame.loc[("a", 4), "x"] = np.nan
    return frame


def duplicate_index_with_nan() -> pd.DataFrame:
    frame = base()
    frame.index = np.resize([0, 1], 72)
    frame.iloc[5, frame.columns.get_loc("y")] = np.nan
    return frame


def nan_in_two_columns() -> pd.DataFrame:
    frame = base()
    frame.loc[[1, 2], "y"] = np.nan
    frame.loc[[2, 3, 4], "x"] = np.nan
    frame.loc[[10], "z"] = np.nan  # a column the model does not use
    return frame


class PolarsLike:
    """Passes for a polars DataFrame by module and class name (polars itself is not needed)."""

    __module__ = "polars.dataframe.frame"

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame
        self.columns = list(frame.columns)
        self.shape = frame.shape

    def to_pandas(self) -> pd.DataFrame:
        return self._frame.copy()


PolarsLike.__name__ = PolarsLike.__qualname__ = "DataFrame"


def narwhals_frame():
    import narwhals as nw  # a dependency of formulaic

    return nw.from_native(base())


class MyFrame(pd.DataFrame):
    @property
    def _constructor(self):
        return MyFrame


# --------------------------------------------------------------------------------------------
# checks on an accepted result: check(result, kwargs, caught_warnings); a Model or, from
# make_standata, its data dict
# --------------------------------------------------------------------------------------------


def stan_data(result) -> dict:
    return result.stan_data if isinstance(result, lf.Model) else result


def values_of(spec, frame: pd.DataFrame) -> np.ndarray:
    """``spec`` is a column name or a function of the frame."""
    return np.asarray(spec(frame) if callable(spec) else frame[spec], dtype=float)


def n_fixed(k: int) -> Callable:
    def check(result, kwargs, caught) -> None:
        found = int(stan_data(result).get("K", 0))
        assert found == k, f"K={found}, want {k}; columns {result.design.fixed_columns}"

    return check


def _counts(prefix: str, counts: tuple) -> Callable:
    def check(result, kwargs, caught) -> None:
        data = stan_data(result)
        found = [int(data[f"{prefix}_{i}"]) for i in range(1, len(counts) + 1)]
        assert found == list(counts), f"{prefix} {found}, want {list(counts)}"
        assert f"{prefix}_{len(counts) + 1}" not in data, f"more than {len(counts)} blocks"

    return check


def n_levels(*counts: int) -> Callable:
    """Levels of the grouping factor of each block (N_1, N_2, ...), and no further block."""
    return _counts("N", counts)


def n_terms(*counts: int) -> Callable:
    """Columns of each block (M_1, M_2, ...), and no further block."""
    return _counts("M", counts)


def n_rows(n: int) -> Callable:
    def check(result, kwargs, caught) -> None:
        assert int(stan_data(result)["N"]) == n, f"N={stan_data(result)['N']}, want {n}"

    return check


def y_is(spec) -> Callable:
    def check(result, kwargs, caught) -> None:
        want = values_of(spec, kwargs["data"])
        found = np.asarray(stan_data(result)["Y"], dtype=float)
        assert found.shape == want.shape and np.allclose(found, want), f"Y {found[:8]}, want {want[:8]}"

    return check


def x_is(spec, k: int = 0) -> Callable:
    def check(result, kwargs, caught) -> None:
        X = np.asarray(stan_data(result)["X"], dtype=float)
        want = values_of(spec, kwargs["data"])
        assert np.allclose(X[:, k], want, rtol=1e-9), f"X[:, {k}] = {X[:5, k]}, want {want[:5]}"

    return check


def z_is(spec, k: int = 1) -> Callable:
    def check(result, kwargs, caught) -> None:
        Z = np.asarray(stan_data(result)["Z_1"], dtype=float)
        assert np.allclose(Z[:, k], values_of(spec, kwargs["data"])), f"Z_1[:, {k}] = {Z[:5, k]}"

    return check


def data_is(key: str, value) -> Callable:
    """stan_data[key] equals ``value`` (or ``value(frame)``)."""

    def check(result, kwargs, caught) -> None:
        found = stan_data(result).get(key)
        want = value(kwargs["data"]) if callable(value) else value
        assert found is not None and np.allclose(np.asarray(found, dtype=float), want), (
            f"{key}={found}, want {want}"
        )

    return check


def prior_is(parameter_class: str, *numbers: float) -> Callable:
    def check(result, kwargs, caught) -> None:
        found = prior_arguments(result.stan_data, parameter_class)
        assert found == list(numbers), f"{parameter_class}: expected {list(numbers)}, got {found}"

    return check


def columns_name(*needles: str) -> Callable:
    def check(result, kwargs, caught) -> None:
        columns = " ".join(result.design.fixed_columns)
        for needle in needles:
            assert needle in columns, f"{needle!r} not in {result.design.fixed_columns}"

    return check


def no_intercept(result, kwargs, caught) -> None:
    assert not result.design.has_intercept, "has an intercept"


def warned(pattern: str) -> Callable:
    def check(result, kwargs, caught) -> None:
        messages = [str(w.message) for w in caught]
        assert any(re.search(pattern, m, re.IGNORECASE) for m in messages), f"no /{pattern}/ in {messages}"

    return check


def no_design_warning(result, kwargs, caught) -> None:
    messages = [str(w.message) for w in caught if issubclass(w.category, lf.DesignWarning)]
    assert not messages, f"unexpected warnings {messages}"


def all_of(*checks: Callable) -> Callable:
    def check(result, kwargs, caught) -> None:
        for one in checks:
            outcome = one(result, kwargs, caught)
            assert outcome is None or outcome, f"{getattr(one, '__name__', one)} failed"

    return check


def three_nested_levels(result, kwargs, caught) -> None:
    d = kwargs["data"]
    want = [d.g.nunique(), len(set(zip(d.g, d.h))), len(set(zip(d.g, d.h, d.f)))]
    found = [int(result.stan_data[f"N_{i}"]) for i in (1, 2, 3)]
    assert found == want, f"levels {found}, want {want}"


def levels_are_g_h_pairs(result, kwargs, caught) -> None:
    d = kwargs["data"]
    assert int(result.stan_data["N_1"]) == len(set(zip(d.g, d.h))), f"N_1={result.stan_data['N_1']}"


def centers_are(*names: str) -> Callable:
    def check(result, kwargs, caught) -> None:
        assert result.parameterizations[0].centers == names, result.parameterizations[0]

    return check


def codes_consistent(column: str) -> Callable:
    """Block 1's codes J_1: one code per distinct value of ``column`` (rows with x, y, column kept)."""

    def check(result, kwargs, caught) -> None:
        d = kwargs["data"]
        keep = d[column].notna().to_numpy().copy()
        for other in ("y", "x"):
            keep &= d[other].notna().to_numpy()
        codes = {}
        for value, code in zip(d[column][keep].to_numpy(), np.asarray(result.stan_data["J_1"])):
            assert codes.setdefault(repr(value), code) == code, (
                f"{value!r} has codes {codes[repr(value)]}, {code}"
            )
        levels = result.design.blocks[0].factor.levels
        assert len(set(codes.values())) == len(codes) == len(levels), (
            f"{len(codes)} values, {len(set(codes.values()))} codes, {len(levels)} levels"
        )

    return check


# --------------------------------------------------------------------------------------------
# case kinds
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """``func(**build())`` with the expected outcome ``kind``: "ok", "err" or "either"."""

    kind: str
    build: Callable[[], dict]
    check: Callable | None = None
    needles: tuple = ()
    error: type[Exception] = lf.LmmformulaError
    func: Callable = lf.Model


def _call(kind, formula, data, check, needles, error, func, options) -> Call:
    def build() -> dict:
        return {"formula": formula, "data": data() if callable(data) else data, **options}

    return Call(kind, build, check, tuple(needles), error, func)


def ok(formula, check=None, data=base, func=lf.Model, **options) -> Call:
    """Accepted: stanc passes the program and ``check`` holds."""
    return _call("ok", formula, data, check, (), lf.LmmformulaError, func, options)


def err(formula, *needles, data=base, error=lf.LmmformulaError, func=lf.Model, **options) -> Call:
    """Refused with ``error`` whose message holds every needle."""
    return _call("err", formula, data, None, needles, error, func, options)


def either(formula, check, *needles, data=base, func=lf.Model, **options) -> Call:
    """Accepted as ``ok(formula, check)``, or refused with an lmmformula error holding every needle."""
    return _call("either", formula, data, check, needles, lf.LmmformulaError, func, options)


@dataclass(frozen=True)
class Inject:
    """``build(hostile)`` must give the program of ``build(plain)``, comments aside.

    ``may_reject``: a clear FormulaError is an acceptable outcome too.
    """

    build: Callable[[str], dict]
    hostile: str
    plain: str
    may_reject: bool = False


# --------------------------------------------------------------------------------------------
# A. formula idioms
# --------------------------------------------------------------------------------------------

FORMULA = {
    "A01-three-uncorrelated-terms-same-factor": ok(
        "y ~ x + (1 | g) + (0 + x | g) + (0 + z | g)", all_of(n_terms(3), n_levels(6))
    ),
    "A02-correlated-plus-separate-term": ok(
        "y ~ x + (1 + x | g) + (0 + z | g)", all_of(n_terms(2, 1), n_levels(6, 6))
    ),
    "A03-factor-call-fixed": ok("y ~ factor(f) + (1 | g)", n_fixed(2)),
    "A04-factor-call-grouping": ok("y ~ x + (1 | factor(g))", n_levels(6)),
    "A05-as.numeric": ok("y ~ as.numeric(x) + (1 | g)", x_is("x")),
    "A06-I-x-caret-2-float": either("y ~ I(x^2) + (1 | g)", x_is(lambda d: d["x"] ** 2), rx(r"\*\*")),
    "A07-I-x-caret-2-int": either("y ~ I(xi^2) + (1 | g)", x_is(lambda d: d["xi"] ** 2), rx(r"\*\*|\^")),
    "A09-power-of-sum": ok("y ~ (x + z + pos)^2 + (1 | g)", n_fixed(6)),
    "A10-bar-then-minus-one": ok("y ~ (1 | g) - 1", all_of(no_intercept, n_levels(6), n_fixed(0))),
    "A11-x-bar-minus-one": ok("y ~ x + (1 | g) - 1", all_of(no_intercept, n_fixed(1), n_levels(6))),
    "A12-poly-degree-kw": ok("y ~ poly(x, degree=2) + (1 | g)", n_fixed(2)),
    "A13-poly-raw-TRUE": either(
        "y ~ poly(x, 2, raw=TRUE) + (1 | g)",
        all_of(n_fixed(2), x_is(lambda d: d["x"] ** 2, 1)),
        "TRUE",
        "True",
    ),
    "A14-log1p": ok("y ~ log1p(pos) + (1 | g)", x_is(lambda d: np.log1p(d["pos"]))),
    "A15-abs": ok("y ~ abs(x) + (1 | g)", x_is(lambda d: np.abs(d["x"]))),
    "A16-np.log1p": ok("y ~ np.log1p(pos) + (1 | g)", x_is(lambda d: np.log1p(d["pos"]))),
    "A17-C-Treatment-reference": ok(
        "y ~ C(f, Treatment(reference='hi')) + (1 | g)", all_of(n_fixed(2), columns_name("lo", "mid"))
    ),
    "A18-C-contr.treatment": ok(
        "y ~ C(f, contr.treatment('hi')) + (1 | g)", all_of(n_fixed(2), columns_name("lo", "mid"))
    ),
    "A19-nested-three-deep": ok("y ~ x + (1 | g/h/f)", three_nested_levels),
    "A20-newlines-tabs": ok("y ~\n\tx +\n\t(1 | g)\n", all_of(n_fixed(1), n_levels(6))),
    "A21-unicode-minus": either("y ~ x \u2212 1 + (1 | g)", all_of(no_intercept, n_fixed(1)), "\u2212"),
    "A22-long-formula-40-terms": ok(
        "y ~ " + " + ".join(f"x{i}" for i in range(1, 41)) + " + (1 | g)", n_fixed(40), data=wide
    ),
    "A23-eight-grouping-factors": ok(
        "y ~ x + " + " + ".join(f"(1 | k{j})" for j in range(1, 9)), n_levels(*range(4, 12)), data=many_groups
    ),
    "A24-same-bar-after-other": err("y ~ x + (1 | g) + (1 | h) + (1 | g)", "'g'"),
    "A25-x-and-x-colon-z": ok("y ~ x + x:z + (1 | g)", n_fixed(2)),
    "A26-x-star-f-slope": ok("y ~ x * f + (x | g)", all_of(n_fixed(5), n_terms(2))),
    "A27-zero-plus-factor": ok("y ~ 0 + f + (1 | g)", all_of(n_fixed(3), no_intercept)),
    "A28-factor-minus-one": ok("y ~ f - 1 + (1 | g)", all_of(n_fixed(3), no_intercept)),
    "A29-y-tilde-0": either(
        "y ~ 0", all_of(no_intercept, n_fixed(0)), rx("coefficient|nothing|intercept|predictor")
    ),
    "A30-zero-bar-no-columns": err("y ~ x + (0 | g)", "(0 | g)"),
    "A31-minus-one-plus-x-in-bar": ok("y ~ x + (-1 + x | g)", n_terms(1)),
    "A32-x-minus-one-in-bar": ok("y ~ x + (x - 1 | g)", n_terms(1)),
    "A33-correlated-interaction-grouping": ok(
        "y ~ x + (1 + x | g:h)", all_of(n_terms(2), levels_are_g_h_pairs)
    ),
    "A34-double-bar-nested": ok("y ~ x + (x || g/h)", n_terms(2, 2)),
    "A35-backticked-nested": ok("y ~ x + (1 | `g`/`h`)", n_levels(6, 18)),
    "A36-log-of-sum": ok("y ~ log(x + 3) + (1 | g)", x_is(lambda d: np.log(d["x"] + 3))),
    "A37-scale-center-only": ok(
        "y ~ scale(x, scale=False) + (1 | g)", x_is(lambda d: d["x"] - d["x"].mean())
    ),
    "A38-spline-s": err("y ~ s(x) + (1 | g)", "'s'"),
    "A39-bar-without-parentheses": err("y ~ x | g", rx(r"\(.*\|.*\)")),
    "A40-square-brackets-bar": err("y ~ x + [1 | g]", rx(r"\[|\|")),
    "A41-redundant-intercept-twice": err("y ~ x + (1 | g) + (x | g)", "'g'", "Intercept"),
    "A42-x-star-z-minus-z": ok("y ~ x * z - z + (1 | g)", n_fixed(2)),
    "A43-I-comparison": ok("y ~ x + I(x > 0) + (1 | g)", n_fixed(2)),
    "A44-surrounding-whitespace": ok("   y ~ x + (1 | g)   \n", n_fixed(1)),
    "A45-g-star-h-grouping": err("y ~ x + (1 | g*h)", "g*h"),
    "A46-log-response": ok("log(y + 10) ~ x + (1 | g)", y_is(lambda d: np.log(d["y"] + 10))),
    "A47-I-response": ok("I(y * 2) ~ x + (1 | g)", y_is(lambda d: 2 * d["y"])),
    "A48-R-comment-in-formula": either(
        "y ~ x + (1 | g) # random intercept", all_of(n_fixed(1), n_levels(6)), "#"
    ),
    "A49-poly-in-bar": ok("y ~ x + (poly(x, 2) | g)", n_terms(3)),
    "A50-factor-slope": ok("y ~ x + (f | g)", n_terms(3)),
    # R users' dotted names: accepted, or an error naming the column and suggesting backticks
    "A51-dotted-column-bare": either(
        "y ~ Sepal.Length + (1 | g)",
        x_is("Sepal.Length"),
        "Sepal.Length",
        "`",
        data=renamed(pos="Sepal.Length"),
    ),
    "A52-dotted-column-in-log": either(
        "y ~ log(Sepal.Length) + (1 | g)",
        x_is(lambda d: np.log(d["Sepal.Length"])),
        "Sepal.Length",
        "`",
        data=renamed(pos="Sepal.Length"),
    ),
    "A53-dotted-column-backticked": ok(
        "y ~ `Sepal.Length` + (`Sepal.Length` | g)", x_is("Sepal.Length"), data=renamed(pos="Sepal.Length")
    ),
    # a column named like a function does not shadow the function (and is usable itself)
    "A54-column-named-log-with-log-call": ok(
        "y ~ log(pos) + (1 | g)", x_is(lambda d: np.log(d["pos"])), data=setcols(log=lambda d: d["x"])
    ),
    "A55-column-named-np": ok(
        "y ~ np.log(pos) + (1 | g)", x_is(lambda d: np.log(d["pos"])), data=setcols(np=lambda d: d["x"])
    ),
    "A56-column-named-C-used-with-C": ok("y ~ C(f) + (1 | g)", n_fixed(2), data=setcols(C=lambda d: d["x"])),
    "A57-column-named-scale-plain": ok(
        "y ~ scale + (1 | g)", x_is("x"), data=setcols(scale=lambda d: d["x"])
    ),
    "A58-I-power-starstar": ok(
        "y ~ x + I(x**2) + I(x**3) + (1 | g)", all_of(n_fixed(3), x_is(lambda d: d["x"] ** 3, 2))
    ),
    "A59-interaction-of-factors": ok("y ~ f * h + (1 | g)", n_fixed(8)),
    "A60-f-nested-in-h-fixed": ok("y ~ h / x + (1 | g)", n_fixed(5)),
    "A61-exp-overflow": err("y ~ exp(x * 1000) + (1 | g)", "exp(x * 1000)"),
    "A62-log-negative": err("y ~ log(x) + (1 | g)", "log(x)"),
    "A63-dot-minus-g": err("y ~ . - g", rx("not supported")),
    "A64-trailing-plus-after-bar": err("y ~ x + (1 | g) +", "+"),
    "A65-empty-parens": err("y ~ x + ()", "()"),
    "A66-bar-in-I": ok(
        "y ~ x + I((x > 0) | (z > 0)) + (1 | g)",
        all_of(n_fixed(2), x_is(lambda d: (d["x"] > 0) | (d["z"] > 0), 1)),
    ),
    "A67-bar-with-poly-slope-uncorrelated": ok("y ~ x + (0 + f || g)", n_terms(3)),
    "A68-response-expression-bool-bernoulli": ok(
        "I(x > 0) ~ z + (1 | g)", y_is(lambda d: d["x"] > 0), family="bernoulli"
    ),
    "A69-response-expression-no-I": ok("x > 0 ~ z + (1 | g)", y_is(lambda d: d["x"] > 0), family="bernoulli"),
    "A70-int-column-leading-digit-bare": either("y ~ 1x + (1 | g)", x_is("1x"), "1x", data=renamed(x="1x")),
}

# --------------------------------------------------------------------------------------------
# B. odd data
# --------------------------------------------------------------------------------------------

MIXED = np.array([1, "a", 2.5, "b"], dtype=object)

DATA = {
    "B01-bool-grouping": ok("y ~ x + (1 | flag)", n_levels(2), data=setcols(flag=lambda d: d["x"] > 0)),
    "B02-Int64-predictor-NA": ok(
        "y ~ xn + (1 | g)",
        all_of(n_rows(70), warned(r"\b2\b"), x_is(lambda d: d["xn"].dropna())),
        data=setcols(xn=lambda d: with_na(d["xi"].tolist(), [2, 5], "Int64")),
    ),
    "B03-Float64-predictor-NA": ok(
        "y ~ xn + (1 | g)",
        all_of(n_rows(69), warned(r"\b3\b")),
        data=setcols(xn=lambda d: with_na(d["x"].tolist(), [0, 1, 2], "Float64")),
    ),
    "B04-boolean-predictor-NA": ok(
        "y ~ bn + (1 | g)",
        all_of(n_rows(71), n_fixed(1), warned(r"\b1\b")),
        data=setcols(bn=lambda d: with_na((d["x"] > 0).tolist(), [4], "boolean")),
    ),
    "B05-categorical-predictor-NaN": ok(
        "y ~ fc + (1 | g)",
        all_of(n_rows(64), n_fixed(2), warned(r"\b8\b")),
        data=setcols(fc=lambda d: pd.Categorical(np.where(ROWS % 10 == 0, None, d["f"]))),
    ),
    "B06-categorical-grouping-NaN": ok(
        "y ~ x + (1 | gc)",
        all_of(n_rows(66), n_levels(6)),
        data=setcols(gc=lambda d: pd.Categorical(np.where(ROWS % 12 == 0, None, d["g"]))),
    ),
    "B07-mixed-object-grouping": ok("y ~ x + (1 | mix)", n_levels(4), data=setcols(mix=objects(MIXED))),
    "B08-tz-datetime-grouping": ok(
        "y ~ x + (1 | when)",
        n_levels(6),
        data=setcols(
            when=lambda d: pd.Series(np.resize(pd.date_range("2024-01-01", periods=6, tz="Europe/Paris"), 72))
        ),
    ),
    "B09-float-grouping-halves": ok(
        "y ~ x + (1 | site)", n_levels(4), data=setcols(site=np.resize([1.5, 2.5, 3.5, 4.0], 72))
    ),
    "B10-huge-valid-response": ok("y ~ x + (1 | g)", y_is("y"), data=setcols(y=lambda d: d["y"] * 1e50)),
    "B11-tiny-valid-response": ok("y ~ x + (1 | g)", y_is("y"), data=setcols(y=lambda d: d["y"] * 1e-50)),
    "B12-tiny-predictor-1e-200": ok(
        "y ~ xt + (1 | g)", n_fixed(1), data=setcols(xt=lambda d: d["x"] * 1e-200)
    ),
    "B13-tiny-predictor-1e-30": ok("y ~ xt + (1 | g)", n_fixed(1), data=setcols(xt=lambda d: d["x"] * 1e-30)),
    "B14-large-predictor-1e90": ok("y ~ xt + (1 | g)", n_fixed(1), data=setcols(xt=lambda d: d["x"] * 1e90)),
    "B15-offset-index-with-NaN": ok(
        "y ~ x + (1 | g)", all_of(n_rows(70), y_is(lambda d: d["y"].dropna())), data=offset_index_with_nan
    ),
    "B16-multiindex-rows": ok(
        "y ~ x + (1 | g)", all_of(n_rows(71), y_is(lambda d: d["y"][d["x"].notna()])), data=multiindex_rows
    ),
    "B17-polars-like-frame": err("y ~ x + (1 | g)", rx(r"polars|to_pandas"), data=lambda: PolarsLike(base())),
    "B18-narwhals-frame": err("y ~ x + (1 | g)", rx(r"narwhals|to_native|to_pandas"), data=narwhals_frame),
    # numbers from SQL: used as numbers, or an error naming the column
    "B19-Decimal-predictor": either(
        "y ~ dec + (1 | g)", n_fixed(1), "'dec'", data=setcols(dec=decimals("x"))
    ),
    "B20-Decimal-response": either(
        "dec ~ x + (1 | g)", y_is(lambda d: d["dec"].astype(float)), "'dec'", data=setcols(dec=decimals("y"))
    ),
    "B21-Period-predictor": either(
        "y ~ per + (1 | g)",
        n_fixed(2),
        "'per'",
        rx(r"astype|convert|string|categor"),
        data=setcols(per=lambda d: pd.Series(np.resize(pd.period_range("2024-01", periods=3, freq="M"), 72))),
    ),
    "B23-pd.cut-interval-predictor": ok(
        "y ~ cut + (1 | g)", n_fixed(2), data=setcols(cut=lambda d: pd.cut(d["x"], 3))
    ),
    "B24-sparse-predictor": ok(
        "y ~ sp + (1 | g)", x_is("x"), data=setcols(sp=lambda d: pd.arrays.SparseArray(d["x"].to_numpy()))
    ),
    "B25-float32-predictor": ok(
        "y ~ x32 + (1 | g)", n_fixed(1), data=setcols(x32=lambda d: d["x"].astype("float32"))
    ),
    "B26-uint8-counts": ok(
        "c8 ~ x + (1 | g)",
        y_is("c8"),
        data=setcols(c8=lambda d: d["count"].astype("uint8")),
        family="poisson",
    ),
    "B27-drop-count-two-columns": ok(
        "y ~ x + (1 | g)", all_of(n_rows(68), warned(r"\b4 of 72\b")), data=nan_in_two_columns
    ),
    "B28-NaN-in-unused-column-only": ok(
        "y ~ x + (1 | g)",
        all_of(n_rows(72), no_design_warning),
        data=setcols(z=lambda d: np.where(ROWS < 5, np.nan, d["z"])),
    ),
    "B29-grouping-None-nan-NA-mix": ok(
        "y ~ x + (1 | gm)",
        all_of(n_rows(69), n_levels(6), warned(r"\b3\b")),
        data=setcols(gm=lambda d: pd.Series([None, np.nan, pd.NA, *d["g"][3:]], dtype=object)),
    ),
    "B30-duplicate-index-with-NaN": ok(
        "y ~ x + (1 | g)", all_of(n_rows(71), y_is(lambda d: d["y"].dropna())), data=duplicate_index_with_nan
    ),
    "B31-object-bool-predictor": ok(
        "y ~ ob + (1 | g)", n_fixed(1), data=setcols(ob=lambda d: pd.Series(list(d["x"] > 0), dtype=object))
    ),
    "B32-yes-no-string-predictor": ok(
        "y ~ yn + (1 | g)", n_fixed(1), data=setcols(yn=lambda d: np.where(d["x"] > 0, "yes", "no"))
    ),
    "B33-huge-int-grouping": ok(
        "y ~ x + (1 | big)", n_levels(3), data=setcols(big=np.resize(np.array([2**62, 2**62 + 1, 5]), 72))
    ),
    "B34-uint64-grouping": ok(
        "y ~ x + (1 | big)",
        n_levels(3),
        data=setcols(big=np.resize(np.array([2**64 - 1, 2**63, 1], dtype=np.uint64), 72)),
    ),
    "B35-int-categories-grouping-NaN": ok(
        "y ~ x + (1 | gc)",
        all_of(n_levels(4), n_rows(64)),
        data=setcols(
            gc=lambda d: pd.Categorical(np.where(ROWS % 9 == 0, np.nan, np.resize([10, 20, 30, 40], 72)))
        ),
    ),
    "B36-empty-string-level": ok(
        "y ~ x + (1 | ge)", n_levels(3), data=setcols(ge=np.resize(["", "a", "b"], 72))
    ),
    "B37-Int64-gaussian-response": ok(
        "yi ~ x + (1 | g)", y_is("yi"), data=setcols(yi=lambda d: d["count"].astype("Int64"))
    ),
    "B38-object-int-predictor": ok(
        "y ~ oi + (1 | g)", x_is("xi"), data=setcols(oi=lambda d: pd.Series(list(d["xi"]), dtype=object))
    ),
    "B39-three-rows": ok("y ~ x", n_fixed(1), data=lambda: base().iloc[:3]),
    "B40-dataframe-subclass": ok("y ~ x + (1 | g)", n_fixed(1), data=lambda: MyFrame(base())),
    "B41-mixed-int-str-column-labels": either(
        "y ~ `0` + (1 | g)", x_is(lambda d: d[0]), "0", data=renamed(x=0)
    ),
    "B42-leading-space-column": err("y ~ x + (1 | g)", "' x'", data=renamed(x=" x")),
    "B43-timedelta-predictor": err(
        "y ~ td + (1 | g)",
        "'td'",
        rx("days|number"),
        data=setcols(td=lambda d: pd.to_timedelta(d["xi"], unit="D")),
    ),
    "B44-tuple-grouping-values": either(
        "y ~ x + (1 | tp)", n_levels(3), "'tp'", data=setcols(tp=objects([(1, 2), (3, 4), (5, 6)]))
    ),
    "B45-poisson-categorical-int-response": either(
        "cc ~ x + (1 | g)",
        y_is("count"),
        "'cc'",
        data=setcols(cc=lambda d: pd.Categorical(d["count"])),
        family="poisson",
    ),
    # labels True, 1, False, 0, "x": levels per distinct label, or a clear error (not one from predict)
    "B46-grouping-bool-int-mixed-object": either(
        "y ~ x + (1 | bi)",
        None,
        "'bi'",
        re.compile(r"^(?!.*not seen in fitting)", re.S),
        data=setcols(bi=objects([True, 1, False, 0, "x"])),
    ),
    "B47-object-None-in-response": ok(
        "yo ~ x + (1 | g)",
        all_of(n_rows(70), y_is(lambda d: d["yo"].dropna().astype(float))),
        data=setcols(yo=lambda d: pd.Series([None, None, *d["y"][2:]], dtype=object)),
    ),
    # R reads "NA" as missing; here an error naming the column and "NA", or numbers with rows dropped
    "B48-string-NA-text-numeric-predictor": either(
        "y ~ dose + (1 | g)",
        all_of(n_fixed(1), n_rows(64)),
        "'dose'",
        "NA",
        data=setcols(
            dose=lambda d: pd.Series(
                ["NA" if i % 10 == 0 else f"{v:.3f}" for i, v in enumerate(d["x"])], dtype=object
            )
        ),
    ),
    "B49-float-grouping-big-whole": ok(
        "y ~ x + (1 | site)", n_levels(3), data=setcols(site=np.resize([1e15, 1e15 + 1, 2e15], 72))
    ),
    "B50-level-only-in-dropped-rows": ok(
        "y ~ x + (1 | g)",
        all_of(n_levels(5), n_rows(60)),
        data=setcols(y=lambda d: np.where(d["g"] == "g6", np.nan, d["y"])),
    ),
    "B51-fixed-level-only-in-dropped-rows": ok(
        "y ~ f + (1 | g)",
        all_of(n_fixed(1), n_rows(48)),
        data=setcols(y=lambda d: np.where(d["f"] == "hi", np.nan, d["y"])),
    ),
}

# --------------------------------------------------------------------------------------------
# C. names: Stan identifiers, Python keywords, special characters
# --------------------------------------------------------------------------------------------


def swap(column: str, template: str) -> Callable[[str], dict]:
    """An injection builder: ``base()`` with ``column`` renamed to the token, used in ``template``."""
    return lambda token: {"formula": template.format(n=token), "data": base().rename(columns={column: token})}


STAN_NAMES = (
    "target data model for lower parameters b sd_1 mu N Y X Z_1 J_1 K sigma Xc b_Intercept L_1 z_1 means_X"
)
KEYWORDS = ("class", "lambda", "def", "None", "if")
SPECIAL = {
    "lbracket": "a[1]",
    "rbracket": "a]",
    "colon": "a:b",
    "pipe": "a|b",
    "tilde": "a~b",
    "lparen": "a(b",
    "rparen": "a)b",
    "squote": "a'b",
    "dquote": 'a"b',
    "braces": "a{b}",
    "hash": "a#b",
    "comma": "a,b",
    "slash": "a/b",
}

NAMES = {
    **{f"C-pred-named-{n}": Inject(swap("x", "y ~ {n} + ({n} | g)"), n, "x") for n in STAN_NAMES.split()},
    **{
        f"C-group-named-{n}": Inject(swap("g", "y ~ x + (1 | {n})"), n, "g")
        for n in "target for N_1 J_1 Y int".split()
    },
    **{f"C-resp-named-{n}": Inject(swap("y", "{n} ~ x + (1 | g)"), n, "y") for n in "target Y N mu".split()},
    **{
        f"C-python-keyword-{k}": either(f"y ~ {k} + (1 | g)", x_is(k), k, data=renamed(x=k)) for k in KEYWORDS
    },
    **{
        f"C-python-keyword-backtick-{k}": ok(f"y ~ `{k}` + (`{k}` | g)", x_is(k), data=renamed(x=k))
        for k in KEYWORDS
    },
    **{
        f"C-special-pred-{k}": ok(f"y ~ `{s}` + (`{s}` | g)", x_is(s), data=renamed(x=s))
        for k, s in SPECIAL.items()
    },
    **{
        f"C-special-group-{k}": ok(f"y ~ x + (1 | `{s}`)", n_levels(6), data=renamed(g=s))
        for k, s in SPECIAL.items()
    },
    "C-special-response-tilde": ok("`a~b` ~ x + (1 | g)", y_is("a~b"), data=renamed(y="a~b")),
    "C-special-response-pipe": ok("`a|b` ~ x + (1 | g)", y_is("a|b"), data=renamed(y="a|b")),
}

# --------------------------------------------------------------------------------------------
# D. priors
# --------------------------------------------------------------------------------------------

FULL = "y ~ x + (x | g)"
B_NUMBERS = {
    "trailing-space": ("normal(0, 5) ", (0.0, 5.0)),
    "leading-space": ("  normal(0,5)", (0.0, 5.0)),
    "space-before-paren": ("normal (0, 5)", (0.0, 5.0)),
    "plus-signs": ("normal(+0, +5)", (0.0, 5.0)),
    "exponent-e0": ("normal(0, 5e0)", (0.0, 5.0)),
    "dot-forms": ("normal(0., .5)", (0.0, 0.5)),
    "minus-zero": ("normal(-0, 5)", (0.0, 5.0)),
    "huge-scale": ("normal(0, 1e308)", (0.0, 1e308)),
    "double-exponential": ("double_exponential(0, 1)", (0.0, 1.0)),
}
VALID = [  # class, prior, formula, family
    ("sd", "cauchy(0, 2)", FULL, "gaussian"),
    ("sigma", "lognormal(0, 1)", FULL, "gaussian"),
    ("sd", "inv_gamma(2, 1)", FULL, "gaussian"),
    ("sigma", "weibull(2, 1)", FULL, "gaussian"),
    ("sd", "chi_square(3)", FULL, "gaussian"),
    ("sd", "gamma(2, 0.5)", FULL, "gaussian"),
    ("Intercept", "logistic(0, 1)", FULL, "gaussian"),
    ("cor", "lkj_corr(2)", FULL, "gaussian"),
    ("cor", "lkj_corr_cholesky(3)", FULL, "gaussian"),
    ("sd", "exponential(1)", "yes ~ x + (x | g)", "bernoulli"),
    ("b", "student_t(3, 0, 2.5)", "count ~ x + (1 | g)", "poisson"),
    ("sd", "normal(1, 1)", "count ~ x + (1 | g)", "poisson"),
    ("Intercept", "normal(0, 5)", "cbind(s, trials - s) ~ x + (1 | g)", "binomial"),
]
BAD = {  # name: class, prior, needles
    "underscore-number": ("b", "normal(0, 1_000)", ("1_000",)),
    "trailing-comma": ("b", "normal(0, 5,)", ("normal(0, 5,)",)),
    "semicolon-sep": ("b", "normal(0; 5)", ("normal(0; 5)",)),
    "named-args": ("b", "normal(mu=0, sigma=5)", ("mu=0",)),
    "hash-comment": ("b", "normal(0, 5) # wide", ("normal(0, 5)",)),
    "sum-of-priors": ("b", "normal(0,5) + normal(0,1)", ("normal(0,5) + normal(0,1)",)),
    "half-cauchy": ("sd", "half_cauchy(0, 1)", ("half_cauchy", "cauchy")),
    "parenthesised-arg": ("b", "normal(0, (5))", ("(5)",)),
    "bytes-value": ("b", b"normal(0, 5)", ("b'normal(0, 5)'",)),
    "hex-number": ("b", "normal(0, 0x10)", ("0x10",)),
    "R-call-prior": ("b", "prior(normal(0, 5), class = b)", ("prior",)),
    "lkj-two-args": ("cor", "lkj(2, 1)", ("lkj(2, 1)",)),
    "empty-string": ("b", "", ("''",)),
}
CLASSES = {  # name: class, needles (the class as given, the class meant)
    "Sigma-capital": ("Sigma", ("'Sigma'", "'sigma'")),
    "intercept-lower": ("intercept", ("'intercept'", "'Intercept'")),
    "b-trailing-space": ("b ", ("'b '", "'b'")),
    "B-upper": ("B", ("'B'", "'b'")),
    "sd_1-specific": ("sd_1", ("'sd_1'", "'sd'")),
}
B5 = prior_is("b", 0.0, 5.0)

PRIORS = {
    **{
        f"D-b-{name}": ok(FULL, prior_is("b", *nums), priors={"b": text})
        for name, (text, nums) in B_NUMBERS.items()
    },
    **{
        f"D-valid-{cls}-{text.split('(')[0]}-{family}": ok(formula, family=family, priors={cls: text})
        for cls, text, formula, family in VALID
    },
    **{
        f"D-bad-{name}": err(FULL, *needles, error=lf.PriorError, priors={cls: text})
        for name, (cls, text, needles) in BAD.items()
    },
    **{
        f"D-class-{name}": err(FULL, *needles, error=lf.PriorError, priors={cls: "normal(0, 5)"})
        for name, (cls, needles) in CLASSES.items()
    },
    "D-numpy-str-key-value": ok(FULL, B5, priors={np.str_("b"): np.str_("normal(0, 5)")}),
    "D-defaultdict": ok(FULL, B5, priors=defaultdict(str, {"b": "normal(0, 5)"})),
    "D-sigma-on-bernoulli": err(
        "yes ~ x + (1 | g)",
        "sigma",
        "bernoulli",
        error=lf.PriorError,
        family="bernoulli",
        priors={"sigma": "student_t(3, 0, 2.5)"},
    ),
    "D-cor-on-slope-only-block": err(
        "y ~ x + (0 + x | g)", "cor", error=lf.PriorError, priors={"cor": "lkj(2)"}
    ),
}

# --------------------------------------------------------------------------------------------
# E. families and responses
# --------------------------------------------------------------------------------------------

Y1 = "y ~ x + (1 | g)"
RESP = "resp ~ x + (1 | g)"
CBIND = "cbind(s, trials - s) ~ x + (1 | g)"


def yes_as(event, other) -> Callable[[pd.DataFrame], np.ndarray]:
    return lambda d: np.where(d["yes"] == 1, event, other)


def is_yes(d: pd.DataFrame) -> pd.Series:
    return d["yes"] == 1


FAMILIES = {
    "E01-family-Gaussian": ok(Y1, n_fixed(1), family="Gaussian"),
    "E02-family-padded": either(Y1, n_fixed(1), "' gaussian '", "gaussian", family=" gaussian "),
    "E03-binomial-bool": ok(
        "ok ~ x + (1 | g)",
        all_of(y_is("ok"), data_is("trials", 1)),
        data=setcols(ok=is_yes),
        family="binomial",
    ),
    "E04-bernoulli-True-False-strings": ok(
        RESP,
        y_is(lambda d: d["resp"] == "True"),
        data=setcols(resp=yes_as("True", "False")),
        family="bernoulli",
    ),
    "E05-bernoulli-TRUE-FALSE-R-strings": ok(
        RESP,
        y_is(lambda d: d["resp"] == "TRUE"),
        data=setcols(resp=yes_as("TRUE", "FALSE")),
        family="bernoulli",
    ),
    "E06-bernoulli-object-bool-None": ok(
        RESP,
        all_of(n_rows(71), y_is(lambda d: d["resp"].dropna().astype(bool))),
        data=setcols(resp=lambda d: pd.Series([None, *map(bool, d["yes"][1:])], dtype=object)),
        family="bernoulli",
    ),
    "E07-bernoulli-Int64-NA": ok(
        RESP,
        all_of(n_rows(70), y_is(lambda d: d["resp"].dropna())),
        data=setcols(resp=lambda d: with_na(d["yes"].tolist(), [0, 7], "Int64")),
        family="bernoulli",
    ),
    "E08-bernoulli-all-ones": ok("one ~ x + (1 | g)", y_is("one"), data=setcols(one=1), family="bernoulli"),
    "E09-bernoulli-all-zeros": ok(
        "zero ~ x + (1 | g)", y_is("zero"), data=setcols(zero=0), family="bernoulli"
    ),
    "E10-poisson-all-zeros": ok("zero ~ x + (1 | g)", y_is("zero"), data=setcols(zero=0), family="poisson"),
    "E11-poisson-bool": ok("ok ~ x + (1 | g)", y_is("ok"), data=setcols(ok=is_yes), family="poisson"),
    "E12-cbind-whole-floats": ok(
        "cbind(sf, ff) ~ x + (1 | g)",
        all_of(y_is("s"), data_is("trials", lambda d: d["trials"])),
        data=setcols(sf=lambda d: d["s"].astype(float), ff=lambda d: (d["trials"] - d["s"]).astype(float)),
        family="binomial",
    ),
    "E13-cbind-negative-failures": err(
        "cbind(s, ff) ~ x + (1 | g)",
        "'ff'",
        rx("negative"),
        data=setcols(ff=lambda d: d["trials"] - d["s"] - 3),
        family="binomial",
    ),
    "E14-cbind-NaN-trials": ok(
        CBIND,
        all_of(n_rows(71), warned(r"\b1\b")),
        data=setcols(trials=lambda d: np.where(ROWS == 3, np.nan, d["trials"])),
        family="binomial",
    ),
    "E15-cbind-zero-trials-rows": ok(
        "cbind(s0, f0) ~ x + (1 | g)",
        n_rows(72),
        data=setcols(
            s0=lambda d: np.where(ROWS < 3, 0, d["s"]),
            f0=lambda d: np.where(ROWS < 3, 0, d["trials"] - d["s"]),
        ),
        family="binomial",
    ),
    "E16-binomial-proportions": err(
        "prop ~ x + (1 | g)",
        "'prop'",
        "cbind",
        data=setcols(prop=lambda d: d["s"] / d["trials"]),
        family="binomial",
    ),
    "E17-gaussian-bool-response": ok("ok ~ x + (1 | g)", y_is("ok"), data=setcols(ok=is_yes)),
    "E18-poisson-float-counts": ok(
        "cf ~ x + (1 | g)", y_is("cf"), data=setcols(cf=lambda d: d["count"].astype(float)), family="poisson"
    ),
    # the last declared category (0) is the event
    "E19-bernoulli-categorical-int-reversed": ok(
        RESP,
        y_is(lambda d: d["resp"].astype(int) == 0),
        data=setcols(resp=lambda d: pd.Categorical(d["yes"], categories=[1, 0])),
        family="bernoulli",
    ),
    "E20-bernoulli-1-2": err(
        RESP, "'resp'", "2", data=setcols(resp=lambda d: d["yes"] + 1), family="bernoulli"
    ),
    "E21-family-binomial-cbind-object": ok(CBIND, y_is("s"), family=lf.get_family("binomial")),
    "E22-bernoulli-float-NaN": ok(
        RESP,
        n_rows(66),
        data=setcols(resp=lambda d: np.where(ROWS % 12 == 0, np.nan, d["yes"].astype(float))),
        family="bernoulli",
    ),
    "E23-family-brms-call": err(Y1, "gaussian()", "gaussian", error=lf.ArgumentError, family="gaussian()"),
    "E24-family-logit-link": err(
        "yes ~ x + (1 | g)",
        "binomial(link = 'logit')",
        error=lf.ArgumentError,
        family="binomial(link = 'logit')",
    ),
    "E25-cbind-Int64-NA": ok(
        "cbind(s, fi) ~ x + (1 | g)",
        all_of(n_rows(70), y_is(lambda d: d["s"][2:])),
        data=setcols(fi=lambda d: with_na((d["trials"] - d["s"]).tolist(), [0, 1], "Int64")),
        family="binomial",
    ),
    "E26-bernoulli-yes-no-object": ok(
        RESP,
        y_is(lambda d: d["resp"] == "yes"),
        data=setcols(resp=lambda d: yes_as("yes", "no")(d).astype(object)),
        family="bernoulli",
    ),
    "E27-gaussian-categorical-float-response": err(
        "rc ~ x + (1 | g)", "'rc'", data=setcols(rc=lambda d: pd.Categorical(np.round(d["y"], 0)))
    ),
    "E28-bernoulli-boolean-dtype-all-true": ok(
        "ok ~ x + (1 | g)",
        y_is(lambda d: np.ones(72)),
        data=setcols(ok=pd.array([True] * 72, dtype="boolean")),
        family="bernoulli",
    ),
    "E29-poisson-count-max-int32": ok(
        "cbig ~ x + (1 | g)",
        y_is("cbig"),
        data=setcols(cbig=lambda d: np.where(ROWS == 0, 2**31 - 1, d["count"])),
        family="poisson",
    ),
    "E30-bernoulli-two-floats-not-01": err(
        RESP, "'resp'", data=setcols(resp=yes_as(0.7, 0.2)), family="bernoulli"
    ),
}

# --------------------------------------------------------------------------------------------
# F. the parameterization argument
# --------------------------------------------------------------------------------------------

TWO = "y ~ x + (1 | g) + (x | h)"
SLOPE = "y ~ x + (x | g)"
Block = lf.BlockParameterization
CENTERED, NONCENTERED = data_is("centered_1", 1), data_is("centered_1", 0)
CENTERED_SLOPE = data_is("centered_1", 2)  # (x | g): both columns


def bad_parameterization(formula: str, value, *needles) -> Call:
    return err(formula, *needles, error=lf.ArgumentError, parameterization=value)


PARAMETERIZATION = {
    "F01-tuple": ok(SLOPE, CENTERED_SLOPE, parameterization=("centered",)),
    "F02-numpy-str-array": ok(
        TWO,
        all_of(NONCENTERED, data_is("centered_2", 2)),
        parameterization=np.array(["noncentered", "centered"]),
    ),
    "F03-centers-as-string": either(
        SLOPE, CENTERED_SLOPE, rx("tuple|sequence|list"), parameterization=[Block(True, "Intercept")]
    ),
    "F04-center-on-missing-column": bad_parameterization(Y1, [Block(True, ("x",))], "'x'"),
    "F05-two-blocks-same-center": bad_parameterization(
        TWO, [Block(True, ("Intercept",)), Block(True, ("Intercept",))], "Intercept"
    ),
    "F06-noncentered-with-centers": bad_parameterization(
        Y1, [Block(False, ("Intercept",))], rx("non-?centered")
    ),
    "F07-capitalised-word": either(Y1, CENTERED, "'Centered'", "'centered'", parameterization="Centered"),
    "F08-hyphenated": either(
        Y1, NONCENTERED, "'non-centered'", "'noncentered'", parameterization="non-centered"
    ),
    "F09-list-without-blocks": either(
        "y ~ x", n_fixed(1), "parameterization", rx(r"\b0\b|no group"), parameterization=["centered"]
    ),
    "F10-empty-list-without-blocks": ok("y ~ x", n_fixed(1), parameterization=[]),
    "F11-pandas-series": either(Y1, CENTERED, "parameterization", parameterization=pd.Series(["centered"])),
    "F12-2d-array": bad_parameterization(Y1, np.array([["centered", "auto"]]), "parameterization"),
    "F13-centers-None": either(Y1, CENTERED, rx("center"), parameterization=[Block(True, None)]),
    "F14-explicit-slope-center": ok(SLOPE, centers_are("x"), parameterization=[Block(True, ("x",))]),
    # deduplicated, or an error that does not claim two blocks
    "F15-same-center-listed-twice-one-block": either(
        Y1,
        CENTERED,
        rx(r"twice|duplicate|repeated|listed"),
        parameterization=[Block(True, ("Intercept", "Intercept"))],
    ),
    "F16-centered-no-intercept": ok("y ~ 0 + x + (x | g)", CENTERED_SLOPE, parameterization="centered"),
    "F17-list-of-words-mixed-case": either(
        TWO, data_is("centered_2", 0), "'NONCENTERED'", parameterization=["auto", "NONCENTERED"]
    ),
    "F18-bool-parameterization": bad_parameterization(Y1, True, "parameterization"),
    # a truthy "no" must not silently center
    "F19-centered-flag-string": either(Y1, NONCENTERED, "centered", parameterization=[Block("no")]),
    "F20-parameterization-pd.NA": bad_parameterization(Y1, [pd.NA], "parameterization"),
    "F21-parameterization-nested-array-entry": bad_parameterization(
        Y1, [np.array(["centered", "auto"])], "parameterization"
    ),
    "F22-centers-as-list": ok(Y1, CENTERED, parameterization=[Block(True, ["Intercept"])]),
    "F23-parameterization-padded-word": either(Y1, CENTERED, "'centered '", parameterization="centered "),
}

# --------------------------------------------------------------------------------------------
# G. more injection: hostile levels, names and category labels
# --------------------------------------------------------------------------------------------


def interaction_level(token: str) -> dict:
    d = base()
    d["h"] = np.where(d["h"] == "h1", token, d["h"]).astype(object)
    return {"formula": "y ~ x + (1 | g:h)", "data": d}


def bernoulli_level(token: str) -> dict:
    d = base()
    d["resp"] = np.where(d["yes"] == 1, token, "no").astype(object)
    return {"formula": RESP, "data": d, "family": "bernoulli"}


def poly_name(token: str) -> dict:
    return {"formula": f"y ~ poly(`{token}`, 2) + (1 | g)", "data": base().rename(columns={"x": token})}


def cbind_name(token: str) -> dict:
    d = base()
    d[token] = d["s"]
    return {"formula": f"cbind(`{token}`, trials - `{token}`) ~ x + (1 | g)", "data": d, "family": "binomial"}


def treatment_reference(token: str) -> dict:
    d = base()
    d["f"] = np.where(d["f"] == "lo", token, d["f"]).astype(object)
    return {"formula": f"y ~ C(f, Treatment(reference={token!r})) + (1 | g)", "data": d}


def nested_name(token: str) -> dict:
    return {"formula": f"y ~ x + (1 | g/`{token}`)", "data": base().rename(columns={"h": token})}


def categories(token: str) -> dict:
    d = base()
    d["fc"] = pd.Categorical(np.where(d["f"] == "lo", token, d["f"]), categories=["mid", token, "hi"])
    return {"formula": "y ~ fc + (fc | g)", "data": d}


def centers_name(token: str) -> dict:
    return {
        "formula": f"y ~ `{token}` + (`{token}` | g)",
        "data": base().rename(columns={"x": token}),
        "parameterization": [Block(True, (token,))],
    }


HOSTILE = ("x */ } model { target += 1e9; } /*", "a\nparameters { real zz; }\n//")
INJECTION = {
    f"G-{name}-{i}": Inject(build, token, plain, may_reject=bool(i))
    for name, build, plain in [
        ("interaction-level", interaction_level, "h1"),
        ("bernoulli-level", bernoulli_level, "yes"),
        ("poly-colname", poly_name, "x"),
        ("cbind-colname", cbind_name, "succ"),
        ("treatment-reference", treatment_reference, "lo"),
        ("nested-colname", nested_name, "h"),
        ("categorical-categories", categories, "lo"),
        ("centers-colname", centers_name, "x"),
    ]
    for i, token in enumerate(HOSTILE)
}

# --------------------------------------------------------------------------------------------
# H. make_stancode / make_standata
# --------------------------------------------------------------------------------------------

FUNCTIONS = {
    "H01-make_stancode-percent-in": ok("y ~ x %in% f + (1 | g)", func=lf.make_stancode),
    "H02-make_standata-I-caret-int": either(
        "y ~ I(xi^2) + (1 | g)", x_is(lambda d: d["xi"] ** 2), rx(r"\^|\*\*"), func=lf.make_standata
    ),
    "H03-make_standata-bad-prior": err(
        Y1, "normal(0)", error=lf.PriorError, func=lf.make_standata, priors={"b": "normal(0)"}
    ),
    "H04-make_stancode-series": err(
        "y ~ x", "Series", data=lambda: base()["y"], error=lf.DataError, func=lf.make_stancode
    ),
    "H05-make_standata-ordered": ok(
        "y ~ fo + (1 | g)", n_fixed(2), data=setcols(fo=ordered_f), func=lf.make_standata
    ),
    # the data frame passed first, the formula second
    "H06-make_stancode-swapped-args": err(base(), "formula", data=Y1, func=lf.make_stancode),
    "H07-make_standata-dotted": either(
        "y ~ Sepal.Length", None, "Sepal.Length", data=renamed(pos="Sepal.Length"), func=lf.make_standata
    ),
    "H08-make_stancode-bernoulli-all-ones": ok(
        "one ~ x + (1 | g)", data=setcols(one=1), family="bernoulli", func=lf.make_stancode
    ),
    "H09-make_standata-family-object": ok(
        "count ~ x + (1 | g)", y_is("count"), family=lf.get_family("poisson"), func=lf.make_standata
    ),
    "H10-make_stancode-abs": ok("y ~ abs(x) + (1 | g)", func=lf.make_stancode),
}

# --------------------------------------------------------------------------------------------
# I. more formula and grouping correctness
# --------------------------------------------------------------------------------------------

GROUPING = {
    "I01-J-codes-tz-datetime": ok(
        "y ~ x + (1 | when)",
        codes_consistent("when"),
        data=setcols(
            when=lambda d: pd.Series(np.resize(pd.date_range("2024-01-01", periods=6, tz="UTC"), 72))
        ),
    ),
    "I02-J-codes-mixed-object": ok(
        "y ~ x + (1 | mix)", codes_consistent("mix"), data=setcols(mix=objects(MIXED))
    ),
    "I03-J-codes-Int64-NA": ok(
        "y ~ x + (1 | gi)",
        all_of(codes_consistent("gi"), n_levels(4)),
        data=setcols(gi=lambda d: with_na(list(np.resize([3, 1, 2, 10], 72)), [0, 5], "Int64")),
    ),
    "I04-J-codes-float-halves-NaN": ok(
        "y ~ x + (1 | site)",
        all_of(codes_consistent("site"), n_levels(3)),
        data=setcols(site=np.where(ROWS % 11 == 0, np.nan, np.resize([1.5, 2.0, 10.25], 72))),
    ),
    "I05-J-codes-uint64": ok(
        "y ~ x + (1 | big)",
        codes_consistent("big"),
        data=setcols(big=np.resize(np.array([2**64 - 1, 2**63, 1], dtype=np.uint64), 72)),
    ),
    "I06-J-codes-categorical-floats": ok(
        "y ~ x + (1 | gc)",
        all_of(codes_consistent("gc"), n_levels(3)),
        data=setcols(gc=lambda d: pd.Categorical(np.resize([1.0, 2.0, 2.5], 72))),
    ),
    "I07-Z-slope-column": ok(SLOPE, z_is("x")),
    # a backticked name that is a substring of another name
    "I08-backtick-substring-name": ok("y ~ I(trials - `s`) + (1 | g)", x_is(lambda d: d["trials"] - d["s"])),
    "I09-cbind-backticked": ok("cbind(`s`, trials - `s`) ~ x + (1 | g)", y_is("s"), family="binomial"),
    "I10-bars-in-inner-parentheses": either(
        "y ~ x + ((1 | g) + (1 | h))", n_levels(6, 3), rx(r"\(1 \| g\)|bar|group-level")
    ),
    "I11-grouping-also-fixed": ok("y ~ g + (1 | g)", all_of(n_fixed(5), n_levels(6))),
    "I12-plus-zero-after-bar": ok("y ~ x + (1 | g) + 0", all_of(no_intercept, n_fixed(1))),
    "I13-double-space-name": ok("y ~ `my  x` + (1 | g)", x_is("my  x"), data=renamed(x="my  x")),
    "I14-index-named-like-column": ok(Y1, x_is("x"), data=lambda: base().rename_axis("x")),
    "I15-column-named-I-with-I-call": ok(
        "y ~ I(x**2) + (1 | g)", x_is(lambda d: d["x"] ** 2), data=setcols(I=lambda d: d["z"])
    ),
    "I16-column-named-poly-with-poly": ok(
        "y ~ poly(x, 2) + (1 | g)", n_fixed(2), data=setcols(poly=lambda d: d["z"])
    ),
    "I17-huge-y-and-slope": ok(
        SLOPE, y_is("y"), data=setcols(y=lambda d: d["y"] * 1e99, x=lambda d: d["x"] * 1e99)
    ),
    "I18-subnormal-y": ok(SLOPE, y_is("y"), data=setcols(y=lambda d: d["y"] * 1e-300)),
    # the last declared category ("no") is the event
    "I19-binomial-categorical-event-last": ok(
        RESP,
        y_is(lambda d: d["resp"] == "no"),
        data=setcols(resp=lambda d: pd.Categorical(yes_as("yes", "no")(d), categories=["yes", "no"])),
        family="binomial",
    ),
    "I20-nested-NaN-in-inner": ok(
        "y ~ x + (1 | g/h)",
        all_of(n_rows(63), warned(r"\b9\b")),
        data=setcols(h=lambda d: np.where(ROWS % 8 == 0, None, d["h"]).astype(object)),
    ),
    "I21-NaN-only-in-slope-of-bar": ok(
        "y ~ 1 + (z | g)",
        all_of(n_rows(68), warned(r"\b4\b")),
        data=setcols(z=lambda d: np.where(ROWS < 4, np.nan, d["z"])),
    ),
    "I22-cbind-NaN-in-both": ok(
        CBIND,
        all_of(n_rows(70), warned(r"\b2 of 72\b")),
        data=setcols(
            s=lambda d: np.where(ROWS == 1, np.nan, d["s"]),
            trials=lambda d: np.where(ROWS == 2, np.nan, d["trials"]),
        ),
        family="binomial",
    ),
    "I23-long-column-name": ok("y ~ `" + "v" * 3000 + "` + (1 | g)", n_fixed(1), data=renamed(x="v" * 3000)),
    "I24-grouping-by-continuous-x": err("y ~ 1 + (1 | x)", "'x'"),
    "I25-I-caret-in-bar": either("y ~ x + (I(x^2) | g)", z_is(lambda d: d["x"] ** 2), rx(r"\*\*")),
    "I26-list-valued-grouping": either(
        "y ~ x + (1 | gl)", n_levels(3), "'gl'", data=setcols(gl=cells(lambda i: [i % 3]))
    ),
    "I27-dict-valued-grouping": either(
        "y ~ x + (1 | gd)", n_levels(3), "'gd'", data=setcols(gd=cells(lambda i: {"a": i % 3}))
    ),
    "I28-set-valued-grouping": either(
        "y ~ x + (1 | gs)", n_levels(3), "'gs'", data=setcols(gs=cells(lambda i: {i % 3}))
    ),
    "I29-list-valued-gaussian-response": err(
        "yl ~ x + (1 | g)", "'yl'", data=setcols(yl=cells(lambda i: [i]))
    ),
    "I30-deeply-nested-parentheses": ok("y ~ " + "(" * 300 + "x" + ")" * 300 + " + (1 | g)", n_fixed(1)),
    # brms syntax: accepted as lme4's, or an error naming it
    "I31-brms-gr": either("y ~ x + (1 | gr(g))", n_levels(6), "gr(g)"),
    "I32-brms-cor-id": either("y ~ x + (1 + x |p| g)", n_terms(2), rx(r"\|p\||bar")),
}


# --------------------------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------------------------

TABLES = (FORMULA, DATA, NAMES, PRIORS, FAMILIES, PARAMETERIZATION, INJECTION, FUNCTIONS, GROUPING)
CASES = {name: case for table in TABLES for name, case in table.items()}
assert len(CASES) == sum(map(len, TABLES)), "a case name is used twice"


def cases(kind: str) -> list:
    return [
        pytest.param(case, id=name) for name, case in CASES.items() if getattr(case, "kind", "inject") == kind
    ]


def _snapshot(kwargs: dict) -> dict:
    """Deep copies of the caller's data frame, priors and parameterization."""
    kept = {}
    if isinstance(kwargs.get("data"), pd.DataFrame):
        kept["data"] = kwargs["data"].copy(deep=True)
    for key in ("priors", "parameterization"):
        if key in kwargs:
            value = kwargs[key]
            kept[key] = value.copy() if isinstance(value, np.ndarray | pd.Series) else copy.deepcopy(value)
    return kept


def _assert_unchanged(kwargs: dict, kept: dict) -> None:
    if "data" in kept:
        data, before = kwargs["data"], kept["data"]
        assert list(data.columns) == list(before.columns), "the caller's column names changed"
        assert list(map(str, data.dtypes)) == list(map(str, before.dtypes)), "the caller's dtypes changed"
        assert data.index.equals(before.index), "the caller's index changed"
        pd.testing.assert_frame_equal(data, before, check_exact=True)
    for key in ("priors", "parameterization"):
        if key in kept:
            value, before = kwargs[key], kept[key]
            if isinstance(before, np.ndarray):
                same = np.array_equal(value, before)
            elif isinstance(before, pd.Series):
                same = value.equals(before)
            else:
                try:
                    same = not bool(value != before)
                except (TypeError, ValueError):  # arrays or pd.NA inside a list
                    same = repr(value) == repr(before)
            assert same, f"the caller's {key} changed: {before!r} -> {value!r}"


def _attempt(func: Callable, kwargs: dict):
    """(result, None, warnings) or (None, exception, warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return func(**kwargs), None, list(caught)
        except Exception as exc:  # every outcome is judged by the caller
            return None, exc, list(caught)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__name__}: {str(exc)[:400]}"


def _check_error(exc: BaseException, error: type, needles: tuple) -> None:
    message = str(exc)
    assert isinstance(exc, lf.LmmformulaError) and isinstance(exc, error), (
        f"expected {error.__name__}, got {_describe(exc)}"
    )
    assert "\x1b" not in message, f"message holds an ANSI escape: {message!r}"
    foreign = foreign_chain(exc)
    assert not foreign, f"error chained from {_describe(foreign[0])}"
    for needle in needles:
        if isinstance(needle, re.Pattern):
            assert needle.search(message), f"message lacks /{needle.pattern}/: {message!r}"
        else:
            assert needle in message, f"message lacks {needle!r}: {message!r}"


def _stanc(code: str) -> None:
    try:
        check_program(code)
    except Exception as exc:  # stanc's own error types
        failure = f"stanc rejected the program: {str(exc)[:800]}"
    else:
        return
    pytest.fail(failure)


def _check_result(case: Call, kwargs: dict, result, caught: list) -> None:
    code = result.stan_code if isinstance(result, lf.Model) else result if isinstance(result, str) else None
    if code is not None:
        _stanc(code)
    if case.check is not None:
        outcome = case.check(result, kwargs, caught)
        assert outcome is None or outcome, "the case's check failed"


@pytest.mark.parametrize("case", cases("ok"))
def test_accepted(case: Call) -> None:
    kwargs = case.build()
    kept = _snapshot(kwargs)
    result, exc, caught = _attempt(case.func, kwargs)
    assert exc is None, f"expected a result, got {_describe(exc)}"
    _assert_unchanged(kwargs, kept)
    _check_result(case, kwargs, result, caught)


@pytest.mark.parametrize("case", cases("err"))
def test_refused(case: Call) -> None:
    kwargs = case.build()
    kept = _snapshot(kwargs)
    result, exc, _ = _attempt(case.func, kwargs)
    assert exc is not None, f"expected {case.error.__name__}, got a result: {result!r}"[:600]
    _check_error(exc, case.error, case.needles)
    _assert_unchanged(kwargs, kept)


@pytest.mark.parametrize("case", cases("either"))
def test_accepted_or_refused_clearly(case: Call) -> None:
    kwargs = case.build()
    kept = _snapshot(kwargs)
    result, exc, caught = _attempt(case.func, kwargs)
    _assert_unchanged(kwargs, kept)
    if exc is None:
        _check_result(case, kwargs, result, caught)
    else:
        _check_error(exc, case.error, case.needles)


@pytest.mark.parametrize("case", cases("inject"))
def test_injection(case: Inject) -> None:
    kwargs = case.build(case.hostile)
    kept = _snapshot(kwargs)
    model, exc, _ = _attempt(lf.Model, kwargs)
    _assert_unchanged(kwargs, kept)
    if exc is not None:
        assert case.may_reject, f"expected a model, got {_describe(exc)}"
        _check_error(exc, lf.FormulaError, ())
        return
    _stanc(model.stan_code)
    plain, plain_exc, _ = _attempt(lf.Model, case.build(case.plain))
    assert plain_exc is None, f"the plain equivalent failed: {_describe(plain_exc)}"
    assert strip_comments(model.stan_code) == strip_comments(plain.stan_code), (
        "the hostile string changed the program outside its comments"
    )
    shapes = {k: np.shape(v) for k, v in model.stan_data.items()}
    assert shapes == {k: np.shape(v) for k, v in plain.stan_data.items()}, "stan_data shapes differ"
