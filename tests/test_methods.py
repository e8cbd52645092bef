"""The algorithms other than NUTS (optimize, laplace, pathfinder, meanfield, fullrank) and
init="pathfinder": every method gives a Fit with the whole results API, checked against NUTS on
the same program (coffee's, which sleepstudy shares) and against the log density itself.

No new program: every method runs the coffee program with other data (blocks non-centered).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pandas as pd
import pytest

import lmmformula as lf
from lmmformula import approximations, names
from lmmformula.codegen import noncentered_data
from lmmformula.engines import embedded
from lmmformula.engines.base import APPROXIMATIONS, ApproximationSettings, ChainOutput, SamplerSettings

from .conftest import BACKENDS, assert_ctrl_c_stops_everything, chain_workers

# ---------------------------------------------------------------- algebra (no Stan)


def test_pathfinder_output_is_resampled_by_importance_weights():
    """Hand-made draws: where lp__ - lp_approx__ is larger, a draw is kept more often."""
    rng = np.random.default_rng(3)
    n = 4000
    theta = rng.normal(size=n)
    # target N(1, 1), approximation N(0, 1): log ratio = theta - 1/2
    values = np.column_stack([-0.5 * theta**2, -0.5 * (theta - 1) ** 2, theta])
    output = ChainOutput(chain=1, columns=("lp_approx__", "lp__", "theta"), values=values, seconds={})
    settings = ApproximationSettings(method="pathfinder", draws=2000, seed=5)
    result = approximations.finish(output, settings)
    kept = result.output.values[:, 2]
    assert len(kept) == 2000
    assert kept.mean() == pytest.approx(1.0, abs=0.1)  # reweighted from N(0, 1) to N(1, 1)
    assert result.pareto_k < 0.7 and result.problems == ()


def test_advi_mean_row_is_dropped_and_bad_approximations_are_flagged():
    rng = np.random.default_rng(4)
    theta = rng.normal(size=1001)
    # the target, N(0, 5^2), is far wider than the approximation, N(0, 1): the importance weights
    # exp(0.48 theta^2) have a heavy tail (Pareto k 0.96 in the limit)
    log_p = -(theta**2) / 50
    log_g = -0.5 * theta**2
    values = np.column_stack([np.zeros(1001), log_p, log_g, theta])
    values[0] = [0.0, 0.0, 0.0, 123.0]  # the mean row
    output = ChainOutput(
        chain=1,
        columns=("lp__", "log_p__", "log_g__", "theta"),
        values=values,
        seconds={},
        messages=("The algorithm may not have converged.",),
    )
    result = approximations.finish(output, ApproximationSettings(method="meanfield"))
    assert result.output.values.shape == (1000, 4) and 123.0 not in result.output.values[:, 3]
    assert result.pareto_k > 0.7
    assert any("Pareto k" in problem and "method='nuts'" in problem for problem in result.problems)
    assert any("raise iter" in problem for problem in result.problems)


def test_method_arguments_are_checked(coffee_model):
    with pytest.raises(lf.ArgumentError, match="method='variational' is not one of"):
        coffee_model.fit(method="variational")
    with pytest.raises(lf.ArgumentError, match="draws: only for the approximate methods"):
        coffee_model.fit(draws=100)
    with pytest.raises(lf.ArgumentError, match="jacobian: only for method='optimize' or 'laplace'"):
        coffee_model.fit(method="pathfinder", jacobian=True)
    with pytest.raises(lf.ArgumentError, match="num_paths: only for method='pathfinder'"):
        coffee_model.fit(method="laplace", num_paths=2)
    with pytest.raises(lf.ArgumentError, match="init='lbfgs'"):
        coffee_model.fit(init="lbfgs")
    with pytest.raises(lf.ArgumentError, match="draws=0"):
        coffee_model.fit(method="laplace", draws=0)


# ---------------------------------------------------------------- real fits (the coffee program)


@pytest.fixture(scope="module")
def nuts_noncentered(coffee_model):
    """NUTS's lp__ on exactly the data the mode-based methods see (every block non-centered):
    its lp__ is the same density as optimize's with jacobian=True."""
    program = embedded.compile_program(coffee_model.stan_code)
    data = coffee_model.method_data("optimize")
    outputs = embedded.sample(program, data, SamplerSettings(chains=4, seed=2, cores=2))
    stacked = np.concatenate([output.values for output in outputs])
    columns = outputs[0].columns
    return stacked[:, columns.index("lp__")]


