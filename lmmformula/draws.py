"""Stage 5: chain outputs (Stan's flat columns) -> named arrays of shape (chain, draw, ...)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .engines.base import ChainOutput

SAMPLER_COLUMNS = (
    "lp__",
    "accept_stat__",
    "stepsize__",
    "treedepth__",
    "n_leapfrog__",
    "divergent__",
    "energy__",
    # the other algorithms' (see lmmformula.approximations)
    "lp_approx__",
    "log_p__",
    "log_q__",
    "log_g__",
)
_INDEXED = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)(?:[.\[](.*?)\]?)?$")


@dataclass(frozen=True, eq=False)
class Draws:
    """Posterior draws of every Stan parameter and the sampler's diagnostics."""

    parameters: dict[str, np.ndarray]  # name -> (chain, draw, *dims)
    sampler: dict[str, np.ndarray]  # lp__, divergent__, ... -> (chain, draw)

    def flat(self) -> tuple[list[str], np.ndarray]:
        """All parameter elements as ``name[i,j]`` labels and a (chain, draw, element) array."""
        labels, blocks = [], []
        for name, values in self.parameters.items():
            dims = values.shape[2:]
            if not dims:
                labels.append(name)
            else:
                for index in np.ndindex(*dims[::-1]):  # Stan's order: first index fastest
                    labels.append(f"{name}[{','.join(str(i + 1) for i in index[::-1])}]")
            blocks.append(values.reshape(*values.shape[:2], -1, order="F"))
        return labels, np.concatenate(blocks, axis=2)


def assemble(outputs: list[ChainOutput]) -> Draws:
    """Stack the chains and split Stan's flat columns into named arrays."""
    columns = outputs[0].columns
    for output in outputs[1:]:
        if output.columns != columns:
            raise RuntimeError("chains returned different columns")
    lengths = {len(output.values) for output in outputs}
    if len(lengths) != 1:
        raise RuntimeError(f"chains returned different numbers of draws: {sorted(lengths)}")
    stacked = np.stack([output.values for output in outputs])  # (chain, draw, column)
    # copies, not views, so that the stacked array can be freed
    sampler = {name: stacked[:, :, columns.index(name)].copy() for name in SAMPLER_COLUMNS if name in columns}
    groups: dict[str, list[tuple[int, tuple[int, ...]]]] = {}
    for position, column in enumerate(columns):
        if column in SAMPLER_COLUMNS:
            continue
        name, index = _parse(column)
        groups.setdefault(name, []).append((position, index))
    parameters = {name: _shape(stacked, entries) for name, entries in groups.items()}
    return Draws(parameters=parameters, sampler=sampler)


def _parse(column: str) -> tuple[str, tuple[int, ...]]:
    match = _INDEXED.match(column)
    if not match:
        raise RuntimeError(f"unexpected Stan column name {column!r}")
    name, index = match.groups()
    if not index:
        return name, ()
    return name, tuple(int(i) for i in re.split(r"[.,]", index))


def _shape(stacked: np.ndarray, entries: list[tuple[int, tuple[int, ...]]]) -> np.ndarray:
    positions = [position for position, _ in entries]
    if not entries[0][1]:
        return stacked[:, :, positions[0]].copy()
    dims = tuple(max(index[axis] for _, index in entries) for axis in range(len(entries[0][1])))
    out = np.empty(stacked.shape[:2] + dims)
    for position, index in entries:
        out[(slice(None), slice(None), *(i - 1 for i in index))] = stacked[:, :, position]
    return out
