"""Every family x link of the registry, with no family named in the test bodies."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

import lmmformula as lf
from lmmformula import names
from lmmformula.engines import embedded
from lmmformula.families import FAMILIES, LINKS
from lmmformula.parameterization import block_information
from lmmformula.stanc import check_program

FAMILY_LINKS = [(name, link) for name, family in FAMILIES.items() for link in family.links]
FORMULAS = {
    "no group term": "y ~ x",
    "correlated": "y ~ x + (x | g)",
    "uncorrelated": "y ~ x + (1 | g) + (0 + x | h)",
    "intercept only": "y ~ 1 + (1 | g)",
    "weighted": "y | weights(w) ~ x + (1 | g)",
}


def simulate(family: lf.Family, n: int = 300, seed: int = 1, group_sd: float = 0.5) -> pd.DataFrame:
    """Data from the family itself: its link, its random draws, group effects on g."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    g = rng.integers(0, 12, size=n)
    h = rng.integers(0, 8, size=n)
    # a linear predictor inside each link's useful range: means around 5 for identity, sqrt,
    # log and inverse links (positive where the family needs it), around 1/2 for the others
    eta_scale = {"identity": 0.5, "sqrt": 0.3, "log": 0.3, "inverse": 0.01}.get(family.link, 0.8)
    base = {"identity": 5.0, "sqrt": 2.5, "log": 1.5, "inverse": 0.2}.get(family.link, 0.0)
    eta = base + eta_scale * (0.5 * x + rng.normal(0, group_sd, 12)[g])
    mu = family.mu(eta)
    if family.response == "unit":
        mu = np.clip(mu, 1e-3, 1 - 1e-3)
    trials = rng.integers(3, 10, size=n) if family.response == "binomial" else None
    dpars = {dpar.name: dpar.typical for dpar in family.dpars}
    y = family.random(rng, mu, **dpars, **extras(family), trials=trials)
    if family.response == "unit":
        y = np.clip(y, 1e-6, 1 - 1e-6)
    frame = pd.DataFrame({"x": x, "g": [f"g{v}" for v in g], "h": [f"h{v}" for v in h], "y": y})
    frame["w"] = rng.uniform(0.5, 2.0, size=n)
    if trials is not None:
        frame["failures"] = trials - y
    return frame


def extras(family: lf.Family) -> dict:
    """What the numpy functions take besides mu and the dpars: an ordinal family's link and thresholds."""
    return {**family.options, **({"thresholds": np.array([-1.0, 0.0, 1.2])} if family.ordinal else {})}


def formula_for(family: lf.Family, formula: str) -> str:
    if family.response != "binomial":
        return formula
    return formula.replace("y ~", "cbind(y, failures) ~", 1).replace("y |", "cbind(y, failures) |", 1)


@pytest.mark.parametrize("name,link", FAMILY_LINKS)
@pytest.mark.parametrize("structure", list(FORMULAS))
def test_every_family_and_link_renders_a_program_stanc_accepts(name, link, structure):
    family = lf.get_family(name, link=link)
    data = simulate(family)
    model = lf.Model(formula_for(family, FORMULAS[structure]), data, family=family)
    check_program(model.stan_code)
    assert f"family: {name} ({link} link)" in model.stan_code
    for dpar in family.dpars:  # declared, with a prior from the registry
        assert f" {dpar.name};" in model.stan_code and f"  {dpar.name} ~ " in model.stan_code
    weighted = "weights(" in FORMULAS[structure]
    if (weighted or not family.uses_glm) and "x" in FORMULAS[structure]:
        assert "mu += Xc * b;" in model.stan_code  # the whole linear predictor before the likelihood
    if weighted:  # each observation's log density times its weight
        assert "target += weights[n] * " in model.stan_code
        np.testing.assert_array_equal(model.stan_data[names.WEIGHTS], data["w"])
    assert model.stan_data[names.ROWS] == len(data)


@pytest.mark.parametrize("name,link", FAMILY_LINKS)
def test_auto_rule_decides_for_every_family_and_link(name, link):
    """Working weights from the registry's mean and variance: rich groups are well informed."""
    family = lf.get_family(name, link=link)
    data = simulate(family, n=1200, group_sd=4.0)
    rich = lf.Model(formula_for(family, "y ~ x + (1 | g)"), data, family=family)
    ratios = block_information(rich._design)[0]
    assert np.isfinite(ratios).all() and ratios[0] > 0
    if link == family.links[0]:  # the default link, where the simulation's effects are large and valid
        assert rich.parameterizations[0].centered  # 100 rows a group, large effects
    poor = simulate(family, n=300, group_sd=0.3)
    poor["g"] = [f"p{i // 2}" for i in range(len(poor))]  # 150 groups of 2 rows, small effects
    model = lf.Model(formula_for(family, "y ~ x + (1 | g)"), poor, family=family)
    assert not model.parameterizations[0].centered


