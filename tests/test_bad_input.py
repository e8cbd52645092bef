"""Malformed and tricky input: a table-driven specification of how Model construction reacts.

Seven classes of cases, each its own parametrized test:

1. injection through comments: hostile strings in levels, column names, formula and prior text
   must leave the program (without its comments) exactly as the same model with plain names;
2. priors: bad distributions, arguments, classes and types raise PriorError / ArgumentError;
3. what used to end in an internal traceback (numpy, formulaic, jinja) raises a clear error;
4. what used to be silently wrong raises or gives the right answer;
5. degenerate designs raise DataError naming the problem;
6. valid lme4 syntax is accepted, invalid syntax is rejected for the right reason;
7. error messages name the column and show the offending values.

Every case only builds the model (no fit, no C++). Error cases check the class, the message
(substrings or patterns), no ANSI escapes, no chained foreign traceback, and that the caller's
data and priors are unchanged. Valid cases check that the data are unchanged, that the bundled
stanc accepts the program, and a case-specific property of the result.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd
import pytest

import lmmformula as lf
from lmmformula.stanc import check_program

from .conftest import prior_arguments
from .corpus import GROUPS, base, foreign_chain, rx, strip_comments

# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def edited(change: Callable[[pd.DataFrame], pd.DataFrame | None], **options) -> Callable[[], pd.DataFrame]:
    """A data factory: ``base(**options)`` passed through ``change`` (which may edit in place)."""

    def make() -> pd.DataFrame:
        frame = base(**options)
        result = change(frame)
        return frame if result is None else result

    return make


def setcol(name: str, values: Callable[[pd.DataFrame], object], **options) -> Callable[[], pd.DataFrame]:
    """A data factory: ``base()`` with column ``name`` set to ``values(frame)``."""

    def change(frame: pd.DataFrame) -> None:
        frame[name] = values(frame)

    return edited(change, **options)


def kw(formula, data=base, **options) -> Callable[[], dict]:
    """The keyword arguments of one ``lf.Model`` call; ``data`` is a factory or a value."""

    def build() -> dict:
        return {"formula": formula, "data": data() if callable(data) else data, **options}

    return build


@dataclass(frozen=True)
class Err:
    """The call must raise ``error`` whose message contains every needle and no ``forbid``."""

    build: Callable[[], dict]
    error: type[Exception] = lf.LmmformulaError
    needles: tuple = ()
    forbid: tuple = ()


@dataclass(frozen=True)
class Ok:
    """The model builds; ``check(model, kwargs, warnings)`` holds; ``warns`` (if set) was issued."""

    build: Callable[[], dict]
    check: Callable | None = None
    warns: type[Warning] | None = None


@dataclass(frozen=True)
class Either:
    """Either a valid model passing ``check``, or ``error`` with ``needles`` and no ``forbid``."""

    build: Callable[[], dict]
    check: Callable | None = None
    error: type[Exception] = lf.LmmformulaError
    needles: tuple = ()
    forbid: tuple = ()


@dataclass(frozen=True)
class Inject:
    """``build(token)``: with the hostile token the program must equal the plain one, comments aside.

    ``may_reject``: a clear FormulaError is an acceptable outcome too (for names formulaic or
    the library cannot take).
    """

    build: Callable[[str], dict]
    hostile: str
    plain: str
    may_reject: bool = False


def _snapshot(kwargs: dict) -> dict:
    data = kwargs.get("data")
    return {
        "data": data.copy(deep=True) if isinstance(data, pd.DataFrame) else copy.deepcopy(data),
        "priors": _copy_priors(kwargs.get("priors")),
    }


def _copy_priors(priors):
    return dict(priors) if isinstance(priors, Mapping) else copy.deepcopy(priors)


def _assert_unchanged(kwargs: dict, snapshot: dict) -> None:
    data, before = kwargs.get("data"), snapshot["data"]
    if isinstance(before, pd.DataFrame):
        assert isinstance(data, pd.DataFrame)
        assert list(data.columns) == list(before.columns), "the caller's column names changed"
        assert list(data.dtypes) == list(before.dtypes), "the caller's dtypes changed"
        pd.testing.assert_frame_equal(data, before, check_exact=True)
    elif isinstance(before, np.ndarray):
        np.testing.assert_array_equal(data, before)
    elif isinstance(before, dict):
        assert list(data) == list(before)
        for key in before:
            np.testing.assert_array_equal(np.asarray(data[key]), np.asarray(before[key]))
    priors = kwargs.get("priors")
    if isinstance(priors, Mapping | list):
        assert _copy_priors(priors) == snapshot["priors"], "the caller's priors changed"


def _check_error(exc: BaseException, error: type, needles, forbid) -> None:
    message = str(exc)
    assert isinstance(exc, error), (
        f"expected {error.__name__}, got {type(exc).__module__}.{type(exc).__name__}: {message[:400]}"
    )
    for needle in needles:
        if isinstance(needle, re.Pattern):
            assert needle.search(message), f"message lacks /{needle.pattern}/: {message!r}"
        else:
            assert needle in message, f"message lacks {needle!r}: {message!r}"
    for bad in forbid:
        assert bad not in message, f"message should not contain {bad!r}: {message!r}"
    assert "\x1b" not in message, f"message holds an ANSI escape: {message!r}"
    foreign = foreign_chain(exc)
    assert not foreign, (
        f"error chained from {type(foreign[0]).__module__}.{type(foreign[0]).__name__}: {foreign[0]}"
    )


def _attempt(kwargs: dict):
    """(model, None, warnings) or (None, exception, warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return lf.Model(**kwargs), None, list(caught)
        except Exception as exc:  # noqa: BLE001 - every outcome is judged by the caller
            return None, exc, list(caught)


def _stanc(code: str) -> None:
    try:
        check_program(code)
    except Exception as exc:  # noqa: BLE001
        failure = f"stanc rejected the program: {str(exc)[:800]}"
    else:
        return
    pytest.fail(failure)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__name__}: {str(exc)[:400]}"


def _expect_error(case: Err) -> None:
    kwargs = case.build()
    snapshot = _snapshot(kwargs)
    model, exc, _ = _attempt(kwargs)
    if exc is None:
        pytest.fail(f"expected {case.error.__name__}, but the model was built: {model!r}")
    _check_error(exc, case.error, case.needles, case.forbid)
    _assert_unchanged(kwargs, snapshot)


def _expect_valid(case: Ok | Either, kwargs: dict | None = None) -> None:
    kwargs = case.build() if kwargs is None else kwargs
    snapshot = _snapshot(kwargs)
    model, exc, caught = _attempt(kwargs)
    if exc is not None:
        pytest.fail(f"expected a model, got {_describe(exc)}")
    _assert_unchanged(kwargs, snapshot)
    _stanc(model.stan_code)
    if isinstance(case, Ok) and case.warns is not None:
        assert any(issubclass(w.category, case.warns) for w in caught), (
            f"expected a {case.warns.__name__}, got {[str(w.message) for w in caught]}"
        )
    if case.check is not None:
        assert case.check(model, kwargs, caught) is not False, "the case's check failed"


def _expect_either(case: Either) -> None:
    kwargs = case.build()
    snapshot = _snapshot(kwargs)
    model, exc, _ = _attempt(kwargs)
    if exc is None:
        _expect_valid(case, case.build())
        return
    _check_error(exc, case.error, case.needles, case.forbid)
    _assert_unchanged(kwargs, snapshot)


def run(case) -> None:
    if isinstance(case, Err):
        _expect_error(case)
    elif isinstance(case, Either):
        _expect_either(case)
    else:
        _expect_valid(case)


def run_injection(case: Inject) -> None:
    kwargs = case.build(case.hostile)
    snapshot = _snapshot(kwargs)
    model, exc, _ = _attempt(kwargs)
    if exc is not None:
        if not case.may_reject:
            pytest.fail(f"expected a model, got {_describe(exc)}")
        _check_error(exc, lf.FormulaError, (), ())
        _assert_unchanged(kwargs, snapshot)
        return
    _assert_unchanged(kwargs, snapshot)
    _stanc(model.stan_code)
    plain, plain_exc, _ = _attempt(case.build(case.plain))
    if plain_exc is not None:
        pytest.fail(f"the plain equivalent failed: {_describe(plain_exc)}")
    assert strip_comments(model.stan_code) == strip_comments(plain.stan_code), (
        "the hostile string changed the program outside its comments"
    )
    shapes = {k: np.shape(v) for k, v in model.stan_data.items()}
    assert shapes == {k: np.shape(v) for k, v in plain.stan_data.items()}


def cases(table: dict) -> list:
    return [pytest.param(case, id=name) for name, case in table.items()]


