"""Stage 2: turn a FormulaSpec and a DataFrame into a reusable DesignSpec and a Design.

The :class:`DesignSpec` keeps everything needed to build the matrices again for new
data (formulaic model specs, the levels of every grouping factor); the :class:`Design`
holds the matrices for one data set.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import keyword
import numbers
import re
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from formulaic import Formula, ModelSpec, model_matrix
from formulaic.transforms import TRANSFORMS

from .errors import DataError, DesignWarning, FormulaError
from .families import Family, Response, make_response
from .formula import FormulaSpec, GroupTerm, Placeholders

INTERCEPT = "Intercept"


@dataclass(frozen=True)
class GroupFactor:
    """A grouping factor (one column, or the interaction of several) and its levels.

    ``levels`` are the labels (strings) of the levels; ``values`` the column's own values
    (with their type) for a single-column factor, else the labels. Interaction labels
    join the values with ':' (a ':' or '\\' inside a value is escaped with '\\'), so
    distinct combinations always get distinct labels.
    """

    columns: tuple[str, ...]
    levels: tuple[str, ...]
    values: tuple = ()

    @property
    def name(self) -> str:
        return ":".join(self.columns)

    def index(self) -> pd.Index:
        """The levels as a pandas Index named after the factor, in the column's own values."""
        return pd.Index(list(self.values or self.levels), name=self.name)

    def labels(self, data: pd.DataFrame) -> pd.Series:
        """The level label of each row (values joined by ':' for interactions)."""
        if len(self.columns) == 1:
            return _as_labels(data[self.columns[0]])
        parts = [_escape(_as_labels(data[column])) for column in self.columns]
        labels = parts[0]
        for part in parts[1:]:
            labels = labels + ":" + part
        return labels

    def positions(self, data: pd.DataFrame) -> np.ndarray:
        """0-based level index of each row, -1 for a level not among ``levels``."""
        lookup = pd.Series(np.arange(len(self.levels)), index=pd.Index(self.levels))
        return self.labels(data).map(lookup).fillna(-1).to_numpy(dtype=np.int64)

    def codes(self, data: pd.DataFrame) -> np.ndarray:
        """1-based level index of each row; unseen levels raise DataError."""
        positions = self.positions(data)
        if (positions < 0).any():
            unseen = sorted(set(self.labels(data)[positions < 0]))[:5]
            raise DataError(f"grouping factor {self.name!r} has levels not seen in fitting: {unseen}")
        return positions + 1


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
    offset_specs: tuple[ModelSpec, ...] = ()  # offset(...) terms, each one column

    @property
    def coefficient_names(self) -> tuple[str, ...]:
        """Population-level coefficients, intercept first."""
        return ((INTERCEPT,) if self.has_intercept else ()) + self.fixed_columns

    @property
    def center_names(self) -> tuple[str, ...]:
        """The population-level coefficients a group-level block may vary around: all of them,
        but for an ordinal family's intercept (a vector of thresholds)."""
        if self.family.ordinal:
            return self.fixed_columns
        return self.coefficient_names

    def offset(self, data: pd.DataFrame) -> np.ndarray | None:
        """The sum of the formula's ``offset(...)`` terms for ``data`` (None without any)."""
        if not self.offset_specs:
            return None
        parts = [_evaluate(spec, data, "offset")[:, 0] for spec in self.offset_specs]
        return np.sum(parts, axis=0)

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
    offset: np.ndarray | None = None  # added to the linear predictor (offset(...) terms)
    frame: pd.DataFrame | None = (
        None  # the columns used, rows complete (a reference grid's ranges and levels)
    )

    @property
    def n(self) -> int:
        return len(self.response.y)


