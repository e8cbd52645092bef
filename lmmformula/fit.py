"""Stage 6: the result of sampling a Model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .draws import Draws
from .engines.base import SamplerSettings

if TYPE_CHECKING:
    from .model import Model


@dataclass(eq=False)
class Fit:
    """Posterior draws of a fitted Model.

    ``posterior`` maps every Stan parameter (Stan's names) to an array of shape
    (chain, draw, ...); ``sampler`` holds the sampler's diagnostics per draw
    (``lp__``, ``divergent__``, ``treedepth__``, ``energy__``, ...).
    """

    model: Model
    draws_: Draws
    settings: SamplerSettings
    backend: str
    timings: dict[str, float]
    problems: tuple[str, ...]

    @property
    def posterior(self) -> dict[str, np.ndarray]:
        return self.draws_.parameters

    @property
    def sampler(self) -> dict[str, np.ndarray]:
        return self.draws_.sampler

    @property
    def num_chains(self) -> int:
        return self.settings.chains

    @property
    def num_draws(self) -> int:
        return self.settings.iter_sampling

    def __repr__(self) -> str:
        status = "no sampling problems" if not self.problems else f"{len(self.problems)} sampling problem(s)"
        return (
            f"<lmmformula.Fit {self.model.formula!r}: {self.num_chains} chains x {self.num_draws} draws "
            f"({self.backend}), {status}>"
        )
