"""Priors as brms users set them: get_prior against brms 2.18's tables, priors by class, coefficient and
group (the more specific wins), bounds on b, the weakly-informative slopes, which changes keep the compiled
program, and (slow) fits showing that the priors do what they say: prior-only draws follow the priors,
a tight prior pulls the estimate, bounds hold."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import lmmformula as lf
from lmmformula import names

from .conftest import DATA

BRMS_CASES = {
    "coffee": ("y ~ x + (x | group)", "gaussian"),
    "sleepstudy": ("Reaction ~ Days + (Days | Subject)", "gaussian"),
    "Orthodont": ("distance ~ age + Sex + (age | Subject)", "gaussian"),
    "cbpp": ("incidence | trials(size) ~ period + (1 | herd)", "binomial"),
    "InstEval": ("y ~ service + (1 | s) + (1 | d) + (1 | dept:service)", "gaussian"),
}


def brms_style(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "", name.replace("[T.", ""))


@pytest.mark.parametrize("name", sorted(BRMS_CASES))
def test_get_prior_matches_brms(name):
    """Class by class: the same rows (class, coef, group; coefficients in brms's spelling), the same
    class-level priors with the same numbers, the same lower bounds; rows brms leaves empty inherit."""
    formula, family = BRMS_CASES[name]
    ours = lf.get_prior(formula, lf.load_dataset(name), family=family)
    brms = pd.read_csv(DATA / f"{name}.prior.csv", keep_default_na=False, dtype=str)
    assert list(ours.columns) == list(brms.columns)

    def rows(table):
        return sorted((r["class"], brms_style(r["coef"]), r["group"]) for _, r in table.iterrows())

    assert rows(ours) == rows(brms)
    for _, row in brms.iterrows():
        mine = ours[
            (ours["class"] == row["class"])
            & (ours["coef"].map(brms_style) == row["coef"])
            & (ours["group"] == row["group"])
        ].iloc[0]
        if row["prior"]:  # brms's CSV writes a prior only where it is set; the rest inherit it
            assert mine["prior"] == row["prior"], (row["class"], row["coef"], row["group"])
            assert mine["source"] == "default"
        elif not row["coef"] and not row["group"]:  # a class-level row with no prior: flat
            assert mine["prior"] == "(flat)"
        else:
            parent = ours[(ours["class"] == row["class"]) & (ours["coef"] == "") & (ours["group"] == "")]
            assert mine["prior"] == parent["prior"].iloc[0] and mine["source"] == "(vectorized)"
        if row["lb"]:
            assert mine["lb"] == row["lb"]


def test_priors_by_coefficient_and_group_the_more_specific_wins(sleepstudy):
    priors = [
        lf.prior("normal(0, 10)", class_="b"),
        lf.prior("normal(1, 2)", class_="b", coef="Days"),
        lf.prior("exponential(2)", class_="sd", group="Subject"),
        lf.prior("student_t(3, 0, 1)", class_="sd", group="Subject", coef="Days"),
        lf.prior("lkj(2)", class_="cor", group="Subject"),
        lf.prior("exponential(0.5)", dpar="sigma"),
    ]
    model = lf.Model("Reaction ~ Days + (Days | Subject)", sleepstudy, priors=priors)
    table = model.get_prior().set_index(["class", "coef", "group"])
    assert table.loc[("b", "", ""), "prior"] == "normal(0, 10)"
    assert table.loc[("b", "Days", ""), ["prior", "source"]].tolist() == ["normal(1, 2)", "user"]
    assert table.loc[("sd", "Intercept", "Subject"), ["prior", "source"]].tolist() == [
        "exponential(2)",
        "(vectorized)",
    ]
    assert table.loc[("sd", "Days", "Subject"), "prior"] == "student_t(3, 0, 1)"
    assert table.loc[("sd", "", ""), "prior"] == "student_t(3, 0, 59.3)"  # the default, shown
    assert table.loc[("cor", "", "Subject"), "prior"] == "lkj(2)"
    assert table.loc[("sigma", "", ""), ["prior", "source"]].tolist() == ["exponential(0.5)", "user"]
    data, code = model.stan_data, model.stan_code
    assert list(data["prior_b_normal_location"]) == [1.0] and list(data["prior_b_normal_scale"]) == [2.0]
    columns = list(model.design.blocks[0].columns)  # Intercept, Days
    assert list(data["prior_sd_1_exponential_index"]) == [columns.index("Intercept") + 1]
    assert list(data["prior_sd_1_student_t_index"]) == [columns.index("Days") + 1]
    assert data["prior_cor_1_eta"] == 2.0 and data["prior_sigma_rate"] == 0.5
    assert "sd_1[prior_sd_1_exponential_index] ~ exponential(prior_sd_1_exponential_rate);" in code


def test_a_prior_on_one_of_several_slopes_leaves_the_others_flat(orthodont):
    model = lf.Model(
        "distance ~ age + Sex + (age | Subject)", orthodont, priors=[lf.prior("normal(0, 3)", coef="SexMale")]
    )
    columns = list(model.design.fixed_columns)  # the coefficient named in brms's spelling
    assert list(model.stan_data["prior_b_normal_index"]) == [columns.index("Sex[T.Male]") + 1]
    table = model.get_prior().set_index(["class", "coef", "group"])
    assert table.loc[("b", "age", ""), "prior"] == "(flat)"


def test_only_numbers_and_coverage_are_data_the_program_stays(sleepstudy, stanc):
    """Changing a prior's numbers, moving it to another coefficient or group term, or setting it on a
    class instead of a coefficient keeps the program (its hash, so the compiled model is reused); a new
    distribution or bounds change it."""

    def program(*priors):
        return lf.Model("Reaction ~ Days + (Days | Subject)", sleepstudy, priors=list(priors)).stan_code

    base = program(lf.prior("normal(0, 1)", coef="Days"), lf.prior("exponential(1)", class_="sd"))
    same = [
        program(lf.prior("normal(5, 20)", coef="Days"), lf.prior("exponential(3)", class_="sd")),
        program(
            lf.prior("normal(0, 1)", class_="b"), lf.prior("exponential(1)", class_="sd", group="Subject")
        ),
        program(
            lf.prior("normal(0, 1)", coef="Days"),
            lf.prior("exponential(1)", class_="sd", group="Subject", coef="Days"),
            lf.prior("exponential(9)", class_="sd", group="Subject", coef="Intercept"),
        ),
    ]
    assert all(code == base for code in same)
    different = [
        program(lf.prior("student_t(3, 0, 1)", coef="Days"), lf.prior("exponential(1)", class_="sd")),
        program(lf.prior("normal(0, 1)", coef="Days", lb=0), lf.prior("exponential(1)", class_="sd")),
        program(lf.prior("normal(0, 1)", coef="Days")),  # sd back to the default student_t
    ]
    assert all(code != base for code in different)
    for code in [base, *different]:
        stanc(code)


def test_bounds_on_b(sleepstudy, stanc):
    model = lf.Model(
        "Reaction ~ Days + (Days | Subject)",
        sleepstudy,
        priors=[lf.prior("normal(0, 10)", class_="b", coef="Days", lb=0, ub=50)],
    )
    stanc(model.stan_code)
    assert "vector<lower=lb_b, upper=ub_b>[K] b;" in model.stan_code
    assert model.stan_data[names.SLOPE_LOWER].tolist() == [0.0]
    assert model.stan_data[names.SLOPE_UPPER].tolist() == [50.0]
    table = model.get_prior().set_index(["class", "coef", "group"])
    assert table.loc[("b", "Days", ""), ["lb", "ub"]].tolist() == ["0", "50"]
    one_sided = lf.Model("Reaction ~ Days + (1 | Subject)", sleepstudy, priors=[lf.prior("flat", lb=0)])
    assert one_sided.stan_data[names.SLOPE_UPPER].tolist() == [np.inf]
    assert "vector<lower=lb_b, upper=ub_b>[K] b;" not in lf.make_stancode(
        "Reaction ~ Days + (1 | Subject)", sleepstudy
    )


def test_weakly_informative_slopes_scale_by_the_data(sleepstudy, cbpp):
    """rstanarm's autoscale: normal(0, 2.5 sd(y) / sd(x)) on a gaussian model's slopes, 2.5 / sd(x)
    under a logit link; the intercept and scale priors stay brms's."""
    model = lf.Model("Reaction ~ Days + (1 | Subject)", sleepstudy, priors="weakly_informative")
    expected = 2.5 * sleepstudy["Reaction"].std() / sleepstudy["Days"].std()
    assert model.stan_data["prior_b_normal_scale"][0] == pytest.approx(expected, rel=1e-3)
    assert model.stan_data["prior_b_normal_location"][0] == 0
    assert (
        model.stan_data["prior_Intercept_location"]
        == lf.Model("Reaction ~ Days + (1 | Subject)", sleepstudy).stan_data["prior_Intercept_location"]
    )
    binomial = lf.Model(
        "incidence | trials(size) ~ period + (1 | herd)",
        cbpp,
        family="binomial",
        priors=["weakly_informative", lf.prior("normal(0, 1)", coef="period4")],
    )
    dummies = pd.get_dummies(cbpp["period"]).astype(float)
    scales = binomial.stan_data["prior_b_normal_scale"]
    np.testing.assert_allclose(scales[:2], 2.5 / dummies[["2", "3"]].std().to_numpy(), rtol=1e-3)
    assert scales[2] == 1.0  # the user's prior on period4 beats the autoscaled default
    assert binomial.get_prior().iloc[0]["prior"] == "normal(0, 2.5 / sd(x))"


@pytest.mark.parametrize(
    "priors, error, needles",
    [
        ([lf.prior("normal(0, 1)", coef="Age")], lf.PriorError, ("'Age'", "'Days'")),
        (
            [lf.prior("exponential(1)", class_="sd", group="Subjects")],
            lf.PriorError,
            ("'Subjects'", "'Subject'"),
        ),
        (
            [lf.prior("exponential(1)", class_="sd", group="Subject", coef="x")],
            lf.PriorError,
            ("'x'", "'Days'", "'Intercept'"),
        ),
        ([lf.prior("exponential(1)", class_="sd", coef="Days")], lf.PriorError, ("group",)),
        ([lf.prior("normal(0, 1)", class_="sd", group="Subject", lb=0)], lf.PriorError, ("bounds", "'b'")),
        ([lf.prior("normal(0, 1)", lb=2, ub=1)], lf.PriorError, ("lb",)),
        ([lf.prior("lkj(2)", class_="cor", coef="Days")], lf.PriorError, ("coef",)),
        ([lf.prior("normal(0, 1)"), lf.prior("normal(0, 2)")], lf.PriorError, ("twice",)),
        ([lf.prior("normal(0, 1)", class_="b", group="Subject")], lf.PriorError, ("group",)),
        ([lf.prior("exponential(1)", class_="sigma", coef="Days")], lf.PriorError, ("sigma",)),
        ([lf.prior("exponential(1)", class_="shape")], lf.PriorError, ("shape", "gaussian")),
        ("strong", lf.ArgumentError, ("weakly",)),
        (["normal(0, 1)"], lf.ArgumentError, ("lf.prior",)),
        ([lf.prior("lkj(2)", class_="b")], lf.PriorError, ("lkj",)),
        ([lf.prior("beta(1, 1)", class_="sd")], lf.PriorError, ("beta",)),
        ([lf.prior("normal(0, 1)", dpar="thresholds")], lf.PriorError, ("ordinal",)),
    ],
)
def test_bad_priors_say_what_exists(sleepstudy, priors, error, needles):
    with pytest.raises(error) as caught:
        lf.Model("Reaction ~ Days + (Days | Subject)", sleepstudy, priors=priors)
    for needle in needles:
        assert needle in str(caught.value)


def test_prior_arguments_are_checked():
    with pytest.raises(lf.PriorError):
        lf.prior(5)
    with pytest.raises(lf.ArgumentError, match="lb"):
        lf.prior("normal(0, 1)", lb="zero")
    with pytest.raises(lf.ArgumentError, match="dpar"):
        lf.prior("exponential(1)", class_="sd", dpar="sigma")
    assert lf.prior("exponential(1)", dpar="sigma").class_ == "sigma"
    assert lf.prior("normal(0, 5)", dpar="thresholds").class_ == "Intercept"
    assert str(lf.prior("normal(0, 1)", coef="x", lb=0)) == "prior(normal(0, 1), class = b, coef = x, lb = 0)"


def test_sample_prior_needs_proper_priors(sleepstudy):
    model = lf.Model("Reaction ~ Days + (1 | Subject)", sleepstudy)
    with pytest.raises(lf.ArgumentError, match="flat prior"):
        model.fit(sample_prior="only")
    with pytest.raises(lf.ArgumentError, match="sample_prior"):
        model.fit(sample_prior="prior")


def test_prior_only_data_switch_off_the_likelihood_only(coffee):
    from lmmformula.codegen import prior_only_data

    model = lf.Model("y ~ x + (x | group)", coffee, priors="weakly_informative")
    data = prior_only_data(model.stan_data, model.design)
    assert data[names.PRIOR_ONLY] == 1 and model.stan_data[names.PRIOR_ONLY] == 0
    assert data[names.block(1).centered] == 0
    changed = {k for k in data if not np.array_equal(np.asarray(data[k]), np.asarray(model.stan_data[k]))}
    assert changed <= {names.PRIOR_ONLY, names.block(1).centered, names.block(1).sweep_weights}


# --------------------------------------------------------------------------------- real fits

BOUNDED = "y ~ x + (x | group)"  # one program: b normal with bounds, sd student_t, cor lkj


@pytest.fixture(scope="module")
def prior_only_fit(coffee):
    priors = [
        lf.prior("normal(0, 5)", coef="x", lb=0),  # a half-normal
        lf.prior("student_t(3, 0, 2)", class_="sd"),
        lf.prior("exponential(1)", dpar="sigma"),
    ]
    return lf.Model(BOUNDED, coffee, priors=priors).fit(seed=3, sample_prior="only", progress=False)


@pytest.mark.slow
def test_a_prior_only_fit_draws_the_priors(prior_only_fit, coffee):
    """Quantiles of the prior-only draws against the priors' own (Monte Carlo error: 4,000 draws)."""
    draws = prior_only_fit.prior_draws()
    probs = np.array([0.1, 0.25, 0.5, 0.75, 0.9])

    def close(values, quantiles, tolerance):
        np.testing.assert_allclose(np.quantile(values, probs), quantiles, atol=tolerance)

    close(draws["b_x"], stats.halfnorm(scale=5).ppf(probs), 0.35)
    close(draws["sigma"], stats.expon().ppf(probs), 0.1)
    close(draws["sd_group__x"], stats.t(3, scale=2).ppf(0.5 + probs / 2), 0.25)
    # the intercept's prior is on the intercept at the mean of x, as brms's
    alpha = draws["b_Intercept"] + coffee["x"].mean() * draws["b_x"]
    close(alpha, stats.t(3, loc=3.8, scale=8.7).ppf(probs), 1.2)
    assert (draws["b_x"] >= 0).all()
    assert "priors only" in str(prior_only_fit.summary())


@pytest.mark.slow
def test_a_tight_prior_pulls_the_estimate_and_sample_prior_yes(prior_only_fit, coffee):
    """The same program (only numbers change): a tight prior at 5 on the slope (the data say about 2) and
    a tight prior at 30 on the teams' intercept sd (the data say about 10) move the posterior there;
    sample_prior='yes' adds the priors' draws."""
    priors = [
        lf.prior("normal(5, 0.01)", coef="x", lb=0),
        lf.prior("student_t(3, 0, 2)", class_="sd"),
        lf.prior("student_t(100, 30, 0.5)", class_="sd", group="group", coef="Intercept"),
        lf.prior("exponential(1)", dpar="sigma"),
    ]
    model = lf.Model(BOUNDED, coffee, priors=priors)
    assert model.stan_code == prior_only_fit.model.stan_code
    with warnings.catch_warnings():  # priors that fight the data: the chains may mix slowly
        warnings.simplefilter("ignore", lf.SamplingWarning)
        fit = model.fit(seed=4, sample_prior="yes", progress=False)
    assert fit.timings["compiled_now"] == 0  # the prior-only fit's program
    assert abs(fit.fixef().loc["x", "Estimate"] - 5) < 0.05
    sd_intercept = fit.varcorr().loc[("group", "sd(Intercept)"), "Estimate"]
    assert 27 < sd_intercept < 31  # free, it is about 10 (tests/data/coffee.json)
    assert float(fit.to_arviz(log_likelihood=False, posterior_predictive=False).prior["x"].mean()) == (
        pytest.approx(5, abs=0.01)
    )
    prior = fit.prior_draws()
    assert prior["b_x"].mean() == pytest.approx(5, abs=0.01) and prior["b_x"].std() == pytest.approx(
        0.01, rel=0.15
    )


def test_every_family_takes_priors_on_its_parameters(toy, stanc):
    """Registry-wide: each family's own parameters take a prior by dpar= (an ordinal family's thresholds
    too), it shows in get_prior as the user's, and the program passes stanc."""
    from lmmformula.families import FAMILIES

    from .test_families import recovery_data

    for name, family in sorted(FAMILIES.items()):
        data, _ = recovery_data(family, n=40, groups=5)
        response = "y | trials(n)" if family.response == "binomial" else "y"
        priors = [lf.prior("normal(0, 2)", dpar="thresholds")] if family.ordinal else []
        for dpar in family.dpars:
            priors.append(
                lf.prior("beta(2, 2)" if dpar.supports == ("unit",) else "exponential(3)", dpar=dpar.name)
            )
        model = lf.Model(f"{response} ~ x + (1 | g)", data, family=family, priors=priors)
        table = model.get_prior().set_index("class")
        for spec in priors:
            assert table.loc[spec.class_, "source"] == "user", (name, spec)
        if family.ordinal:
            assert model.stan_data["prior_Intercept_scale"] == 2
        stanc(model.stan_code)