def build_design(formula: FormulaSpec, family: Family, data: pd.DataFrame) -> Design:
    """Check ``data`` against the formula, drop incomplete rows, and build the design."""
    data = _checked_frame(data)
    formula = _translated(formula, tuple(data.columns), _ordered_columns(data))
    used = _used_columns(formula, data)
    grouping = {name for term in formula.group_terms for name in term.factors}
    frame = _clean_columns(data[used], formula, grouping)
    complete = _complete_rows(frame, used)
    frame = frame.loc[complete].reset_index(drop=True)
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = frame[column].cat.remove_unused_categories()  # as R's model.frame
    _check_factor_levels(frame, formula, grouping)

    fixed_spec, fixed = _materialize(formula.fixed, frame, f"fixed part {formula.fixed!r}")
    fixed_names = tuple(fixed_spec.column_names)
    has_intercept = INTERCEPT in fixed_names
    if has_intercept and fixed_names[0] != INTERCEPT:
        raise FormulaError(f"fixed part {formula.fixed!r}: the intercept must be its first column")
    if family.ordinal and not has_intercept:
        raise FormulaError(
            f"fixed part {formula.fixed!r}: the {family.name} family's thresholds take the intercept's "
            "place; remove '0 +' / '- 1' from the formula"
        )
    response = make_response(
        family,
        _response_columns(formula, frame, family),
        trials=_addition(formula.trials, "trials", frame),
        weights=_addition(formula.weights, "weights", frame),
    )
    blocks, Z = _gather_blocks(formula.group_terms, frame)
    offset_specs, offset = [], None
    for expression in formula.offsets:
        spec, values = _materialize(f"0 + I({expression})", frame, f"offset({expression})")
        offset_specs.append(spec)
        offset = values[:, 0] if offset is None else offset + values[:, 0]
    codes = {block.factor.columns: block.factor.codes(frame) for block in blocks}  # once per factor
    spec = DesignSpec(
        formula=formula,
        family=family,
        fixed_spec=fixed_spec,
        fixed_columns=fixed_names[1:] if has_intercept else fixed_names,
        has_intercept=has_intercept,
        blocks=blocks,
        offset_specs=tuple(offset_specs),
    )
    design = Design(
        spec=spec,
        response=response,
        X=fixed[:, 1:] if has_intercept else fixed,
        Z=Z,
        J=tuple(codes[block.factor.columns] for block in blocks),
        n_dropped=int((~complete).sum()),
        offset=offset,
        frame=frame,
    )
    _check_group_sizes(design)
    return design


def _checked_frame(data) -> pd.DataFrame:
    """``data`` as a DataFrame with unique string column names (a new object; never modified)."""
    if not isinstance(data, pd.DataFrame):
        kind = f"{type(data).__module__.split('.')[0]}.{type(data).__name__}"
        hint = ""
        if hasattr(data, "to_pandas"):
            hint = "; convert it with data.to_pandas()"
        elif hasattr(data, "to_native"):
            hint = "; convert it with data.to_native() (a pandas DataFrame underneath) or to_pandas()"
        elif isinstance(data, dict):
            hint = "; wrap it: pd.DataFrame(data)"
        raise DataError(f"data must be a pandas DataFrame, got {kind}{hint}")
    if isinstance(data.columns, pd.MultiIndex):
        raise DataError(
            "data has MultiIndex (hierarchical) column names; flatten them first, e.g. "
            "data.columns = ['_'.join(map(str, c)) for c in data.columns]"
        )
    if len(data) == 0:
        raise DataError("data has no rows")
    names = [str(column) for column in data.columns]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise DataError(f"data has more than one column named {twice[0]!r}; give every column its own name")
    if any(not isinstance(column, str) for column in data.columns):
        data = data.set_axis(names, axis=1)
    return data


def _used_columns(formula: FormulaSpec, data: pd.DataFrame) -> list[str]:
    """Every data column the formula reads, in order; unknown names raise FormulaError."""
    response_names: list[str] = []
    predictor_names: list[str] = []
    responses = [f"`{e}`" if e in data.columns else f"I({e})" for e in formula.response]
    for expression in responses:
        response_names.extend(_expression_columns(expression, data, formula.formula))
    addition_names: list[str] = []
    for expression in (formula.trials, formula.weights):
        if expression is not None:
            wrapped = f"`{expression}`" if expression in data.columns else f"I({expression})"
            addition_names.extend(_expression_columns(wrapped, data, formula.formula))
    offsets = [f"0 + I({offset})" for offset in formula.offsets]
    for expression in [formula.fixed, *offsets, *(t.expr for t in formula.group_terms)]:
        predictor_names.extend(_expression_columns(expression, data, formula.formula))
    for term in formula.group_terms:
        for name in term.factors:
            _check_column(name, data, formula.formula)
            predictor_names.append(name)
    both = sorted(set(response_names) & set(predictor_names))
    if both:
        raise FormulaError(
            f"{both[0]!r} is both the response and a predictor in {formula.formula!r}; "
            "a column cannot explain itself"
        )
    if INTERCEPT in predictor_names:
        raise FormulaError(
            f"data column {INTERCEPT!r} in {formula.formula!r} clashes with the intercept's name; "
            "rename the column (the intercept is included unless the formula says '0 +')"
        )
    return list(dict.fromkeys(response_names + addition_names + predictor_names))


_BACKTICK = re.compile(r"`([^`]*)`")
_KNOWN_CALLS = set(TRANSFORMS) | set(dir(builtins))
_R_CALLS = {"as.numeric": "I", "as.double": "I", "as.factor": "C", "factor": "C"}


