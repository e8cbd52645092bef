"""Stage 5 for the algorithms other than NUTS: what Stan wrote -> the draws a Fit keeps, and how
far to trust them.

Both engines return a method's output as Stan writes it (see
:class:`~lmmformula.engines.base.ApproximationSettings`); what is done with it is decided here,
once for both: ADVI's first row (the approximation's mean) is dropped; Pathfinder's draws of
every path are resampled by Pareto-smoothed importance weights (as CmdStan does, here with
numpy's generator seeded by the fit's seed); and for laplace, pathfinder, meanfield and
fullrank the importance ratios (the posterior's log density over the approximation's) say
whether the approximation is close to the posterior: their Pareto k above 0.7 (Yao et al.
2018, Vehtari et al. 2024), or an importance-sampling effective sample size below 100, says it
is not. The second catches approximations far too wide, whose largest ratio dominates all others
without a heavy tail (k stays small): measured on coffee, Stan's Laplace approximation at the
joint mode has k = 0.05 and an importance ESS of 1.

The joint mode of a model with group-level terms (what optimize finds, and where laplace and
pathfinder's L-BFGS paths lead) is not lme4's estimate. Non-centered, along the ridge sd * z = r
that the data pin, the prior on the standardized effects z pulls them small and so the sds large
(about sqrt(levels) times the (RE)ML ones with the Jacobian: coffee 54.6 and 13.2 against lme4's
9.0 and 0.9), or, without it, the prior on sd wins at sd = 0; centered, the density is unbounded at
sd = 0. Such fits say so in their problems.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from .engines.base import ApproximationSettings, ChainOutput
from .errors import EngineError

#: k above which importance sampling from an approximation is unreliable.
PARETO_K_THRESHOLD = 0.7
#: importance-sampling effective sample size below which an approximation is far from the posterior.
IMPORTANCE_ESS_THRESHOLD = 100

#: Per method: the columns of the posterior's and of the approximation's log density.
_LOG_DENSITIES = {
    "laplace": ("log_p__", "log_q__"),
    "pathfinder": ("lp__", "lp_approx__"),
    "meanfield": ("log_p__", "log_g__"),
    "fullrank": ("log_p__", "log_g__"),
}

_NOT_CONVERGED = re.compile(r"maximum number of iterations|may not have converged", re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class Approximation:
    """The draws of one run of an approximate algorithm and its diagnostics."""

    output: ChainOutput  # the draws kept, as one "chain"
    pareto_k: float | None  # None for optimize (one point, no approximation to check)
    importance_ess: float | None  # effective sample size of the importance weights
    problems: tuple[str, ...]


def finish(output: ChainOutput, settings: ApproximationSettings, grouped: bool = False) -> Approximation:
    """The draws to keep from ``output``, its diagnostics and the problems to warn about
    (``grouped``: the model has group-level terms)."""
    method = settings.method
    messages = output.messages
    values = output.values
    if method in ("meanfield", "fullrank"):
        values = values[1:]  # the first row is the approximation's mean
    if len(values) == 0:
        raise EngineError(f"{method} returned no draws; see its messages:\n" + "\n".join(messages[-5:]))
    k = ess = None
    problems = []
    if method in _LOG_DENSITIES:
        ratios = log_ratios(output.columns, values, method)
        weights, k = importance_weights(ratios)
        ess = float(1.0 / np.sum(weights**2))
        if method == "pathfinder":
            rng = np.random.default_rng(settings.seed)
            values = values[rng.choice(len(values), size=settings.draws, replace=True, p=weights)]
        if not np.isfinite(k) or k > PARETO_K_THRESHOLD or ess < IMPORTANCE_ESS_THRESHOLD:
            shown = f"{k:.2f}" if np.isfinite(k) else "not estimable"
            problems.append(
                f"the {method} approximation is far from the posterior (Pareto k {shown}, importance-"
                f"sampling ESS {ess:.0f} of {len(ratios)} draws; reliable: k <= {PARETO_K_THRESHOLD} and ESS "
                f">= {IMPORTANCE_ESS_THRESHOLD}): its draws are not a stand-in for the posterior; use "
                "method='nuts'"
            )
    if grouped and method in ("optimize", "laplace"):
        problems.append(
            f"{method} works at the joint posterior mode, which for a model with group-level terms is not "
            "lme4's estimate and can be far from the posterior: the group-level sds there go to 0 or to many "
            "times the (RE)ML ones, and the population-level effects with them; use method='nuts'"
        )
    if any(_NOT_CONVERGED.search(message) for message in messages):
        problems.append(
            f"{method} stopped after iter={settings.iter} iterations without converging: raise iter"
        )
    kept = replace(output, values=values)
    return Approximation(output=kept, pareto_k=k, importance_ess=ess, problems=tuple(problems))


def log_ratios(columns: tuple[str, ...], values: np.ndarray, method: str) -> np.ndarray:
    """log p(theta) - log q(theta) of each draw (up to a constant): the posterior's unnormalized
    log density over the approximation's."""
    target, approximation = _LOG_DENSITIES[method]
    ratios = values[:, columns.index(target)] - values[:, columns.index(approximation)]
    return np.where(np.isnan(ratios), -np.inf, ratios)


def importance_weights(log_ratios: np.ndarray) -> tuple[np.ndarray, float]:
    """Pareto-smoothed importance weights (summing to 1) and the Pareto k of their tail."""
    from arviz_stats.base import array_stats

    finite = np.isfinite(log_ratios)
    if finite.sum() < 5:
        return np.full(len(log_ratios), 1.0 / len(log_ratios)), float("inf")
    smoothed = np.full(len(log_ratios), -np.inf)
    # arviz-stats' psislw takes log-likelihood values, as loo does: the log ratios are their negatives
    log_weights, k = array_stats.psislw(-(log_ratios[finite] - log_ratios[finite].max()), r_eff=1.0)
    if np.isnan(log_weights).any():
        # ratios spread over thousands of log units (an approximation far too wide): the tail's largest
        # weights underflow and no Pareto fit is possible; plain importance weights, k unknown
        log_weights, k = log_ratios[finite] - log_ratios[finite].max(), np.nan
    smoothed[finite] = log_weights
    weights = np.exp(smoothed - np.max(smoothed))
    return weights / weights.sum(), float(k)
