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
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from . import names, results
from .design import DesignSpec, NewDesign
from .errors import ArgumentError, DataError, FormulaError
from .families import Family
from .formula import parse_formula

#: How effects of levels the fitting data did not have are drawn (brms's ``sample_new_levels``).
NEW_LEVEL_STRATEGIES = ("uncertainty", "gaussian", "old_levels")

#: At most this many (draw x row) values are computed at once (about 64 MB of float64): a
#: :class:`Prediction` works through its rows in blocks of this size.
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


# ------------------------------------------------------------------------------- a prediction


@dataclass(frozen=True)
class Prediction:
    """A prediction ready to be computed a block of rows at a time: the draws it reads, picked once,
    and the effects of levels the fitting data did not have, drawn once for all rows (``design.J``
    points at them), so that blocks agree with one another and the whole never needs to be in memory.

    ``what`` is "eta", "mu", "epred", "predict" or "log_lik"."""

    spec: DesignSpec
    design: NewDesign
    draws: int
    intercept: np.ndarray | None  # (draws,)
    slopes: np.ndarray | None  # (draws, population-level columns)
    effects: tuple[np.ndarray | None, ...]  # per block: (draws, levels, columns kept) or None
    columns: tuple[np.ndarray, ...]  # per block: the block's columns kept
    arguments: dict  # the family's arguments besides mu and trials

    def block(self, what: str, rows: slice, rng: np.random.Generator | None = None) -> np.ndarray:
        """``what`` for the rows ``rows`` of the design, (draws, rows)."""
        design = self.design.take(rows)
        eta = self._linear_predictor(design)
        if what == "eta":
            return eta
        family: Family = self.spec.family
        if what == "mu":
            return family.mu(eta)
        arguments = dict(self.arguments)
        if family.response == "binomial":
            arguments["trials"] = design.trials[None, :]
        if what == "epred":
            return np.asarray(family.mean(family.mu(eta), **arguments), dtype=float)
        if what == "predict":
            return np.asarray(family.random(rng, family.mu(eta), **arguments))
        if design.y is None:
            raise DataError(
                "log_lik needs the response: newdata lacks the column(s) of "
                f"{', '.join(self.spec.formula.response)}"
            )
        values = np.asarray(family.log_density(design.y[None, :], family.mu(eta), **arguments), dtype=float)
        return values if design.weights is None else values * design.weights[None, :]

    def blocks(self, what: str, rng: np.random.Generator | None = None):
        """(rows, values) for consecutive blocks of rows of at most :data:`CHUNK_VALUES` values."""
        step = max(1, CHUNK_VALUES // max(self.draws, 1))
        for start in range(0, self.design.n, step):
            rows = slice(start, min(self.design.n, start + step))
            yield rows, self.block(what, rows, rng)

    def matrix(self, what: str, rng: np.random.Generator | None = None) -> np.ndarray:
        """``what`` for every row, (draws, rows), filled a block at a time (the result is the only
        array of that size)."""
        out = None
        for rows, values in self.blocks(what, rng):
            if out is None:
                out = np.empty((self.draws, self.design.n), dtype=values.dtype)
            out[:, rows] = values
        return np.empty((self.draws, 0)) if out is None else out

    def _linear_predictor(self, design: NewDesign) -> np.ndarray:
        """eta, (draws, rows): population part, offsets and the kept group-level columns. An ordinal
        family's eta has no intercept (its thresholds are apart)."""
        eta = np.zeros((self.draws, design.n))
        if self.intercept is not None:
            eta += self.intercept[:, None]
        if self.slopes is not None:
            eta += self.slopes @ design.X.T
        if design.offset is not None:
            eta += design.offset[None, :]
        for effects, columns, Z, J in zip(self.effects, self.columns, design.Z, design.J):
            if effects is None:
                continue
            for k, column in enumerate(columns):
                eta += Z[:, column] * effects[:, J, k]
        return eta


def prepare(spec: DesignSpec, posterior: dict, design: NewDesign, request: Request) -> Prediction:
    """The :class:`Prediction` of ``design``'s rows from ``posterior`` as ``request`` asks.

    Levels the fitting data did not have are an error naming them unless ``request.allow_new_levels``.
    """
    pick = functools.partial(_pick, request.draws)
    family: Family = spec.family
    rng = np.random.default_rng(request.seed)
    replacements: dict[str, np.ndarray] = {}  # factor -> (draws, new levels) existing level drawn
    effects, columns, J_all = [], [], list(design.J)
    for i, (block, keep) in enumerate(zip(spec.blocks, request.keep), start=1):
        kept = np.flatnonzero(keep)
        columns.append(kept)
        if not len(kept):
            effects.append(None)
            continue
        values = pick(flat(posterior, names.block(i).effects))  # (draws, levels, columns)
        J = design.J[i - 1]
        if (J < 0).any():
            values, J_all[i - 1] = _with_new_levels(
                i, block, values, J, design.labels[i - 1], posterior, request, rng, replacements
            )
        used, J_all[i - 1] = np.unique(J_all[i - 1], return_inverse=True)  # only the levels predicted for
        effects.append(np.ascontiguousarray(values[:, used][:, :, kept]))
    arguments: dict = {dpar.name: pick(flat(posterior, dpar.name))[:, None] for dpar in family.dpars}
    arguments |= family.options
    if family.ordinal:
        arguments["thresholds"] = pick(flat(posterior, names.INTERCEPT_AT_ZERO))[:, None, :]
    if family.response == "binomial" and design.trials is None:
        raise DataError(
            f"the {family.name} family needs each row's number of trials; newdata lacks the column(s) of "
            f"{spec.formula.trials or 'the response'}"
        )
    return Prediction(
        spec=spec,
        design=replace(design, J=tuple(J_all)),
        draws=_count(posterior, request),
        intercept=(
            pick(flat(posterior, names.INTERCEPT_AT_ZERO))
            if spec.has_intercept and not family.ordinal
            else None
        ),
        slopes=pick(flat(posterior, names.SLOPES)) if spec.fixed_columns else None,
        effects=tuple(effects),
        columns=tuple(columns),
        arguments=arguments,
    )


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


def summarize_rows(draws: np.ndarray, probs: tuple[float, ...], index) -> pd.DataFrame:
    """brms's per-row summary of (draws, rows): Estimate, Est.Error and quantiles."""
    return pd.DataFrame(results.summary_columns(draws, probs), index=index)


# ------------------------------------------------------------------------------------- helpers


def _count(posterior: dict, request: Request) -> int:
    return draw_count(posterior) if request.draws is None else len(request.draws)


def _pick(draws: np.ndarray | None, values: np.ndarray) -> np.ndarray:
    return values if draws is None else values[draws]


# ---------------------------------------------------------------------------- conditional effects


def reference_grid(
    frame: pd.DataFrame, spec: DesignSpec, effects: list[str], resolution: int, condition: dict | None = None
) -> pd.DataFrame:
    """Rows that vary the ``effects`` columns (numbers over their range, categories over their levels)
    and hold every other column at its mean (numbers) or first level (categories), as brms's
    ``conditional_effects``; binomial trials are 1 (effects on the probability scale). ``condition``
    holds columns at values of its own instead (trials too)."""
    condition = condition or {}
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
        if name in condition:
            grid[name] = condition[name]
        elif _numeric(values) and name not in grouping:
            grid[name] = values.mean()
        else:
            grid[name] = _levels(values)[0]
    for name in frame.columns:  # categories keep the fitting data's categories (their contrasts)
        values = frame[name]
        if isinstance(values.dtype, pd.CategoricalDtype):
            grid[name] = pd.Categorical(
                grid[name], categories=values.cat.categories, ordered=values.cat.ordered
            )
    if spec.formula.trials in grid.columns and spec.formula.trials not in condition:
        grid[spec.formula.trials] = 1.0
    return grid


def conditions_table(conditions, frame: pd.DataFrame, effects: list[str]) -> list[dict]:
    """``conditional_effects``'s ``conditions`` as a list of {column: value}: a DataFrame gives one
    condition per row; a dict of column -> value or list of values one per combination (brms's
    ``make_conditions``); None one condition holding nothing."""
    if conditions is None:
        return [{}]
    if isinstance(conditions, dict):
        values = {
            k: list(v) if isinstance(v, list | tuple | np.ndarray | pd.Series) else [v]
            for k, v in conditions.items()
        }
        conditions = pd.MultiIndex.from_product(list(values.values()), names=list(values)).to_frame(
            index=False
        )
    if not isinstance(conditions, pd.DataFrame):
        raise ArgumentError(
            "conditions must be a DataFrame (one condition per row) or a dict of column -> value(s); got "
            f"{type(conditions).__name__}"
        )
    for name in conditions.columns:
        if name not in frame.columns:
            raise ArgumentError(
                f"conditions: {name!r} is not a column the model uses; its columns are "
                f"{', '.join(frame.columns)}"
            )
        if name in effects:
            raise ArgumentError(f"conditions: {name!r} is the effect shown; condition on other columns")
    if conditions.empty:
        raise ArgumentError("conditions has no rows; pass None to hold the other columns at their defaults")
    return conditions.to_dict("records")


def condition_label(condition: dict) -> str:
    """``"x = 1, f = a"``, as brms's ``cond__``."""
    return ", ".join(f"{k} = {v:.3g}" if isinstance(v, float) else f"{k} = {v}" for k, v in condition.items())


def _numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _levels(values: pd.Series) -> list:
    if isinstance(values.dtype, pd.CategoricalDtype):
        return list(values.cat.categories)
    return sorted(pd.unique(values.dropna()), key=str)
