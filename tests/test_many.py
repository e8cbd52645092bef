"""fit_many on a local process pool and a local Dask cluster, and sbc (lmmformula.many). Every model
here uses programs the rest of the suite compiles (sleepstudy's is coffee's)."""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pytest

import lmmformula as lf

SLEEP = "Reaction ~ Days + (Days | Subject)"
SHORT = dict(chains=2, iter_warmup=200, iter_sampling=100, seed=5, backend="embedded")


def bootstrap(sleepstudy: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Subjects resampled with replacement (each copy a level of its own)."""
    rng = np.random.default_rng(seed)
    subjects = rng.choice(sleepstudy["Subject"].unique(), size=sleepstudy["Subject"].nunique())
    parts = [
        sleepstudy[sleepstudy["Subject"] == s].assign(Subject=f"{s}.{i}") for i, s in enumerate(subjects)
    ]
    return pd.concat(parts, ignore_index=True)


def quiet(call, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lf.SamplingWarning)  # short chains
        return call(*args, **kwargs)


@pytest.fixture(scope="module")
def boots(sleepstudy) -> dict[str, pd.DataFrame]:
    return {f"boot {i}": bootstrap(sleepstudy, i) for i in range(2)}


@pytest.fixture(scope="module")
def serial(boots) -> dict[str, lf.Fit]:
    """The same fits one after another in this process: what every executor must reproduce."""
    return {
        name: quiet(lf.Model(SLEEP, data).fit, cores=1, progress=False, **SHORT)
        for name, data in boots.items()
    }


def _assert_same_draws(fit: lf.Fit, reference: lf.Fit) -> None:
    for name, values in reference.posterior.items():
        np.testing.assert_array_equal(fit.posterior[name], values, err_msg=name)


@pytest.mark.slow
def test_fit_many_on_a_process_pool_keeps_order_and_failures_in_their_slots(boots, serial, sleepstudy):
    """A list in, a list out in the same order; the middle model's fit fails in its worker (its init
    has one slope where it has two) and the others go on."""
    failing = lf.Model("Reaction ~ Days + I(Days**2) + (Days | Subject)", sleepstudy)
    models = [lf.Model(SLEEP, boots["boot 0"]), failing, lf.Model(SLEEP, boots["boot 1"])]
    with pytest.warns(lf.DesignWarning, match=r"1 of 3 fits failed .* model 1: EngineError"):
        fits = quiet(lf.fit_many, models, init={"b": [10.0]}, **SHORT)
    assert isinstance(fits, list) and len(fits) == 3
    assert isinstance(fits[1], lf.EngineError) and "mismatch in dimension" in str(fits[1])
    with_init = {name: quiet(m.fit, cores=1, progress=False, init={"b": [10.0]}, **SHORT) for name, m in
                 zip(boots, (models[0], models[2]))}  # fmt: skip
    _assert_same_draws(fits[0], with_init["boot 0"])
    _assert_same_draws(fits[2], with_init["boot 1"])


def _use_cache(folder: str) -> None:
    os.environ["LMMFORMULA_CACHE"] = folder


@pytest.mark.slow
def test_shipped_module_is_installed_in_the_workers_own_cache(boots, serial, tmp_path):
    """share='ship': workers whose cache is empty (another machine, say) get the module with the task
    and compile nothing."""
    with ProcessPoolExecutor(max_workers=1, initializer=_use_cache, initargs=(str(tmp_path),)) as pool:
        fits = quiet(lf.fit_many, SLEEP, executor=pool, data=boots, share="ship", **SHORT)
    assert list(fits) == list(boots)
    for name, fit in fits.items():
        _assert_same_draws(fit, serial[name])
    installed = [p for p in (tmp_path / "embedded").iterdir() if p.is_dir()]
    assert len(installed) == 1 and (installed[0] / "model.so").read_bytes()[:4] == b"\x7fELF"
    assert not (tmp_path / "runner").exists()  # nothing compiled there


@pytest.mark.slow
def test_fit_many_on_a_local_dask_cluster(boots, serial):
    distributed = pytest.importorskip(
        "distributed", reason="Dask is an optional extra: pip install distributed"
    )
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        fits = quiet(lf.fit_many, SLEEP, executor=client.get_executor(), data=boots, **SHORT)
    assert list(fits) == list(boots)
    for name, fit in fits.items():
        _assert_same_draws(fit, serial[name])


def test_fit_many_arguments_are_checked(sleepstudy):
    model = lf.Model(SLEEP, sleepstudy)
    with pytest.raises(lf.ArgumentError, match="share='disk'"):
        lf.fit_many([model], share="disk")
    with pytest.raises(lf.ArgumentError, match="model 1 is a str, not an lf.Model"):
        lf.fit_many([model, "y ~ x"])
    with pytest.raises(lf.ArgumentError, match="give the data sets as a dict"):
        lf.fit_many(SLEEP)
    with pytest.raises(lf.ArgumentError, match="go with a formula"):
        lf.fit_many([model], data={"a": sleepstudy})
    with pytest.raises(lf.ArgumentError, match="2 seeds for 1 models"):
        lf.fit_many([model], seed=[1, 2])
    with pytest.raises(lf.ArgumentError, match="none for 'b'"):
        lf.fit_many(SLEEP, data={"a": sleepstudy, "b": sleepstudy}, seed={"a": 1})
    with pytest.raises(lf.FormulaError, match="data set 'b'"):
        lf.fit_many(SLEEP, data={"a": sleepstudy, "b": sleepstudy.drop(columns="Days")})


SBC_PRIORS = [  # the distributions of tests/test_priors.py's prior-only program (one compile for both)
    lf.prior("normal(0, 0.5)", coef="x", lb=0),
    lf.prior("student_t(3, 0, 0.5)", class_="sd"),
    lf.prior("exponential(2)", dpar="sigma"),
]


@pytest.mark.slow
def test_sbc_ranks_are_uniform_for_a_calibrated_model():
    """Simulation-based calibration of a small correlated model: 30 simulations, ranks among 19 draws;
    every parameter's ranks in range and no chi-square test below 0.001."""
    rng = np.random.default_rng(3)
    data = pd.DataFrame({"x": rng.normal(size=48), "group": np.repeat([f"g{i}" for i in range(8)], 6)})
    data["y"] = rng.normal(size=48)  # replaced by each simulation
    model = lf.Model("y ~ x + (x | group)", data, priors=SBC_PRIORS)
    result = quiet(lf.sbc, model, n=30, draws=19, seed=11, chains=1, iter_warmup=300, iter_sampling=190)
    assert result.failed == ()
    assert list(result.ranks.columns) == [
        "b_Intercept", "b_x", "sd_group__Intercept", "sd_group__x", "cor_group__Intercept__x", "sigma"
    ]  # fmt: skip
    assert result.ranks.shape == (30, 6)
    assert ((result.ranks >= 0) & (result.ranks <= 19)).all().all()
    table = result.uniformity(bins=5)
    assert (table["p"] > 0.001).all(), table
    assert table["expected"].eq(6.0).all()
    figure = result.plot(bins=5)
    assert len([a for a in figure.axes if a.get_visible()]) == result.ranks.shape[1]


