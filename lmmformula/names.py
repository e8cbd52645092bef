"""Stan names: decided here, asked for by the templates, codegen, results and tests.

The population-level names are constants; a group-level block's names come from
:class:`BlockNames` (block ``i`` counts from 1, in the order of ``DesignSpec.blocks``).
brms's names for the same quantities (``b_x``, ``sd_group__x``, ``r_group[level,x]``) are the
results' business (:mod:`lmmformula.results`); these are the names inside the program.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The intercept parameter, at the means of the predictors (an ordinal family's thresholds).
INTERCEPT = "Intercept"
#: The intercept at zero predictors (transformed parameter; the thresholds of an ordinal family).
INTERCEPT_AT_ZERO = "b_Intercept"
#: Local: the swept blocks' weighted mean group intercepts, which the sampled ``Intercept`` carries.
SWEPT = "swept"
#: Local (model block) of a program with swept blocks: the intercept at the means of the predictors.
INTERCEPT_LOCAL = "alpha"
#: The population-level slopes.
SLOPES = "b"
#: Data: population-level design matrix (without the intercept), and its centered copy.
DESIGN, CENTERED_DESIGN = "X", "Xc"
#: Data: the response, the number of observations, the number of slopes.
RESPONSE, ROWS, SLOPE_COUNT = "Y", "N", "K"
#: Data: binomial trials, likelihood weights, offsets, an ordinal family's number of thresholds.
TRIALS, WEIGHTS, OFFSETS, THRESHOLD_COUNT = "trials", "weights", "offsets", "nthres"


@dataclass(frozen=True)
class SparseNames:
    """The Stan names of the sparse group-level design (see :data:`SPARSE`)."""

    values: str = "csr_w"
    columns: str = "csr_v"
    row_starts: str = "csr_u"
    width: str = "P_csr"
    row_length: str = "R_csr"


#: Transformed data of a program with group-level blocks: the intercept column (when the linear
#: predictor has one) and every block's design as one sparse N x ``width`` matrix in compressed row
#: storage, as ``csr_matrix_times_vector`` takes it; ``row_length`` entries per row.
SPARSE = SparseNames()


@dataclass(frozen=True)
class BlockNames:
    """The Stan names of group-level block ``index`` (data, parameters and derived quantities)."""

    index: int

    def _named(self, stem: str) -> str:
        return f"{stem}_{self.index}"

    # data
    @property
    def levels(self) -> str:
        """Number of levels of the grouping factor."""
        return self._named("N")

    @property
    def columns(self) -> str:
        """Coefficients per level."""
        return self._named("M")

    @property
    def level_of(self) -> str:
        """Each observation's level (1-based)."""
        return self._named("J")

    @property
    def design(self) -> str:
        """The block's design matrix."""
        return self._named("Z")

    @property
    def centered(self) -> str:
        """The data switch: how many leading columns are sampled centered (0: non-centered)."""
        return self._named("centered")

    @property
    def center_map(self) -> str:
        """Which population-level coefficient each column varies around."""
        return self._named("F")

    @property
    def level_center_map(self) -> str:
        """Per level: the level-constant population-level columns its intercept varies around."""
        return self._named("G")

    @property
    def sweep_weights(self) -> str:
        """Per level, its weight in the block's mean intercept swept into the population intercept
        (all zero: not swept)."""
        return self._named("w")

    @property
    def parent_switch(self) -> str:
        """Of a nested block: 1 when its centered intercepts also vary around their parent level's
        effect, 0 when not."""
        return self._named("H")

    @property
    def parent_level(self) -> str:
        """Of a nested block: each level's level of the block it is nested in."""
        return self._named("P")

    # parameters and derived quantities
    @property
    def sd(self) -> str:
        """Standard deviations, one per column."""
        return self._named("sd")

    @property
    def z(self) -> str:
        """Group coefficients (centered) or standardized effects (non-centered)."""
        return self._named("z")

    @property
    def cholesky(self) -> str:
        """Cholesky factor of the correlation matrix (correlated blocks)."""
        return self._named("L")

    @property
    def effects(self) -> str:
        """Group-level effects, levels x columns, at zero covariates."""
        return self._named("r")

    @property
    def shift(self) -> str:
        """Transformed data of a correlated block with an intercept: effects -> sampled coordinates."""
        return self._named("C")

    @property
    def shift_inverse(self) -> str:
        """And back."""
        return self._named("C_inv")

    @property
    def scale(self) -> str:
        """Local: the Cholesky factor of the covariance in the sampled coordinates."""
        return self._named("S")

    @property
    def correlation(self) -> str:
        """Correlation matrix (generated quantity of correlated blocks)."""
        return self._named("Cor")


def block(index: int) -> BlockNames:
    """The names of group-level block ``index`` (from 1)."""
    return BlockNames(index)


#: Data: the switch of a prior-only fit (1: the likelihood is left out; brms's ``prior_only``).
PRIOR_ONLY = "prior_only"
#: Data: the slopes' lower and upper bounds (programs whose ``b`` has a bound).
SLOPE_LOWER, SLOPE_UPPER = "lb_b", "ub_b"


def prior_stem(parameter_class: str, block: int | None = None, distribution: str | None = None) -> str:
    """The stem of a prior's data names: ``prior_Intercept``, ``prior_sigma``, ``prior_cor_1``, and
    for the priors vectorized over a parameter's elements ``prior_b_normal``, ``prior_sd_1_student_t``.

    A prior's numbers are ``<stem>_<argument>`` (``prior_b_normal_scale``); a vectorized prior also
    has ``<stem>_n`` (how many elements it covers) and ``<stem>_index`` (which, from 1)."""
    parts = ["prior", parameter_class]
    if block is not None:
        parts.append(str(block))
    if distribution is not None:
        parts.append(distribution)
    return "_".join(parts)