@pytest.mark.slow
def test_optimize_finds_the_mode(coffee_model, nuts_noncentered):
    """jacobian=True: the mode of NUTS's own target (same data), which no NUTS draw may exceed;
    jacobian=False: a maximum of the log density itself (evaluated independently, coordinate by
    coordinate)."""
    with pytest.warns(lf.SamplingWarning, match="joint posterior mode"):
        opt = coffee_model.fit(method="optimize", jacobian=True, seed=1, backend="embedded")
    assert opt.method == "optimize" and opt.num_chains == 1 and opt.num_draws == 1
    assert opt.sampler["lp__"][0, 0] >= nuts_noncentered.max() - 1e-6
    with pytest.warns(lf.SamplingWarning):
        mode = coffee_model.fit(method="optimize", seed=1, backend="embedded")
    program = embedded.compile_program(coffee_model.stan_code)
    data = coffee_model.method_data("optimize")
    parameters = _parameters(mode, coffee_model.stan_code)
    at_mode = embedded.log_density(program, data, parameters)
    for step in (0.01, -0.01):  # the density falls by about 6e-4 here; L-BFGS stops within 1e-6
        for k in range(2):
            moved = {**parameters, "b": parameters["b"].copy(), "Intercept": parameters["Intercept"]}
            if k == 0:
                moved["Intercept"] = moved["Intercept"] + step
            else:
                moved["b"][0] += step
            assert embedded.log_density(program, data, moved) < at_mode
    summary = str(mode.summary())
    assert "optimize (L-BFGS; no Jacobian adjustment)" in summary and "the optimum only" in summary
    assert "joint posterior mode" in summary  # a model with group-level terms: said, not hidden
    assert mode.summary().population_level["Est.Error"].isna().all()
    with pytest.raises(lf.ArgumentError, match="method='optimize'"):
        mode.loo()


def _agrees_or_warns(fit: lf.Fit, nuts: lf.Fit, within: float) -> None:
    """The approximation's fixed-effect means are within ``within`` posterior sds of NUTS's, or the fit
    says it is far from the posterior: never a silent wrong answer."""
    reference = nuts.fixef()
    gap = np.abs(fit.fixef()["Estimate"] - reference["Estimate"]) / reference["Est.Error"]
    if np.any(gap > within):
        assert any("far from the posterior" in problem for problem in fit.problems), (gap, fit.problems)


