"""Parsing lme4-style formulas, and clear errors for bad formulas and bad data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lmmformula as lf
from lmmformula import names
from lmmformula.formula import GroupTerm, parse_formula


def test_fixed_and_group_parts_are_split():
    spec = parse_formula("y ~ x + z + (x || g) + (1 | a/b) - 1")
    assert spec.response == ("y",)
    assert spec.fixed == "x + z - 1"
    assert spec.group_terms == (
        GroupTerm("x", ("g",), False, "(x || g)"),
        GroupTerm("1", ("a",), True, "(1 | a/b)"),
        GroupTerm("1", ("a", "b"), True, "(1 | a/b)"),
    )


def test_only_group_terms_leave_an_intercept():
    assert parse_formula("y ~ (1 | g)").fixed == "1"
    assert parse_formula("y ~ (1 | g) + x").fixed == "x"


def test_function_calls_with_bars_stay_in_the_fixed_part():
    spec = parse_formula("y ~ I(a | b) + (a + b):c + (1 | g)")
    assert spec.fixed == "I(a | b) + (a + b):c"
    assert [t.group for t in spec.group_terms] == ["g"]


def test_deep_nesting_and_interactions():
    spec = parse_formula("y ~ (x | a/b:c/d)")
    assert [t.factors for t in spec.group_terms] == [("a",), ("a", "b", "c"), ("a", "b", "c", "d")]


def test_cbind_response():
    spec = parse_formula("cbind(hits, n - hits) ~ x")
    assert spec.response == ("hits", "n - hits")


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("y ~ x + (x | g", "unbalanced parentheses"),
        ("y ~ x + x | g)", "unbalanced parentheses"),
        ("y ~ x + 1 | g", "'|' outside parentheses"),
        ("y ~ x + ( | g)", "nothing left of the bar"),
        ("y ~ x + (x | )", "no grouping factor"),
        ("y ~ x + (x | g | h)", "more than one bar"),
        ("y ~ x - (1 | g)", "cannot be removed"),
        ("y ~ x * (1 | g)", r"must be added with '\+'"),
        ("y x + (1 | g)", "exactly one '~'"),
        ("~ x", "no response"),
        ("y ~ ", "nothing on the right"),
        ("y ~ x + (1 | log(g))", "is not a column name"),
        ("cbind(a) ~ x", "cbind takes two arguments"),
        ("y ~ . + (1 | g)", r"'\.' \(all other columns\) .* is not supported"),
        ("", "non-empty string"),
    ],
)
def test_bad_formulas_raise_formula_error(formula, message):
    with pytest.raises(lf.FormulaError, match=message):
        parse_formula(formula)


@pytest.mark.parametrize(
    ("formula", "family", "error", "message"),
    [
        ("y ~ xx + (1 | g)", "gaussian", lf.FormulaError, r"'xx' .*not a column of data.*did you mean 'x'"),
        ("y ~ x + (1 | grp)", "gaussian", lf.FormulaError, r"'grp' .*not a column"),
        ("y ~ x + (zz | g)", "gaussian", lf.FormulaError, r"'zz' .*not a column"),
        ("f ~ x + (1 | g)", "gaussian", lf.DataError, r"response 'f' is not numeric"),
        ("y ~ x + (1 | one)", "gaussian", lf.DataError, r"'one' .*single level"),
        (
            "y ~ x + (1 | g)",
            "bernoulli",
            lf.DataError,
            r"response 'y'.*bernoulli family needs values 0 and 1",
        ),
        ("y ~ x + (1 | g)", "poisson", lf.DataError, r"response 'y' has negative values"),
        ("pos ~ x + (1 | g)", "poisson", lf.DataError, r"response 'pos' has non-integer values"),
        ("cbind(hits, hits - trials) ~ x", "binomial", lf.DataError, r"'hits - trials' has negative"),
        ("cbind(hits, trials) ~ x", "gaussian", lf.DataError, r"pass family='binomial'"),
        ("y ~ x + (1 | g)", "binomial", lf.DataError, r"cbind\(successes, failures\)"),
        ("y ~ x + (1 | g)", "studentt", lf.DataError, r"family='studentt' is not supported"),
        ("y ~ np.log(x) + (1 | g)", "gaussian", lf.DataError, r"'np.log\(x\)' has infinite or undefined"),
        ("y ~ x + (0 | g)", "gaussian", lf.FormulaError, r"\(0 \| g\) has no columns"),
        ("y ~ x + (x | g) + (1 | g)", "gaussian", lf.FormulaError, r"repeats \['Intercept'\] for 'g'"),
        ("y ~ empty + (1 | g)", "gaussian", lf.DataError, r"column 'empty' has only missing values"),
    ],
)
def test_bad_data_raise_clear_errors(toy, formula, family, error, message):
    data = toy.assign(one="same", empty=np.nan)
    with pytest.raises(error, match=message):
        lf.Model(formula, data, family=family)


def test_bernoulli_accepts_two_level_strings(toy):
    data = toy.assign(answer=np.where(toy.yes == 1, "yes", "no"))
    model = lf.Model("answer ~ x + (1 | g)", data, family="bernoulli")
    np.testing.assert_array_equal(model.stan_data[names.RESPONSE], toy.yes)  # "yes" sorts after "no"


def test_bad_arguments_are_named(toy):
    with pytest.raises(ValueError, match="parameterization='sideways'"):
        lf.Model("y ~ x + (1 | g)", toy, parameterization="sideways")
    with pytest.raises(lf.FormulaError, match="unknown parameter class 'slope'"):
        lf.Model("y ~ x + (1 | g)", toy, priors={"slope": "normal(0, 1)"})
    with pytest.raises(lf.FormulaError, match="arguments must be numbers"):
        lf.Model("y ~ x + (1 | g)", toy, priors={"b": "normal(0, big)"})
    with pytest.raises(lf.DataError, match="must be a pandas DataFrame"):
        lf.Model("y ~ x", {"y": [1, 2], "x": [3, 4]})


def test_missing_rows_are_dropped_counted_and_reported(toy):
    data = toy.copy()
    data.loc[[0, 1, 2], "x"] = np.nan
    data.loc[[2, 5], "g"] = None
    data.loc[7, "z"] = np.nan  # not used by the formula: the row is kept
    with pytest.warns(UserWarning, match=r"dropped 4 of 240 rows with missing values in: x \(3\), g \(2\)"):
        model = lf.Model("y ~ x + (1 | g)", data)
    assert model.stan_data[names.ROWS] == 236
    np.testing.assert_array_equal(model.stan_data[names.RESPONSE], data.y.drop(index=[0, 1, 2, 5]).to_numpy())


def test_numeric_grouping_column_is_categorical(toy):
    model = lf.Model("y ~ x + (1 | site)", toy)
    assert model.design.blocks[0].factor.levels == ("101", "102", "103", "104", "105")
    as_float = toy.assign(site=toy.site.astype(float))
    assert lf.Model("y ~ x + (1 | site)", as_float).design.blocks[0].factor.levels == (
        "101",
        "102",
        "103",
        "104",
        "105",
    )


def test_design_spec_rebuilds_matrices_for_new_data(toy):
    model = lf.Model("y ~ f + x + (x | g)", toy)
    spec = model.design
    new = pd.DataFrame({"f": ["mid", "hi"], "x": [0.5, -1.0], "g": ["g3", "g10"], "y": [0.0, 0.0]})
    X = spec.fixed_matrix(new)
    assert spec.fixed_columns == ("f[T.lo]", "f[T.mid]", "x")
    np.testing.assert_array_equal(X, [[0, 1, 0.5], [0, 0, -1.0]])
    block = spec.blocks[0]
    np.testing.assert_array_equal(block.matrix(new), [[1, 0.5], [1, -1.0]])
    np.testing.assert_array_equal(
        block.factor.codes(new), [block.factor.levels.index("g3") + 1, block.factor.levels.index("g10") + 1]
    )
    # re-applied to the fitting data, the spec gives back the fitted matrices
    np.testing.assert_array_equal(spec.fixed_matrix(toy), model.stan_data[names.DESIGN])
    np.testing.assert_array_equal(block.matrix(toy), model.stan_data[names.block(1).design])
    np.testing.assert_array_equal(block.factor.codes(toy), model.stan_data[names.block(1).level_of])
    with pytest.raises(lf.DataError, match="levels not seen in fitting"):
        block.factor.codes(pd.DataFrame({"g": ["g99"]}))


def test_ordered_categorical_predictors_get_polynomial_contrasts():
    """As R and brms: an ordered factor's columns are its linear and quadratic trends (.L, .Q)."""
    rng = np.random.default_rng(3)
    n = 90
    levels = ["lo", "mid", "hi"]
    data = pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "fo": pd.Categorical(rng.choice(levels, n), categories=levels, ordered=True),
            "g": rng.choice(list("abcdef"), n),
        }
    )
    model = lf.Model("y ~ fo + (1 | g)", data)
    assert model.design.fixed_columns == ("C(fo, contr.poly)[.L]", "C(fo, contr.poly)[.Q]")
    linear = model.stan_data[names.DESIGN][:, 0]
    expected = data["fo"].map({"lo": -1 / np.sqrt(2), "mid": 0.0, "hi": 1 / np.sqrt(2)}).to_numpy(float)
    assert np.allclose(linear, expected)
    unordered = lf.Model("y ~ fo + (1 | g)", data.assign(fo=data["fo"].cat.as_unordered()))
    assert unordered.design.fixed_columns == ("fo[T.mid]", "fo[T.hi]")  # treatment coding otherwise