def _ordered_columns(data: pd.DataFrame) -> frozenset[str]:
    return frozenset(
        c for c in data.columns if isinstance(data[c].dtype, pd.CategoricalDtype) and data[c].cat.ordered
    )


def _translated(
    formula: FormulaSpec, columns: tuple[str, ...], ordered: frozenset[str] = frozenset()
) -> FormulaSpec:
    """The formula's expressions in formulaic's Python dialect, R idioms translated.

    Ordered categorical predictors get polynomial contrasts (``.L``, ``.Q``, ...), as in R and brms.
    """
    bare = [response[1:-1] if _BACKTICK.fullmatch(response) else response for response in formula.response]

    def predictors(expression: str) -> str:
        return _polynomial_contrasts(_r_to_python(expression, columns), ordered)

    return replace(
        formula,
        response=tuple(r if r in columns else _r_to_python(r, columns) for r in bare),
        fixed=predictors(formula.fixed),
        group_terms=tuple(replace(t, expr=predictors(t.expr)) for t in formula.group_terms),
        offsets=tuple(_r_to_python(offset, columns) for offset in formula.offsets),
        trials=_addition_python(formula.trials, columns),
        weights=_addition_python(formula.weights, columns),
    )


def _addition_python(expression: str | None, columns: tuple[str, ...]) -> str | None:
    if expression is None:
        return None
    bare = expression[1:-1] if _BACKTICK.fullmatch(expression) else expression
    return bare if bare in columns else _r_to_python(bare, columns)


def _polynomial_contrasts(expression: str, ordered: frozenset[str]) -> str:
    """Bare references to ordered categorical columns -> ``C(name, contr.poly)``."""
    for name in ordered:
        if name.isidentifier():
            pattern = rf"(?<![\w.`])(?<!C\()(?<!C\( ){re.escape(name)}(?![\w.`(])"
            expression = re.sub(pattern, f"C({name}, contr.poly)", expression)
    return expression


def _r_to_python(expression: str, columns: tuple[str, ...]) -> str:
    """R's spellings as formulaic reads them.

    ``factor(f)`` -> ``C(f)``; ``TRUE``/``FALSE`` -> ``True``/``False``; ``^`` inside a
    function call (``I(x^2)``) -> ``**``; numpy functions formulaic does not know
    (``sqrt``, ``log1p``) -> ``np.<name>``; dotted column names (``Sepal.Length``) and
    backticked names are quoted for formulaic only where they must be.
    """
    placeholders = Placeholders()
    text = placeholders.mask(expression)
    for r_name, python_name in _R_CALLS.items():
        text = re.sub(rf"(?<![\w.]){re.escape(r_name)}\s*\(", f"{python_name}(", text)
    text = re.sub(
        r"(?<![\w.])[A-Za-z_.][\w.]*",
        lambda m: (
            placeholders.keep(m.group(0)) if "." in m.group(0) and m.group(0) in columns else m.group(0)
        ),
        text,
    )

    def call(match: re.Match) -> str:
        name = match.group(1)
        if name in columns or name in _KNOWN_CALLS:
            return match.group(0)
        if name == "factor":
            return "C("
        if callable(getattr(np, name, None)):
            return f"np.{name}("
        return match.group(0)

    text = re.sub(r"(?<![\w.])([A-Za-z_]\w*)\s*\(", call, text)
    text = re.sub(
        r"(?<![\w.])(TRUE|FALSE)(?![\w.])",
        lambda m: m.group(0) if m.group(0) in columns else m.group(0).title(),
        text,
    )
    pieces, inside_call = [], []
    for pos, char in enumerate(text):
        if char == "(":
            inside_call.append(bool(re.search(r"[\w.]\s*$", text[:pos])))
        elif char == "{":
            inside_call.append(True)
        elif char in ")}" and inside_call:
            inside_call.pop()
        pieces.append("**" if char == "^" and any(inside_call) else char)
    text = "".join(pieces)

    def unquote(name: str) -> str:
        plain = name.isidentifier() and not keyword.iskeyword(name) and name not in _KNOWN_CALLS
        return name if plain else f"`{name}`"

    return placeholders.restore(text, unquote)


_UNSUPPORTED_CALLS = {
    "offset": "offset() must be a term of its own, added with '+', e.g. 'y ~ x + offset(log(exposure))'",
    "weights": "weights are not supported yet",
}