# --------------------------------------------------------------------------------------------
# small checks on valid models
# --------------------------------------------------------------------------------------------


def n_columns(model: lf.Model) -> int:
    return int(model.stan_data.get("K", 0))


def has_K(k: int) -> Callable:
    def check(model, kwargs, caught) -> None:
        assert n_columns(model) == k, (
            f"expected {k} population-level columns, got {model.design.fixed_columns}"
        )

    return check


def has_levels(*counts: int) -> Callable:
    def check(model, kwargs, caught) -> None:
        found = [int(model.stan_data[f"N_{i}"]) for i in range(1, len(counts) + 1)]
        assert found == list(counts), f"expected levels {list(counts)}, got {found}"
        assert f"N_{len(counts) + 1}" not in model.stan_data

    return check


def response_is(expected: Callable[[pd.DataFrame], np.ndarray]) -> Callable:
    def check(model, kwargs, caught) -> None:
        want = np.asarray(expected(kwargs["data"]), dtype=float)
        np.testing.assert_allclose(np.asarray(model.stan_data["Y"], dtype=float), want)

    return check


def all_of(*checks: Callable) -> Callable:
    def check(model, kwargs, caught) -> None:
        for one in checks:
            assert one(model, kwargs, caught) is not False, f"check {one.__name__} failed"

    return check


def no_intercept(model, kwargs, caught) -> None:
    assert not model.design.has_intercept


def prior_numbers(parameter_class: str, *numbers: float) -> Callable:
    def check(model, kwargs, caught) -> None:
        found = prior_arguments(model.stan_data, parameter_class)
        assert found == list(numbers), f"{parameter_class}: expected {list(numbers)}, got {found}"

    return check


def no_prior_statement(name: str) -> Callable:
    def check(model, kwargs, caught) -> None:
        assert not re.search(rf"(^|\s){name}\s*~", strip_comments(model.stan_code)), model.stan_code
        assert not any(k.startswith(f"prior_{name}_") for k in model.stan_data)

    return check


def x_column_equals(values: Callable[[pd.DataFrame], np.ndarray], k: int = 0) -> Callable:
    def check(model, kwargs, caught) -> None:
        X = np.asarray(model.stan_data["X"], dtype=float)
        np.testing.assert_allclose(X[:, k], np.asarray(values(kwargs["data"]), dtype=float), rtol=1e-10)

    return check


def warned(pattern: str) -> Callable:
    def check(model, kwargs, caught) -> None:
        messages = [str(w.message) for w in caught]
        assert any(re.search(pattern, m, re.IGNORECASE) for m in messages), (
            f"no warning matching /{pattern}/ in {messages}"
        )

    return check


# --------------------------------------------------------------------------------------------
# 1. injection through comments
# --------------------------------------------------------------------------------------------

HOSTILE = {
    "newline": "a\nb",
    "cr": "a\rb",
    "crlf": "a\r\nb",
    "close-block-comment": "x */ parameters { real z; } /*",
    "open-block-comment": "/* a",
    "line-comment": "a // b",
    "nul": "a\x00b",
    "tab": "a\tb",
    "u2028": "a\u2028b",
    "u2029": "a\u2029b",
    "vt-ff": "a\x0b\x0cb",
    "ansi-escape": "a\x1b[31mb",
    "del-nel": "a\x7f\x85b",
    "non-ascii": "grüße ß 日本 😀",
    "functions-block": "a\nfunctions { void f() {} }",
    "crlf-parameters": "a\r\nparameters { real z; }",
    "valid-functions-block": "a\nfunctions { real twice(real v) { return 2 * v; } } //",
    "bidi-override": "a\u202eb",
    "zero-width": "a\u200bb",
    "backslash-star": "a\\*/b",
    "jinja-syntax": "{{ x }}{% raw %}",
}


def _replace_level(frame: pd.DataFrame, column: str, old: str, token: str) -> None:
    frame[column] = np.where(frame[column] == old, token, frame[column]).astype(object)


def inject_fixed_level(token: str) -> dict:
    frame = base()
    _replace_level(frame, "f", "lo", token)
    return {"formula": "y ~ x + f + (0 + f | g)", "data": frame}


def inject_fixed_level_C(token: str) -> dict:
    frame = base()
    _replace_level(frame, "f", "lo", token)
    return {"formula": "y ~ C(f) + (0 + C(f) || g)", "data": frame}


def inject_group_level(token: str) -> dict:
    frame = base()
    _replace_level(frame, "g", "g1", token)
    return {"formula": "y ~ x + (x | g)", "data": frame}


def inject_nested_level(token: str) -> dict:
    frame = base()
    _replace_level(frame, "h", "h1", token)
    return {"formula": "y ~ x + (1 | g/h)", "data": frame}


def inject_fixed_name(token: str) -> dict:
    frame = base().rename(columns={"x": token})
    return {"formula": f"y ~ `{token}` + (`{token}` | g)", "data": frame}


def inject_group_name(token: str) -> dict:
    frame = base().rename(columns={"g": token})
    return {"formula": f"y ~ x + (1 | `{token}`)", "data": frame}


def inject_response_name(token: str) -> dict:
    frame = base().rename(columns={"y": token})
    return {"formula": f"`{token}` ~ x + (1 | g)", "data": frame}


def inject_formula_literal(token: str) -> dict:
    frame = base()
    _replace_level(frame, "f", "lo", token)
    levels = f"[{token!r}, 'mid', 'hi']"
    return {"formula": f"y ~ C(f, levels={levels}) + (0 + C(f, levels={levels}) || g)", "data": frame}


def inject_formula_space(token: str) -> dict:
    return {"formula": f"y ~ x{token}+ (x | g)", "data": base()}


def inject_formula_around(token: str) -> dict:
    return {"formula": f"{token}y ~ x + (1 | g){token}", "data": base()}


def inject_prior(token: str) -> dict:
    return {"formula": "y ~ x + (x | g)", "data": base(), "priors": {"b": token}}


INJECTION: dict[str, Inject] = {}
INJECTION.update(
    {f"fixed-level-{name}": Inject(inject_fixed_level, token, "lo") for name, token in HOSTILE.items()}
)
for name in ("newline", "close-block-comment", "nul", "u2028", "valid-functions-block", "crlf-parameters"):
    INJECTION[f"fixed-level-C-{name}"] = Inject(inject_fixed_level_C, HOSTILE[name], "lo")
for name in (
    "newline",
    "crlf",
    "close-block-comment",
    "line-comment",
    "nul",
    "u2028",
    "non-ascii",
    "functions-block",
    "ansi-escape",
):
    INJECTION[f"group-level-{name}"] = Inject(inject_group_level, HOSTILE[name], "g1")
for name in ("newline", "close-block-comment", "cr"):
    INJECTION[f"nested-level-{name}"] = Inject(inject_nested_level, HOSTILE[name], "h1")
for name in (
    "close-block-comment",
    "line-comment",
    "newline",
    "functions-block",
    "nul",
    "u2028",
    "non-ascii",
):
    INJECTION[f"fixed-colname-{name}"] = Inject(inject_fixed_name, HOSTILE[name], "x", may_reject=True)
for name in ("close-block-comment", "open-block-comment", "newline", "crlf-parameters", "non-ascii"):
    INJECTION[f"group-colname-{name}"] = Inject(inject_group_name, HOSTILE[name], "g", may_reject=True)
for name in ("close-block-comment", "newline", "line-comment", "ansi-escape"):
    INJECTION[f"response-colname-{name}"] = Inject(inject_response_name, HOSTILE[name], "y", may_reject=True)
for name in ("close-block-comment", "line-comment", "newline", "nul", "valid-functions-block", "non-ascii"):
    INJECTION[f"formula-literal-{name}"] = Inject(inject_formula_literal, HOSTILE[name], "lo")
INJECTION.update(
    {
        "formula-space-newline": Inject(inject_formula_space, "\n", " "),
        "formula-space-crlf": Inject(inject_formula_space, "\r\n", " "),
        "formula-space-cr": Inject(inject_formula_space, "\r", " "),
        "formula-space-tab": Inject(inject_formula_space, "\t", " "),
        "formula-space-blank-lines": Inject(inject_formula_space, "\n\n    ", " "),
        "formula-space-u2028": Inject(inject_formula_space, "\u2028", " ", may_reject=True),
        "formula-space-vt": Inject(inject_formula_space, "\x0b", " ", may_reject=True),
        "formula-space-nbsp": Inject(inject_formula_space, "\u00a0", " ", may_reject=True),
        "formula-around-newlines": Inject(inject_formula_around, "\n", ""),
        "prior-text-newline": Inject(inject_prior, "normal(0,\n5)", "normal(0, 5)"),
        "prior-text-crlf": Inject(inject_prior, "normal(0,\r\n  5)", "normal(0, 5)"),
        "prior-text-tab-around": Inject(inject_prior, "\tnormal(0, 5)\n", "normal(0, 5)"),
        "prior-text-tab-inside": Inject(inject_prior, "normal(\t0,\t5\t)", "normal(0, 5)"),
    }
)


