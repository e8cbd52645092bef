"""How much a block's groups know about their own coefficients: the *information ratio* that
``parameterization="auto"`` decides by (docs/parameterization.md, step 1), from cheap moment estimates
before sampling: a GLM fit of the fixed part, per-group weighted least squares of its working residuals
on the block's columns, and the spread of those per-group estimates. For nested blocks (casks in
batches) the spreads are split between the levels of the hierarchy (:func:`split_nested`).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import chi2

from .design import INTERCEPT, Design
from .families import GAUSSIAN, Family, get_family
from .nesting import nested_in, parent_levels


def block_information(design: Design) -> list[np.ndarray]:
    """Per block, the information ratio of each of its columns (see :func:`information_ratios`); for
    nested blocks the intercepts' ratios are split along the nesting (:func:`split_nested`)."""
    weights, residuals, working = _working_residuals(design)
    dispersion = bool(working.dpars)  # of the family the residuals were read through
    blocks = design.spec.blocks
    columns = [_sampled_columns(block, Z) for block, Z in zip(blocks, design.Z)]
    parents = nested_in(design)
    parts = [information_parts(Z, J, weights, residuals, dispersion) for Z, J in zip(columns, design.J)]
    # crossed blocks: each block's per-level estimates also carry the other blocks' effects (their spread
    # inflates the residual variance a level's rows show), so estimate each again from the residuals less
    # the others' shrunken fits (backfitting, twice); blocks nested in one another are left in, their
    # effects are one hierarchy (split_nested)
    related = {(i, j) for i, j in enumerate(parents) if j is not None}
    crossed = [[k for k in range(len(blocks)) if k != i and (i, k) not in related and (k, i) not in related]
               for i in range(len(blocks))]  # fmt: skip
    for _ in range(2 if any(crossed) else 0):
        fits = [part.fitted(Z, J) for part, Z, J in zip(parts, columns, design.J)]
        parts = [
            information_parts(Z, J, weights, residuals - sum((fits[k] for k in crossed[i]), 0.0), dispersion)
            for i, (Z, J) in enumerate(zip(columns, design.J))
        ]
    ratios = [part.ratios() for part in parts]
    for child, parent in enumerate(parents):
        if parent is not None:
            parent_of = parent_levels(design, child, parent) - 1
            ratios[child][0], ratios[parent][0] = split_nested(parts[child], parts[parent], parent_of)
    return ratios


class Parts:
    """A block's moment estimates: per group with an estimate (``groups``, from 0) its estimates and
    sampling variances per column, and the median sampling variance over every group (infinite for a
    group without an estimate)."""

    def __init__(self, groups: np.ndarray, estimates: np.ndarray, sampling: np.ndarray, median) -> None:
        self.groups, self.estimates, self.sampling, self.median_sampling = groups, estimates, sampling, median

    @property
    def count(self) -> int:
        return len(self.groups)

    def caution(self) -> float:
        """The lower 5 % bound of a spread over its estimate (chi-square, ``count - 1`` degrees)."""
        return chi2.ppf(0.05, self.count - 1) / (self.count - 1) if self.count > 1 else 0.0

    def between(self, cautious: bool = True) -> np.ndarray:
        if self.count < 2:
            return np.zeros(self.estimates.shape[1])
        spread = self.estimates.var(axis=0, ddof=1) * (self.caution() if cautious else 1.0)
        return np.maximum(spread - self.sampling.mean(axis=0), 0.0)

    def ratios(self, cautious: bool = True) -> np.ndarray:
        return self.between(cautious) / self.median_sampling

    def fitted(self, Z: np.ndarray, J: np.ndarray) -> np.ndarray:
        """Per row, the block's part of the residuals: each level's estimates shrunk towards zero by
        ``between / (between + sampling)`` (zero for levels without an estimate)."""
        between = self.between(cautious=False)
        coefficients = np.zeros((int(J.max()), Z.shape[1]))
        if self.count:
            shrink = between / np.maximum(between + self.sampling, 1e-300)
            coefficients[self.groups] = self.estimates * shrink
        return np.einsum("nk,nk->n", Z, coefficients[J - 1])


