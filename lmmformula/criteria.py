"""After the fit: predictive accuracy and explained variance (brms's ``loo``, ``waic``, ``loo_compare``,
``bayes_R2``, ``loo_R2``).

PSIS-LOO and model comparison come from arviz-stats, on the pointwise log-likelihood of
:meth:`Fit.log_lik`; WAIC and the Bayesian R2 are computed here from the same draws.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from . import results
from .errors import ArgumentError, ComparisonWarning

#: Draw x row values of the log-likelihood handed to arviz-stats' PSIS at once. PSIS holds many copies of
#: its block: at InstEval's size (73k rows x 4,000 draws) blocks of 8 million values took 1.6 GB besides
#: the fit, blocks of 1 million 0.4 GB, in no more time (benchmarks/results/after_fit_memory.txt).
LOO_CHUNK_VALUES = 1_000_000


def loo(posterior, rows: int, log_lik, pointwise: bool = False, chunk_values: int = LOO_CHUNK_VALUES):
    """PSIS-LOO (arviz-stats' ``loo``, its ``ELPDData``) over ``rows`` observations whose (draws, rows)
    log-likelihood ``log_lik(start, stop)`` gives a block of rows at a time, so that large data never
    hold the whole draws x rows matrix; ``posterior`` (the DataTree's posterior group) sets the relative
    efficiency as arviz-stats does. The standard error is R loo's, sqrt(n) * sd(elpd_i). Warns naming how many
    rows have a large Pareto k."""
    import arviz_stats
    import xarray as xr
    from arviz_stats.utils import ELPDData

    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    samples = chains * draws
    reff = 1.0
    if chains > 1:
        ess = posterior.azstats.ess(method="mean")
        reff = float(np.hstack([ess[v].values.ravel() for v in ess.data_vars]).mean() / samples)
    step = max(1, chunk_values // samples)
    elpd_i, pareto_k, lppd = [], [], 0.0
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        values = np.asarray(log_lik(start, stop), dtype=float).reshape(chains, draws, stop - start)
        block = xr.DataTree.from_dict(
            {"log_likelihood": xr.Dataset({"y": (("chain", "draw", "obs"), values)})}
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
            part = arviz_stats.loo(block, pointwise=True, reff=reff)
        elpd_i.append(np.asarray(part.elpd_i).ravel())
        pareto_k.append(np.asarray(part.pareto_k).ravel())
        lppd += float((logsumexp(values.reshape(samples, -1), axis=0) - np.log(samples)).sum())
    elpd_i_all, k = np.concatenate(elpd_i), np.concatenate(pareto_k)
    good_k = min(1 - 1 / np.log10(samples), 0.7)
    elpd = float(elpd_i_all.sum())
    bad = int((k > good_k).sum())
    if bad:
        warnings.warn(
            f"loo: Pareto k above {good_k:.2f} for {bad} of {len(k)} observations (largest "
            f"{k.max():.2f}); their leave-one-out estimates are unreliable and elpd_loo may be too high. "
            "Check those observations (fit.loo(pointwise=True).pareto_k), or compare models by k-fold "
            "cross-validation",
            ComparisonWarning,
            stacklevel=3,
        )
    obs = {"obs": np.arange(rows)}
    return ELPDData(
        kind="loo",
        elpd=elpd,
        se=float(np.sqrt(rows) * elpd_i_all.std(ddof=1)) if rows > 1 else float("nan"),
        p=lppd - elpd,
        n_samples=samples,
        n_data_points=rows,
        scale="log",
        warning=bool(bad),
        good_k=good_k,
        elpd_i=xr.DataArray(elpd_i_all, dims="obs", coords=obs) if pointwise else None,
        pareto_k=xr.DataArray(k, dims="obs", coords=obs),
    )


@dataclass(frozen=True)
class WAIC:
    """The widely applicable information criterion, as brms's ``waic``: ``elpd_waic`` (larger is
    better) and its standard error ``se``, the effective number of parameters ``p_waic`` (and its
    ``se_p_waic``), ``waic`` = -2 * elpd_waic, and per observation its elpd (``pointwise``)."""

    elpd_waic: float
    se: float
    p_waic: float
    se_p_waic: float
    waic: float
    pointwise: np.ndarray

    def __str__(self) -> str:
        return (
            f"Computed from the pointwise log-likelihood of {len(self.pointwise)} observations.\n\n"
            f"          Estimate     SE\n"
            f"elpd_waic {self.elpd_waic:9.2f} {self.se:6.2f}\n"
            f"p_waic    {self.p_waic:9.2f} {self.se_p_waic:6.2f}\n"
            f"waic      {self.waic:9.2f} {2 * self.se:6.2f}"
        )


def waic(log_lik) -> WAIC:
    """WAIC (Watanabe 2010; Vehtari, Gelman & Gabry 2017) from a (draws, rows) pointwise log-likelihood,
    or from an iterable of such blocks of rows (each row's terms need only its own column)."""
    blocks = [log_lik] if isinstance(log_lik, np.ndarray) else log_lik
    lppd, p = [], []
    for block in blocks:
        block = np.asarray(block, dtype=float)
        lppd.append(logsumexp(block, axis=0) - np.log(block.shape[0]))
        p.append(block.var(axis=0, ddof=1))
    p_i = np.concatenate(p)
    elpd_i = np.concatenate(lppd) - p_i
    root_n = np.sqrt(len(elpd_i))
    se = float(root_n * elpd_i.std(ddof=1)) if len(elpd_i) > 1 else float("nan")
    se_p = float(root_n * p_i.std(ddof=1)) if len(elpd_i) > 1 else float("nan")
    return WAIC(float(elpd_i.sum()), se, float(p_i.sum()), se_p, float(-2 * elpd_i.sum()), elpd_i)


def loo_compare(*fits, **named) -> pd.DataFrame:
    """Compare fitted models by PSIS-LOO, as brms's ``loo_compare`` (with stacking weights).

    Parameters
    ----------
    *fits : Fit
        Fits to compare, named ``model1``, ``model2``, ... in the order given.
    **named : Fit
        Fits under names of your choice.

    Returns
    -------
    pandas.DataFrame
        One row per model, best first: ``elpd_loo``, ``p_loo``, ``elpd_diff`` (to the best) and its
        standard error ``se_diff``, ``se`` and the stacking ``weight``.
    """
    import arviz_stats

    models = {f"model{i}": fit for i, fit in enumerate(fits, start=1)} | named
    if len(models) < 2:
        raise ArgumentError(f"loo_compare needs two fits or more, got {len(models)}")
    sizes = {name: fit.model.nobs for name, fit in models.items()}
    if len(set(sizes.values())) > 1:
        raise ArgumentError(
            f"loo_compare: the fits have different numbers of observations ({sizes}); compare models "
            "fitted to the same rows"
        )
    results = {name: fit.loo(pointwise=True) for name, fit in models.items()}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
        warnings.filterwarnings("ignore", message="The inplace keyword")  # inside arviz-stats, pandas 3
        table = arviz_stats.compare(results)
    return pd.DataFrame(
        {
            "elpd_loo": table["elpd"],
            "p_loo": table["p"],
            "elpd_diff": 0.0 - table["elpd_diff"].abs(),  # 0.0 -: the best model's is 0, not -0
            "se_diff": table["dse"],
            "se": table["se"],
            "weight": table["weight"],
        }
    )


def bayes_r2(blocks, probs: tuple[float, ...]) -> pd.DataFrame:
    """Bayesian R2 per draw (Gelman, Goodrich, Gabry & Vehtari 2019): var(epred) / (var(epred) +
    var(y - epred)), variances over rows, summarized as brms's ``bayes_R2``. ``blocks`` yields
    (y, epred) for blocks of rows: y (rows,) and epred (draws, rows); the variances are pooled over the
    blocks (Chan et al.'s update), so no more than a block is in memory."""
    fitted, residual = _Variance(), _Variance()
    for y, epred in blocks:
        fitted.add(epred)
        residual.add(np.asarray(y, dtype=float)[None, :] - epred)
    fitted_var, residual_var = fitted.value(), residual.value()
    r2 = fitted_var / (fitted_var + residual_var)
    return results.summarize({"R2": r2[None, :]}, probs)


class _Variance:
    """Per-draw sample variance over rows, added a (draws, rows) block at a time."""

    def __init__(self):
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, values: np.ndarray) -> None:
        k = values.shape[1]
        if not k:
            return
        mean = values.mean(axis=1)
        m2 = ((values - mean[:, None]) ** 2).sum(axis=1)
        total = self.n + k
        delta = mean - self.mean
        self.m2 = self.m2 + m2 + delta**2 * self.n * k / total
        self.mean = self.mean + delta * k / total
        self.n = total

    def value(self) -> np.ndarray:
        return (
            np.asarray(self.m2, dtype=float) / (self.n - 1)
            if self.n > 1
            else np.full(np.shape(self.mean), np.nan)
        )