@pytest.mark.parametrize("case", cases(INJECTION))
def test_1_injection_through_comments(case: Inject) -> None:
    run_injection(case)


def test_strip_comments_helper() -> None:
    code = "a; // x */ b\n/* c\n d */ e;\n// f\rg;\n  \t\n"
    assert strip_comments(code) == "a;\n e;\n\rg;"


# --------------------------------------------------------------------------------------------
# 2. priors
# --------------------------------------------------------------------------------------------

FULL = "y ~ x + (x | g)"


def prior_error(parameter_class: str, text, *needles, formula: str = FULL, **options) -> Err:
    """PriorError naming the class (as a word) and the prior text (or the given needles)."""
    shown = needles or (str(text),)
    return Err(
        kw(formula, priors={parameter_class: text}, **options),
        lf.PriorError,
        (re.compile(rf"(?<![A-Za-z_]){re.escape(parameter_class)}(?![A-Za-z_])"), *shown),
    )


PRIORS = {
    "unknown-distribution-foo": prior_error("b", "foo(1)", "foo"),
    "capitalised-Normal": prior_error("b", "Normal(0,1)", "Normal", rx(r"\bnormal\b")),
    "stan-keyword-target": prior_error("b", "target(1)", "target"),
    "bare-name-normal": prior_error("b", "normal", "normal"),
    "normal-one-argument": prior_error("b", "normal(0)", "normal(0)", rx(r"\b2\b|two")),
    "normal-three-arguments": prior_error("b", "normal(0,1,2)", "normal(0,1,2)"),
    "student_t-two-arguments": prior_error("sd", "student_t(3,0)", "student_t(3,0)"),
    "exponential-no-arguments": prior_error("sd", "exponential()", "exponential()"),
    "lkj-for-b": prior_error("b", "lkj(2)", "lkj(2)"),
    "normal-for-cor": prior_error("cor", "normal(0, 1)", "normal(0, 1)"),
    "exponential-for-b": prior_error("b", "exponential(1)", "exponential(1)"),
    "flat-for-sd": prior_error("sd", "flat", "flat"),
    "flat-for-sigma": prior_error("sigma", "flat", "flat"),
    "scale-1e400-overflows": prior_error("b", "normal(0, 1e400)", "1e400"),
    "scale-1e-400-underflows": prior_error("b", "normal(0, 1e-400)", "1e-400"),
    "location-nan": prior_error("b", "normal(nan, 1)", "nan"),
    "scale-inf": prior_error("b", "normal(0, inf)", "inf"),
    "scale-zero": prior_error("b", "normal(0, 0)", "normal(0, 0)"),
    "scale-negative": prior_error("b", "normal(0, -1)", "-1"),
    "exponential-rate-zero": prior_error("sd", "exponential(0)", "exponential(0)"),
    "lkj-eta-zero": prior_error("cor", "lkj(0)", "lkj(0)"),
    "gamma-negative-shape": prior_error("sd", "gamma(-1, 1)", "gamma(-1, 1)"),
    "student_t-zero-df": prior_error("b", "student_t(0, 0, 1)", "student_t(0, 0, 1)"),
    "uniform-equal-bounds": prior_error("b", "uniform(1, 1)", "uniform(1, 1)"),
    "uniform-reversed-bounds": prior_error("b", "uniform(2, -2)", "uniform(2, -2)"),
    "argument-not-a-number": prior_error("b", "normal(0, x)", "normal(0, x)"),
    "unbalanced-parenthesis": prior_error("b", "normal(0, 5", "normal(0, 5"),
    "cor-without-correlations": prior_error("cor", "lkj(2)", "cor", formula="y ~ x + (1 | g)"),
    "cor-on-uncorrelated-block": prior_error("cor", "lkj(2)", "cor", formula="y ~ x + (x || g)"),
    "Intercept-without-intercept": prior_error(
        "Intercept", "normal(0, 5)", "Intercept", formula="y ~ 0 + x + (1 | g)"
    ),
    "sigma-on-poisson": prior_error(
        "sigma", "exponential(1)", "sigma", "poisson", formula="count ~ x + (1 | g)", family="poisson"
    ),
    "sd-without-group-terms": prior_error("sd", "exponential(1)", "sd", formula="y ~ x"),
    "b-without-slopes": prior_error("b", "normal(0, 5)", "b", formula="y ~ 1 + (1 | g)"),
    "unknown-class-beta": prior_error("beta", "normal(0, 1)", "beta"),
    "unknown-class-SD-uppercase": prior_error("SD", "exponential(1)", "SD", rx(r"'sd'|\bsd\b")),
    "value-int-5": prior_error("b", 5, "5"),
    "value-None": prior_error("b", None, "None"),
    "injection-target-statement": prior_error("b", "normal(0,1); target += 1", "target"),
    "injection-closing-brace": prior_error("b", "normal(0,1)\n}", "normal(0,1)"),
    "injection-line-comment": prior_error("b", "normal(0, 1) // */", "normal(0, 1)"),
    "injection-nul": prior_error("b", "normal(0, 1\x00)", "normal(0, 1"),
    "injection-block-comment": prior_error("sd", "exponential(1) /* x */", "exponential(1)"),
    "priors-a-string": Err(kw(FULL, priors="normal(0, 1)"), lf.ArgumentError, ("priors",)),
    "priors-a-list": Err(kw(FULL, priors=["b", "normal(0, 1)"]), lf.ArgumentError, ("priors",)),
    "priors-a-number": Err(kw(FULL, priors=5), lf.ArgumentError, ("priors",)),
    "priors-a-tuple-of-pairs": Err(kw(FULL, priors=(("b", "normal(0, 1)"),)), lf.ArgumentError, ("priors",)),
    "priors-non-string-key": Err(
        kw(FULL, priors={"b": "normal(0, 5)", 3: "normal(0, 1)"}), lf.LmmformulaError, ("3",)
    ),
    # valid priors
    "valid-b-normal": Ok(kw(FULL, priors={"b": "normal(0, 5)"}), prior_numbers("b", 0.0, 5.0)),
    "valid-b-student_t": Ok(
        kw(FULL, priors={"b": "student_t(3, 0, 2.5)"}), prior_numbers("b", 3.0, 0.0, 2.5)
    ),
    "valid-Intercept-cauchy": Ok(
        kw(FULL, priors={"Intercept": "cauchy(0, 1)"}), prior_numbers("Intercept", 0.0, 1.0)
    ),
    "valid-sd-exponential": Ok(kw(FULL, priors={"sd": "exponential(1)"}), prior_numbers("sd", 1.0)),
    "valid-sigma-exponential": Ok(kw(FULL, priors={"sigma": "exponential(1)"}), prior_numbers("sigma", 1.0)),
    "valid-cor-lkj": Ok(kw(FULL, priors={"cor": "lkj(2)"}), prior_numbers("cor", 2.0)),
    "valid-b-flat": Ok(kw(FULL, priors={"b": "flat"}), no_prior_statement("b")),
    "valid-Intercept-flat": Ok(kw(FULL, priors={"Intercept": "flat"}), no_prior_statement("Intercept")),
    "valid-spaces-inside": Ok(kw(FULL, priors={"b": "normal( 0 , 5 )"}), prior_numbers("b", 0.0, 5.0)),
    "valid-trailing-dot": Ok(kw(FULL, priors={"b": "normal(0, 5.)"}), prior_numbers("b", 0.0, 5.0)),
    "valid-exponent-notation": Ok(
        kw(FULL, priors={"b": "normal(-1e-3, 2E2)"}), prior_numbers("b", -0.001, 200.0)
    ),
    "valid-all-classes": Ok(
        kw(
            FULL,
            priors={
                "Intercept": "normal(1, 10)",
                "b": "normal(0, 5)",
                "sd": "exponential(2)",
                "sigma": "student_t(3, 0, 3)",
                "cor": "lkj(4)",
            },
        ),
        all_of(prior_numbers("sd", 2.0), prior_numbers("cor", 4.0), prior_numbers("Intercept", 1.0, 10.0)),
    ),
    "valid-empty-mapping": Ok(kw(FULL, priors={}), no_prior_statement("b")),
    "valid-OrderedDict": Ok(kw(FULL, priors=OrderedDict(b="normal(0, 5)")), prior_numbers("b", 0.0, 5.0)),
    "valid-MappingProxy": Ok(
        kw(FULL, priors=MappingProxyType({"b": "normal(0, 5)"})), prior_numbers("b", 0.0, 5.0)
    ),
    "valid-poisson-sd-only": Ok(
        kw("count ~ x + (1 | g)", family="poisson", priors={"sd": "exponential(1)"}),
        prior_numbers("sd", 1.0),
    ),
}


