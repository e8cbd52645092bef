"""Stage 3: render the Stan program from the Jinja templates, and build its data."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import jinja2
import numpy as np

from . import __version__, names
from .design import INTERCEPT, Design, DesignSpec, GroupBlock
from .nesting import nested_in, parent_levels
from .parameterization import BlockParameterization
from .priors import PriorCode, Priors, scalar_prior, vector_priors


@dataclass(frozen=True)
class BlockCode:
    """What the templates need to know about one group-level block.

    The program does not depend on the block's parameterization (a data switch picks
    it); ``parameterization`` only labels the program's header comment.
    """

    index: int
    template: str
    parameterization: str
    correlated: bool
    center: str | None  # Stan expression of what the columns vary around, if any
    level_center: str | None  # and of each level's share of the population-level part (intercept first)
    intercept_first: bool  # the first column is the intercept (all ones): no multiplication
    parent: names.BlockNames | None  # of a block nested in another: that block's names
    level_predictors: bool  # has level-constant predictors data (G_i): intercept first, and slopes
    parent_factor: str | None  # the factor of the block it is nested in (for comments)
    sweep: bool  # has sweep weights: its intercepts' mean can be swept into the population intercept
    n_columns: int
    factor: str
    sources: str
    columns: str

    @property
    def names(self) -> names.BlockNames:
        """The block's Stan names (:mod:`lmmformula.names`)."""
        return names.block(self.index)


def comment_safe(text: object) -> str:
    """``text`` made safe for a ``//`` or ``/* */`` comment of the program.

    User strings (formula, column names, factor levels) reach the program's comments only
    through this function: line breaks, other control and invisible characters become
    visible escapes (``\\n``, ``\\u2028``) and comment delimiters are broken up, so no
    string can end a comment and add code.
    """
    pieces = []
    for char in str(text):
        if char == "\n":
            pieces.append("\\n")
        elif char == "\r":
            pieces.append("\\r")
        elif char == "\t":
            pieces.append(" ")
        elif char != " " and unicodedata.category(char)[0] in "CZ":
            pieces.append(f"\\u{ord(char):04x}")
        else:
            pieces.append(char)
    safe = "".join(pieces)
    while "*/" in safe or "/*" in safe:
        safe = safe.replace("*/", "* /").replace("/*", "/ *")
    return safe


def templates_dir() -> Path:
    """The templates: inside the installed package, or top-level in a source checkout."""
    installed = resources.files("lmmformula") / "templates"
    if installed.is_dir():
        return Path(str(installed))
    return Path(__file__).resolve().parent.parent / "templates"


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def prior_code(spec: DesignSpec, priors: Priors, intercept: str = names.INTERCEPT) -> list[PriorCode]:
    """The program's prior statements and their data, in a fixed order: intercept (the Stan name
    ``intercept``), slopes, the family's parameters, then each block's sds and correlations. Flat priors
    have no statement."""
    out = []
    if priors.intercept is not None and priors.intercept.distribution != "flat":
        out.append(scalar_prior(intercept, names.prior_stem("Intercept"), priors.intercept))
    if spec.fixed_columns:
        out += vector_priors(
            names.SLOPES, names.SLOPE_COUNT, lambda d: names.prior_stem("b", None, d), priors.b
        )
    for name, prior in priors.dpars:
        out.append(scalar_prior(name, names.prior_stem(name), prior))
    for i, (sd, cor) in enumerate(zip(priors.sd, priors.cor), start=1):
        block_names = names.block(i)
        out += vector_priors(
            block_names.sd, block_names.columns, lambda d, i=i: names.prior_stem("sd", i, d), sd
        )
        if cor is not None:
            out.append(scalar_prior(block_names.cholesky, names.prior_stem("cor", i), cor))
    return out


def block_codes(design: Design, parameterizations: tuple[BlockParameterization, ...]) -> list[BlockCode]:
    """Per block: its template, its center and how its columns enter the linear predictor."""
    spec = design.spec
    coefficients = _coefficients(spec)[0]
    sweeping = sweeps(spec)
    parents = nested_in(design)
    return [
        _block_code(
            i,
            block,
            parameterization,
            coefficients,
            bool(spec.fixed_columns),
            sweeping,
            parent,
            None if parent is None else spec.blocks[parent].factor.name,
        )
        for i, (block, parameterization, parent) in enumerate(
            zip(spec.blocks, parameterizations, parents), start=1
        )
    ]