@pytest.mark.parametrize("name,link", FAMILY_LINKS)
def test_random_draws_have_the_registry_mean_and_variance(name, link):
    family = lf.get_family(name, link=link)
    rng = np.random.default_rng(7)
    mu = family.mu(np.full(200_000, {"log": 1.0, "identity": 3.0, "sqrt": 1.5}.get(link, 0.3)))
    trials = np.full(mu.shape, 6) if family.response == "binomial" else None
    dpars = {dpar.name: 1.3 * dpar.typical for dpar in family.dpars} | extras(family)
    draws = family.random(rng, mu, **dpars, trials=trials)
    mean = np.mean(family.mean(mu, **dpars, trials=trials))
    variance = np.mean(family.variance(mu, **dpars, trials=trials))
    assert abs(draws.mean() - mean) < 5 * np.sqrt(variance / draws.size)
    assert abs(draws.var() / variance - 1) < 0.1  # heavy tails (lognormal) make the sample variance noisy
    # the log density is a density: its exponential sums (integer support) or integrates to ~1
    density = np.exp(
        family.log_density(draws[:1000], mu[:1000], **dpars, trials=None if trials is None else trials[:1000])
    )
    assert np.all((density > 0) & np.isfinite(density))


def test_links_and_names():
    assert lf.get_family("Bernoulli", link="probit").link == "probit"
    assert lf.families.Bernoulli("cloglog") == lf.get_family("bernoulli", "cloglog")
    assert lf.get_family("poisson").link == "log"  # the first link is the default
    with pytest.raises(lf.ArgumentError, match="links are logit, probit, cloglog"):
        lf.get_family("bernoulli", link="log")
    with pytest.raises(lf.ArgumentError, match=r"gaussian \(identity, log\)"):
        lf.get_family("gamma-ish")
    probit = lf.families.Binomial("probit")
    assert pickle.loads(pickle.dumps(probit)) == probit  # by name and link
    for link in LINKS.values():  # each link's inverse undoes it, and its derivative is the inverse's
        mu = np.linspace(0.2, 0.8, 7)
        eta = link.function(mu)
        assert np.allclose(link.inverse(eta), mu)
        step = 1e-6
        numeric = (link.inverse(eta + step) - link.inverse(eta - step)) / (2 * step)
        assert np.allclose(link.derivative(eta), numeric, rtol=1e-4)


RECOVERY = [(name, family.links[0]) for name, family in FAMILIES.items()] + [
    ("bernoulli", "probit"),
    ("gaussian", "log"),
]
THRESHOLDS = np.array([-1.0, 0.0, 1.2])  # an ordinal family's, for four categories


def recovery_data(family: lf.Family, seed: int = 11, n: int = 600, groups: int = 30):
    """y ~ x + (1 | g) simulated from the family: slope 0.5 on the link scale, group sd 0.8, the
    family's parameters at their typical values (and thresholds for an ordinal family)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    g = rng.integers(0, groups, size=n)
    intercept = (
        0.0 if family.ordinal else {"probit": 0.2, "log": 1.5, "logit": 0.0, "identity": 5.0}[family.link]
    )
    eta = intercept + 0.5 * x + rng.normal(0, 0.8, groups)[g]
    truth = {dpar.name: dpar.typical for dpar in family.dpars}
    if family.ordinal:
        truth["thresholds"] = THRESHOLDS
    trials = rng.integers(5, 15, size=n) if family.response == "binomial" else None
    y = family.random(rng, family.mu(eta), **truth, **family.options, trials=trials)
    data = pd.DataFrame({"y": y, "x": x, "g": [f"g{v}" for v in g]})
    if trials is not None:
        data["n"] = trials
    return data, truth


def linear_predictor(model: lf.Model, point: dict) -> np.ndarray:
    """eta of every observation at one draw of ``y ~ x + (1 | g)`` (thresholds apart)."""
    design = model.stan_data
    eta = (
        design[names.DESIGN][:, 0] * point[names.SLOPES][0]
        + point[names.block(1).effects][design[names.block(1).level_of] - 1, 0]
    )
    return eta if model.family.ordinal else eta + point[names.INTERCEPT_AT_ZERO]


def recovery_model(name: str, link: str) -> tuple[lf.Model, dict]:
    """The recovery test's model of ``name`` with ``link`` on its simulation, and the truth."""
    family = lf.get_family(name, link=link)
    data, truth = recovery_data(family)
    response = "y | trials(n)" if family.response == "binomial" else "y"
    return lf.Model(f"{response} ~ x + (1 | g)", data, family=family), truth


