"""Predictions, expected values and the log-likelihood on hand-made draws (no sampling): each number is
computed again here from the data columns, not from the design matrices the package builds."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import lmmformula as lf
from lmmformula import names
from lmmformula.draws import Draws
from lmmformula.engines import SamplerSettings
from lmmformula.families import FAMILIES

from .test_families import recovery_data

CHAINS, DRAWS = 2, 100


def handmade_fit(formula: str, data: pd.DataFrame, family="gaussian", seed: int = 0, sd: float | None = None):
    """A Fit whose Stan draws are random numbers of the right shapes (no sampling); ``sd`` fixes every
    group-level sd."""
    model = lf.Model(formula, data, family=family, parameterization="noncentered")
    rng = np.random.default_rng(seed)
    spec, shape = model.design, (CHAINS, DRAWS)
    posterior = {}
    if model.family.ordinal:
        posterior[names.INTERCEPT_AT_ZERO] = np.sort(rng.normal(size=shape + (3,)), axis=-1)
    elif spec.has_intercept:
        posterior[names.INTERCEPT_AT_ZERO] = rng.normal(0.3, 0.2, size=shape)
    for dpar in model.family.dpars:
        posterior[dpar.name] = dpar.typical * rng.uniform(0.8, 1.2, size=shape)
    if spec.fixed_columns:
        posterior[names.SLOPES] = rng.normal(0, 0.3, size=shape + (len(spec.fixed_columns),))
    for i, block in enumerate(spec.blocks, start=1):
        m = len(block.columns)
        scale = np.full(shape + (m,), sd) if sd is not None else rng.gamma(4.0, 0.1, size=shape + (m,))
        posterior[f"sd_{i}"] = scale
        posterior[f"r_{i}"] = rng.normal(size=shape + (len(block.factor.levels), m)) * scale[..., None, :]
        if block.correlated:
            lower = np.tril(rng.normal(size=shape + (m, m)))
            cov = lower @ np.swapaxes(lower, -1, -2) + np.eye(m)
            d = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
            posterior[f"Cor_{i}"] = cov / d[..., :, None] / d[..., None, :]
    sampler = {
        "divergent__": np.zeros(shape),
        "treedepth__": np.full(shape, 3.0),
        "lp__": rng.normal(size=shape),
    }
    settings = SamplerSettings(chains=CHAINS, iter_warmup=10, iter_sampling=DRAWS)
    return lf.Fit(model, Draws(posterior, sampler), settings, "handmade", {}, ())


def flat(fit, name):
    values = fit.posterior[name]
    return values.reshape((-1,) + values.shape[2:])


def level_index(fit, column: pd.Series) -> np.ndarray:
    """Each value's position among the first block's levels (as fitted)."""
    levels = [str(v) for v in fit.model.design.blocks[0].factor.levels]
    return np.array([levels.index(str(v)) for v in column])


@pytest.fixture(scope="module")
def slopes(toy):
    return handmade_fit("y ~ x + f + (x | g)", toy)


def by_hand(fit, data: pd.DataFrame, with_intercepts=True, with_slopes=True) -> np.ndarray:
    """b_Intercept + b_x x + b_f dummies + r_g[Intercept] + r_g[x] x, from the data columns."""
    b0, b = flat(fit, names.INTERCEPT_AT_ZERO), flat(fit, names.SLOPES)
    columns = list(fit.model.design.fixed_columns)
    eta = b0[:, None] + b[:, [columns.index("x")]] * data["x"].to_numpy()
    for level in ("lo", "mid"):
        eta += b[:, [columns.index(f"f[T.{level}]")]] * (data["f"] == level).to_numpy()
    r = flat(fit, "r_1")
    g = level_index(fit, data["g"])
    if with_intercepts:
        eta += r[:, g, 0]
    if with_slopes:
        eta += r[:, g, 1] * data["x"].to_numpy()
    return eta


def test_linpred_of_the_fitting_data_and_of_the_same_rows_as_newdata(slopes, toy):
    expected = by_hand(slopes, toy)
    assert slopes.posterior_linpred() == pytest.approx(expected)
    assert slopes.posterior_linpred(newdata=toy) == pytest.approx(expected)
    shuffled = toy.sample(frac=1.0, random_state=3)
    assert slopes.posterior_linpred(newdata=shuffled) == pytest.approx(by_hand(slopes, shuffled))


def test_re_formula_keeps_the_terms_it_names(slopes, toy):
    assert slopes.posterior_linpred(re_formula="~ 0") == pytest.approx(by_hand(slopes, toy, False, False))
    assert slopes.posterior_linpred(re_formula=np.nan) == pytest.approx(by_hand(slopes, toy, False, False))
    assert slopes.posterior_linpred(re_formula="~ (1 | g)") == pytest.approx(
        by_hand(slopes, toy, True, False)
    )
    assert slopes.posterior_linpred(re_formula="~ (0 + x | g)") == pytest.approx(
        by_hand(slopes, toy, False, True)
    )
    # without group columns in newdata when no group term is asked for
    fixed_only = toy[["x", "f"]].head(5)
    assert slopes.posterior_linpred(fixed_only, re_formula="~0") == pytest.approx(
        by_hand(slopes, toy.head(5), False, False)
    )
    with pytest.raises(lf.FormulaError, match=r"\(1 \| a\).*not in the model"):
        slopes.posterior_linpred(re_formula="~ (1 | a)")
    with pytest.raises(lf.FormulaError, match="z"):
        slopes.posterior_linpred(re_formula="~ (z | g)")


def test_epred_and_predict_follow_the_family_and_log_lik_is_its_density(slopes, toy):
    eta = by_hand(slopes, toy)
    sigma = flat(slopes, "sigma")[:, None]
    assert slopes.posterior_epred() == pytest.approx(eta)
    from scipy import stats

    assert slopes.log_lik() == pytest.approx(stats.norm.logpdf(toy["y"].to_numpy(), eta, sigma))
    draws = slopes.posterior_predict(seed=1)
    z = (draws - eta) / sigma  # standardized residuals of the predictive draws: N(0, 1)
    assert abs(z.mean()) < 0.01 and z.std() == pytest.approx(1.0, abs=0.01)
    table = slopes.fitted(probs=(0.1, 0.9))
    assert list(table.columns) == ["Estimate", "Est.Error", "Q10", "Q90"]
    assert table["Estimate"].to_numpy() == pytest.approx(eta.mean(axis=0))
    assert table["Q90"].to_numpy() == pytest.approx(np.quantile(eta, 0.9, axis=0))


def test_draws_subset_and_seed(slopes):
    a = slopes.posterior_predict(ndraws=30, seed=5)
    assert a.shape == (30, slopes.model.nobs)
    assert np.array_equal(a, slopes.posterior_predict(ndraws=30, seed=5))
    assert not np.array_equal(a, slopes.posterior_predict(ndraws=30, seed=6))
    with pytest.raises(lf.ArgumentError, match="ndraws"):
        slopes.posterior_epred(ndraws=10_000)


def test_new_levels(toy):
    fit = handmade_fit("y ~ x + (x | g)", toy, sd=0.7)
    new = pd.DataFrame({"x": [0.0, 0.0, 1.0], "g": ["new1", "new2", "new1"]})
    with pytest.raises(lf.DataError, match=r"'g'.*'new1', 'new2'.*allow_new_levels=True"):
        fit.posterior_linpred(new)
    b0 = flat(fit, names.INTERCEPT_AT_ZERO)
    r = flat(fit, "r_1")
    old = fit.posterior_linpred(new, allow_new_levels=True, sample_new_levels="old_levels", seed=2)
    effect = old[:, 0] - b0  # x = 0: the level's intercept effect, all draws
    matches = [k for k in range(r.shape[1]) if np.allclose(effect, r[:, k, 0])]
    assert len(matches) == 1  # one existing level, the same in every draw
    assert old[:, 2] - old[:, 0] == pytest.approx(
        flat(fit, "b")[:, 0] + r[:, matches[0], 1]
    )  # same level, x = 1
    unc = fit.posterior_linpred(new, allow_new_levels=True, seed=2)  # uncertainty: a level per draw
    effect = unc[:, 0] - b0
    assert all(np.isclose(effect[d], r[d, :, 0]).any() for d in range(len(effect)))
    assert len({int(np.argmin(np.abs(effect[d] - r[d, :, 0]))) for d in range(len(effect))}) > 3
    many = pd.DataFrame({"x": 0.0, "g": [f"n{k}" for k in range(2000)]})
    gauss = (
        fit.posterior_linpred(many, allow_new_levels=True, sample_new_levels="gaussian", seed=3) - b0[:, None]
    )
    assert abs(gauss.mean()) < 0.02 and gauss.std() == pytest.approx(0.7, rel=0.02)
    with pytest.raises(lf.ArgumentError, match="sample_new_levels"):
        fit.posterior_linpred(new, allow_new_levels=True, sample_new_levels="nearest")


def test_new_data_checks(slopes, toy):
    with pytest.raises(lf.DataError, match=r"column 'f'.*'top'"):
        slopes.posterior_linpred(pd.DataFrame({"x": [0.1], "f": ["top"], "g": ["g1"]}))
    holes = toy.head(6).copy()
    holes.loc[holes.index[2], "x"] = np.nan
    before = holes.copy()
    with pytest.warns(lf.DesignWarning, match="dropped 1 of 6 rows"):
        table = slopes.predict(holes, seed=1)
    assert list(table.index) == [i for k, i in enumerate(holes.index) if k != 2]
    pd.testing.assert_frame_equal(holes, before)  # nothing the user passed is changed
    with pytest.raises(lf.DataError, match="response"):
        slopes.log_lik(toy[["x", "f", "g"]])
    one = slopes.log_lik(toy.iloc[[4]])  # one row (a constant response) is fine to predict
    assert one[:, 0] == pytest.approx(slopes.log_lik()[:, 4])
    # rows whose response is missing are predicted, not dropped (only log_lik needs the response)
    unknown = toy.head(4).assign(y=[np.nan, 1.0, np.nan, 2.0])
    assert slopes.posterior_epred(unknown) == pytest.approx(slopes.posterior_epred()[:, :4])
    with pytest.raises(lf.DataError, match="response"):
        slopes.log_lik(unknown)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_epred_is_the_mean_of_its_predictions(name):
    """posterior_epred equals the mean of many posterior_predict draws within Monte Carlo error, and
    log_lik is the registry's density at the hand-computed mu (trials honoured for binomial)."""
    family = lf.get_family(name)
    data, _ = recovery_data(family, n=40, groups=5)
    response = "y | trials(n)" if family.response == "binomial" else "y"
    fit = handmade_fit(f"{response} ~ x + (1 | g)", data, family=family, seed=4)
    eta = flat(fit, "b")[:, [0]] * data["x"].to_numpy() + flat(fit, "r_1")[:, level_index(fit, data["g"]), 0]
    arguments = {d.name: flat(fit, d.name)[:, None] for d in family.dpars} | family.options
    if family.ordinal:
        arguments["thresholds"] = flat(fit, names.INTERCEPT_AT_ZERO)[:, None, :]
    else:
        eta = eta + flat(fit, names.INTERCEPT_AT_ZERO)[:, None]
    if family.response == "binomial":
        arguments["trials"] = data["n"].to_numpy()[None, :]
    mu = family.mu(eta)
    assert fit.posterior_epred() == pytest.approx(family.mean(mu, **arguments))
    expected = family.log_density(data["y"].to_numpy()[None, :], mu, **arguments)
    assert fit.log_lik() == pytest.approx(expected)
    rows = data.iloc[[0, 1, 2]]
    many = np.concatenate([fit.posterior_predict(rows, seed=s) for s in range(200)])
    epred = np.tile(fit.posterior_epred(rows), (200, 1))
    sd = np.sqrt(
        np.tile(family.variance(family.mu(eta[:, :3]), **_first(arguments, 3)), (200, 1)).mean(axis=0)
    )
    error = (many.mean(axis=0) - epred.mean(axis=0)) / (sd / np.sqrt(len(many)))
    assert np.all(np.abs(error) < 4.5)
    if family.response == "binomial":
        assert (many <= data["n"].to_numpy()[:3]).all()