@pytest.mark.parametrize("case", cases(PRIORS))
def test_2_priors(case) -> None:
    run(case)


# --------------------------------------------------------------------------------------------
# 3. internal tracebacks -> clear errors
# --------------------------------------------------------------------------------------------


def duplicated(column: str) -> Callable[[], pd.DataFrame]:
    def make() -> pd.DataFrame:
        frame = base()
        extra = frame[[column]].copy()
        return pd.concat([frame, extra], axis=1)

    return make


def multiindex_columns() -> pd.DataFrame:
    frame = base()
    frame.columns = pd.MultiIndex.from_tuples([(name, "v") for name in frame.columns])
    return frame


def every_other(value: float) -> Callable[[pd.DataFrame], np.ndarray]:
    def values(frame: pd.DataFrame) -> np.ndarray:
        out = frame["x"].to_numpy().copy() if "x" in frame else np.zeros(len(frame))
        out[::7] = value
        return out

    return values


def _huge(frame: pd.DataFrame) -> np.ndarray:
    return np.linspace(-1.5, 1.7, len(frame)) * 1e308


def _mine() -> lf.Family:
    return dataclasses.replace(lf.get_family("gaussian"), name="mine")


def _unused_junk(frame: pd.DataFrame) -> None:
    frame["junk_complex"] = frame["x"] + 1j
    frame["junk_lists"] = [[i] for i in range(len(frame))]
    frame["junk_when"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(len(frame)), "D")
    frame["junk_inf"] = np.inf
    frame["junk_nan"] = np.nan


def _shuffled_string_index(frame: pd.DataFrame) -> pd.DataFrame:
    frame.index = [f"row{i}" for i in np.random.default_rng(3).permutation(len(frame))]
    return frame.sample(frac=1.0, random_state=4)


def _duplicate_index(frame: pd.DataFrame) -> None:
    frame.index = np.zeros(len(frame), dtype=int)


TWO_BLOCKS = "y ~ x + (1 | g) + (x | h)"
DUPLICATE = rx(r"duplicate|more than one|twice|same name")

TRACEBACKS = {
    "duplicate-column-predictor": Err(
        kw("y ~ x + (1 | g)", duplicated("x")), lf.DataError, ("'x'", DUPLICATE)
    ),
    "duplicate-column-response": Err(
        kw("y ~ x + (1 | g)", duplicated("y")), lf.DataError, ("'y'", DUPLICATE)
    ),
    "duplicate-column-grouping": Err(
        kw("y ~ x + (1 | g)", duplicated("g")), lf.DataError, ("'g'", DUPLICATE)
    ),
    "duplicate-column-unused": Either(
        kw("y ~ x + (1 | g)", duplicated("z")), has_K(1), lf.DataError, ("'z'", DUPLICATE)
    ),
    "multiindex-columns": Err(kw("y ~ x + (1 | g)", multiindex_columns), lf.DataError, (rx("multi"),)),
    "response-minus-inf": Err(
        kw("y ~ x + (1 | g)", setcol("y", every_other(-np.inf))), lf.DataError, ("'y'", rx("inf"))
    ),
    "response-1e308-scale": Err(kw("y ~ x + (1 | g)", setcol("y", _huge)), lf.DataError, ("'y'",)),
    "predictor-inf": Err(kw("y ~ x + (1 | g)", setcol("x", every_other(np.inf))), lf.DataError, ("'x'",)),
    "predictor-minus-inf": Err(
        kw("y ~ x + (1 | g)", setcol("x", every_other(-np.inf))), lf.DataError, ("'x'",)
    ),
    "predictor-1e308-scale": Err(kw("y ~ x + (1 | g)", setcol("x", _huge)), lf.DataError, ("'x'",)),
    "grouping-float-with-inf": Err(
        kw(
            "y ~ x + (1 | site)",
            setcol(
                "site", lambda d: np.where(np.arange(len(d)) % 9 == 0, np.inf, 1.0 + np.arange(len(d)) % 4)
            ),
        ),
        lf.DataError,
        ("'site'",),
    ),
    "grouping-float-with-minus-inf": Err(
        kw(
            "y ~ x + (1 | site)",
            setcol(
                "site", lambda d: np.where(np.arange(len(d)) % 9 == 0, -np.inf, 1.0 + np.arange(len(d)) % 4)
            ),
        ),
        lf.DataError,
        ("'site'",),
    ),
    "grouping-float-1e308-scale": Either(
        kw("y ~ x + (1 | site)", setcol("site", lambda d: 1e300 * (1.0 + np.arange(len(d)) % 4))),
        has_levels(4),
        lf.DataError,
        ("'site'",),
    ),
    "poisson-count-above-int32": Err(
        kw(
            "count ~ x + (1 | g)",
            setcol("count", lambda d: np.where(np.arange(len(d)) == 5, 2**31, d["count"])),
            family="poisson",
        ),
        lf.DataError,
        ("'count'",),
    ),
    "binomial-failures-above-int32": Err(
        kw(
            "cbind(s, fail) ~ x + (1 | g)",
            setcol("fail", lambda d: np.where(np.arange(len(d)) == 5, 2**31, 3)),
            family="binomial",
        ),
        lf.DataError,
        ("fail",),
    ),
    "binomial-trials-sum-above-int32": Err(
        kw(
            "cbind(s, fail) ~ x + (1 | g)",
            edited(lambda d: d.assign(s=2**30 + 1, fail=2**30 + 1)),
            family="binomial",
        ),
        lf.DataError,
        (rx("s|fail|trials"),),
    ),
    "family-user-made-unknown-name": Err(kw("y ~ x + (1 | g)", family=_mine()), lf.ArgumentError, ("mine",)),
    "family-int": Err(kw("y ~ x + (1 | g)", family=3), lf.ArgumentError, ("family", "gaussian")),
    "family-None": Err(kw("y ~ x + (1 | g)", family=None), lf.ArgumentError, ("family", "gaussian")),
    "family-typo-gauss": Err(kw("y ~ x + (1 | g)", family="gauss"), lf.ArgumentError, ("gauss", "gaussian")),
    "family-list": Err(kw("y ~ x + (1 | g)", family=["gaussian"]), lf.ArgumentError, ("family",)),
    "parameterization-central": Err(
        kw("y ~ x + (1 | g)", parameterization="central"), lf.ArgumentError, ("central", "centered")
    ),
    "parameterization-int": Err(
        kw("y ~ x + (1 | g)", parameterization=3), lf.ArgumentError, ("parameterization",)
    ),
    "parameterization-too-few-blocks": Err(
        kw(TWO_BLOCKS, parameterization=["auto"]), lf.ArgumentError, ("parameterization", "2")
    ),
    "parameterization-too-many-blocks": Err(
        kw("y ~ x + (1 | g)", parameterization=["auto", "auto"]), lf.ArgumentError, ("parameterization", "1")
    ),
    "parameterization-list-of-None": Err(
        kw("y ~ x + (1 | g)", parameterization=[None]), lf.ArgumentError, ("None",)
    ),
    "parameterization-dict": Err(
        kw("y ~ x + (1 | g)", parameterization={"g": "centered"}), lf.ArgumentError, ("parameterization",)
    ),
    "data-dict": Err(
        kw("y ~ x", {"y": [1.0, 2.0, 3.0], "x": [0.0, 1.0, 3.0]}), lf.DataError, ("DataFrame", "dict")
    ),
    "data-ndarray": Err(kw("y ~ x", np.ones((5, 2))), lf.DataError, ("DataFrame", "ndarray")),
    "data-None": Err(kw("y ~ x", None), lf.DataError, ("DataFrame",)),
    "data-Series": Err(kw("y ~ x", lambda: base()["y"]), lf.DataError, ("DataFrame", "Series")),
    "formula-None": Err(kw(None), lf.LmmformulaError, ("formula",)),
    "formula-int": Err(kw(3), lf.LmmformulaError, ("formula",)),
    "formula-bytes": Err(kw(b"y ~ x"), lf.LmmformulaError, ("formula", rx("str"))),
    "formula-list": Err(kw(["y ~ x"]), lf.LmmformulaError, ("formula",)),
    "formula-empty": Err(kw("   "), lf.FormulaError, ("formula",)),
    "predictor-column-of-lists": Err(
        kw("y ~ bag + (1 | g)", setcol("bag", lambda d: [[1, 2]] * len(d))), lf.LmmformulaError, ("'bag'",)
    ),
    "unused-junk-columns-are-fine": Ok(kw("y ~ x + (1 | g)", edited(_unused_junk)), has_K(1)),
    "shuffled-string-index": Ok(
        kw("y ~ x + (1 | g)", edited(_shuffled_string_index)), response_is(lambda d: d["y"].to_numpy())
    ),
    "duplicate-index-labels": Ok(
        kw("y ~ x + (1 | g)", edited(_duplicate_index)), response_is(lambda d: d["y"].to_numpy())
    ),
    "family-object-passed-through": Ok(
        kw("yes ~ x + (1 | g)", family=lf.get_family("bernoulli")), response_is(lambda d: d["yes"])
    ),
}