def _expression_columns(expression: str, data: pd.DataFrame, formula: str) -> list[str]:
    """The data columns ``expression`` reads, arguments of stateful transforms included."""
    try:
        parsed = Formula(expression)
        required = set(parsed.required_variables)
        factors = [factor for term in parsed for factor in term.factors]
    except Exception as exc:  # formulaic's parser errors have several types
        raise FormulaError(f"cannot parse {expression!r} in {formula!r}: {_plain(exc)}") from None
    names: list[str] = []
    calls: set[str] = set()
    for factor in factors:
        if factor.eval_method.name == "LOOKUP":
            names.append(factor.expr)
        elif factor.eval_method.name == "PYTHON":
            variables, functions = _python_names(factor.expr)
            names.extend(variables)
            calls |= functions
    # formulaic reports `a.b` as the variable 'a': keep the whole name
    required = {r for r in required if not any(str(n).startswith(f"{r}.") for n in names)}
    for name in sorted(required & calls):
        if name not in data.columns and name not in _KNOWN_CALLS:
            if name in _UNSUPPORTED_CALLS:
                raise FormulaError(f"{name}() in {formula!r}: {_UNSUPPORTED_CALLS[name]}")
            raise FormulaError(
                f"unknown function {name!r} in {expression!r}; use a numpy function (e.g. log, exp, "
                "np.sqrt), scale, center, poly, C or I(...)"
            )
    columns = []
    for name in [*names, *sorted(required - calls)]:
        if name in data.columns:
            columns.append(name)
        elif name in required:
            _check_column(name, data, formula)
    return list(dict.fromkeys(columns))


def _python_names(expression: str) -> tuple[list[str], set[str]]:
    """Names read as values and names called as functions in a Python expression."""
    placeholders = Placeholders()
    try:
        tree = ast.parse(placeholders.mask(expression), mode="eval")
    except SyntaxError:
        return [], set()
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    attribute_bases = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    variables, functions = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            name = placeholders.names.get(node.id, node.id)
            if id(node) in called:
                functions.add(name)
            elif id(node) not in attribute_bases:
                variables.append(name)
    return variables, functions


def _check_column(name: str, data: pd.DataFrame, formula: str) -> None:
    if name in data.columns:
        return
    same_letters = [column for column in data.columns if column.lower() == name.lower()]
    close = list(dict.fromkeys(same_letters + difflib.get_close_matches(name, list(data.columns), n=3)))[:3]
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    raise FormulaError(f"{name!r} in formula {formula!r} is not a column of data{hint}")


def _clean_columns(frame: pd.DataFrame, formula: FormulaSpec, grouping: set[str]) -> pd.DataFrame:
    """A copy of the used columns with numbers stored as objects made numeric; bad columns raise.

    Grouping columns are labels and stay as they are. Other columns: complex numbers and
    datetimes are refused; an object column of numbers (with None for missing) becomes
    float; a column of many numbers and a few strings is refused, showing the strings.
    """
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_complex_dtype(values) or _holds(values, complex):
            raise DataError(f"column {column!r} holds complex numbers; use real numbers (e.g. the real part)")
        if _holds(values, (list, dict, set, tuple, np.ndarray)):
            raise DataError(
                f"column {column!r} holds lists, dicts or arrays; each cell must be one number or label "
                "(e.g. data.explode(column) for lists)"
            )
        if column in grouping:
            if pd.api.types.is_float_dtype(values) and np.isinf(values.to_numpy(dtype=float)).any():
                raise DataError(
                    f"grouping column {column!r} has infinite values; use labels (e.g. strings) for groups"
                )
            continue
        if (
            pd.api.types.is_datetime64_any_dtype(values)
            or pd.api.types.is_timedelta64_dtype(values)
            or isinstance(values.dtype, pd.PeriodDtype | pd.IntervalDtype)
            or _holds(values, (pd.Timestamp, pd.Period, pd.Interval))
        ):
            raise DataError(
                f"column {column!r} is a datetime; use a number (e.g. days since the first date: "
                f"(data[{column!r}] - data[{column!r}].min()).dt.days) or a category (its string)"
            )
        if values.dtype == object or (
            pd.api.types.is_string_dtype(values.dtype) and not isinstance(values.dtype, pd.CategoricalDtype)
        ):
            frame[column] = _numbers_or_labels(column, values)
            if isinstance(frame[column].dtype, pd.StringDtype):  # pd.NA-backed strings: plain objects
                frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def _check_factor_levels(frame: pd.DataFrame, formula: FormulaSpec, grouping: set[str]) -> None:
    """A categorical predictor needs two levels (lme4: contrasts need 2 or more levels)."""
    for column in frame.columns:
        if column in grouping or column in formula.response:
            continue
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            continue
        levels = pd.unique(values.dropna().astype(str))
        if len(levels) == 1:
            raise DataError(
                f"predictor {column!r} is categorical with a single level ({levels[0]!r}) in the rows used; "
                "it cannot be contrasted: drop it from the formula"
            )


