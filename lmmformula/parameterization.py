"""Choose, per group-level block, how its coefficients are sampled.

Each block is either *centered* (its group coefficients are the parameters) or
*non-centered* (standardized effects ``z`` are the parameters and ``r = sd * z``). A
centered block's columns vary around a population-level coefficient or around zero, and
each population-level coefficient is the center of at most one block.

The rule behind ``parameterization="auto"`` (see docs/parameterization.md): a block is
centered when a typical group's own rows pin its coefficients down better than the
population distribution does, i.e. when the sampling variance of a group's coefficient is
smaller than the between-group variance ``sd**2``, with a margin: the *information ratio*
exceeds 1 + 8 / sqrt(G) for every column, G the number of groups. Both come from cheap
moment estimates: a pooled GLM fit of the fixed part, per-group weighted least squares of
its working residuals on the block's columns, and the spread of those per-group estimates
(taken at its lower 5 % confidence bound, so that a handful of groups does not count as
proof).

Blocks are then judged together: when several centered blocks carry the same
population-level coefficient (crossed or nested factors all with an intercept), only the
block whose groups are best informed about it (highest information ratio) is centered on
it; the others are centered at zero. Centering two blocks on one coefficient leaves the
likelihood with only sums such as ``beta_1[j] + beta_2[k] - Intercept`` and NUTS crawls
along that ridge. Finally the blocks whose intercepts vary around zero are swept: the
sampled intercept carries their weighted mean intercept (:func:`sweep`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .design import INTERCEPT, Design, DesignSpec
from .errors import ArgumentError
from .information import block_information
from .nesting import chain, nested_in

PARAMETERIZATIONS = ("auto", "centered", "noncentered")


def center_threshold(groups: int) -> float:
    """The information ratio above which "auto" centers a block of ``groups`` levels.

    The typical group's own rows must say more than the population distribution (ratio 1),
    with a margin that shrinks as the groups grow in number: the sd's relative uncertainty is
    about 1 / sqrt(2 G), and an uncertain sd is what makes a centered block funnel-shaped.
    1 + 8 / sqrt(G): 2.8 for 20 groups, 1.8 for 100, 1.15 for 3,000. The constant comes from
    the benchmark designs: 60 crossed subjects with a slope ratio of 1.9 mixed worse centered
    (R-hat 1.020 against 1.008), while InstEval's 2,972 students (ratio 1.18) warmed up in
    149 s centered at zero against 258 s non-centered.
    """
    return 1.0 + 8.0 / np.sqrt(max(groups, 1))


@dataclass(frozen=True)
class BlockParameterization:
    """How one group-level block is sampled; an entry of ``Model(parameterization=[...])``.

    Parameters
    ----------
    centered : bool
        True: the group coefficients themselves are the parameters; False: standardized
        effects ``z`` are, and the coefficients are ``sd * z`` (non-centered).
    centers : tuple of str, default ()
        For a centered block, its columns that vary around their population-level
        coefficient (e.g. ``("Intercept",)``); its other columns vary around zero. A
        population-level coefficient may center at most one block.
    noncentered : tuple of str, default ()
        For a centered block, its trailing columns that are sampled non-centered all the
        same (partial centering: e.g. a well-informed intercept centered, a weakly informed
        slope ``("Days",)`` non-centered, given the intercept). In a correlated block whose
        first column is the intercept, the centered intercept is the one at the means of the
        block's other columns, so it also varies around their population-level coefficients
        named in ``centers``.
    level_centers : tuple of str, default ()
        For a block whose intercept is sampled centered, population-level coefficients of
        columns constant within each of its levels (e.g. a subject-level covariate): each
        level's intercept also varies around that level's value times the coefficient
        (hierarchical centering on group-level predictors). A coefficient may be a center of
        at most one block.
    parent : str, optional
        For a block whose intercept is sampled centered and whose levels are nested in another block's
        (``(1 | batch/cask)``, or broods within locations): that block's factor; the levels' intercepts
        then also vary around their parent level's effect (hierarchical centering along the nesting,
        :mod:`lmmformula.nesting`).
    swept : bool, default False
        For a block whose first column is the intercept and which varies around zero (no
        centers, no level centers): sample the population intercept plus the weighted mean of
        the block's intercepts (weights proportional to the levels' rows) instead of the
        population intercept itself ("sweeping"). The model is the same; the sampler no longer
        walks the ridge along which the likelihood trades the population intercept against the
        mean of the group intercepts. The words ``"auto"``, ``"centered"`` and ``"noncentered"``
        sweep every block they can whose groups inform their intercepts (information ratio above
        1); an explicit entry sweeps only when it says so.

    Examples
    --------
    >>> Model("y ~ x + (1 | a) + (1 | b)", data,
    ...       parameterization=[BlockParameterization(True, ("Intercept",)), "noncentered"])
    >>> Model("y ~ Days + (Days | Subject)", data,
    ...       parameterization=[BlockParameterization(True, ("Intercept", "Days"), noncentered=("Days",))])
    """

    centered: bool
    centers: tuple[str, ...] = ()
    noncentered: tuple[str, ...] = ()
    level_centers: tuple[str, ...] = ()
    swept: bool = False
    parent: str | None = None

    def __post_init__(self) -> None:
        # lenient here (checked where used, see _check_explicit): one name or None for a tuple
        for field in ("centers", "noncentered", "level_centers"):
            value = getattr(self, field)
            if isinstance(value, str):
                object.__setattr__(self, field, (value,))
            elif value is None:
                object.__setattr__(self, field, ())
            elif isinstance(value, Sequence | np.ndarray):
                object.__setattr__(self, field, tuple(dict.fromkeys(value)))

    def __str__(self) -> str:
        if not self.centered:
            return "noncentered; intercepts swept" if self.swept else "noncentered"
        text = f"centered on population {', '.join(self.centers)}" if self.centers else "centered at zero"
        if self.level_centers:
            text += f", intercepts also on per-level {', '.join(self.level_centers)}"
        if self.parent:
            text += f", around their {self.parent} level's effect"
        if self.noncentered:
            text += f"; {', '.join(self.noncentered)} non-centered"
        return text + ("; intercepts swept" if self.swept else "")

    def centered_columns(self, columns: Sequence[str]) -> int:
        """How many leading columns of a block are sampled centered (the Stan data ``centered_i``).

        Parameters
        ----------
        columns : sequence of str
            The block's columns (``model.design.blocks[i].columns``).
        """
        return len(columns) - len(self.noncentered) if self.centered else 0


def choose_parameterizations(
    design: Design,
    requested: str | Sequence[str | BlockParameterization],
    ratios: list[np.ndarray] | None = None,
) -> tuple[BlockParameterization, ...]:
    """One :class:`BlockParameterization` per block of ``design``.

    ``requested``: ``"auto"`` (the rule), ``"centered"`` (every block centered, each
    population-level coefficient the center of the best-informed block carrying it),
    ``"noncentered"``, or a sequence with one entry per block: one of those three words
    (centers then assigned as above among the centered blocks), or a
    :class:`BlockParameterization` taken as it is. The words also sweep the intercepts of the
    blocks that vary around zero and whose groups inform their intercepts (:func:`sweep`).
    ``ratios``: :func:`block_information` of ``design``, if already computed.
    """
    blocks = design.spec.blocks
    entries = _per_block(requested, len(blocks))
    if not blocks:
        return ()
    explicit = {i: e for i, e in enumerate(entries) if isinstance(e, BlockParameterization)}
    for i, entry in explicit.items():
        _check_explicit(entry, design, i)
    claimed = [name for entry in explicit.values() for name in (*entry.centers, *entry.level_centers)]
    twice = sorted({name for name in claimed if claimed.count(name) > 1})
    if twice:
        raise ArgumentError(
            f"parameterization: {twice} centers more than one block; a population-level coefficient may "
            "center at most one block (center the others at zero: lf.BlockParameterization(True, ()))"
        )
    ratios = block_information(design) if ratios is None else ratios
    words = {"centered": lambda i: (True, ()), "noncentered": lambda i: (False, ())}
    words["auto"] = lambda i: auto_choice(blocks, ratios, i)
    ruled = {i: words[entry](i) for i, entry in enumerate(entries) if i not in explicit}
    free = tuple(name for name in design.spec.center_names if name not in claimed)
    centered = [i in ruled and ruled[i][0] for i in range(len(blocks))]
    centers = assign_centers([block.columns for block in blocks], ratios, centered, free)
    choices = [
        explicit.get(i) or BlockParameterization(ruled[i][0], tuple(centers[i]), ruled[i][1])
        for i in range(len(blocks))
    ]
    taken = {name for choice in choices for name in (*choice.centers, *choice.level_centers)}
    levels = assign_level_centers(design, choices, [i in ruled for i in range(len(blocks))], taken)
    choices = [
        replace(choice, level_centers=tuple(names)) if names else choice
        for choice, names in zip(choices, levels)
    ]
    choices = chain(design, choices, [i in ruled for i in range(len(blocks))])
    return sweep(design, tuple(choices), ruled, ratios)


def sweepable(spec: DesignSpec, block_index: int, choice: BlockParameterization) -> bool:
    """Whether block ``block_index`` can have its intercepts swept into the population intercept:
    the model has one (not an ordinal family's thresholds), the block's first column is the
    intercept and the block varies around zero (no centers, no level centers)."""
    return (
        INTERCEPT in spec.center_names
        and spec.blocks[block_index].columns[0] == INTERCEPT
        and not choice.centers
        and not choice.level_centers
        and not choice.parent
    )


def sweep(
    design: Design, choices: tuple[BlockParameterization, ...], ruled, ratios: list[np.ndarray]
) -> tuple[BlockParameterization, ...]:
    """Sweep the intercepts of every block in ``ruled`` that can be (see :func:`sweepable`) and whose
    intercepts its groups inform (information ratio above 1).

    The likelihood of a model with a population intercept and group intercepts that vary
    around zero is unchanged when a constant moves from the intercept to every level of a
    block; only the block's prior pins that direction down, loosely, and a sampler that
    moves the two separately crawls along the ridge (crossed factors: one ridge per factor).
    Sampling the intercept plus the block's weighted mean intercept instead (Vines, Gilks &
    Wild 1996 call it sweeping) turns the ridge into a direction only the prior sees; the
    block centered on the intercept, if any, then varies around that sampled sum. Where the
    groups say little about their intercepts there is no ridge to remove, and sweeping would
    only tie the intercept to the block's sd. Measured in docs/parameterization.md.
    """
    spec = design.spec
    parents = {choice.parent for choice in choices if choice.parent}  # a nested block varies around them
    return tuple(
        replace(choice, swept=True)
        if i in ruled
        and sweepable(spec, i, choice)
        and bool(ratios[i][0] > 1.0)
        and spec.blocks[i].factor.name not in parents
        else choice
        for i, choice in enumerate(choices)
    )


#: adapt_delta of a model with a partially centered correlated block of few levels whose non-centered
#: slopes the groups say little about (brms's default 0.8 otherwise).
CAREFUL_ADAPT_DELTA = 0.95
#: Fewer levels than this leave a weakly identified slope sd and correlation wide enough to reach the
#: edges where the partially centered form curves (sd's relative uncertainty about 1 / sqrt(2 * 50) = 0.1).
FEW_GROUPS = 50


def default_adapt_delta(
    design: Design,
    parameterizations: Sequence[BlockParameterization],
    ratios: list[np.ndarray] | None = None,
) -> float:
    """NUTS's target acceptance rate when the user gives none: brms's 0.8, or 0.95 when a correlated
    block of fewer than :data:`FEW_GROUPS` levels is partially centered and one of its non-centered
    columns has an information ratio below 1 (its own rows tell a group less about it than the
    population distribution does).

    Such a slope's sd is weakly identified, and so are its correlations, which near +-1 curve the
    posterior sharply when few groups leave them wide (docs/parameterization.md, step 1b: Orthodont's
    27 subjects); with many groups they stay away from the edges and the higher rate only costs time
    (docs/parameterization.md, "Real data"). Divergences that remain are the check at the end of
    warm-up's to catch (lmmformula.pilot). ``ratios``: :func:`block_information` of ``design``, if
    already computed.
    """
    spec = design.spec
    partial = [
        i
        for i, (block, choice) in enumerate(zip(spec.blocks, parameterizations))
        if block.correlated
        and 0 < choice.centered_columns(block.columns) < len(block.columns)
        and len(block.factor.levels) < FEW_GROUPS
    ]
    if not partial:
        return 0.8
    ratios = block_information(design) if ratios is None else ratios
    weak = any(
        bool(np.any(ratios[i][parameterizations[i].centered_columns(spec.blocks[i].columns) :] < 1.0))
        for i in partial
    )
    return CAREFUL_ADAPT_DELTA if weak else 0.8


def auto_choice(blocks, ratios: list[np.ndarray], i: int) -> tuple[bool, tuple[str, ...]]:
    """What ``auto`` does with block ``i``: (centered, its non-centered trailing columns).

    Every column informed beyond the threshold: centered. Otherwise a block whose first
    column is the intercept and whose intercept is informed (at the means of its other
    columns) is centered from the intercept up to the first column that is not, and the rest
    (weakly informed slopes) is sampled non-centered given the centered columns. When another
    block carries one of its columns (slopes on crossed factors), such a block is centered whole
    if every slope's ratio exceeds 1 and non-centered otherwise: with the intercepts swept,
    crossed slopes (ratios 1.9 and 1.2) mixed best centered whole (100-125 ESS/s, R-hat <= 1.006
    over three seeds), against 68-81 partially centered and 39-56 non-centered (R-hat up to 1.014).
    Otherwise non-centered.
    """
    ratio, columns = ratios[i], blocks[i].columns
    threshold = center_threshold(len(blocks[i].factor.levels))
    if bool(np.all(ratio > threshold)):
        return True, ()
    if columns[0] != INTERCEPT or not ratio[0] > threshold:
        return False, ()
    if any(set(columns) & set(other.columns) for j, other in enumerate(blocks) if j != i):
        # slopes on crossed factors: centered whole when every slope says at least as much as the
        # population (ratio > 1), else non-centered
        return (True, ()) if bool(np.all(ratio[1:] > 1.0)) else (False, ())
    leading = 1
    while leading < len(columns) and ratio[leading] > threshold:
        leading += 1
    return True, tuple(columns[leading:])


def assign_level_centers(
    design: Design, choices: list[BlockParameterization], ruled: list[bool], taken: set[str]
) -> list[list[str]]:
    """Per block, the population-level coefficients its centered intercepts also vary around.

    A population-level column (not the intercept, not already a center) that is constant within
    every level of a block whose intercept is sampled centered is a group-level predictor of that
    block: its coefficient is learnt from the spread of the levels' intercepts, and centering
    the intercepts on it (``intercept_j ~ normal(b_Intercept + x_j * b_x, sd)``) spares the sampler
    the ridge between b_x and the intercepts. Of several such blocks (nested factors), the one
    with the fewest levels gets it: the factor the predictor describes. Only blocks in ``ruled``
    (not given explicitly) are assigned.
    """
    spec = design.spec
    chosen: list[list[str]] = [[] for _ in choices]
    candidates = [
        i
        for i, (block, choice) in enumerate(zip(spec.blocks, choices))
        if ruled[i] and block.columns[0] == INTERCEPT and choice.centered_columns(block.columns) > 0
    ]
    for k, name in enumerate(spec.fixed_columns):
        if name in taken or name not in spec.center_names:
            continue
        constant = [i for i in candidates if _constant_within(design.X[:, k], design.J[i])]
        if constant:
            chosen[min(constant, key=lambda i: (len(spec.blocks[i].factor.levels), i))].append(name)
    return chosen


def _constant_within(column: np.ndarray, J: np.ndarray) -> bool:
    """Whether ``column`` takes one value within every level of ``J`` (and more than one overall)."""
    index = J - 1
    n = int(index.max()) + 1
    low = np.full(n, np.inf)
    high = np.full(n, -np.inf)
    np.minimum.at(low, index, column)
    np.maximum.at(high, index, column)
    scale = max(1.0, float(np.abs(column).max()))
    return float(np.ptp(column)) > 0 and bool(np.all(high - low <= 1e-12 * scale))


def _per_block(requested, n_blocks: int) -> list:
    words = ", ".join(map(repr, PARAMETERIZATIONS))
    if isinstance(requested, str | np.str_):
        if requested not in PARAMETERIZATIONS:
            raise ArgumentError(
                f"parameterization={requested!r} is not one of {words}; "
                "'auto' chooses per group-level block from the data"
            )
        return [str(requested)] * n_blocks
    flat = not isinstance(requested, np.ndarray) or requested.ndim == 1  # a table is not one entry per block
    if flat and isinstance(requested, Sequence | np.ndarray) and len(requested) == n_blocks:
        for entry in requested:
            if not (
                isinstance(entry, BlockParameterization)
                or (isinstance(entry, str | np.str_) and entry in PARAMETERIZATIONS)
            ):
                raise ArgumentError(
                    f"parameterization: {entry!r} is not one of {words} or an lf.BlockParameterization"
                )
        return [str(e) if isinstance(e, np.str_) else e for e in requested]
    raise ArgumentError(
        f"parameterization={requested!r}: give one of {words}, or a list with one entry per "
        f"group-level block ({n_blocks} here)"
    )


def _check_explicit(entry: BlockParameterization, design: Design, i: int) -> None:
    block = design.spec.blocks[i]
    columns, coefficients, factor = block.columns, design.spec.center_names, block.factor.name
    where = f"parameterization for the block of {factor!r}"
    if not isinstance(entry.centered, bool | np.bool_):
        raise ArgumentError(
            f"{where}: BlockParameterization(centered={entry.centered!r}) must be True or False"
        )
    for field, example in (
        ("centers", "('Intercept',)"),
        ("noncentered", "('Days',)"),
        ("level_centers", "('x',)"),
    ):
        value = getattr(entry, field)
        if not isinstance(value, tuple) or not all(isinstance(c, str) for c in value):
            raise ArgumentError(
                f"{where}: {field}={value!r} must be a tuple of column or coefficient names, e.g. {example}"
            )
    wrong = [name for name in entry.centers if name not in columns or name not in coefficients]
    if wrong:
        raise ArgumentError(
            f"{where}: cannot center {wrong} on population-level coefficients; its columns with one are "
            f"{[c for c in columns if c in coefficients]}"
        )
    if (entry.centers or entry.noncentered or entry.level_centers) and not entry.centered:
        raise ArgumentError(f"{where}: a non-centered block has no centers and no non-centered columns")
    trailing = columns[len(columns) - len(entry.noncentered) :] if entry.noncentered else ()
    if tuple(entry.noncentered) != tuple(trailing) or len(entry.noncentered) >= len(columns):
        raise ArgumentError(
            f"{where}: noncentered={entry.noncentered!r} must be the block's last columns, in order, and "
            f"leave at least its first column centered; its columns are {list(columns)}"
        )
    if not isinstance(entry.swept, bool | np.bool_):
        raise ArgumentError(f"{where}: BlockParameterization(swept={entry.swept!r}) must be True or False")
    if entry.swept and not sweepable(design.spec, i, entry):
        raise ArgumentError(
            f"{where}: swept=True needs a population-level intercept, the intercept as the block's first "
            "column and a block that varies around zero (no centers, no level_centers)"
        )
    if entry.parent is not None:
        parent = nested_in(design)[i]
        if parent is None or design.spec.blocks[parent].factor.name != entry.parent:
            raise ArgumentError(
                f"{where}: parent={entry.parent!r} is not a factor its levels are nested in"
                + (f"; that is {design.spec.blocks[parent].factor.name!r}" if parent is not None else "")
            )
        if entry.centered_columns(columns) == 0:
            raise ArgumentError(f"{where}: parent needs a block whose intercept is sampled centered")
    if entry.level_centers:
        if entry.centered_columns(columns) == 0 or columns[0] != INTERCEPT:
            raise ArgumentError(f"{where}: level_centers needs a block whose intercept is sampled centered")
        for name in entry.level_centers:
            if name not in design.spec.fixed_columns or name not in coefficients:
                raise ArgumentError(
                    f"{where}: level_centers: {name!r} is not a population-level column; they are "
                    f"{list(design.spec.fixed_columns)}"
                )
            if name in entry.centers or not _constant_within(
                design.X[:, design.spec.fixed_columns.index(name)], design.J[i]
            ):
                raise ArgumentError(
                    f"{where}: level_centers: {name!r} is not constant within every level of {factor!r} (or "
                    "is already a center); only a group-level predictor can center the intercepts"
                )


def assign_centers(
    columns: list[tuple[str, ...]],
    ratios: list[np.ndarray],
    centered: list[bool],
    coefficients: tuple[str, ...],
) -> list[list[str]]:
    """Per block, the columns centered on their population-level coefficient.

    Each coefficient goes to at most one centered block: the one with the highest
    information ratio for it (the first such block on a tie).
    """
    centers: list[list[str]] = [[] for _ in columns]
    for name in coefficients:
        candidates = [
            (float(np.nan_to_num(ratios[i][list(cols).index(name)], nan=-np.inf)), -i)
            for i, cols in enumerate(columns)
            if centered[i] and name in cols
        ]
        if candidates:
            best = -max(candidates)[1]
            centers[best].append(name)
    return [[c for c in cols if c in chosen] for cols, chosen in zip(columns, centers)]