@pytest.mark.parametrize("case", cases(TRACEBACKS))
def test_3_internal_tracebacks_become_clear_errors(case) -> None:
    run(case)


# --------------------------------------------------------------------------------------------
# 4. silently wrong -> error or the right answer
# --------------------------------------------------------------------------------------------


def _yes_no_categorical(frame: pd.DataFrame, ordered: bool = False) -> pd.Categorical:
    words = np.where(frame["yes"] == 1, "yes", "no")
    return pd.Categorical(words, categories=["yes", "no"], ordered=ordered)


def _stray(frame: pd.DataFrame, as_text: bool) -> pd.Series:
    values = [f"{v:.3f}" if as_text else float(v) for v in frame["x"]]
    values[7] = "x"
    return pd.Series(values, dtype=object, index=frame.index)


def _numbers_with_none(frame: pd.DataFrame) -> pd.Series:
    values: list = [float(v) for v in frame["x"]]
    for i in (3, 10, 20):
        values[i] = None
    return pd.Series(values, dtype=object, index=frame.index)


def _pairs(frame: pd.DataFrame) -> None:
    rng = np.random.default_rng(8)
    pairs = [("1:2", "3"), ("1", "2:3"), ("1", "3"), ("4", "5")]
    chosen = rng.permutation(np.resize(np.arange(len(pairs)), len(frame)))
    frame["a"] = [pairs[i][0] for i in chosen]
    frame["hh"] = [pairs[i][1] for i in chosen]


def _distinct_pairs(model, kwargs, caught) -> None:
    data = kwargs["data"]
    distinct = len(set(zip(data["a"], data["hh"])))
    assert int(model.stan_data["N_1"]) == distinct == 4


def _intercept_column(frame: pd.DataFrame) -> None:
    frame["Intercept"] = np.random.default_rng(5).normal(2.0, 1.0, len(frame))


def _intercept_used_as_predictor(model, kwargs, caught) -> None:
    assert n_columns(model) == 1, f"the column 'Intercept' is not a predictor: {model.design.fixed_columns}"
    x_column_equals(lambda d: d["Intercept"])(model, kwargs, caught)


def _no_empty_columns(model, kwargs, caught) -> None:
    X = np.asarray(model.stan_data["X"], dtype=float)
    assert (np.abs(X).sum(axis=0) > 0).all(), "X has an all-zero column (an unused level)"


def _reference_first_declared(model, kwargs, caught) -> None:
    names = model.design.fixed_columns
    assert len(names) == 2 and any("mid" in n for n in names) and any("hi" in n for n in names), names


SILENT = {
    "gaussian-response-inf": Err(
        kw("y ~ x + (1 | g)", setcol("y", every_other(np.inf))), lf.DataError, ("'y'", rx("inf"))
    ),
    "poisson-response-inf": Err(
        kw(
            "count ~ x + (1 | g)",
            setcol("count", lambda d: np.where(np.arange(len(d)) == 4, np.inf, d["count"])),
            family="poisson",
        ),
        lf.DataError,
        ("'count'",),
    ),
    "complex-predictor": Err(
        kw("y ~ c + (1 | g)", setcol("c", lambda d: d["x"] + 2j)), lf.DataError, ("'c'", rx("complex"))
    ),
    "complex-response": Err(
        kw("y ~ x + (1 | g)", setcol("y", lambda d: d["y"] + 1j)), lf.DataError, ("'y'", rx("complex"))
    ),
    "gaussian-response-two-strings": Err(
        kw("y ~ x + (1 | g)", setcol("y", lambda d: np.where(d["yes"] == 1, "up", "down"))),
        lf.DataError,
        ("'y'", rx("numeric")),
    ),
    "gaussian-response-two-level-categorical": Err(
        kw("y ~ x + (1 | g)", setcol("y", _yes_no_categorical)), lf.DataError, ("'y'", rx("numeric"))
    ),
    "bernoulli-categorical-last-category-is-event": Ok(
        kw("resp ~ x + (1 | g)", setcol("resp", _yes_no_categorical), family="bernoulli"),
        response_is(lambda d: np.asarray(d["resp"] == "no")),
    ),
    "bernoulli-ordered-categorical": Ok(
        kw("resp ~ x + (1 | g)", setcol("resp", lambda d: _yes_no_categorical(d, True)), family="bernoulli"),
        response_is(lambda d: np.asarray(d["resp"] == "no")),
    ),
    "bernoulli-strings-a-b-event-b": Ok(
        kw(
            "resp ~ x + (1 | g)",
            setcol("resp", lambda d: np.where(d["yes"] == 1, "b", "a")),
            family="bernoulli",
        ),
        response_is(lambda d: d["resp"] == "b"),
    ),
    "bernoulli-string-dtype-yes-no": Ok(
        kw(
            "resp ~ x + (1 | g)",
            setcol("resp", lambda d: pd.array(np.where(d["yes"] == 1, "yes", "no"), dtype="string")),
            family="bernoulli",
        ),
        response_is(lambda d: d["resp"] == "yes"),
    ),
    "bernoulli-float-zero-one": Ok(
        kw("resp ~ x + (1 | g)", setcol("resp", lambda d: d["yes"].astype(float)), family="bernoulli"),
        response_is(lambda d: d["resp"]),
    ),
    "unused-categorical-level-in-predictor-dropped": Ok(
        kw(
            "y ~ fc + (1 | g)",
            setcol("fc", lambda d: pd.Categorical(d["f"], categories=["lo", "unused", "mid", "hi"])),
        ),
        all_of(has_K(2), _no_empty_columns),
    ),
    "unused-categorical-level-in-group-slope-dropped": Ok(
        kw(
            "y ~ fc + (fc || g)",
            setcol("fc", lambda d: pd.Categorical(d["f"], categories=["lo", "mid", "hi", "unused"])),
        ),
        all_of(has_K(2), _no_empty_columns, lambda m, k, c: m.stan_data["M_1"] == 3),
    ),
    "unused-categorical-level-in-grouping-dropped": Ok(
        kw("y ~ x + (1 | gc)", setcol("gc", lambda d: pd.Categorical(d["g"], categories=[*GROUPS, "g99"]))),
        has_levels(6),
    ),
    "categorical-predictor-declared-order-gives-reference": Ok(
        kw(
            "y ~ fc + (1 | g)", setcol("fc", lambda d: pd.Categorical(d["f"], categories=["lo", "mid", "hi"]))
        ),
        _reference_first_declared,
    ),
    "numeric-column-with-stray-string": Err(
        kw("y ~ dose + (1 | g)", setcol("dose", lambda d: _stray(d, False))), lf.DataError, ("'dose'", "'x'")
    ),
    "numeric-text-column-with-stray-string": Err(
        kw("y ~ dose + (1 | g)", setcol("dose", lambda d: _stray(d, True))), lf.DataError, ("'dose'", "'x'")
    ),
    "object-numbers-with-None-are-numeric": Ok(
        kw("y ~ dose + (1 | g)", setcol("dose", _numbers_with_none)),
        all_of(has_K(1), lambda m, k, c: m.stan_data["N"] == 69, warned(r"\b3\b")),
        warns=UserWarning,
    ),
    "object-mixed-int-float-is-numeric": Ok(
        kw("y ~ dose + (1 | g)", setcol("dose", lambda d: pd.Series([1, 2.5, 3] * 24, dtype=object))),
        all_of(has_K(1), x_column_equals(lambda d: np.array([1, 2.5, 3] * 24))),
    ),
    "grouping-interaction-keeps-distinct-pairs": Ok(
        kw("y ~ x + (1 | a:hh)", edited(_pairs)), _distinct_pairs
    ),
    "grouping-nested-keeps-distinct-pairs": Ok(
        kw("y ~ x + (1 | a/hh)", edited(_pairs)),
        lambda m, k, c: (
            (m.stan_data["N_1"], m.stan_data["N_2"]) == (3, 4)
            or pytest.fail(f"levels {m.stan_data['N_1']}, {m.stan_data['N_2']}; expected 3 and 4")
        ),
    ),
    "column-named-Intercept-is-a-predictor": Either(
        kw("y ~ Intercept + (1 | g)", edited(_intercept_column)),
        _intercept_used_as_predictor,
        lf.LmmformulaError,
        ("Intercept",),
    ),
    "column-named-Intercept-without-intercept": Either(
        kw("y ~ 0 + Intercept + (1 | g)", edited(_intercept_column)),
        _intercept_used_as_predictor,
        lf.LmmformulaError,
        ("Intercept",),
    ),
    "nullable-Int64-response-with-NA": Ok(
        kw(
            "count ~ x + (1 | g)",
            setcol("count", lambda d: pd.array([pd.NA, *d["count"][1:]], dtype="Int64")),
            family="poisson",
        ),
        lambda m, k, c: m.stan_data["N"] == 71 or pytest.fail("the NA row was not dropped"),
    ),
}