def parents_first(blocks: list[BlockCode]) -> list[BlockCode]:
    """The blocks in an order in which every block comes after the block it is nested in (whose effects
    its centers read)."""
    depth = {}
    by_index = {block.index: block for block in blocks}

    def depth_of(block: BlockCode) -> int:
        if block.index not in depth:
            depth[block.index] = 0 if block.parent is None else 1 + depth_of(by_index[block.parent.index])
        return depth[block.index]

    return sorted(blocks, key=lambda block: (depth_of(block), block.index))


def render_code(design: Design, parameterizations: tuple[BlockParameterization, ...], priors: Priors) -> str:
    """The Stan program for ``design``; data sizes and prior numbers stay in the data."""
    spec = design.spec
    blocks = block_codes(design, parameterizations)
    code = (
        _environment()
        .get_template("model.stan.j2")
        .render(
            version=__version__,
            formula=comment_safe(spec.formula.formula),
            family=spec.family,
            family_label=comment_safe(spec.family),
            has_intercept=spec.has_intercept,
            intercept_in_mu=spec.has_intercept and not spec.family.ordinal,
            has_slopes=bool(spec.fixed_columns),
            has_offset=bool(spec.offset_specs),
            has_weights=spec.formula.weights is not None,
            design_matrix="Xc" if spec.has_intercept else "X",
            n_coefficients=_coefficients(spec)[1],
            blocks=blocks,
            blocks_parents_first=parents_first(blocks),
            correlated_blocks=[block for block in blocks if block.correlated],
            swept_blocks=[block for block in blocks if block.sweep],
            swept=names.SWEPT,
            csr=names.SPARSE,
            sparse=sparse_sum(
                spec, blocks, names.INTERCEPT_LOCAL if any(b.sweep for b in blocks) else names.INTERCEPT
            ),
            intercept_local=names.INTERCEPT_LOCAL,
            priors=prior_code(
                spec, priors, names.INTERCEPT_LOCAL if any(b.sweep for b in blocks) else names.INTERCEPT
            ),
            slopes_bounded=priors.bounded,
            slope_bounds=(names.SLOPE_LOWER, names.SLOPE_UPPER),
            prior_only=names.PRIOR_ONLY,
        )
    )
    return re.sub(r"\n\s*\n", "\n", code).strip() + "\n"


def build_data(design: Design, parameterizations: tuple[BlockParameterization, ...], priors: Priors) -> dict:
    """The Stan data matching :func:`render_code`."""
    spec = design.spec
    data: dict = {names.ROWS: design.n, names.RESPONSE: design.response.y}
    if design.response.trials is not None:
        data[names.TRIALS] = design.response.trials
    if spec.family.ordinal:
        data[names.THRESHOLD_COUNT] = int(design.response.y.max()) - 1
    if design.response.weights is not None:
        data[names.WEIGHTS] = design.response.weights
    if design.offset is not None:
        data[names.OFFSETS] = design.offset
    if spec.fixed_columns:
        data[names.SLOPE_COUNT] = len(spec.fixed_columns)
        data[names.DESIGN] = design.X
    for i, (block, code, choice, Z, J) in enumerate(
        zip(spec.blocks, block_codes(design, parameterizations), parameterizations, design.Z, design.J),
        start=1,
    ):
        block_names = names.block(i)
        data[block_names.levels] = len(block.factor.levels)
        data[block_names.columns] = len(block.columns)
        data[block_names.level_of] = J
        data[block_names.design] = Z
        data[block_names.centered] = choice.centered_columns(block.columns)
        if code.center:
            data[block_names.center_map] = center_map(
                block, spec.center_names, choice.centers, column_means(design)
            )
        if code.level_predictors:
            data[block_names.level_center_map] = level_center_map(design, i - 1, choice.level_centers)
        if code.sweep:
            data[block_names.sweep_weights] = sweep_weights(J, len(block.factor.levels), choice.swept)
        if code.parent is not None:
            data[block_names.parent_switch] = float(choice.parent is not None)
            data[block_names.parent_level] = parent_levels(design, i - 1, code.parent.index - 1)
    if priors.bounded:
        data[names.SLOPE_LOWER] = np.array([lb for lb, _ in priors.b_bounds], dtype=float)
        data[names.SLOPE_UPPER] = np.array([ub for _, ub in priors.b_bounds], dtype=float)
    for prior in prior_code(spec, priors):
        data.update(prior.stan_data())
    data[names.PRIOR_ONLY] = 0
    return data