def _holds(values: pd.Series, kind) -> bool:
    return values.dtype == object and any(isinstance(v, kind) for v in values.to_numpy())


def _numbers_or_labels(column: str, values: pd.Series) -> pd.Series:
    present = values.dropna()
    is_number = np.array(
        [
            isinstance(v, numbers.Number | np.number) and not isinstance(v, bool | np.bool_ | complex)
            for v in present
        ],
        dtype=bool,
    )
    if len(present) and is_number.all():
        return pd.to_numeric(values, errors="coerce").astype(float)
    parsed = pd.to_numeric(present.astype(str), errors="coerce")
    strays = present[parsed.isna().to_numpy()]
    mixed = is_number.any() and not is_number.all()
    looks_numeric = parsed.notna().mean() >= 0.8 and parsed.nunique() > 20 if len(present) else False
    if len(strays) and (mixed or looks_numeric):
        shown = ", ".join(repr(v) for v in pd.unique(strays)[:5])
        raise DataError(
            f"column {column!r} is mostly numbers but holds {len(strays)} value(s) that are not: {shown}; "
            "fix or remove them (or set them to missing), or convert the column to strings on purpose "
            "if it is a category"
        )
    if mixed:
        return values.map(lambda v: v if pd.isna(v) else str(v))
    return values


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
            DesignWarning,
            stacklevel=4,
        )
    return ~incomplete


def _materialize(expression: str, frame: pd.DataFrame, what: str) -> tuple[ModelSpec, np.ndarray]:
    """Evaluate ``expression`` with formulaic: its model spec (for new data) and its matrix."""
    try:
        with np.errstate(all="ignore"):  # non-finite results are reported below, by column
            matrix = model_matrix(expression, frame, na_action="ignore")
    except Exception as exc:  # formulaic raises many types; show its message, not its traceback
        raise FormulaError(f"cannot evaluate {what}: {_plain(exc)}") from None
    values = np.asarray(matrix, dtype=float)
    _check_finite(values, tuple(matrix.model_spec.column_names), what)
    return matrix.model_spec, values


def _evaluate(spec: ModelSpec, frame: pd.DataFrame, what: str) -> np.ndarray:
    try:
        with np.errstate(all="ignore"):
            matrix = np.asarray(spec.get_model_matrix(frame, na_action="ignore"), dtype=float)
    except Exception as exc:
        raise DataError(f"cannot evaluate {what} on these data: {_plain(exc)}") from None
    _check_finite(matrix, tuple(spec.column_names), what)
    return matrix


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_UNDEFINED_NAME = re.compile(r"name '([^']+)' is not defined")

#: Larger magnitudes overflow Stan's and numpy's arithmetic (squares exceed 1e308).
LARGEST_VALUE = 1e100


def _plain(exc: Exception) -> str:
    """A formulaic or numpy error message without terminal colour codes."""
    text = _ANSI.sub("", str(exc))
    undefined = _UNDEFINED_NAME.search(text)
    if undefined:
        return f"unknown function or name {undefined.group(1)!r} ({text})"
    return text


def _check_finite(matrix: np.ndarray, names: tuple[str, ...], what: str) -> None:
    bad = ~np.isfinite(matrix).all(axis=0)
    if bad.any():
        column = names[int(np.flatnonzero(bad)[0])]
        raise DataError(
            f"{what}: column {column!r} has infinite or undefined values (e.g. log of 0); "
            "remove those rows or transform the column"
        )
    huge = (np.abs(matrix) > LARGEST_VALUE).any(axis=0)
    if huge.any():
        column = names[int(np.flatnonzero(huge)[0])]
        raise DataError(
            f"{what}: column {column!r} has values beyond +-1e100; rescale it (e.g. divide by 1e6)"
        )


def _addition(expression: str | None, name: str, frame: pd.DataFrame) -> tuple[str, np.ndarray] | None:
    """The (expression, values) of an addition term ``y | name(expression)``, or None.

    ``expression`` is already translated (:func:`_addition_python`): a bare column name or
    an expression for formulaic.
    """
    if expression is None:
        return None
    if expression in frame.columns and not pd.api.types.is_numeric_dtype(frame[expression]):
        raise DataError(
            f"{name}({expression}): column {expression!r} is not numeric (dtype {frame[expression].dtype}); "
            f"{name}() takes numbers"
        )
    if expression in frame.columns:
        return expression, frame[expression].to_numpy(dtype=float)
    return expression, _materialize(f"0 + I({expression})", frame, f"{name}({expression})")[1][:, 0]


def _response_columns(formula: FormulaSpec, frame: pd.DataFrame, family: Family) -> dict[str, np.ndarray]:
    return {expr: _response_values(expr, frame, family) for expr in formula.response}