@pytest.mark.parametrize("case", cases(SILENT))
def test_4_silently_wrong_becomes_error_or_right(case) -> None:
    run(case)


# --------------------------------------------------------------------------------------------
# 5. degenerate designs
# --------------------------------------------------------------------------------------------

B_PRIOR = {"b": "normal(0, 5)"}
COLLINEAR_FIX = rx(r"drop|remove|prior")


def _constant_after_drop(frame: pd.DataFrame) -> None:
    frame["x"] = 1.0
    frame.loc[::2, "x"] = np.arange(0, len(frame), 2) * 0.1
    frame.loc[::2, "y"] = np.nan


def _few_rows() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.normal(size=(5, 6)), columns=[f"x{i}" for i in range(1, 7)])
    frame["y"] = rng.normal(size=5)
    return frame


def _all_rows_incomplete(frame: pd.DataFrame) -> None:
    frame.loc[::2, "y"] = np.nan
    frame.loc[1::2, "x"] = np.nan


def _one_row_per_level(frame: pd.DataFrame) -> None:
    frame["obs"] = [f"o{i}" for i in range(len(frame))]


FEW = "y ~ x1 + x2 + x3 + x4 + x5 + x6"

DEGENERATE = {
    "constant-gaussian-response": Err(
        kw("y ~ x + (1 | g)", setcol("y", lambda d: 3.0)), lf.DataError, ("'y'", rx("constant"))
    ),
    "constant-gaussian-response-no-groups": Err(
        kw("y ~ x", setcol("y", lambda d: -1.25)), lf.DataError, ("'y'", rx("constant"))
    ),
    "constant-predictor-flat-prior": Err(
        kw("y ~ x + (1 | g)", setcol("x", lambda d: 2.0)), lf.DataError, ("'x'", rx("constant|intercept"))
    ),
    "constant-predictor-with-proper-prior-is-valid": Ok(
        kw("y ~ x + (1 | g)", setcol("x", lambda d: 2.0), priors=B_PRIOR), has_K(1)
    ),
    "constant-after-dropping-missing-rows": Err(
        kw("y ~ x + (1 | g)", edited(_constant_after_drop)), lf.DataError, ("'x'", rx("constant|intercept"))
    ),
    "collinear-x2-is-2x1-flat-prior": Err(
        kw("y ~ x1 + x2 + (1 | g)", edited(lambda d: d.assign(x1=d["x"], x2=2 * d["x"]))),
        lf.DataError,
        (rx("x1|x2"), COLLINEAR_FIX),
    ),
    "collinear-with-proper-prior-is-valid": Ok(
        kw("y ~ x1 + x2 + (1 | g)", edited(lambda d: d.assign(x1=d["x"], x2=2 * d["x"])), priors=B_PRIOR),
        has_K(2),
    ),
    "collinear-three-columns": Err(
        kw("y ~ x + z + w + (1 | g)", edited(lambda d: d.assign(w=d["x"] - d["z"]))),
        lf.DataError,
        (rx(r"'w'|'x'|'z'"), COLLINEAR_FIX),
    ),
    "collinear-copy-of-predictor": Err(
        kw("y ~ x + x_copy + (1 | g)", edited(lambda d: d.assign(x_copy=d["x"]))),
        lf.DataError,
        ("x_copy", COLLINEAR_FIX),
    ),
    "collinear-dummy-and-factor": Err(
        kw("y ~ f + d + (1 | g)", edited(lambda d: d.assign(d=(d["f"] == "mid").astype(float)))),
        lf.DataError,
        (rx(r"'d'|f\[T\.mid\]"), COLLINEAR_FIX),
    ),
    "one-row-per-level-gaussian": Err(
        kw("y ~ x + (1 | obs)", edited(_one_row_per_level)),
        lf.DataError,
        ("'obs'", rx("level|observation|row")),
    ),
    "one-row-per-level-poisson-is-valid": Ok(
        kw("count ~ x + (1 | obs)", edited(_one_row_per_level), family="poisson"), has_levels(72)
    ),
    "response-on-both-sides": Err(kw("y ~ y"), lf.LmmformulaError, ("'y'", rx("response|both sides"))),
    "response-on-both-sides-with-groups": Err(
        kw("y ~ x + y + (1 | g)"), lf.LmmformulaError, ("'y'", rx("response|both sides"))
    ),
    "fewer-rows-than-coefficients-flat-prior": Err(
        kw(FEW, _few_rows), lf.DataError, (rx("row|observation"), rx("coefficient|predictor|column"))
    ),
    "fewer-rows-than-coefficients-with-prior-is-valid": Ok(kw(FEW, _few_rows, priors=B_PRIOR), has_K(6)),
    "empty-dataframe-with-columns": Err(
        kw("y ~ x + (1 | g)", lambda: base().iloc[:0]), lf.DataError, (rx("no rows|empty"),)
    ),
    "empty-dataframe-without-columns": Err(kw("y ~ x", pd.DataFrame), lf.DataError, (rx("no rows|empty"),)),
    "all-rows-dropped-for-missing-values": Err(
        kw("y ~ x + (1 | g)", edited(_all_rows_incomplete)), lf.DataError, (rx("missing"),)
    ),
    "column-entirely-missing": Err(
        kw("y ~ x + (1 | g)", setcol("x", lambda d: np.nan)), lf.DataError, ("'x'", rx("missing"))
    ),
    "single-row": Err(kw("y ~ x", lambda: base().iloc[:1]), lf.DataError, (rx("row|observation|constant"),)),
    "single-level-grouping-factor": Err(
        kw("y ~ x + (1 | g)", setcol("g", lambda d: "only")), lf.DataError, ("'g'", rx("level"))
    ),
    "single-level-factor-predictor": Err(
        kw("y ~ f + (1 | g)", setcol("f", lambda d: "lo")), lf.LmmformulaError, ("'f'", rx("level"))
    ),
    "repeated-term-is-deduplicated": Ok(kw("y ~ x + x + (1 | g)"), has_K(1)),
}


@pytest.mark.parametrize("case", cases(DEGENERATE))
def test_5_degenerate_designs(case) -> None:
    run(case)


# --------------------------------------------------------------------------------------------
# 6. valid lme4 syntax is accepted; invalid syntax rejected for the right reason
# --------------------------------------------------------------------------------------------


def _renamed(**names: str) -> Callable[[], pd.DataFrame]:
    return lambda: base().rename(columns=names)


def _integer_names() -> pd.DataFrame:
    frame = base()[["y", "x"]]
    frame.columns = [0, 1]
    return frame


def _response_is_column_zero(model, kwargs, caught) -> None:
    np.testing.assert_allclose(model.stan_data["Y"], kwargs["data"][0].to_numpy())


def _centered(model, kwargs, caught) -> None:
    assert abs(float(np.mean(model.stan_data["X"][:, 0]))) < 1e-9


def _scaled(model, kwargs, caught) -> None:
    column = np.asarray(model.stan_data["X"][:, 0], dtype=float)
    assert abs(column.mean()) < 1e-9 and abs(column.std(ddof=1) - 1) < 1e-2


def _uncorrelated(model, kwargs, caught) -> None:
    assert model.stan_data["M_1"] == 2
    assert "cholesky_factor_corr" not in model.stan_code


def _integer_levels(model, kwargs, caught) -> None:
    levels = model.design.blocks[0].factor.levels
    assert sorted(map(str, levels)) == sorted(str(v) for v in (7, 9, 10, 100, 1234)), levels


def _whole_float_levels(model, kwargs, caught) -> None:
    levels = [str(level) for level in model.design.blocks[0].factor.levels]
    assert sorted(levels) == ["1", "2", "3", "4"], levels


