"""Stage 2: turn a FormulaSpec and a DataFrame into a reusable DesignSpec and a Design.

The :class:`DesignSpec` keeps everything needed to build the matrices again for new
data (formulaic model specs, the levels of every grouping factor); the :class:`Design`
holds the matrices for one data set.
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulaic import Formula, ModelSpec, model_matrix

from .errors import DataError, FormulaError
from .families import Family, Response, make_response
from .formula import FormulaSpec, GroupTerm

INTERCEPT = "Intercept"


@dataclass(frozen=True)
class GroupFactor:
    """A grouping factor (one column, or the interaction of several) and its levels."""

    columns: tuple[str, ...]
    levels: tuple[str, ...]

    @property
    def name(self) -> str:
        return ":".join(self.columns)

    def labels(self, data: pd.DataFrame) -> pd.Series:
        """The level label of each row (values joined by ':' for interactions)."""
        parts = [_as_labels(data[column]) for column in self.columns]
        labels = parts[0]
        for part in parts[1:]:
            labels = labels + ":" + part
        return labels

    def codes(self, data: pd.DataFrame) -> np.ndarray:
        """1-based level index of each row; unseen levels raise DataError."""
        labels = self.labels(data)
        lookup = pd.Series(np.arange(1, len(self.levels) + 1), index=pd.Index(self.levels))
        codes = labels.map(lookup)
        if codes.isna().any():
            unseen = sorted(set(labels[codes.isna()]))[:5]
            raise DataError(f"grouping factor {self.name!r} has levels not seen in fitting: {unseen}")
        return codes.to_numpy(dtype=np.int64)


@dataclass(frozen=True)
class GroupBlock:
    """Group-level coefficients sharing a grouping factor and a covariance structure.

    lme4's terms are gathered into blocks: a correlated term with several columns is one
    block; every uncorrelated or single-column term on the same factor joins a single
    block with one sd per column and no correlations, so ``(x || g)`` and
    ``(1 | g) + (0 + x | g)`` are the same model and the same program.
    """

    factor: GroupFactor
    specs: tuple[ModelSpec, ...]
    columns: tuple[str, ...]
    correlated: bool
    sources: tuple[str, ...]

    def matrix(self, data: pd.DataFrame) -> np.ndarray:
        return np.hstack([_evaluate(spec, data, source) for spec, source in zip(self.specs, self.sources)])


@dataclass(frozen=True)
class DesignSpec:
    """The formula's design, re-applicable to new data."""

    formula: FormulaSpec
    family: Family
    fixed_spec: ModelSpec
    fixed_columns: tuple[str, ...]  # without the intercept
    has_intercept: bool
    blocks: tuple[GroupBlock, ...]

    @property
    def coefficient_names(self) -> tuple[str, ...]:
        """Population-level coefficients, intercept first."""
        return ((INTERCEPT,) if self.has_intercept else ()) + self.fixed_columns

    @property
    def parameter_classes(self) -> dict[str, bool]:
        """Which prior classes the model has (brms's ``class`` column of ``get_prior``)."""
        return {
            "Intercept": self.has_intercept,
            "b": bool(self.fixed_columns),
            "sigma": self.family.has_sigma,
            "sd": bool(self.blocks),
            "cor": any(block.correlated for block in self.blocks),
        }

    def fixed_matrix(self, data: pd.DataFrame) -> np.ndarray:
        """Population-level design for ``data``, without the intercept column."""
        matrix = _evaluate(self.fixed_spec, data, f"fixed part {self.formula.fixed!r}")
        return matrix[:, 1:] if self.has_intercept else matrix


@dataclass(frozen=True, eq=False)
class Design:
    """The design matrices of one data set (rows with missing values removed)."""

    spec: DesignSpec
    response: Response
    X: np.ndarray
    Z: tuple[np.ndarray, ...]
    J: tuple[np.ndarray, ...]
    n_dropped: int = 0

    @property
    def n(self) -> int:
        return len(self.response.y)