def _first(arguments: dict, k: int) -> dict:
    return {key: value[:, :k] if key == "trials" else value for key, value in arguments.items()}


@pytest.mark.slow
def test_coffee_predictions_agree_with_coef_and_the_fitting_rows(coffee_fit, coffee):
    """A real fit: epred for group 1 at x = 0 is coef's intercept of group 1, draw by draw; at x = 1 its
    intercept plus slope; and the fitting data passed as newdata give the in-sample values."""
    from lmmformula import results

    coef = results.coef_draws(coffee_fit.model.design, coffee_fit.posterior)["group"]
    level = [str(v) for v in coef.levels].index("1")
    by_draw = coef.draws.reshape((-1,) + coef.draws.shape[2:])[:, level, :]  # (draws, terms)
    terms = list(coef.terms)
    new = pd.DataFrame({"x": [0.0, 1.0], "group": ["1", "1"]})
    epred = coffee_fit.posterior_epred(new)
    assert epred[:, 0] == pytest.approx(by_draw[:, terms.index("Intercept")], abs=1e-9)
    assert epred[:, 1] == pytest.approx(
        by_draw[:, terms.index("Intercept")] + by_draw[:, terms.index("x")], abs=1e-9
    )
    assert coffee_fit.posterior_epred(coffee) == pytest.approx(coffee_fit.posterior_epred(), abs=1e-9)
    fitted = coffee_fit.fitted()
    residual_sd = (coffee["y"].to_numpy() - fitted["Estimate"].to_numpy()).std()
    assert residual_sd == pytest.approx(coffee_fit.posterior["sigma"].mean(), rel=0.1)  # in-sample residuals