def center_map(
    block: GroupBlock, coefficients: tuple[str, ...], centers: tuple[str, ...], means: dict[str, float]
) -> np.ndarray:
    """Row m: the linear combination of the population-level coefficients (at the means of the
    predictors: ``Intercept``, then ``b``) that column m varies around.

    Only the columns in ``centers`` vary around their population-level coefficient; the rows of
    the others are zero (they vary around zero). The intercept's row also subtracts ``mean * b``
    for each slope of the block that is centered on its coefficient: the block's intercept is the
    level's value at zero of its own slopes and at the means of every other predictor, so that a
    level's centered intercept does not move with the coefficients of predictors outside the
    block (``means``: each population-level column's mean, empty for a model without an intercept).
    """
    rows = np.array(
        [[float(column == name and column in centers) for name in coefficients] for column in block.columns]
    )
    if block.columns[0] == INTERCEPT:
        for column in block.columns[1:]:
            if column in centers and column in coefficients:
                rows[0, coefficients.index(column)] -= means.get(column, 0.0)
    return rows


def sweep_weights(J: np.ndarray, levels: int, swept: bool) -> np.ndarray:
    """Each level's weight in the block's mean intercept, in proportion to its rows (zeros: the
    block is not swept). Levels with more rows have better-determined intercepts, so this mean
    is the one the likelihood pins down best."""
    if not swept:
        return np.zeros(levels)
    counts = np.bincount(np.asarray(J) - 1, minlength=levels).astype(float)
    return counts / counts.sum()


def level_center_map(design: Design, block: int, names_: tuple[str, ...]) -> np.ndarray:
    """Levels x population-level coefficients: each level's value of the columns in ``names_``
    (constant within levels, checked by the parameterization) minus the column's mean, zero
    elsewhere. Centered like the population-level design, so that the coefficient of a group-level
    predictor far from zero (an age, a score) moves the levels' intercepts apart, not all together."""
    spec = design.spec
    J = design.J[block] - 1
    means = column_means(design)
    values = np.zeros((len(spec.blocks[block].factor.levels), len(spec.center_names)))
    for name in names_:
        column = design.X[:, spec.fixed_columns.index(name)]
        values[J, spec.center_names.index(name)] = column - means.get(name, 0.0)
    return values


def column_means(design: Design) -> dict[str, float]:
    """The means the program centers the population-level design at (``means_X``; none without an
    intercept, where the program uses ``X`` itself)."""
    if not design.spec.has_intercept:
        return {}
    return dict(zip(design.spec.fixed_columns, design.X.mean(axis=0).tolist()))


@dataclass(frozen=True)
class SparseSum:
    """How the program's one sparse product lays out the intercept and the group-level part.

    The intercept rides on the first block's intercepts when that block has them (``folded``);
    else, when the linear predictor has an intercept, it has a column of its own
    (``intercept_column``). ``coefficients`` is the Stan vector the sparse matrix multiplies:
    the intercept, then each block's effects column by column (``to_vector(r_i)``).
    """

    intercept_column: bool
    folded: bool
    coefficients: str


def sparse_sum(spec: DesignSpec, blocks: list[BlockCode], intercept: str) -> SparseSum | None:
    """The program's sparse product (None: the linear predictor is gathered, :func:`sums_sparsely`);
    ``intercept`` is the Stan name of the intercept at the means of the predictors."""
    if not sums_sparsely(spec):
        return None
    in_mu = spec.has_intercept and not spec.family.ordinal
    folded = in_mu and blocks[0].intercept_first
    parts = [f"to_vector({block.names.effects})" for block in blocks]
    if folded:
        first = blocks[0].names
        parts[0] = f"{intercept} + {first.effects}[:, 1]"
        if blocks[0].n_columns > 1:
            parts[0] = f"append_row({parts[0]}, to_vector({first.effects}[:, 2:{first.columns}]))"
    elif in_mu:
        parts.insert(0, intercept)
    coefficients = parts[-1]
    for part in reversed(parts[:-1]):
        coefficients = f"append_row({part}, {coefficients})"
    return SparseSum(intercept_column=in_mu and not folded, folded=folded, coefficients=coefficients)