def _response_values(expression: str, frame: pd.DataFrame, family: Family) -> np.ndarray:
    if expression not in frame.columns:
        return _materialize(f"0 + I({expression})", frame, f"response {expression!r}")[1][:, 0]
    column = frame[expression]
    binary = family.response in ("binary", "binomial")
    if pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.int64)
    if family.ordinal and isinstance(column.dtype, pd.CategoricalDtype) and column.cat.ordered:
        return column.cat.remove_unused_categories().cat.codes.to_numpy(dtype=float) + 1
    if family.ordinal and not pd.api.types.is_numeric_dtype(column):
        levels = list(pd.unique(column.astype(str)))[:5]
        raise DataError(
            f"response {expression!r} has unordered categories ({', '.join(map(repr, levels))}, ...); the "
            f"{family.name} family needs their order: make it an ordered categorical, e.g. "
            f"data[{expression!r}] = pd.Categorical(data[{expression!r}], categories=[lowest, ..., highest], "
            "ordered=True), or code them 1, 2, ..., K"
        )
    if isinstance(column.dtype, pd.CategoricalDtype):
        levels = list(column.cat.remove_unused_categories().cat.categories)
    elif pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            raise DataError(
                f"response {expression!r} has {int(bad.sum())} infinite value(s) (e.g. {values[bad][0]}); "
                "remove those rows or set them to missing"
            )
        if (np.abs(values) > LARGEST_VALUE).any():
            raise DataError(f"response {expression!r} has values beyond +-1e100; rescale it")
        return values
    else:
        levels = sorted(column.astype(str).unique())
    if binary and len(levels) == 2:
        # as R's glm: the first level is the failure, the second (last declared) the event
        return (column.astype(str) == str(levels[1])).to_numpy(dtype=np.int64)
    if binary:
        raise DataError(
            f"response {expression!r}: the {family.name} family needs two levels or 0/1; "
            f"found {len(levels)} levels: {[str(level) for level in levels[:5]]}"
        )
    parsed = pd.to_numeric(column.astype(str), errors="coerce")
    offending = list(pd.unique(column[parsed.isna().to_numpy()]))[:5]
    raise DataError(
        f"response {expression!r} is not numeric (dtype {column.dtype}): values such as "
        f"{', '.join(map(repr, offending or list(column[:3])))}; convert it to numbers"
        + (" (or use family='bernoulli' for a two-level response)" if len(levels) == 2 else "")
    )


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
    labels = GroupFactor(term.factors, ()).labels(frame)
    levels: tuple[str, ...]
    values: tuple = ()
    if len(term.factors) == 1:
        column = frame[term.factors[0]]
        if isinstance(column.dtype, pd.CategoricalDtype):
            present = column.cat.remove_unused_categories().cat.categories
            values = tuple(present)
        else:
            unique = pd.unique(column.to_numpy())
            try:
                values = tuple(sorted(unique))
            except TypeError:  # mixed types: order by label
                values = tuple(sorted(unique, key=str))
        levels = tuple(_as_labels(pd.Series(values, dtype=column.dtype)).tolist())
        if len(set(levels)) != len(levels) or set(levels) != set(labels):  # e.g. 1 and "1", True and 1
            levels, values = tuple(sorted(labels.unique())), ()
        values = tuple(v.item() if isinstance(v, np.generic) else v for v in values)
    else:
        levels = tuple(sorted(labels.unique()))
    if len(levels) < 2:
        raise DataError(
            f"grouping factor {term.group!r} in {term.source} has a single level ({levels[0]!r}); "
            "group-level effects need at least two levels"
        )
    return GroupFactor(term.factors, levels, values)


def _check_group_sizes(design: Design) -> None:
    """lme4's checks for a model with a residual sd: fewer levels, and fewer effects, than observations."""
    if not design.spec.family.has_sigma:
        return
    for block in design.spec.blocks:
        levels = len(block.factor.levels)
        if levels >= design.n:
            raise DataError(
                f"grouping factor {block.factor.name!r} has as many levels ({levels}) as observations "
                f"({design.n}): its effects cannot be told apart from the residual; remove "
                f"{' + '.join(block.sources)} or use a coarser grouping"
            )
        if levels * len(block.columns) >= design.n:
            raise DataError(
                f"{' + '.join(block.sources)} has {levels * len(block.columns)} group-level coefficients "
                f"for {design.n} observations; drop some of its terms"
            )


def _escape(labels: pd.Series) -> pd.Series:
    return labels.str.replace("\\", "\\\\", regex=False).str.replace(":", "\\:", regex=False)


