"""Convergence diagnostics, vectorized over parameters, and brms-style warnings.

R-hat is the rank-normalized split R-hat (the larger of bulk and folded); bulk ESS is
the ESS of rank-normalized split chains; tail ESS is the smaller ESS of the 5 % and 95 %
quantile indicators (Vehtari, Gelman, Simpson, Carpenter and Buerkner, 2021).
Arrays are (chain, draw, parameter).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata

from .errors import SamplingWarning

_CHUNK = 1024  # parameters per pass of the diagnostics


def _split(draws: np.ndarray) -> np.ndarray:
    chains, n, params = draws.shape
    half = n // 2
    return np.concatenate([draws[:, :half], draws[:, n - half :]], axis=0)


def _rank_normalize(draws: np.ndarray) -> np.ndarray:
    chains, n, params = draws.shape
    flat = draws.reshape(chains * n, params)
    ranks = rankdata(flat, axis=0, method="average")
    return ndtri((ranks - 0.375) / (chains * n + 0.25)).reshape(draws.shape)


def _basic_rhat(draws: np.ndarray) -> np.ndarray:
    chains, n, _ = draws.shape
    within = draws.var(axis=1, ddof=1).mean(axis=0)
    between = n * draws.mean(axis=1).var(axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(((n - 1) / n * within + between / n) / within)


def rhat(draws: np.ndarray) -> np.ndarray:
    """Rank-normalized split R-hat per parameter (NaN for constants)."""
    split = _split(draws)
    bulk = _basic_rhat(_rank_normalize(split))
    folded = _basic_rhat(_rank_normalize(np.abs(split - np.median(split, axis=(0, 1)))))
    return np.fmax(bulk, folded)


def _ess(draws: np.ndarray) -> np.ndarray:
    """Stan's ESS (Geyer's initial monotone sequence) of already split chains."""
    chains, n, params = draws.shape
    centered = draws - draws.mean(axis=1, keepdims=True)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(centered, n=size, axis=1)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=1)[:, :n] / n
    chain_var = acov[:, 0] * n / (n - 1)
    within = chain_var.mean(axis=0)
    var_plus = within * (n - 1) / n
    if chains > 1:
        var_plus = var_plus + draws.mean(axis=1).var(axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = 1 - (within - acov.mean(axis=0)) / var_plus  # (lag, param)
    rho[0] = 1.0
    # Geyer's initial monotone sequence over pairs (rho[2k], rho[2k+1]), as Stan computes it:
    # sum the leading positive pairs (made monotone), then add the next even lag if positive.
    candidates = 1 + len(range(1, n - 3, 2))
    even, odd = rho[0 : 2 * candidates : 2], rho[1 : 2 * candidates : 2]
    sums = even + odd
    positive = np.cumprod(sums > 0, axis=0).astype(bool)
    positive[-1] = False
    count = positive.sum(axis=0)
    monotone = np.minimum.accumulate(np.where(positive, sums, np.inf), axis=0)
    next_even = even[count, np.arange(params)]
    tau = -1 + 2 * np.where(positive, monotone, 0.0).sum(axis=0) + np.maximum(next_even, 0.0)
    tau = np.maximum(tau, 1 / np.log10(chains * n))
    ess = chains * n / tau
    ess[~np.isfinite(within) | (within <= 0)] = np.nan
    return ess


def ess_bulk(draws: np.ndarray) -> np.ndarray:
    return _ess(_rank_normalize(_split(draws)))


def ess_tail(draws: np.ndarray) -> np.ndarray:
    q05, q95 = np.quantile(draws, [0.05, 0.95], axis=(0, 1))
    low = _ess(_split((draws <= q05).astype(float)))
    high = _ess(_split((draws <= q95).astype(float)))
    return np.fmin(low, high)


def ebfmi(energy: np.ndarray) -> np.ndarray:
    """Energy Bayesian fraction of missing information, per chain; energy is (chain, draw)."""
    return (np.diff(energy, axis=1) ** 2).mean(axis=1) / energy.var(axis=1)


def convergence_stats(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R-hat, bulk ESS and tail ESS of every parameter of (chain, draw, parameter) draws.

    NaN for parameters that never change (e.g. the diagonal of a correlation matrix).
    Computed in chunks of parameters, so memory stays bounded for thousands of them.
    """
    r, bulk, tail = (np.full(draws.shape[2], np.nan) for _ in range(3))
    for start in range(0, draws.shape[2], _CHUNK):
        part = slice(start, start + _CHUNK)
        block = draws[:, :, part]
        varying = block.std(axis=(0, 1)) > 0
        r[part] = np.where(varying, rhat(block), np.nan)
        bulk[part] = np.where(varying, ess_bulk(block), np.nan)
        tail[part] = np.where(varying, ess_tail(block), np.nan)
    return r, bulk, tail


def sampler_problems(
    names: list[str],
    draws: np.ndarray,
    sampler: dict[str, np.ndarray],
    max_treedepth: int,
) -> list[str]:
    """brms's checks after sampling; one sentence per problem found."""
    problems = []
    chains = draws.shape[0]
    divergent = int(sampler["divergent__"].sum())
    if divergent:
        problems.append(
            f"{divergent} divergent transitions after warmup; increase adapt_delta (e.g. 0.95) "
            "or simplify the model"
        )
    saturated = int((sampler["treedepth__"] >= max_treedepth).sum())
    if saturated:
        problems.append(
            f"{saturated} transitions hit the maximum tree depth of {max_treedepth}; increase max_treedepth"
        )
    low = np.flatnonzero(ebfmi(sampler["energy__"]) < 0.3)
    if low.size:
        problems.append(f"E-BFMI below 0.3 in chain(s) {', '.join(str(c + 1) for c in low)}")
    r, bulk, tail = convergence_stats(draws)
    unmixed = False
    for label, bad in (
        ("R-hat above 1.01", r > 1.01),
        (f"bulk ESS below {100 * chains} (100 per chain)", bulk < 100 * chains),
        (f"tail ESS below {100 * chains} (100 per chain)", tail < 100 * chains),
    ):
        if bad.any():
            problems.append(f"{label} for {_list(np.asarray(names)[bad])}")
            unmixed = True
    if unmixed:
        problems.append(
            "the chains have not mixed: the intervals are not to be trusted yet; what helps: another "
            "parameterization (parameterization='noncentered', or 'centered' for data-rich groups), a longer "
            "warm-up and more draws (iter_warmup=2000, iter_sampling=2000), adapt_delta=0.95, or priors that "
            "rule out implausible group sds (class_='sd')"
        )
    return problems


def _list(names: np.ndarray, limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def warn_problems(problems: list[str]) -> None:
    if problems:
        warnings.warn(
            "Sampling problems; the results may be unreliable:\n- " + "\n- ".join(problems),
            SamplingWarning,
            stacklevel=3,
        )
