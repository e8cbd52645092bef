"""What every engine takes and gives: a compiled program, sampler settings, chain output."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ArgumentError


@dataclass(frozen=True)
class CompiledProgram:
    """A Stan program compiled for one engine; ``path`` is its module or executable."""

    code: str
    key: str
    path: Path
    compile_seconds: float
    compiled_now: bool


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings, with CmdStan's meaning and defaults."""

    chains: int = 4
    iter_warmup: int = 1000
    iter_sampling: int = 1000
    seed: int | None = None
    adapt_delta: float = 0.8
    max_treedepth: int = 10
    metric: str = "diag"
    init: float | dict | list[dict] | None = None
    cores: int = 1
    refresh: int = 100

    def __post_init__(self) -> None:
        for name in ("chains", "iter_warmup", "iter_sampling", "max_treedepth", "cores", "refresh"):
            value = getattr(self, name)
            minimum = 0 if name == "iter_warmup" else 1
            if not isinstance(value, int | np.integer) or value < minimum:
                raise ArgumentError(f"{name}={value!r}: must be an integer >= {minimum}")
        if self.metric not in ("diag", "dense"):
            raise ArgumentError(
                f"metric={self.metric!r}: 'diag' (a diagonal mass matrix, the default) or 'dense' "
                "(a full one, for few parameters with strong posterior correlations)"
            )
        if not 0 < self.adapt_delta < 1:
            raise ArgumentError(f"adapt_delta={self.adapt_delta!r}: must be between 0 and 1, e.g. 0.95")
        if self.seed is not None and not (isinstance(self.seed, int | np.integer) and 0 <= self.seed < 2**31):
            raise ArgumentError(f"seed={self.seed!r}: must be an integer in [0, 2**31)")
        if isinstance(self.init, list) and len(self.init) != self.chains:
            raise ArgumentError(
                f"init: a list needs one dict per chain ({self.chains}), got {len(self.init)}"
            )

    def init_for(self, chain: int) -> tuple[dict, float]:
        """Initial values and init radius for chain ``chain`` (1-based)."""
        if self.init is None:
            return {}, 2.0
        if isinstance(self.init, int | float):
            return {}, float(self.init)
        if isinstance(self.init, list):
            return dict(self.init[chain - 1]), 2.0
        return dict(self.init), 2.0


def default_cores() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True, eq=False)
class ChainOutput:
    """The draws of one chain: Stan's flat column names and a (draws, columns) array."""

    chain: int
    columns: tuple[str, ...]
    values: np.ndarray
    seconds: dict[str, float]
    first_message_at: float | None = None  # time.perf_counter() when the chain first reported