def split_nested(child: Parts, parent: Parts, parent_of: np.ndarray) -> tuple[float, float]:
    """The intercepts' information ratios of a block nested in another, and of that other.

    The child's sd comes from the spread of its levels' estimates around the mean of their parent
    level's children (parents with two children or more, less the children's sampling variance); its
    ratio is that sd against its rows: it varies around its parent level. A parent level's estimate
    varies by its own sd and its children's mean, ``sd_p^2 + sd_c^2 / n`` for ``n`` children, so its
    ratio is its sd against what its children tell it, their own spread included. ``parent_of``: each
    child level's parent level (from 0). Both bounded as :func:`information_ratios` bounds a spread."""
    parents = parent_of[child.groups]
    counts = np.bincount(parents)
    shared = counts[parents] >= 2
    if shared.sum() - np.count_nonzero(counts >= 2) < 2:  # too few siblings to tell the levels apart
        return float(child.ratios()[0]), float(parent.ratios()[0])
    estimate = child.estimates[shared, 0]
    means = np.bincount(parents[shared], estimate) / np.maximum(np.bincount(parents[shared]), 1)
    residual = estimate - means[parents[shared]]
    freedom = shared.sum() - np.count_nonzero(counts >= 2)
    child_var = max((residual**2).sum() / freedom - child.sampling[shared, 0].mean(), 0.0)
    n = child.count / max(np.count_nonzero(counts), 1)  # children with an estimate per parent
    parent_var = max(parent.between(cautious=False)[0] - child_var / n, 0.0)
    child_ratio = child_var * child.caution() / child.median_sampling[0]
    parent_ratio = parent_var * parent.caution() / (parent.median_sampling[0] + child_var / n)
    return float(child_ratio), float(parent_ratio)


def _sampled_columns(block, Z: np.ndarray) -> np.ndarray:
    """The block's design in the coordinates its program samples: a correlated block whose first
    column is the intercept has its intercept at the means of its other columns (the program's
    shift C), i.e. those columns centered."""
    if not (block.correlated and block.columns[0] == INTERCEPT and Z.shape[1] > 1):
        return Z
    shifted = Z.astype(float, copy=True)
    shifted[:, 1:] -= shifted[:, 1:].mean(axis=0)
    return shifted


def information_ratios(
    Z: np.ndarray,
    J: np.ndarray,
    weights: np.ndarray,
    residuals: np.ndarray,
    gaussian: bool,
    cautious: bool = True,
) -> np.ndarray:
    """Per column: between-group variance over the median group's sampling variance.

    With ``cautious`` the between-group variance is its lower 5 % confidence bound (a
    chi-square bound on the spread of the per-group estimates), so that few groups, whose
    sd the data cannot pin down, lean towards the non-centered form.
    """
    return information_parts(Z, J, weights, residuals, gaussian).ratios(cautious)


def information_parts(
    Z: np.ndarray, J: np.ndarray, weights: np.ndarray, residuals: np.ndarray, gaussian: bool
) -> Parts:
    """The moment estimates behind :func:`information_ratios`: per group, weighted least squares of the
    working residuals on the block's columns (groups with no more rows than columns, or a singular
    design, have none)."""
    n_groups, n_columns = int(J.max()), Z.shape[1]
    index = J - 1
    A = np.zeros((n_groups, n_columns, n_columns))
    np.add.at(A, index, weights[:, None, None] * Z[:, :, None] * Z[:, None, :])
    c = np.zeros((n_groups, n_columns))
    np.add.at(c, index, (weights * residuals)[:, None] * Z)
    rows = np.bincount(index, minlength=n_groups)
    valid = rows > n_columns
    valid[valid] = np.linalg.cond(A[valid]) < 1e10
    if valid.sum() < 2:
        nothing = np.zeros((0, n_columns))
        return Parts(np.flatnonzero(valid)[:0], nothing, nothing, np.full(n_columns, np.inf))
    inverse = np.linalg.inv(A[valid])
    estimates = np.einsum("gij,gj->gi", inverse, c[valid])
    dispersion = 1.0
    if gaussian:
        weighted_ss = np.bincount(index, weights * residuals**2, minlength=n_groups)[valid]
        rss = weighted_ss - np.einsum("gi,gi->g", c[valid], estimates)
        dispersion = max(rss.sum() / (rows[valid] - n_columns).sum(), 1e-12)
    sampling = dispersion * np.einsum("gii->gi", inverse)
    all_sampling = np.full((n_groups, n_columns), np.inf)
    all_sampling[valid] = sampling
    return Parts(np.flatnonzero(valid), estimates, sampling, np.median(all_sampling, axis=0))


