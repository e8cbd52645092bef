"""After the fit: the linear predictor, expected values, predictive draws and the pointwise
log-likelihood, for the fitting data or new data (brms's ``posterior_linpred``,
``posterior_epred``, ``posterior_predict`` and ``log_lik``).

Pure functions of a fitted model's design spec, its posterior draws and a :class:`NewDesign`;
every family works through its registry entry (``mean``, ``random``, ``log_density``), with no
branch per family here. Draws are flattened to (draw, row) arrays, chains one after the other.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import names, results
from .design import DesignSpec, NewDesign
from .errors import ArgumentError, DataError, FormulaError
from .families import Family
from .formula import parse_formula

#: How effects of levels the fitting data did not have are drawn (brms's ``sample_new_levels``).
NEW_LEVEL_STRATEGIES = ("uncertainty", "gaussian", "old_levels")

#: At most this many (draw x row) values are computed at once (about 64 MB of float64): the linear
#: predictor's group-level part here, the log-likelihood blocks of :func:`criteria.loo`.
CHUNK_VALUES = 8_000_000


@dataclass(frozen=True)
class Request:
    """What a prediction asks for: which group-level columns enter, how new levels are treated,
    which draws, and the seed of every random choice."""

    keep: tuple[tuple[bool, ...], ...]  # per block, per column: in the linear predictor
    allow_new_levels: bool = False
    sample_new_levels: str = "uncertainty"
    draws: np.ndarray | None = None  # indices into the flattened draws; None: all
    seed: np.random.SeedSequence | int | None = None  # of the new levels' effects


def flat(posterior: dict, name: str) -> np.ndarray:
    """A (chain, draw, ...) posterior array as (chain * draw, ...)."""
    values = np.asarray(posterior[name], dtype=float)
    return values.reshape((-1,) + values.shape[2:])


def draw_count(posterior: dict) -> int:
    """Number of draws, chains together."""
    first = next(iter(posterior.values()))
    return int(np.prod(np.shape(first)[:2]))


def choose_draws(total: int, ndraws: int | None, seed) -> np.ndarray | None:
    """Indices of ``ndraws`` draws picked at random without replacement (None: all of them)."""
    if ndraws is None:
        return None
    if isinstance(ndraws, bool) or not isinstance(ndraws, int | np.integer) or not 1 <= ndraws <= total:
        raise ArgumentError(f"ndraws must be a whole number from 1 to {total} (the draws), got {ndraws!r}")
    return np.sort(np.random.default_rng(seed).choice(total, size=int(ndraws), replace=False))


# ------------------------------------------------------------------------------------ re_formula


def kept_columns(spec: DesignSpec, re_formula) -> tuple[tuple[bool, ...], ...]:
    """Per block and column, whether ``re_formula`` keeps it in the linear predictor.

    ``None`` keeps every group-level term; ``NA`` (``np.nan``, ``pd.NA``, ``"NA"``) or ``"~ 0"``
    none; a formula of group-level terms, e.g. ``"~ (1 | Subject)"``, the columns of those terms
    (each must be in the model: the same grouping factor and terms).
    """
    everything = tuple(tuple(True for _ in block.columns) for block in spec.blocks)
    nothing = tuple(tuple(False for _ in block.columns) for block in spec.blocks)
    if re_formula is None:
        return everything
    if not isinstance(re_formula, str):
        if pd.api.types.is_scalar(re_formula) and pd.isna(re_formula):
            return nothing
        raise ArgumentError(
            f"re_formula must be None (all group-level terms), NA or '~ 0' (none), or a formula of "
            f"group-level terms such as '~ (1 | g)'; got {type(re_formula).__name__}"
        )
    text = re_formula.strip()
    if text.upper() == "NA" or re.fullmatch(r"~?\s*0\s*", text):
        return nothing
    rhs = text[1:] if text.startswith("~") else text
    try:
        terms = parse_formula(f"y ~ {rhs}").group_terms
    except FormulaError as exc:
        raise FormulaError(f"re_formula {re_formula!r}: {exc}") from None
    if not terms:
        raise FormulaError(
            f"re_formula {re_formula!r} has no group-level term; write terms like '(1 | g)' ('~ 0' for none)"
        )
    keep = [list(row) for row in nothing]
    for term in terms:
        matched = False
        wanted = _term_names(term.expr, re_formula)
        for i, block in enumerate(spec.blocks):
            if block.factor.columns != term.factors:
                continue
            found = _block_columns(block, wanted)
            for k in found:
                keep[i][k] = True
            matched = matched or bool(found)
            wanted = wanted - _block_terms(block)
        if not matched or wanted:
            on = [b for b in spec.blocks if b.factor.columns == term.factors]
            have = ", ".join(t for b in on for t in sorted(_block_terms(b))) or "none"
            raise FormulaError(
                f"re_formula term {term.source} is not in the model: its group-level terms on "
                f"{':'.join(term.factors)} are {have} (re_formula can only keep terms the model has)"
            )
    return tuple(tuple(row) for row in keep)


def _term_names(expression: str, re_formula: str) -> set[str]:
    from formulaic import Formula

    try:
        return {str(term) for term in Formula(expression)}
    except Exception as exc:  # formulaic's parser errors have several types
        raise FormulaError(f"re_formula {re_formula!r}: cannot parse {expression!r} ({exc})") from None


def _block_terms(block) -> set[str]:
    return {str(term) for spec in block.specs for term in spec.term_indices}


def _block_columns(block, wanted: set[str]) -> list[int]:
    found, start = [], 0
    for spec in block.specs:
        for term, indices in spec.term_indices.items():
            if str(term) in wanted:
                found.extend(start + i for i in indices)
        start += len(spec.column_names)
    return found


# --------------------------------------------------------------------------- linear predictor


def linear_predictor(spec: DesignSpec, posterior: dict, design: NewDesign, request: Request) -> np.ndarray:
    """eta, (draws, rows): population part, offsets and the kept group-level columns.

    An ordinal family's eta has no intercept (its thresholds are apart, see :func:`family_arguments`).
    """
    pick = functools.partial(_pick, request.draws)
    eta = np.zeros((_count(posterior, request), design.n))
    if spec.has_intercept and not spec.family.ordinal:
        eta += pick(flat(posterior, names.INTERCEPT_AT_ZERO))[:, None]
    if spec.fixed_columns:
        eta += pick(flat(posterior, names.SLOPES)) @ design.X.T
    if design.offset is not None:
        eta += design.offset[None, :]
    rng = np.random.default_rng(request.seed)
    replacements: dict[str, np.ndarray] = {}  # factor -> (draws, new levels) existing level drawn
    for i, (block, keep) in enumerate(zip(spec.blocks, request.keep), start=1):
        if not any(keep):
            continue
        Z, J, labels = design.Z[i - 1], design.J[i - 1], design.labels[i - 1]
        effects = pick(flat(posterior, names.block(i).effects))  # (draws, levels, columns)
        new = J < 0
        if new.any():
            effects, J = _with_new_levels(i, block, effects, J, labels, posterior, request, rng, replacements)
        columns = np.flatnonzero(keep)
        for start, stop in _chunks(len(effects), design.n):
            rows = effects[start:stop][:, J][:, :, columns]  # (draws, rows, columns)
            eta[start:stop] += np.einsum("rm,drm->dr", Z[:, columns], rows)
    return eta


def _with_new_levels(index, block, effects, J, labels, posterior, request, rng, replacements):
    """``effects`` extended by the new levels' effects, and ``J`` pointing at them."""
    factor = block.factor.name
    new_labels = pd.unique(labels[J < 0])
    if not request.allow_new_levels:
        shown = ", ".join(repr(str(v)) for v in new_labels[:5])
        raise DataError(
            f"grouping factor {factor!r} has levels the fitting data did not have: {shown}"
            f"{' ...' if len(new_labels) > 5 else ''}; pass allow_new_levels=True to predict for them "
            "(sample_new_levels says how their effects are drawn), or drop those rows"
        )
    draws, levels, columns = effects.shape
    strategy = request.sample_new_levels
    if strategy == "gaussian":
        sd = _pick(request.draws, flat(posterior, names.block(index).sd))  # (draws, columns)
        if block.correlated:
            correlation = _pick(request.draws, flat(posterior, names.block(index).correlation))
            covariance = correlation * sd[:, :, None] * sd[:, None, :]
            cholesky = np.linalg.cholesky(covariance + 1e-12 * np.eye(columns))
        else:
            cholesky = sd[:, :, None] * np.eye(columns)
        standard = rng.standard_normal((draws, len(new_labels), columns))
        added = np.einsum("dij,dkj->dki", cholesky, standard)
    else:
        if factor not in replacements:
            if strategy == "old_levels":
                chosen = np.broadcast_to(rng.integers(levels, size=len(new_labels)), (draws, len(new_labels)))
            else:  # uncertainty: another existing level in every draw
                chosen = rng.integers(levels, size=(draws, len(new_labels)))
            replacements[factor] = chosen
        chosen = replacements[factor]
        added = np.take_along_axis(effects, chosen[:, :, None], axis=1)
    lookup = {label: levels + k for k, label in enumerate(new_labels)}
    J = J.copy()
    J[J < 0] = [lookup[label] for label in labels[J < 0]]
    return np.concatenate([effects, added], axis=1), J