def build_design(formula: FormulaSpec, family: Family, data: pd.DataFrame) -> Design:
    """Check ``data`` against the formula, drop incomplete rows, and build the design."""
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    used = _used_columns(formula, data)
    complete = _complete_rows(data, used)
    frame = data.loc[complete, used].reset_index(drop=True)

    fixed_spec, fixed = _materialize(formula.fixed, frame, f"fixed part {formula.fixed!r}")
    fixed_names = tuple(fixed_spec.column_names)
    has_intercept = INTERCEPT in fixed_names
    if has_intercept and fixed_names[0] != INTERCEPT:
        raise FormulaError(f"fixed part {formula.fixed!r}: the intercept must be its first column")
    response = make_response(family, _response_columns(formula, frame))
    blocks, Z = _gather_blocks(formula.group_terms, frame)
    codes = {block.factor.columns: block.factor.codes(frame) for block in blocks}  # once per factor
    spec = DesignSpec(
        formula=formula,
        family=family,
        fixed_spec=fixed_spec,
        fixed_columns=fixed_names[1:] if has_intercept else fixed_names,
        has_intercept=has_intercept,
        blocks=blocks,
    )
    return Design(
        spec=spec,
        response=response,
        X=fixed[:, 1:] if has_intercept else fixed,
        Z=Z,
        J=tuple(codes[block.factor.columns] for block in blocks),
        n_dropped=int((~complete).sum()),
    )