def _as_labels(column: pd.Series) -> pd.Series:
    """Grouping values as strings; whole floats lose their '.0' (a column read with NaN)."""
    if pd.api.types.is_float_dtype(column):
        whole = column.dropna()
        if np.isfinite(whole).all() and (whole == np.round(whole)).all() and (whole.abs() < 2**53).all():
            return column.astype("Int64").astype(str).astype(object)
    return column.astype(str).astype(object)


def dependent_columns(design: Design) -> list[str]:
    """Population-level columns that are constant (beside an intercept) or a linear
    combination of the columns before them; lme4 drops these ("rank deficient")."""
    spec = design.spec
    columns = [np.ones(design.n)] if spec.has_intercept else []
    kept: list[np.ndarray] = list(columns)
    dependent = []
    for name, column in zip(spec.fixed_columns, design.X.T):
        largest = np.abs(column).max() if len(column) else 0.0
        column = column / largest if largest > 0 else column
        scale = np.linalg.norm(column)
        if scale == 0:
            dependent.append(name)
            continue
        if kept:
            basis = np.column_stack(kept)
            coefficients = np.linalg.lstsq(basis, column, rcond=None)[0]
            if np.linalg.norm(column - basis @ coefficients) <= 1e-8 * scale:
                dependent.append(name)
                continue
        kept.append(column)
    return dependent