# ---------------------------------------------------------------------------- family functions


def family_arguments(spec: DesignSpec, posterior: dict, design: NewDesign, request: Request) -> dict:
    """The keyword arguments of the family's numpy functions besides mu: the dpars (draws, 1),
    an ordinal family's thresholds (draws, 1, K - 1) and link, the rows' trials."""
    family: Family = spec.family
    pick = functools.partial(_pick, request.draws)
    arguments: dict = {dpar.name: pick(flat(posterior, dpar.name))[:, None] for dpar in family.dpars}
    arguments |= family.options
    if family.ordinal:
        arguments["thresholds"] = pick(flat(posterior, names.INTERCEPT_AT_ZERO))[:, None, :]
    if family.response == "binomial":
        if design.trials is None:
            raise DataError(
                f"the {family.name} family needs each row's number of trials; newdata lacks the column(s) of "
                f"{spec.formula.trials or 'the response'}"
            )
        arguments["trials"] = design.trials[None, :]
    return arguments


def epred(spec: DesignSpec, eta: np.ndarray, arguments: dict) -> np.ndarray:
    """The expected response, (draws, rows)."""
    return np.asarray(spec.family.mean(spec.family.mu(eta), **arguments), dtype=float)


def predict(spec: DesignSpec, eta: np.ndarray, arguments: dict, seed) -> np.ndarray:
    """Draws from the posterior predictive distribution, (draws, rows)."""
    rng = np.random.default_rng(seed)
    return np.asarray(spec.family.random(rng, spec.family.mu(eta), **arguments))