# ------------------------------------------------------------------------- loo, waic, R2


def narrow_fit(toy, formula="y ~ x + (1 | g)", seed=0):
    """Hand-made draws near the data's least-squares answer (a well-behaved posterior for PSIS)."""
    fit = handmade_fit(formula, toy, seed=seed)
    rng = np.random.default_rng(seed + 10)
    shape = (CHAINS, DRAWS)
    x, y = toy["x"].to_numpy(), toy["y"].to_numpy()
    slope = np.polyfit(x, y, 1)[0] if "x" in formula.split("~")[1] else 0.0
    fit.posterior[names.INTERCEPT_AT_ZERO][...] = (y - slope * x).mean() + 0.05 * rng.normal(size=shape)
    if fit.model.design.fixed_columns:
        fit.posterior[names.SLOPES][...] = slope + 0.05 * rng.normal(size=shape + (1,))
    fit.posterior["sigma"][...] = (y - slope * x).std() * (1 + 0.03 * rng.normal(size=shape))
    fit.posterior["r_1"][...] = 0.02 * rng.normal(size=fit.posterior["r_1"].shape)
    return fit


def test_waic_by_hand(toy):
    fit = narrow_fit(toy)
    ll = fit.log_lik()
    elpd = []
    for i in range(ll.shape[1]):
        column = ll[:, i]
        lppd = np.log(np.mean(np.exp(column - column.max()))) + column.max()
        elpd.append(lppd - np.var(column, ddof=1))
    result = fit.waic()
    assert result.elpd_waic == pytest.approx(sum(elpd))
    assert result.se == pytest.approx(np.sqrt(len(elpd)) * np.std(elpd, ddof=1))
    assert result.waic == pytest.approx(-2 * sum(elpd))
    assert "elpd_waic" in str(result)