def _nested_levels(model, kwargs, caught) -> None:
    data = kwargs["data"]
    assert model.stan_data["N_1"] == data["g"].nunique()
    assert model.stan_data["N_2"] == len(set(zip(data["g"], data["h"])))


def _crossed_levels(model, kwargs, caught) -> None:
    assert (model.stan_data["N_1"], model.stan_data["N_2"]) == (6, 3)


def _cbind_trials(model, kwargs, caught) -> None:
    data = kwargs["data"]
    np.testing.assert_array_equal(model.stan_data["Y"], data["s"])
    np.testing.assert_array_equal(model.stan_data["trials"], data["trials"])


NOT_SUPPORTED = rx(r"not (yet )?supported")

SYNTAX = {
    "scale-x": Ok(kw("y ~ scale(x) + (1 | g)"), all_of(has_K(1), _scaled)),
    "center-x": Ok(kw("y ~ center(x) + (1 | g)"), all_of(has_K(1), _centered)),
    "poly-x-2": Ok(kw("y ~ poly(x, 2) + (1 | g)"), has_K(2)),
    "log-positive-x": Ok(kw("y ~ log(pos) + (1 | g)"), x_column_equals(lambda d: np.log(d["pos"]))),
    "np-log-positive-x": Ok(kw("y ~ np.log(pos) + (1 | g)"), x_column_equals(lambda d: np.log(d["pos"]))),
    "double-parentheses-bar": Ok(kw("y ~ x + ((1 | g))"), has_levels(6)),
    "backticks-group-with-space": Ok(kw("y ~ x + (1 | `my group`)", _renamed(g="my group")), has_levels(6)),
    "backticks-group-with-dot": Ok(kw("y ~ x + (1 | `g.1`)", _renamed(g="g.1")), has_levels(6)),
    "bare-group-with-dot": Ok(kw("y ~ x + (1 | g.1)", _renamed(g="g.1")), has_levels(6)),
    "backticks-group-non-ascii": Ok(kw("y ~ x + (1 | `grüppe`)", _renamed(g="grüppe")), has_levels(6)),
    "bare-group-non-ascii": Ok(kw("y ~ x + (1 | grüppe)", _renamed(g="grüppe")), has_levels(6)),
    "backticks-group-leading-digit": Ok(kw("y ~ x + (1 | `1g`)", _renamed(g="1g")), has_levels(6)),
    "backticks-plain-group": Ok(kw("y ~ x + (1 | `g`)"), has_levels(6)),
    "backticks-slope-and-group": Ok(
        kw("y ~ `my x` + (`my x` | `my group`)", _renamed(x="my x", g="my group")), has_levels(6)
    ),
    "integer-column-names": Either(
        kw("`0` ~ `1`", _integer_names), _response_is_column_zero, lf.FormulaError, (), ("did you mean '0'",)
    ),
    "group-term-first": Ok(kw("y ~ (1 | g) + x"), all_of(has_K(1), has_levels(6))),
    "zero-plus-no-intercept": Ok(kw("y ~ 0 + x + (1 | g)"), all_of(has_K(1), no_intercept)),
    "minus-one-no-intercept": Ok(kw("y ~ -1 + x + (1 | g)"), all_of(has_K(1), no_intercept)),
    "intercept-only": Ok(kw("y ~ 1 + (1 | g)"), has_K(0)),
    "no-spaces": Ok(kw("y~x+(1|g)"), all_of(has_K(1), has_levels(6))),
    "crossed-factors": Ok(kw("y ~ x + (1 | g) + (1 | h)"), _crossed_levels),
    "nested-factors": Ok(kw("y ~ x + (1 | g/h)"), _nested_levels),
    "interaction-grouping": Ok(
        kw("y ~ x + (1 | g:h)"),
        lambda m, k, c: (
            m.stan_data["N_1"] == len(set(zip(k["data"]["g"], k["data"]["h"]))) or pytest.fail("N_1")
        ),
    ),
    "double-bar-uncorrelated": Ok(kw("y ~ x + (x || g)"), _uncorrelated),
    "intercept-and-slope-separately": Ok(kw("y ~ x + (1 | g) + (0 + x | g)"), _uncorrelated),
    "interaction-x-star-z": Ok(kw("y ~ x * z + (1 | g)"), has_K(3)),
    "binomial-cbind-difference": Ok(
        kw("cbind(s, trials - s) ~ x + (1 | g)", family="binomial"), _cbind_trials
    ),
    "binomial-cbind-two-columns": Ok(
        kw(
            "cbind(s, fail) ~ x + (1 | g)",
            edited(lambda d: d.assign(fail=d["trials"] - d["s"])),
            family="binomial",
        ),
        _cbind_trials,
    ),
    "binomial-zero-one-response": Ok(
        kw("yes ~ x + (1 | g)", family="binomial"), response_is(lambda d: d["yes"])
    ),
    "bernoulli-bool-response": Ok(
        kw("ok ~ x + (1 | g)", setcol("ok", lambda d: d["yes"] == 1), family="bernoulli"),
        response_is(lambda d: d["ok"].astype(int)),
    ),
    "bernoulli-nullable-boolean-response": Ok(
        kw(
            "ok ~ x + (1 | g)",
            setcol("ok", lambda d: pd.array(d["yes"] == 1, dtype="boolean")),
            family="bernoulli",
        ),
        response_is(lambda d: d["ok"].astype(int)),
    ),
    "integer-grouping-keeps-values": Ok(
        kw("y ~ x + (1 | site)", setcol("site", lambda d: np.resize([7, 9, 10, 100, 1234], len(d)))),
        all_of(has_levels(5), _integer_levels),
    ),
    "whole-float-grouping-with-nan": Ok(
        kw(
            "y ~ x + (1 | site)",
            setcol("site", lambda d: np.where(np.arange(len(d)) == 0, np.nan, 1.0 + np.arange(len(d)) % 4)),
        ),
        _whole_float_levels,
    ),
    "string-dtype-predictor": Ok(
        kw("y ~ fs + (1 | g)", setcol("fs", lambda d: d["f"].astype("string"))), has_K(2)
    ),
    "string-dtype-grouping": Ok(
        kw("y ~ x + (1 | gs)", setcol("gs", lambda d: d["g"].astype("string"))), has_levels(6)
    ),
    "categorical-grouping": Ok(
        kw("y ~ x + (1 | gc)", setcol("gc", lambda d: pd.Categorical(d["g"]))), has_levels(6)
    ),
    "bool-predictor": Ok(kw("y ~ flag + (1 | g)", setcol("flag", lambda d: d["x"] > 0)), has_K(1)),
    "C-factor": Ok(kw("y ~ C(f) + (1 | g)"), has_K(2)),
    "log-response": Ok(kw("log(pos) ~ x + (1 | g)"), response_is(lambda d: np.log(d["pos"]))),
    "family-name-any-case": Ok(
        kw("count ~ x + (1 | g)", family="Poisson"), response_is(lambda d: d["count"])
    ),
    "parameterization-centered": Ok(
        kw("y ~ x + (x | g)", parameterization="centered"), lambda m, k, c: m.stan_data["centered_1"] == 2
    ),
    "parameterization-list-per-block": Ok(
        kw(TWO_BLOCKS, parameterization=["noncentered", "centered"]),
        lambda m, k, c: (m.stan_data["centered_1"], m.stan_data["centered_2"]) == (0, 2),
    ),
    # rejections with the right reason
    "unknown-function-foo": Err(
        kw("y ~ foo(x)"), lf.FormulaError, ("'foo'", rx("unknown function|function"))
    ),
    "se-not-supported": Err(kw("y | se(pos) ~ x"), lf.FormulaError, ("se", NOT_SUPPORTED)),
    "trials-off-binomial": Err(
        kw("count | trials(trials) ~ x", family="poisson"), lf.DataError, ("binomial",)
    ),
    "trials-and-cbind": Err(
        kw("cbind(s, trials - s) | trials(trials) ~ x", family="binomial"), lf.DataError, ("drop",)
    ),
    "successes-above-trials": Err(
        kw("count | trials(xi) ~ x", family="binomial"), lf.DataError, ("'count'", "trials(xi)", "at most")
    ),
    "negative-weights": Err(kw("y | weights(x) ~ z"), lf.DataError, ("weights(x)", ">= 0")),
    "weights-twice": Err(kw("y | weights(pos) + weights(pos) ~ x"), lf.FormulaError, ("twice",)),
    "cumulative-unordered-strings": Err(kw("f ~ x", family="cumulative"), lf.DataError, ("'f'", "ordered")),
    "cumulative-zero-based": Err(kw("xi ~ x", family="cumulative"), lf.DataError, ("'xi'", "I(xi + 1)")),
    "cumulative-no-intercept": Err(kw("I(xi + 1) ~ 0 + x", family="cumulative"), lf.FormulaError, ("'0 +'",)),
    "zi-prior-not-beta": Err(
        kw("count ~ x", family="zero_inflated_poisson", priors={"zi": "normal(0, 1)"}),
        lf.PriorError,
        ("'zi'", "beta"),
    ),
    "bar-term-times-x": Err(kw("y ~ (1 | g) * x"), lf.FormulaError, ("must be added with '+'",)),
    "x-times-bar-term": Err(kw("y ~ x * (1 | g)"), lf.FormulaError, ("must be added with '+'",)),
    "bar-without-group": Err(
        kw("y ~ x + (1 | )"), lf.FormulaError, (rx("grouping factor|right of the bar"),)
    ),
    "bar-without-expression": Err(kw("y ~ x + ( | g)"), lf.FormulaError, (rx("left of the bar"),)),
    "same-bar-twice": Err(
        kw("y ~ (1 | g) + (1 | g)"), lf.FormulaError, ("'g'", rx("twice|repeat|duplicate|once"))
    ),
    "trailing-plus": Err(kw("y ~ x +"), lf.FormulaError, ("+",)),
    "no-response": Err(kw("~ x"), lf.FormulaError, (rx("response"),)),
    "nothing-right-of-tilde": Err(kw("y ~"), lf.FormulaError, (rx("right|nothing"),)),
    "two-tildes": Err(kw("y ~ x ~ z"), lf.FormulaError, ("~",)),
    "unclosed-parenthesis": Err(kw("y ~ (x"), lf.FormulaError, (rx("parenthes"),)),
    "unopened-parenthesis": Err(kw("y ~ x)"), lf.FormulaError, (rx("parenthes"),)),
    "nesting-without-inner-factor": Err(kw("y ~ x + (1 | g/)"), lf.FormulaError, ("/",)),
    "triple-bar": Err(kw("y ~ x + (1 ||| g)"), lf.FormulaError, ("|",)),
    "two-bars-in-term": Err(kw("y ~ x + (x | g | h)"), lf.FormulaError, (rx("bar"),)),
    "nonexistent-column": Err(kw("y ~ nonexistent"), lf.FormulaError, ("nonexistent",)),
    "typo-suggests-column": Err(
        kw("y ~ hieght + (1 | g)", _renamed(x="height")), lf.FormulaError, ("hieght", "'height'")
    ),
    "wrong-case-suggests-column": Err(kw("Y ~ x + (1 | g)"), lf.FormulaError, ("'Y'", "'y'")),
    "typo-in-grouping-factor": Err(kw("y ~ x + (1 | gg)"), lf.FormulaError, ("gg", "'g'")),
    "function-as-grouping-factor": Err(kw("y ~ x + (1 | log(g))"), lf.FormulaError, ("log(g)",)),
    "dot-all-columns": Err(kw("y ~ ."), lf.FormulaError, (rx("not supported"),)),
    "cbind-one-argument": Err(kw("cbind(s) ~ x", family="binomial"), lf.FormulaError, ("cbind",)),
    "cbind-three-arguments": Err(
        kw("cbind(s, trials, x) ~ x", family="binomial"), lf.FormulaError, ("cbind",)
    ),
    "bar-term-subtracted": Err(kw("y ~ x - (1 | g)"), lf.FormulaError, (rx("removed|'-'"),)),
}