def log_lik(spec: DesignSpec, eta: np.ndarray, arguments: dict, design: NewDesign) -> np.ndarray:
    """Each row's log density at each draw, times the row's weight when the model has weights."""
    if design.y is None:
        raise DataError(
            f"log_lik needs the response: newdata lacks the column(s) of {', '.join(spec.formula.response)}"
        )
    mu = spec.family.mu(eta)
    values = np.asarray(spec.family.log_density(design.y[None, :], mu, **arguments), dtype=float)
    if design.weights is not None:
        values = values * design.weights[None, :]
    return values


def summarize_rows(draws: np.ndarray, probs: tuple[float, ...], index) -> pd.DataFrame:
    """brms's per-row summary of (draws, rows): Estimate, Est.Error and quantiles."""
    return pd.DataFrame(results.summary_columns(draws, probs), index=index)


# ------------------------------------------------------------------------------------- helpers


def _count(posterior: dict, request: Request) -> int:
    return draw_count(posterior) if request.draws is None else len(request.draws)


def _pick(draws: np.ndarray | None, values: np.ndarray) -> np.ndarray:
    return values if draws is None else values[draws]


def _chunks(draws: int, rows: int):
    step = max(1, CHUNK_VALUES // max(rows, 1))
    for start in range(0, draws, step):
        yield start, min(draws, start + step)


# ---------------------------------------------------------------------------- conditional effects


def reference_grid(
    frame: pd.DataFrame, spec: DesignSpec, effects: list[str], resolution: int
) -> pd.DataFrame:
    """Rows that vary the ``effects`` columns (numbers over their range, categories over their levels)
    and hold every other column at its mean (numbers) or first level (categories), as brms's
    ``conditional_effects``; binomial trials are 1 (effects on the probability scale)."""
    for name in effects:
        if name not in frame.columns or name in spec.formula.response:
            usable = [c for c in frame.columns if c not in spec.formula.response]
            raise ArgumentError(
                f"conditional_effects: {name!r} is not a predictor of the model; its predictors are "
                f"{', '.join(usable)}"
            )
    axes = []
    for name in effects:
        values = frame[name]
        if _numeric(values):
            axes.append(np.linspace(values.min(), values.max(), resolution))
        else:
            axes.append(np.asarray(_levels(values), dtype=object))
    mesh = np.meshgrid(*axes, indexing="ij")
    grid = pd.DataFrame({name: values.ravel() for name, values in zip(effects, mesh)})
    grouping = {column for block in spec.blocks for column in block.factor.columns}
    for name in frame.columns:
        if name in effects:
            continue
        values = frame[name]
        held = values.mean() if _numeric(values) and name not in grouping else _levels(values)[0]
        grid[name] = held
    for name in frame.columns:  # categories keep the fitting data's categories (their contrasts)
        values = frame[name]
        if isinstance(values.dtype, pd.CategoricalDtype):
            grid[name] = pd.Categorical(
                grid[name], categories=values.cat.categories, ordered=values.cat.ordered
            )
    if spec.formula.trials in grid.columns:
        grid[spec.formula.trials] = 1.0
    return grid


def _numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _levels(values: pd.Series) -> list:
    if isinstance(values.dtype, pd.CategoricalDtype):
        return list(values.cat.categories)
    return sorted(pd.unique(values.dropna()), key=str)