def test_sbc_keeps_the_original_priors_for_every_simulation(sleepstudy):
    """Data-scaled defaults (Intercept, sd, sigma; weakly-informative slopes) are pinned at the original
    model's numbers, so that every simulated data set is fitted under the priors it was drawn from."""
    model = lf.Model(SLEEP, sleepstudy, priors="weakly_informative")
    other = sleepstudy.assign(Reaction=sleepstudy["Reaction"] * 10, Days=sleepstudy["Days"] * 3)
    pinned = lf.Model(SLEEP, other, priors=model.priors.pinned())
    moved = lf.Model(SLEEP, other, priors="weakly_informative")
    prior_data = [name for name in model.stan_data if name.startswith("prior_")]
    assert len(prior_data) > 6
    for name in prior_data:
        np.testing.assert_array_equal(pinned.stan_data[name], model.stan_data[name], err_msg=name)
    assert moved.stan_data["prior_Intercept_location"] != model.stan_data["prior_Intercept_location"]
    assert pinned.stan_code.split("data {")[1] == model.stan_code.split("data {")[1]


def test_pinned_priors_of_an_ordinal_model_with_a_thresholds_prior():
    rng = np.random.default_rng(1)
    data = pd.DataFrame(
        {"y": rng.integers(1, 5, 80), "x": rng.normal(size=80), "g": rng.choice(list("abcd"), 80)}
    )
    model = lf.Model(
        "y ~ x + (1 | g)", data, family="cumulative", priors=[lf.prior("normal(0, 2)", dpar="thresholds")]
    )
    again = lf.Model(
        "y ~ x + (1 | g)", data.assign(y=5 - data["y"]), family="cumulative", priors=model.priors.pinned()
    )
    for name in (n for n in model.stan_data if n.startswith("prior_")):
        np.testing.assert_array_equal(again.stan_data[name], model.stan_data[name], err_msg=name)


def test_sbc_needs_proper_priors_and_a_column_response(sleepstudy):
    flat = lf.Model(SLEEP, sleepstudy)
    with pytest.raises(lf.ArgumentError, match="sbc needs proper priors .* 1 slope"):
        lf.sbc(flat, n=10)
    logged = lf.Model("log(Reaction) ~ Days + (1 | Subject)", sleepstudy, priors={"b": "normal(0, 1)"})
    with pytest.raises(lf.ArgumentError, match="not one data column"):
        lf.sbc(logged, n=10)
    with pytest.raises(lf.ArgumentError, match="n=1"):
        lf.sbc(logged, n=1)
    column = lf.Model(SLEEP, sleepstudy, priors="weakly_informative")
    with pytest.raises(lf.ArgumentError, match="draws=99: each fit keeps only 50 draws"):
        lf.sbc(column, n=10, chains=1, iter_sampling=50)