def test_loo_agrees_with_waic_and_compare_prefers_the_better_model(toy):
    good, flat_ = narrow_fit(toy), narrow_fit(toy, "y ~ 1 + (1 | g)")
    result = good.loo()
    assert result.elpd == pytest.approx(good.waic().elpd_waic, abs=0.5)  # a narrow posterior: the two agree
    assert result.pareto_k.shape == (good.model.nobs,)
    table = lf.loo_compare(good, without_x=flat_)
    assert list(table.index) == ["model1", "without_x"]
    # a narrow posterior: the difference is WAIC's (computed by hand above) within a fraction of a point
    waic_difference = flat_.waic().elpd_waic - good.waic().elpd_waic
    assert table.loc["model1", "elpd_diff"] == 0.0
    assert table.loc["without_x", "elpd_diff"] == pytest.approx(waic_difference, abs=1.0)
    assert waic_difference < -10  # y = 1.5 + 0.8 x + N(0, 1): x carries about n/2 log(1.64) = 59
    assert table["weight"].sum() == pytest.approx(1.0)
    with pytest.raises(lf.ArgumentError, match="two fits"):
        lf.loo_compare(good)


def test_loo_warns_counting_bad_pareto_k(toy):
    fit = handmade_fit("y ~ x + (1 | g)", toy)  # random draws: the leave-one-out weights are wild
    with pytest.warns(lf.ComparisonWarning, match=r"Pareto k above 0\.\d+ for \d+ of 240 observations"):
        fit.loo()