def sums_sparsely(spec: DesignSpec) -> bool:
    """Whether the program sums the intercept and the group-level part of the linear predictor by one
    sparse product (``csr_matrix_times_vector``) rather than gathering it.

    Gathering starts from the first block's intercepts, indexed per row
    (``(Intercept + r_1[:, 1])[J_1]``, no new autodiff node per row), and adds every other column as
    a vector, each addition an autodiff node per row. The sparse product makes one node per row
    for the whole sum but costs more per entry (Stan checks and copies its indices on every call).
    Measured per leapfrog step (docs/parameterization.md): with one vector to add (coffee's
    slope, a second crossed intercept) gathering is cheaper by 7-15 %; with two or more
    (InstEval's three intercept blocks) the product costs two thirds. So: the product when
    gathering would add two vectors or more.
    """
    added = sum(len(block.columns) for block in spec.blocks)
    if spec.blocks and spec.blocks[0].columns[0] == INTERCEPT:
        added -= 1
    return added >= 2


def sweeps(spec: DesignSpec) -> bool:
    """Whether the program can sweep group intercepts into the population intercept: it has one (not
    an ordinal family's thresholds) and a block whose first column is the intercept."""
    return (
        spec.has_intercept
        and INTERCEPT in spec.center_names
        and any(block.columns[0] == INTERCEPT for block in spec.blocks)
    )


def _block_code(
    index: int,
    block: GroupBlock,
    choice: BlockParameterization,
    coefficients: str | None,
    slopes: bool,
    sweeping: bool,
    parent: int | None,
    parent_factor: str | None,
) -> BlockCode:
    block_names = names.block(index)
    intercept_first = block.columns[0] == INTERCEPT
    parent_names = names.block(parent + 1) if parent is not None else None
    # what a centered intercept varies around beyond its population-level center: its level-constant
    # predictors, and for a nested block its parent level's effect (when switched on)
    parts = [f"{block_names.level_center_map} * {coefficients}"] if intercept_first and slopes else []
    if parent_names is not None:
        parts.append(f"{block_names.parent_switch} * {parent_names.effects}[{block_names.parent_level}, 1]")
    return BlockCode(
        index=index,
        template=f"group/{'correlated' if block.correlated else 'uncorrelated'}.stan.j2",
        parameterization=comment_safe(choice),
        correlated=block.correlated,
        center=f"{block_names.center_map} * {coefficients}" if coefficients else None,
        level_center=" + ".join(parts) or None,
        intercept_first=intercept_first,
        parent=parent_names,
        level_predictors=intercept_first and slopes,
        parent_factor=comment_safe(parent_factor) if parent_factor is not None else None,
        sweep=sweeping and intercept_first,
        n_columns=len(block.columns),
        factor=comment_safe(block.factor.name),
        sources=comment_safe(" + ".join(block.sources)),
        columns=comment_safe(", ".join(block.columns)),
    )


def _coefficients(spec: DesignSpec) -> tuple[str | None, str]:
    """All population-level coefficients as one Stan vector (intercept first), and its size."""
    intercept = spec.has_intercept and INTERCEPT in spec.center_names  # not an ordinal family's thresholds
    # the sampled intercept, at the means of the predictors (with swept blocks, the intercept plus the
    # swept means: what varies around the intercept varies around that sum, see parameterization.sweep);
    # center_map and level_center_map hold the means that turn it into a level's center
    if intercept and spec.fixed_columns:
        return f"append_row({names.INTERCEPT}, {names.SLOPES})", f"{names.SLOPE_COUNT} + 1"
    if intercept:
        return f"rep_vector({names.INTERCEPT}, 1)", "1"
    if spec.fixed_columns:
        return names.SLOPES, names.SLOPE_COUNT
    return None, "0"


def prior_only_data(data: dict, spec: DesignSpec) -> dict:
    """The data of a prior-only fit of the same program (brms's ``sample_prior = "only"``): the
    likelihood switched off, and every block non-centered and unswept, the geometry of the priors
    themselves (the data the choice of parameterization read are not used)."""
    return {**noncentered_data(data, spec), names.PRIOR_ONLY: 1}


def noncentered_data(data: dict, spec: DesignSpec) -> dict:
    """The data of the same program with every block non-centered and unswept: for the
    approximate methods, whose optimizers would find the joint mode of a centered block at
    sd = 0, and for the priors alone."""
    out = dict(data)
    for i in range(1, len(spec.blocks) + 1):
        block_names = names.block(i)
        out[block_names.centered] = 0
        if block_names.sweep_weights in out:
            out[block_names.sweep_weights] = np.zeros_like(
                np.asarray(out[block_names.sweep_weights], dtype=float)
            )
    return out
