"""Nested grouping factors: which block's levels sit inside another's, and hierarchical centering along
the nesting.

A block is *nested* in another when each of its levels falls in one level of the other (casks within
batches, broods within locations, classes within schools), whether the formula says so (``(1 | a/b)``)
or the data do (``(1 | brood) + (1 | location)``). A centered nested block whose intercepts vary only
around the population-level part leaves the likelihood a ridge: a parent level's effect and its
children's coefficients trade off, and only the priors tell them apart. Centering the children on
their parent level's coefficient instead (``z_child ~ normal(Intercept + r_parent[parent], sd_child)``,
and the likelihood sees ``z_child``) removes it: the hierarchy is sampled as the chain it is.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .design import INTERCEPT, Design


def nested_in(design: Design) -> tuple[int | None, ...]:
    """Per block, the index (from 0) of the block it is nested in, or None.

    Both blocks start with the intercept and the parent has fewer levels; of several such parents
    (``(1 | a/b/c)``: c sits in b and in a) the one with the most levels, the nearest.
    """
    blocks = design.spec.blocks
    out: list[int | None] = []
    for i, block in enumerate(blocks):
        parents = [
            j
            for j, other in enumerate(blocks)
            if j != i
            and block.columns[0] == INTERCEPT
            and other.columns[0] == INTERCEPT
            and len(other.factor.levels) < len(block.factor.levels)
            and _inside(design.J[i], design.J[j])
        ]
        out.append(max(parents, key=lambda j: (len(blocks[j].factor.levels), -j)) if parents else None)
    return tuple(out)


def _inside(child: np.ndarray, parent: np.ndarray) -> bool:
    """Whether every level of ``child`` (level numbers per row) comes with one level of ``parent``."""
    pairs = np.unique(np.stack([child, parent]), axis=1)
    return pairs.shape[1] == len(np.unique(child))


def parent_levels(design: Design, block: int, parent: int) -> np.ndarray:
    """For each level of ``block`` (from 1), the level of ``parent`` it sits in (from 1)."""
    out = np.ones(len(design.spec.blocks[block].factor.levels), dtype=int)
    out[design.J[block] - 1] = design.J[parent]
    return out


def chain(design: Design, choices: list, ruled: list[bool]) -> list:
    """Hierarchical centering along the nesting for the blocks the rule decides (``ruled``): a nested block
    whose intercepts are sampled centered varies around its parent level's coefficient (``parent``), so
    it carries whatever the parent's intercepts vary around too (the population intercept, group-level
    predictors); a centered parent then carries the population intercept if its child had it. (A parent
    that a child varies around is then not swept: the child carries the ridge sweeping would remove.)"""
    parents = nested_in(design)
    spec = design.spec
    choices = list(choices)
    # outermost first, so that a chain a / b / c passes the intercept down
    order = sorted(range(len(choices)), key=lambda i: len(spec.blocks[i].factor.levels))
    for i in order:
        p = parents[i]
        child = choices[i]
        if p is None or not ruled[i] or child.centered_columns(spec.blocks[i].columns) == 0:
            continue
        parent = choices[p]
        if parent.centered_columns(spec.blocks[p].columns) > 0 and INTERCEPT in (
            *child.centers,
            *parent.centers,
        ):
            if INTERCEPT not in parent.centers and ruled[p]:
                parent = replace(parent, centers=(INTERCEPT, *parent.centers))
            if INTERCEPT in parent.centers and INTERCEPT not in child.centers:
                child = replace(child, centers=(INTERCEPT, *child.centers))
        inherited = tuple(
            name for name in parent.level_centers if name not in (*child.level_centers, *child.centers)
        )
        choices[p] = parent  # not swept: parameterization.sweep skips a block a child varies around
        choices[i] = replace(
            child,
            parent=spec.blocks[p].factor.name,
            level_centers=child.level_centers + inherited if parent.centered else child.level_centers,
        )
    return choices