def _used_columns(formula: FormulaSpec, data: pd.DataFrame) -> list[str]:
    """Every data column the formula reads, in order; unknown names raise FormulaError."""
    needed: list[str] = []
    responses = [f"I({expression})" for expression in formula.response]
    expressions = [*responses, formula.fixed, *(t.expr for t in formula.group_terms)]
    for expression in expressions:
        try:
            variables = Formula(expression).required_variables
        except Exception as exc:  # formulaic's parser errors have several types
            raise FormulaError(f"cannot parse {expression!r}: {exc}") from None
        needed.extend(sorted(variables))
    for term in formula.group_terms:
        needed.extend(term.factors)
    columns = list(dict.fromkeys(needed))
    for column in columns:
        if column not in data.columns:
            close = difflib.get_close_matches(str(column), [str(c) for c in data.columns], n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise FormulaError(f"{column!r} in formula {formula.formula!r} is not a column of data{hint}")
    return columns


def _complete_rows(data: pd.DataFrame, columns: list[str]) -> np.ndarray:
    missing = data[columns].isna()
    for column in columns:
        if missing[column].all():
            raise DataError(f"column {column!r} has only missing values")
    incomplete = missing.any(axis=1).to_numpy()
    if incomplete.all():
        raise DataError("every row has a missing value in some column the formula uses")
    if incomplete.any():
        counts = missing.sum()
        detail = ", ".join(f"{c} ({int(n)})" for c, n in counts.items() if n)
        warnings.warn(
            f"dropped {int(incomplete.sum())} of {len(data)} rows with missing values in: {detail}",
            UserWarning,
            stacklevel=4,
        )
    return ~incomplete


def _materialize(expression: str, frame: pd.DataFrame, what: str) -> tuple[ModelSpec, np.ndarray]:
    """Evaluate ``expression`` with formulaic: its model spec (for new data) and its matrix."""
    try:
        with np.errstate(all="ignore"):  # non-finite results are reported below, by column
            matrix = model_matrix(expression, frame, na_action="ignore")
    except Exception as exc:  # formulaic raises many types; show its message, not its traceback
        raise FormulaError(f"cannot evaluate {what}: {exc}") from None
    values = np.asarray(matrix, dtype=float)
    _check_finite(values, tuple(matrix.model_spec.column_names), what)
    return matrix.model_spec, values


def _evaluate(spec: ModelSpec, frame: pd.DataFrame, what: str) -> np.ndarray:
    try:
        with np.errstate(all="ignore"):
            matrix = np.asarray(spec.get_model_matrix(frame, na_action="ignore"), dtype=float)
    except Exception as exc:
        raise DataError(f"cannot evaluate {what} on these data: {exc}") from None
    _check_finite(matrix, tuple(spec.column_names), what)
    return matrix


def _check_finite(matrix: np.ndarray, names: tuple[str, ...], what: str) -> None:
    bad = ~np.isfinite(matrix).all(axis=0)
    if bad.any():
        column = names[int(np.flatnonzero(bad)[0])]
        raise DataError(f"{what}: column {column!r} has infinite or undefined values (e.g. log of 0)")


def _response_columns(formula: FormulaSpec, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {expr: _response_values(expr, frame) for expr in formula.response}


def _response_values(expression: str, frame: pd.DataFrame) -> np.ndarray:
    if expression in frame.columns:
        column = frame[expression]
        if pd.api.types.is_bool_dtype(column):
            return column.to_numpy(dtype=np.int64)
        if pd.api.types.is_numeric_dtype(column):
            return column.to_numpy(dtype=float)
        levels = sorted(column.astype(str).unique())
        if len(levels) == 2:
            # two levels: the second (sorted) one is the event, as R's glm does
            return (column.astype(str) == levels[1]).to_numpy(dtype=np.int64)
        raise DataError(
            f"response {expression!r} is not numeric (dtype {column.dtype}, e.g. {levels[:3]}); "
            "convert it to numbers"
        )
    return _materialize(f"0 + I({expression})", frame, f"response {expression!r}")[1][:, 0]


def _gather_blocks(
    terms: tuple[GroupTerm, ...], frame: pd.DataFrame
) -> tuple[tuple[GroupBlock, ...], tuple[np.ndarray, ...]]:
    """The blocks of the group-level terms and, already evaluated, their matrices."""
    blocks: list[GroupBlock] = []
    matrices: list[np.ndarray] = []
    uncorrelated: dict[tuple[str, ...], int] = {}  # factor columns -> its uncorrelated block
    factors: dict[tuple[str, ...], GroupFactor] = {}
    for term in terms:
        spec, matrix = _materialize(term.expr, frame, f"group-level term {term.source}")
        columns = tuple(spec.column_names)
        if not columns:
            raise FormulaError(f"group-level term {term.source} has no columns; use '(1 | {term.group})'")
        if term.factors not in factors:
            factors[term.factors] = _group_factor(term, frame)
        factor = factors[term.factors]
        _check_no_duplicates(blocks, factor, columns, term)
        if term.correlated and len(columns) > 1:
            blocks.append(GroupBlock(factor, (spec,), columns, True, (term.source,)))
            matrices.append(matrix)
        elif term.factors in uncorrelated:
            index = uncorrelated[term.factors]
            old = blocks[index]
            blocks[index] = GroupBlock(
                factor, old.specs + (spec,), old.columns + columns, False, old.sources + (term.source,)
            )
            matrices[index] = np.hstack([matrices[index], matrix])
        else:
            uncorrelated[term.factors] = len(blocks)
            blocks.append(GroupBlock(factor, (spec,), columns, False, (term.source,)))
            matrices.append(matrix)
    return tuple(blocks), tuple(matrices)


def _check_no_duplicates(blocks, factor: GroupFactor, columns, term: GroupTerm) -> None:
    for block in blocks:
        if block.factor.columns != factor.columns:
            continue
        twice = set(block.columns) & set(columns)
        if twice:
            raise FormulaError(
                f"group-level term {term.source} repeats {sorted(twice)} for {factor.name!r}, "
                f"already in {', '.join(block.sources)}; each coefficient may vary by a factor once"
            )


def _group_factor(term: GroupTerm, frame: pd.DataFrame) -> GroupFactor:
    partial = GroupFactor(term.factors, ())
    levels = tuple(sorted(partial.labels(frame).unique()))
    if len(levels) < 2:
        raise DataError(
            f"grouping factor {term.group!r} in {term.source} has a single level ({levels[0]!r}); "
            "group-level effects need at least two levels"
        )
    return GroupFactor(term.factors, levels)


def _as_labels(column: pd.Series) -> pd.Series:
    """Grouping values as strings; whole floats lose their '.0' (a column read with NaN)."""
    if pd.api.types.is_float_dtype(column):
        whole = column.dropna()
        if (whole == np.round(whole)).all():
            return column.astype("Int64").astype(str).astype(object)
    return column.astype(str).astype(object)