@contextlib.contextmanager
def _maybe_warns():
    """A SamplingWarning may or may not come (the tests read fit.problems instead)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lf.SamplingWarning)
        yield


@pytest.fixture(scope="module")
def sleepstudy_nuts(sleepstudy):
    model = lf.Model("Reaction ~ Days + (Days | Subject)", sleepstudy)
    with _maybe_warns():
        return model, model.fit(seed=1, progress=False, backend="embedded")


@pytest.mark.slow
@pytest.mark.parametrize("method", ["laplace", "pathfinder", "meanfield", "fullrank"])
def test_approximations_give_a_whole_fit_that_agrees_or_warns(
    method, coffee_model, coffee_fit, sleepstudy_nuts
):
    """Every approximation gives a Fit with the whole results API, draws that the same seed repeats,
    and either fixed effects within 0.25 posterior sd of NUTS (coffee and sleepstudy) or a warning."""
    with _maybe_warns():
        fit = coffee_model.fit(method=method, seed=3, backend="embedded")
    assert fit.method == method and fit.num_chains == 1 and fit.num_draws == 1000
    assert fit.pareto_k is not None and fit.importance_ess is not None
    _agrees_or_warns(fit, coffee_fit, 0.25)
    assert set(fit.ranef()["group"].columns) == {"Intercept", "x"}
    assert fit.coef()["group"].shape == (100, 2)
    assert {"sd(Intercept)", "sd(x)"} <= set(fit.varcorr().index.get_level_values(1))
    summary = fit.summary()
    assert summary.population_level["Rhat"].isna().all()
    assert f"importance ESS = {fit.importance_ess:.0f}" in str(summary)
    assert len(fit.draws()) == 1000
    assert "posterior" in fit.to_arviz(log_likelihood=False, posterior_predictive=False)
    with _maybe_warns():
        again = coffee_model.fit(method=method, seed=3, backend="embedded")
    np.testing.assert_array_equal(again.posterior["b"], fit.posterior["b"])

    model, nuts = sleepstudy_nuts  # coffee's program
    try:
        with _maybe_warns():
            approx = model.fit(method=method, seed=3, backend="embedded")
    except lf.EngineError as error:  # an approximation whose draws the model rejects fails clearly
        assert f"{method} failed" in str(error)
        return
    _agrees_or_warns(approx, nuts, 0.25)
    if method == "pathfinder":  # on the non-centered blocks (0.38 and 0.75 measured; 34 and 6 centered)
        gap = np.abs(approx.fixef()["Estimate"] - nuts.fixef()["Estimate"]) / nuts.fixef()["Est.Error"]
        assert np.all(gap < 1.0), gap


@pytest.mark.slow
def test_nuts_can_start_from_pathfinder(coffee_model, coffee_fit):
    with _maybe_warns():
        fit = coffee_model.fit(
            init="pathfinder", chains=2, iter_warmup=300, iter_sampling=300, seed=5, progress=False
        )
    assert fit.timings["pathfinder_init"] > 0
    assert isinstance(fit.settings.init, list) and len(fit.settings.init) == 2
    first = fit.settings.init[0]
    assert first["sigma"] > 0 and first["b"].shape == (1,)
    assert first["b"][0] != fit.settings.init[1]["b"][0]  # each chain its own draw
    reference = coffee_fit.fixef()
    gap = np.abs(fit.fixef()["Estimate"] - reference["Estimate"]) / reference["Est.Error"]
    assert np.all(gap < 0.5)


@pytest.mark.slow
@pytest.mark.skipif("cmdstanpy" not in BACKENDS, reason="CmdStan is not installed")
@pytest.mark.parametrize("method", APPROXIMATIONS)
def test_cmdstanpy_backend_offers_the_same_methods(method, coffee_model):
    """Same seed, same program, same data: the same draws as the embedded engine."""
    options = {"draws": 200} if method != "optimize" else {}
    outcomes = {}
    for backend in ("embedded", "cmdstanpy"):
        try:
            with _maybe_warns():
                outcomes[backend] = coffee_model.fit(method=method, seed=6, backend=backend, **options)
        except lf.EngineError as error:  # e.g. Laplace draws the model cannot evaluate: both fail alike
            outcomes[backend] = str(error).splitlines()[0]
    ours, theirs = outcomes["embedded"], outcomes["cmdstanpy"]
    if isinstance(ours, str):
        assert isinstance(theirs, str) and method in ours and method in theirs, (ours, theirs)
        return
    assert theirs.backend == "cmdstanpy"
    np.testing.assert_allclose(theirs.posterior["b"], ours.posterior["b"], rtol=1e-6, atol=1e-8)
    assert theirs.problems == ours.problems


@pytest.mark.slow
@pytest.mark.parametrize("method", APPROXIMATIONS)
def test_ctrl_c_during_each_method_leaves_no_worker(method, coffee_model, tmp_path, backend):
    """On coffee's program with the data repeated 100 times, so that every method runs for a while."""
    with _maybe_warns():
        coffee_model.fit(method="optimize", seed=1, backend=backend)  # compiled for this backend
    script = f"""
        import pandas as pd
        import lmmformula as lf
        data = pd.concat([lf.load_dataset("coffee")] * 100)
        lf.Model("y ~ x + (x | group)", data).fit(method={method!r}, seed=1, backend={backend!r})
    """
    # it reads the data and runs: some methods end within a second or two, so SIGINT comes soon
    assert_ctrl_c_stops_everything(script, tmp_path, chain_workers, pause=0.2)


def _parameters(fit: lf.Fit, code: str) -> dict:
    """The values of the parameters block at the fit's one draw, by Stan name."""
    block = code.split("\nparameters {", 1)[1].split("\n}", 1)[0]
    declared = {line.split(";")[0].split()[-1] for line in block.splitlines() if ";" in line}
    return {name: np.asarray(values[0, 0]) for name, values in fit.posterior.items() if name in declared}


def test_method_data_is_the_noncentered_models_for_the_l_bfgs_methods(coffee_model, coffee):
    noncentered = lf.Model(coffee_model.formula, coffee, parameterization="noncentered")
    assert coffee_model.method_data() is coffee_model.stan_data
    assert coffee_model.method_data("meanfield") is coffee_model.stan_data
    for method in ("optimize", "laplace", "pathfinder"):
        data = coffee_model.method_data(method)
        assert set(data) == set(noncentered.stan_data)
        for name, value in noncentered.stan_data.items():
            np.testing.assert_array_equal(data[name], value, err_msg=name)
    assert coffee_model.stan_data[names.block(1).centered] == 2  # the model's own data untouched
    with pytest.raises(lf.ArgumentError, match="method='nut' is not one of"):
        coffee_model.method_data("nut")


def test_noncentered_data_switches_every_block(coffee_model):
    data = noncentered_data(coffee_model.stan_data, coffee_model.design)
    assert np.all(np.asarray(data[names.block(1).centered]) == 0)
    assert coffee_model.stan_data[names.block(1).centered] == 2  # the user's data untouched
    assert pd.Series(data).index.equals(pd.Series(coffee_model.stan_data).index)