def test_bayes_r2_by_hand(slopes, toy):
    epred = slopes.posterior_epred()
    y = toy["y"].to_numpy()
    r2 = [np.var(e, ddof=1) / (np.var(e, ddof=1) + np.var(y - e, ddof=1)) for e in epred]
    table = slopes.bayes_R2()
    assert table.loc["R2", "Estimate"] == pytest.approx(np.mean(r2))
    assert table.loc["R2", "Q97.5"] == pytest.approx(np.quantile(r2, 0.975))


# ------------------------------------------------------------------------------------ pp_check


@pytest.fixture(scope="module")
def counts(toy):
    return handmade_fit("count ~ x + (1 | g)", toy, family="poisson", seed=2)


@pytest.mark.parametrize("kind", ["dens_overlay", "hist", "ecdf", "stat", "loo_pit"])
def test_pp_check_draws_every_continuous_type(slopes, kind):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lf.ComparisonWarning)
        figure = slopes.pp_check(kind, seed=1)
    ax = figure.axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()] if ax.get_legend() else []
    if kind in ("dens_overlay", "ecdf"):
        assert len(ax.lines) == 11 and labels == ["y_rep", "y"]  # 10 replicates and y
    if kind == "loo_pit":
        assert "LOO-PIT" in labels and ax.get_xlabel() == "LOO-PIT"
    if kind == "hist":
        assert len(figure.axes) == 9 and [a.get_title() for a in figure.axes][:2] == ["y", "yrep 1"]
    if kind == "stat":
        assert ax.lines[0].get_xdata()[0] == pytest.approx(slopes.model.data_design.response.y.mean())
    plt.close("all")


def test_pp_check_bars_count_the_observed_values(counts, toy):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = counts.pp_check("bars", seed=1)
    heights = {round(p.get_x() + p.get_width() / 2): p.get_height() for p in figure.axes[0].patches}
    observed = toy["count"].value_counts()
    for value, count in observed.items():
        assert heights[int(value)] == count
    figure = counts.pp_check("rootogram", seed=1)
    assert figure.axes[0].get_ylabel() == "sqrt(frequency)"
    with pytest.raises(lf.ArgumentError, match="continuous"):
        handmade_fit("y ~ x + (1 | g)", toy).pp_check("rootogram")
    with pytest.raises(lf.ArgumentError, match="pp_check type"):
        counts.pp_check("violin")
    with pytest.raises(lf.ArgumentError, match="pp_check stat"):
        counts.pp_check("stat", stat="iqr")
    plt.close("all")