@pytest.mark.parametrize("case", cases(SYNTAX))
def test_6_syntax_accepted_or_rejected_for_the_right_reason(case) -> None:
    run(case)


# --------------------------------------------------------------------------------------------
# 7. messages name the column and show the offending values
# --------------------------------------------------------------------------------------------


def _dates(frame: pd.DataFrame) -> pd.Series:
    return pd.Series(pd.date_range("2024-03-01", periods=len(frame), freq="D"), index=frame.index)


def _over(frame: pd.DataFrame) -> np.ndarray:
    s = frame["s"].to_numpy().copy()
    s[3] = frame["trials"].iloc[3] + 2
    return s


TWO_LEVELS = rx(r"two|2 levels|0 and 1|0/1")

MESSAGES = {
    "bernoulli-three-level-strings": Err(
        kw("resp ~ x + (1 | g)", setcol("resp", lambda d: d["f"]), family="bernoulli"),
        lf.DataError,
        ("'resp'", TWO_LEVELS),
    ),
    "bernoulli-three-level-categorical": Err(
        kw("resp ~ x + (1 | g)", setcol("resp", lambda d: pd.Categorical(d["f"])), family="bernoulli"),
        lf.DataError,
        ("'resp'", TWO_LEVELS),
    ),
    "bernoulli-numbers-0-1-2": Err(
        kw("resp ~ x + (1 | g)", setcol("resp", lambda d: np.arange(len(d)) % 3), family="bernoulli"),
        lf.DataError,
        ("'resp'", "2", TWO_LEVELS),
    ),
    "bernoulli-minus-one-one": Err(
        kw("resp ~ x + (1 | g)", setcol("resp", lambda d: 2 * d["yes"] - 1), family="bernoulli"),
        lf.DataError,
        ("'resp'", "-1"),
    ),
    "gaussian-non-numeric-shows-values": Err(
        kw("word ~ x + (1 | g)", setcol("word", lambda d: np.resize(["abc", "def", "ghi"], len(d)))),
        lf.DataError,
        ("'word'", "abc"),
    ),
    "gaussian-categorical-shows-values": Err(
        kw(
            "word ~ x + (1 | g)",
            setcol("word", lambda d: pd.Categorical(np.resize(["abc", "def", "ghi"], len(d)))),
        ),
        lf.DataError,
        ("'word'", "abc"),
    ),
    "datetime-predictor": Err(
        kw("y ~ when + (1 | g)", setcol("when", _dates)), lf.DataError, ("'when'", rx("datetime"))
    ),
    "datetime-tz-predictor": Err(
        kw("y ~ when + (1 | g)", setcol("when", lambda d: _dates(d).dt.tz_localize("UTC"))),
        lf.DataError,
        ("'when'", rx("datetime")),
    ),
    "datetime-response": Err(kw("when ~ x + (1 | g)", setcol("when", _dates)), lf.DataError, ("'when'",)),
    "poisson-negative-counts": Err(
        kw("count ~ x + (1 | g)", setcol("count", lambda d: d["count"] - 3), family="poisson"),
        lf.DataError,
        ("'count'", rx("negative"), "-3"),
    ),
    "poisson-non-integer-counts": Err(
        kw("count ~ x + (1 | g)", setcol("count", lambda d: d["count"] + 0.5), family="poisson"),
        lf.DataError,
        ("'count'", rx("integer"), ".5"),
    ),
    "poisson-string-response": Err(
        kw("count ~ x + (1 | g)", setcol("count", lambda d: d["count"].astype(str)), family="poisson"),
        lf.DataError,
        ("'count'",),
    ),
    "binomial-successes-exceed-trials": Err(
        kw("cbind(s, trials - s) ~ x + (1 | g)", setcol("s", _over), family="binomial"),
        lf.DataError,
        (rx(r"trials - s|exceed|greater|more than"),),
    ),
    "binomial-negative-successes": Err(
        kw("cbind(s, trials - s) ~ x + (1 | g)", setcol("s", lambda d: d["s"] - 5), family="binomial"),
        lf.DataError,
        ("'s'", rx("negative")),
    ),
    "binomial-non-integer-successes": Err(
        kw("cbind(s, trials - s) ~ x + (1 | g)", setcol("s", lambda d: d["s"] + 0.25), family="binomial"),
        lf.DataError,
        ("'s'", rx("integer")),
    ),
    "binomial-single-non-binary-column": Err(
        kw("count ~ x + (1 | g)", family="binomial"), lf.DataError, ("'count'", "cbind")
    ),
    "cbind-with-gaussian-family": Err(kw("cbind(s, trials - s) ~ x + (1 | g)"), lf.DataError, ("binomial",)),
    "bernoulli-all-missing-response": Err(
        kw("resp ~ x + (1 | g)", setcol("resp", lambda d: np.nan), family="bernoulli"),
        lf.DataError,
        ("'resp'", rx("missing")),
    ),
}


@pytest.mark.parametrize("case", cases(MESSAGES))
def test_7_messages_name_the_problem(case) -> None:
    run(case)


def test_corpus_size() -> None:
    tables = (INJECTION, PRIORS, TRACEBACKS, SILENT, DEGENERATE, SYNTAX, MESSAGES)
    assert all(len(table) >= 15 for table in tables)
    assert sum(map(len, tables)) >= 170