def check_identifiable(design: Design, flat_slopes: bool) -> None:
    """Refuse (flat prior on b) or flag (proper prior) slopes the data cannot tell apart."""
    dependent = dependent_columns(design)
    if not dependent:
        return
    n, p = design.n, len(design.spec.coefficient_names)
    why = f"there are fewer rows ({n}) than population-level coefficients ({p}), so " if n < p else ""
    message = (
        f"{why}population-level column(s) {dependent} are constant or a linear combination of other "
        f"columns in {design.spec.formula.fixed!r}"
    )
    if flat_slopes:
        raise DataError(
            f"{message}; under the default flat prior on 'b' the posterior is improper. Drop them from "
            "the formula, or give 'b' a proper prior, e.g. priors={'b': 'normal(0, 5)'}"
        )
    warnings.warn(f"{message}; only the prior on 'b' tells them apart", DesignWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------- new data


@dataclass(frozen=True, eq=False)
class NewDesign:
    """The design of data to predict for, through a fitted model's :class:`DesignSpec`.

    ``Z`` and ``J`` have an entry per block of the spec (None for a block left out);
    ``J`` counts levels from 0, and -1 marks a level the fitting data did not have, whose
    label is in ``labels``. ``y``, ``trials`` and ``weights`` are there when the data have
    the columns. ``kept`` marks the data's rows used (rows with missing values are dropped).
    """

    X: np.ndarray
    Z: tuple[np.ndarray | None, ...]
    J: tuple[np.ndarray | None, ...]
    labels: tuple[np.ndarray | None, ...]
    offset: np.ndarray | None
    y: np.ndarray | None
    trials: np.ndarray | None
    weights: np.ndarray | None
    kept: np.ndarray

    @property
    def n(self) -> int:
        return len(self.X)

    def take(self, rows: slice) -> NewDesign:
        """The design of rows ``rows`` only."""

        def cut(values):
            return None if values is None else values[rows]

        return NewDesign(
            X=self.X[rows],
            Z=tuple(cut(z) for z in self.Z),
            J=tuple(cut(j) for j in self.J),
            labels=tuple(cut(label) for label in self.labels),
            offset=cut(self.offset),
            y=cut(self.y),
            trials=cut(self.trials),
            weights=cut(self.weights),
            kept=self.kept,
        )


def fitted_new_design(design: Design) -> NewDesign:
    """The fitting data's design in the form predictions take."""
    return NewDesign(
        X=design.X,
        Z=design.Z,
        J=tuple(j - 1 for j in design.J),
        labels=tuple(None for _ in design.J),
        offset=design.offset,
        y=design.response.y,
        trials=design.response.trials,
        weights=design.response.weights,
        kept=np.ones(design.n, dtype=bool),
    )


def new_design(spec: DesignSpec, data, blocks: tuple[bool, ...]) -> NewDesign:
    """The design of ``data`` (new rows) for the blocks marked True in ``blocks``.

    Stateful transforms (centering, scaling, splines, factor levels) reuse the fitting data's
    state. A population-level factor's unseen level is an error naming the column; a grouping
    factor's unseen level is marked -1 in ``J`` (the caller decides). Rows with a missing value in
    a column the predictions need are dropped with a :class:`DesignWarning` that counts them.
    """
    data = _checked_frame(data)
    formula = spec.formula
    text = formula.formula
    used_blocks = [block for block, use in zip(spec.blocks, blocks) if use]
    kept_sources = {source for block in used_blocks for source in block.sources}
    predictors: list[str] = []
    offsets = [f"0 + I({offset})" for offset in formula.offsets]
    terms = [term.expr for term in formula.group_terms if term.source in kept_sources]
    for expression in [formula.fixed, *offsets, *terms]:
        predictors.extend(_expression_columns(expression, data, text))
    grouping = {name for block in used_blocks for name in block.factor.columns}
    for name in sorted(grouping):
        _check_column(name, data, text)
    # the response and weights only when present (log_lik needs them); trials are needed like predictors
    present = _present_columns(formula, data)
    needed = list(dict.fromkeys(predictors + sorted(grouping) + present.get(formula.trials, [])))
    used = list(dict.fromkeys(needed + [c for columns in present.values() for c in columns]))
    frame = _clean_columns(data[used], formula, grouping)
    complete = _complete_rows(frame, needed) if needed else np.ones(len(frame), dtype=bool)
    frame = frame.loc[complete].reset_index(drop=True)
    X = _evaluate_new(spec.fixed_spec, frame, f"fixed part {formula.fixed!r}")
    X = X[:, 1:] if spec.has_intercept else X
    Z, J, labels = [], [], []
    for block, use in zip(spec.blocks, blocks):
        if not use:
            Z.append(None), J.append(None), labels.append(None)
            continue
        Z.append(np.hstack([_evaluate_new(s, frame, src) for s, src in zip(block.specs, block.sources)]))
        J.append(block.factor.positions(frame))
        labels.append(block.factor.labels(frame).to_numpy(dtype=object))
    offset = None
    if spec.offset_specs:
        parts = [_evaluate_new(s, frame, "offset")[:, 0] for s in spec.offset_specs]
        offset = np.sum(parts, axis=0)
    y = trials = weights = None
    has_response = all(e in present for e in formula.response)
    if has_response and frame[_flat(present, formula.response)].notna().all(axis=None):
        # the response as it is (no fitting checks: one row, or a constant one, is a fine thing to predict)
        columns = list(_response_columns(formula, frame, spec.family).values())
        y = np.asarray(columns[0], dtype=float)
        if len(columns) == 2:  # cbind(successes, failures)
            trials = y + np.asarray(columns[1], dtype=float)
    if trials is None and formula.trials in present:
        trials = _addition(formula.trials, "trials", frame)[1]
    if formula.weights in present and frame[present[formula.weights]].notna().all(axis=None):
        weights = _addition(formula.weights, "weights", frame)[1]
    if trials is not None:
        trials = np.asarray(trials, dtype=float)
        if not (np.isfinite(trials).all() and (trials >= 0).all() and (trials == np.round(trials)).all()):
            raise DataError("binomial trials in newdata must be whole numbers >= 0")
        trials = trials.astype(np.int64)
    return NewDesign(X, tuple(Z), tuple(J), tuple(labels), offset, y, trials, weights, complete)


def _present_columns(formula: FormulaSpec, data: pd.DataFrame) -> dict[str, list[str]]:
    """Of the response, trials and weights expressions, those whose columns ``data`` has, with the
    columns (predictions work without them)."""
    present: dict[str, list[str]] = {}
    for expression in (*formula.response, formula.trials, formula.weights):
        if expression is None:
            continue
        wrapped = f"`{expression}`" if expression in data.columns else f"I({expression})"
        try:
            present[expression] = _expression_columns(wrapped, data, formula.formula)
        except FormulaError:
            continue  # not in these data
    return present


def _flat(present: dict[str, list[str]], expressions) -> list[str]:
    return [column for expression in expressions for column in present[expression]]


_OUTSIDE_LEVELS = re.compile(r"outside of the nominated levels.*?: (\{.*?\})")


def _evaluate_new(spec: ModelSpec, frame: pd.DataFrame, what: str) -> np.ndarray:
    """:func:`_evaluate` for new data: a categorical predictor's level not seen in fitting is an error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        matrix = _evaluate(spec, frame, what)
    for warning in caught:
        found = _OUTSIDE_LEVELS.search(str(warning.message))
        if not found:  # not ours to judge: pass it on
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
            continue
        shown = found.group(1)
        columns = [
            c
            for c in frame.columns
            if not pd.api.types.is_numeric_dtype(frame[c])
            and any(repr(v) in shown or str(v) in shown for v in pd.unique(frame[c].dropna()))
        ]
        where = f"column {columns[0]!r}" if columns else "a categorical predictor"
        raise DataError(
            f"{what}: {where} has levels {shown} that the fitting data did not have; a population-level "
            "factor can only take its fitted levels (drop those rows)"
        )
    return matrix