@pytest.mark.parametrize(
    "name", sorted(n for n, f in FAMILIES.items() if f.response in ("count", "binary", "binomial", "ordinal"))
)
def test_pp_check_bars_and_rootogram_for_every_discrete_family(name):
    """Every discrete family (counts, 0/1, successes out of trials, ordinal categories): the bars are the
    observed frequency of each value, the rootogram's observed bars hang at sqrt(frequency)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    family = lf.get_family(name)
    data, _ = recovery_data(family, n=60, groups=5)
    response = "y | trials(n)" if family.response == "binomial" else "y"
    fit = handmade_fit(f"{response} ~ x + (1 | g)", data, family=family, seed=2)
    figure = fit.pp_check("bars", seed=1)
    heights = {round(p.get_x() + p.get_width() / 2): p.get_height() for p in figure.axes[0].patches}
    for value, count in data["y"].value_counts().items():
        assert heights[int(value)] == count
    root = fit.pp_check("rootogram", seed=1)
    bars = {round(p.get_x() + p.get_width() / 2): p for p in root.axes[0].patches}
    expected = dict(zip(*root.axes[0].lines[0].get_data()))  # the expected frequencies' square roots
    for value, count in data["y"].value_counts().items():
        bar = bars[int(value)]
        assert bar.get_height() == pytest.approx(np.sqrt(count))  # hangs from the expected curve
        assert bar.get_y() + bar.get_height() == pytest.approx(expected[int(value)])
    plt.close("all")


def test_conditional_effects_by_hand(slopes, toy):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    effect = slopes.conditional_effects("x", resolution=5)
    grid = np.linspace(toy["x"].min(), toy["x"].max(), 5)
    b0, b = flat(slopes, names.INTERCEPT_AT_ZERO), flat(slopes, names.SLOPES)
    x_column = list(slopes.model.design.fixed_columns).index("x")
    expected = b0[:, None] + b[:, [x_column]] * grid  # f at its first level "hi" (the reference), no groups
    np.testing.assert_allclose(effect.data["x"], grid)
    np.testing.assert_allclose(effect.data["estimate__"], np.median(expected, axis=0))
    np.testing.assert_allclose(effect.data["upper__"], np.quantile(expected, 0.975, axis=0))
    both = slopes.conditional_effects("x:f", resolution=4)
    assert len(both.data) == 12 and len(both.figure.axes[0].lines) == 3
    mid = both.data[both.data["f"] == "mid"]
    f_mid = list(slopes.model.design.fixed_columns).index("f[T.mid]")
    by_hand = b0[:, None] + b[:, [x_column]] * mid["x"].to_numpy() + b[:, [f_mid]]
    np.testing.assert_allclose(mid["estimate__"], np.median(by_hand, axis=0))
    levels = slopes.conditional_effects("f")
    assert list(levels.data["f"]) == ["hi", "lo", "mid"]
    with pytest.raises(lf.ArgumentError, match="not a predictor"):
        slopes.conditional_effects("w")
    plt.close("all")


def test_conditional_effects_conditions(slopes, toy):
    """conditions: one panel per condition; held columns take the condition's values (here f, which
    shifts the line by f's coefficient); a dict gives every combination."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    effect = slopes.conditional_effects("x", resolution=3, conditions=pd.DataFrame({"f": ["lo", "mid"]}))
    assert list(effect.data["cond__"].unique()) == ["f = lo", "f = mid"]
    assert sum(ax.get_visible() for ax in effect.figure.axes) == 2
    b0, b = flat(slopes, names.INTERCEPT_AT_ZERO), flat(slopes, names.SLOPES)
    columns = list(slopes.model.design.fixed_columns)
    lo = effect.data[effect.data["cond__"] == "f = lo"]
    by_hand = b0[:, None] + b[:, [columns.index("x")]] * lo["x"].to_numpy() + b[:, [columns.index("f[T.lo]")]]
    np.testing.assert_allclose(lo["estimate__"], np.median(by_hand, axis=0))
    product = slopes.conditional_effects(
        "x", resolution=3, conditions={"f": ["lo", "mid"], "g": ["g1", "g2"]}
    )
    assert product.data["cond__"].nunique() == 4 and len(product.data) == 12
    with pytest.raises(lf.ArgumentError, match="'w' is not a column"):
        slopes.conditional_effects("x", conditions={"w": 1})
    with pytest.raises(lf.ArgumentError, match="is the effect shown"):
        slopes.conditional_effects("x", conditions={"x": 1})
    plt.close("all")