def _working_residuals(design: Design) -> tuple[np.ndarray, np.ndarray, Family]:
    """IRLS fit of the fixed part alone: its working weights and working residuals, and the
    family they were read through (the model's, or its ``working_scale`` / ``working_family``).

    Generic over families: the family's mean and variance functions and its link give the
    weights ``(d mean / d eta)**2 / variance``; distributional parameters take their registry's
    typical value, and for a family that has any, :func:`information_ratios` estimates the
    dispersion itself from the residuals.
    """
    family: Family = design.spec.family
    X = design.X
    if design.spec.has_intercept:
        X = np.column_stack([np.ones(design.n), X])
    y = design.response.y.astype(float)
    trials = design.response.trials
    # 'y | weights(w)': a row of weight w informs as much as w rows
    prior_weights = design.response.weights if design.response.weights is not None else np.ones_like(y)
    if family.working_scale is not None:  # e.g. lognormal: a gaussian on log y
        y = family.working_scale(y)
        family = GAUSSIAN
    elif family.working_family is not None:  # e.g. hurdle_poisson: its poisson counts, zeros left out
        family = get_family(family.working_family, family.link)
        prior_weights = prior_weights * (y > 0)
    link = family.link_function
    dpars = {dpar.name: dpar.typical for dpar in family.dpars}

    def mean_of(eta: np.ndarray) -> np.ndarray:
        return np.asarray(family.mean(link.inverse(eta), **dpars, trials=trials), dtype=float)

    def weights_and_residuals(eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # d mean / d eta by the chain rule: every registry mean is linear in mu (mu, or trials * mu)
        slope = np.asarray(family.mean(link.derivative(eta), **dpars, trials=trials), dtype=float)
        slope = np.where(np.abs(slope) < 1e-8, 1e-8, slope)
        variance = np.asarray(family.variance(link.inverse(eta), **dpars, trials=trials), dtype=float)
        weights = np.maximum(slope**2 / np.maximum(variance, 1e-12), 1e-8) * prior_weights
        return weights, (y - mean_of(eta)) / slope

    offset = design.offset if design.offset is not None else np.zeros_like(y)
    eta = _starting_eta(family, y, trials) if X.shape[1] else offset
    with np.errstate(all="ignore"):
        for _ in range(25):
            if not X.shape[1]:
                break
            weights, residuals = weights_and_residuals(eta)
            working = eta + residuals - offset
            root = np.sqrt(weights)
            if not (np.isfinite(working).all() and np.isfinite(root).all()):
                break  # e.g. an identity link stepping outside the family's support: keep the last fit
            try:
                beta = np.linalg.lstsq(X * root[:, None], working * root, rcond=None)[0]
            except np.linalg.LinAlgError:
                break
            candidate = X @ beta + offset
            if not np.isfinite(family.variance(link.inverse(candidate), **dpars, trials=trials)).all():
                break
            eta = candidate
        weights, residuals = weights_and_residuals(eta)
    bad = ~(np.isfinite(weights) & np.isfinite(residuals))
    return np.where(bad, 1e-8, weights), np.where(bad, 0.0, residuals), family


def _starting_eta(family: Family, y: np.ndarray, trials: np.ndarray | None) -> np.ndarray:
    """The link of the response, nudged off the edges of its range (0 counts, 0/1 outcomes)."""
    link = family.link_function
    with np.errstate(all="ignore"):
        if family.response in ("binary", "binomial"):
            n = trials.astype(float) if trials is not None else np.ones_like(y)
            eta = link.function((y + 0.5) / (n + 1.0))
        elif family.response == "count":
            eta = link.function(y + 0.5)
        else:
            eta = link.function(y)
    if not np.isfinite(eta).all():  # e.g. log of a non-positive gaussian response: start flat
        eta = np.full_like(y, float(np.nanmedian(eta[np.isfinite(eta)])) if np.isfinite(eta).any() else 0.0)
    return eta