def compile_ahead(item) -> lf.Model | None:
    """For conftest: the model whose program this test will compile (compiled ahead, in parallel)."""
    if item.originalname == "test_families_recover_the_simulation_and_stan_agrees_with_numpy":
        return recovery_model(**item.callspec.params)[0]
    return None


@pytest.mark.slow
@pytest.mark.parametrize("name,link", RECOVERY)
def test_families_recover_the_simulation_and_stan_agrees_with_numpy(name, link):
    """Every family fits its own simulation at default settings: the slope (0.5), the group sd (0.8),
    the family's parameters and thresholds are recovered within their 99 % intervals, with no divergence
    and R-hat < 1.01. The compiled program's log density (every constant kept) and the registry's numpy
    density then change by the same amount between two responses at one posterior draw."""
    model, truth = recovery_model(name, link)
    family, data = model.family, model.data_design.frame
    fit = model.fit(seed=2, progress=False)
    assert int(fit.sampler["divergent__"].sum()) == 0
    fixef = fit.fixef(probs=(0.005, 0.995))
    assert fixef.loc["x", "Q0.5"] < 0.5 < fixef.loc["x", "Q99.5"]
    for k, threshold in enumerate(truth.get("thresholds", [])):
        row = fixef.loc[f"Intercept[{k + 1}]"]
        assert row["Q0.5"] < threshold < row["Q99.5"]
    sd = fit.varcorr(probs=(0.005, 0.995)).loc[("g", "sd(Intercept)")]
    assert sd["Q0.5"] < 0.8 < sd["Q99.5"]
    summary = fit.summary(prob=0.99)
    assert summary.population_level["Rhat"].max() < 1.01
    assert all(table["Rhat"].max() < 1.01 for _, _, table in summary.group_level)
    for dpar in family.dpars:  # the family's own parameters: in the summary, around their true value
        row = summary.family_level.loc[dpar.name]
        assert row["l-99% CI"] < truth[dpar.name] < row["u-99% CI"]
        assert row["Rhat"] < 1.01

    # Stan's density against numpy's, at the last draw of chain 1
    point = {key: values[0, -1] for key, values in fit.posterior.items()}
    other, _ = recovery_data(family, seed=12)
    if family.ordinal:  # the same number of categories
        other["y"] = np.clip(other["y"], 1, len(THRESHOLDS) + 1)
    if "n" in data:  # the same trials
        other["y"] = np.minimum(other["y"], data["n"])
    first, second = model.stan_data, dict(model.stan_data, Y=other["y"].to_numpy())
    eta = linear_predictor(model, point)
    numpy_args = {dpar.name: point[dpar.name] for dpar in family.dpars} | family.options
    if family.ordinal:
        numpy_args["thresholds"] = point[names.INTERCEPT_AT_ZERO]

    def numpy_density(y) -> float:
        return float(np.sum(family.log_density(y, family.mu(eta), **numpy_args, trials=first.get("trials"))))

    program = embedded.compile_program(model.stan_code)
    stan_change = embedded.log_density(program, first, point) - embedded.log_density(program, second, point)
    numpy_change = numpy_density(first[names.RESPONSE]) - numpy_density(second[names.RESPONSE])
    assert stan_change == pytest.approx(numpy_change, rel=1e-8, abs=1e-6)


def offset_data(n: int = 400, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=n), "exposure": rng.uniform(0.5, 20, n)})
    codes = rng.integers(0, 20, n)
    frame["g"] = [f"g{v}" for v in codes]
    effects = rng.normal(0, 0.5, 20)[codes]
    frame["y"] = rng.poisson(frame["exposure"] * np.exp(-1.0 + 0.4 * frame["x"] + effects))
    return frame


def test_offset_is_data_added_to_the_linear_predictor():
    data = offset_data()
    model = lf.Model("y ~ x + offset(log(exposure)) + (1 | g)", data, family="poisson")
    check_program(model.stan_code)
    assert np.allclose(model.stan_data["offsets"], np.log(data["exposure"]))
    assert model.design.fixed_columns == ("x",)
    assert np.allclose(model.design.offset(data.iloc[:5]), np.log(data["exposure"].iloc[:5]))
    two = lf.Model("y ~ x + offset(log(exposure)) + offset(x) + (1 | g)", data, family="poisson")
    assert np.allclose(two.stan_data["offsets"], np.log(data["exposure"]) + data["x"])
    plain = lf.Model("y ~ x + (1 | g)", data, family="poisson")
    assert "offsets" not in plain.stan_data and "offsets" not in plain.stan_code