def test_loo_in_blocks_of_rows_is_arviz_loo_on_the_whole(toy):
    """fit.loo holds a block of rows at a time; the result is arviz-stats' loo of the whole matrix."""
    import arviz_stats

    from lmmformula import criteria

    fit = narrow_fit(toy)
    whole = arviz_stats.loo(fit.to_arviz(posterior_predictive=False), pointwise=True)
    posterior = fit.to_arviz(log_likelihood=False, posterior_predictive=False).posterior
    ll = fit.log_lik()
    blocks = criteria.loo(
        posterior, fit.model.nobs, lambda a, b: ll[:, a:b], pointwise=True, chunk_values=7 * 200
    )
    assert blocks.elpd == pytest.approx(whole.elpd)
    elpd_i = np.asarray(whole.elpd_i).ravel()  # se as R's loo: sqrt(n) * sd (arviz-stats: ddof 0)
    assert blocks.se == pytest.approx(np.sqrt(len(elpd_i)) * elpd_i.std(ddof=1))
    assert blocks.p == pytest.approx(whole.p)
    np.testing.assert_allclose(np.asarray(blocks.pareto_k), np.asarray(whole.pareto_k).ravel())
    assert "elpd_loo" in str(blocks)


def test_blocks_of_rows_give_what_the_whole_gives(slopes, toy, monkeypatch):
    """Predictions, summaries, WAIC and R2 computed a few rows at a time (7 rows of 200 draws per block)
    equal those of one block; a new level's effects are drawn once, so rows of one new level in
    different blocks get the same effect."""
    from lmmformula import predictions

    new = pd.concat([toy.head(20), toy.head(10)], ignore_index=True).assign(g="new")  # rows 20..29 = 0..9

    def everything():
        options = {"allow_new_levels": True, "seed": 3}
        return {
            "linpred": slopes.posterior_linpred(new, **options),
            "epred": slopes.posterior_epred(),
            "log_lik": slopes.log_lik(),
            "fitted": slopes.fitted(new, probs=(0.1, 0.5, 0.9), **options),
            "waic": slopes.waic().pointwise,
            "R2": slopes.bayes_R2().to_numpy(),
        }

    whole = everything()
    monkeypatch.setattr(predictions, "CHUNK_VALUES", 7 * CHAINS * DRAWS)
    blocks = everything()
    for name, value in whole.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(blocks[name], value)
        else:
            np.testing.assert_allclose(blocks[name], value, rtol=1e-12, err_msg=name)
    linpred = blocks["linpred"]
    np.testing.assert_array_equal(linpred[:, 20:30], linpred[:, 0:10])  # rows 0..9 and 20..29: other blocks
    assert np.std(linpred[:, 0] - linpred[:, 20]) == 0
    # the predictive draws: one generator runs through the blocks, so the values differ with the block
    # size, but their distribution does not: the mean of y_rep over rows and draws matches epred's
    replicated = slopes.posterior_predict(seed=5)
    assert replicated.mean() == pytest.approx(
        whole["epred"].mean(), abs=4 * replicated.std() / np.sqrt(replicated.size)
    )


def test_to_arviz_leaves_out_per_row_groups_of_large_data(slopes, monkeypatch):
    from lmmformula import fit as fit_module

    monkeypatch.setattr(fit_module, "PER_ROW_GROUP_LIMIT", 1000)
    with pytest.warns(lf.DesignWarning, match="left out log_likelihood and posterior_predictive"):
        data = slopes.to_arviz()
    assert "log_likelihood" not in data.children and "posterior" in data.children
    assert "log_likelihood" in slopes.to_arviz(log_likelihood=True, posterior_predictive=False).children


def test_stateful_transforms_reuse_the_fitting_state(toy):
    """center(x) and scale(z) keep the fitting data's mean and sd: a few rows predict as among all rows."""
    fit = handmade_fit("y ~ center(x) + scale(z) + (1 | g)", toy)
    rows = toy.iloc[[3, 7, 11]]
    np.testing.assert_allclose(fit.posterior_linpred(rows), fit.posterior_linpred()[:, [3, 7, 11]])