@pytest.mark.slow
def test_offset_recovers_rates_per_unit_of_exposure():
    """Counts over exposures of 0.5-20: with offset(log(exposure)) the intercept is the log rate per unit
    (-1.0 simulated) and the slope 0.4."""
    fit = lf.Model("y ~ x + offset(log(exposure)) + (1 | g)", offset_data(), family="poisson").fit(
        seed=4, progress=False
    )
    table = fit.fixef(probs=(0.005, 0.995))
    assert table.loc["x", "Q0.5"] < 0.4 < table.loc["x", "Q99.5"]
    assert table.loc["Intercept", "Q0.5"] < -1.0 < table.loc["Intercept", "Q99.5"]


@pytest.mark.parametrize(
    "name", [n for n, f in FAMILIES.items() if f.working_scale is None and f.working_family is None]
)
def test_mean_is_linear_in_mu_where_the_auto_rule_assumes_it(name):
    family = FAMILIES[name]
    dpars = {dpar.name: dpar.typical for dpar in family.dpars}
    trials = np.array([3, 7])
    a, b = np.array([0.2, 0.3]), np.array([0.4, 0.1])
    mixed = family.mean(0.25 * a + 0.75 * b, **dpars, trials=trials)
    assert np.allclose(
        mixed, 0.25 * family.mean(a, **dpars, trials=trials) + 0.75 * family.mean(b, **dpars, trials=trials)
    )


@pytest.mark.parametrize("name,link", FAMILY_LINKS)
def test_discrete_densities_sum_to_one(name, link):
    """Over its whole support, a discrete family's numpy probabilities add up to 1 (for the families
    whose density is written by hand, zero-inflated, hurdle and ordinal, as for scipy's)."""
    family = lf.get_family(name, link=link)
    if family.response not in ("binary", "count", "binomial", "ordinal"):
        pytest.skip("continuous response")
    support = {"binary": 2, "binomial": 7, "ordinal": 4}.get(family.response, 400)
    values = np.arange(support) + (1 if family.ordinal else 0)
    mu = family.mu(np.full(values.shape, {"log": 1.2, "identity": 3.0, "sqrt": 1.7}.get(link, 0.4)))
    dpars = {dpar.name: 1.3 * dpar.typical for dpar in family.dpars} | extras(family)
    trials = np.full(values.shape, 6) if family.response == "binomial" else None
    total = np.exp(family.log_density(values, mu, **dpars, trials=trials)).sum()
    assert total == pytest.approx(1.0, abs=1e-9)


@pytest.mark.slow
def test_weights_multiply_each_observations_log_density():
    """y | weights(w): between two responses at one parameter point, Stan's log density changes by the
    weighted sum of the numpy densities' changes (the priors, which do not depend on y, cancel)."""
    family = lf.get_family("negbinomial")
    data, _ = recovery_data(family, n=200)
    data["w"] = np.random.default_rng(3).uniform(0.2, 3.0, size=len(data))
    # non-centered and not swept (the same program; the choice is data): the effects are sd * z and
    # Intercept is the intercept at mean(x)
    unswept = [lf.BlockParameterization(False)]
    model = lf.Model("y | weights(w) ~ x + (1 | g)", data, family=family, parameterization=unswept)
    program = embedded.compile_program(model.stan_code)
    one, first = names.block(1), model.stan_data
    z = np.random.default_rng(4).normal(size=(first[one.levels], 1))
    point = {
        names.INTERCEPT: 1.2,
        names.SLOPES: np.array([0.4]),
        "shape": 2.5,
        one.sd: np.array([0.7]),
        one.z: z,
    }
    derived = {
        **point,
        one.effects: 0.7 * z,
        names.INTERCEPT_AT_ZERO: 1.2 - first[names.DESIGN][:, 0].mean() * 0.4,  # Intercept is at mean(x)
    }
    mu = family.mu(linear_predictor(model, derived))
    second = dict(first, Y=np.random.default_rng(5).poisson(4.0, size=len(data)))
    change = data["w"].to_numpy() * (
        family.log_density(first["Y"], mu, shape=2.5) - family.log_density(second["Y"], mu, shape=2.5)
    )
    stan_change = embedded.log_density(program, first, point) - embedded.log_density(program, second, point)
    assert stan_change == pytest.approx(change.sum(), rel=1e-8)
