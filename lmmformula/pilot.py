"""Stage 4b: NUTS with a check at the end of warm-up.

Every chain warms up as usual and draws a short *pilot* (the first draws of the run). The pilot
is judged on the quantities every parameterization shares (population-level coefficients, group
sds, the family's parameters, ``lp__``): divergent transitions, R-hat across chains, and the bulk
ESS the whole run would reach at the pilot's rate. A pilot that passes is continued: each chain
goes on from its last draw with the step size and metric its warm-up adapted, and the pilot's draws
are kept as the start of the run, so a passing check costs nothing. A failing pilot with
alternatives (``parameterization="auto"``: the parameterization is Stan data, so another costs no
compile) warms up the next alternative and keeps whichever pilot promises more ESS per second;
without alternatives (a parameterization the user chose) the fit goes on and says what to change.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from . import diagnostics, names
from .draws import assemble
from .engines.base import ChainOutput, SamplerSettings

#: Bulk ESS a default run (4 chains x 1000 draws) should reach for every key quantity; scaled with
#: the number of draws asked for.
TARGET_ESS_PER_DRAW = 0.1
#: R-hat of the pilot above which chains that started apart have not met.
PILOT_RHAT = 1.1
#: adapt_delta values to warm up again with, in turn, while a pilot diverges (when the user set none).
CAREFUL = (0.95, 0.99)


def pilot_size(settings: SamplerSettings) -> int:
    """Draws per chain in the pilot: a fifth of the run, at most 200 (with 100, the pilots' R-hat of
    fits that went on to converge reached 1.10 on real data); 0 (no check) for runs too short to judge
    (fewer than 250 draws or 100 warm-up iterations per chain, or one chain)."""
    if settings.iter_sampling < 250 or settings.iter_warmup < 100 or settings.chains < 2:
        return 0
    return min(200, settings.iter_sampling // 5)


@dataclass(frozen=True)
class Verdict:
    """What a pilot says about one parameterization."""

    label: str
    divergences: int
    max_rhat: float
    projected_ess: float  # the smallest bulk ESS of a key quantity, at the pilot's rate, for the whole run
    target_ess: float
    seconds_per_draw: float  # the slowest chain's
    worst: tuple[str, ...]  # the key quantities that mix worst

    @property
    def mixing(self) -> bool:
        """The chains have met and move fast enough for the run's target ESS."""
        return self.max_rhat <= PILOT_RHAT and self.projected_ess >= self.target_ess

    @property
    def failing(self) -> bool:
        return self.divergences > 0 or not self.mixing

    @property
    def ess_per_second(self) -> float:
        return self.projected_ess / max(self.seconds_per_draw, 1e-9)

    def __str__(self) -> str:
        return (
            f"{self.label}: pilot R-hat {self.max_rhat:.3f}, bulk ESS ~{self.projected_ess:.0f} projected "
            f"(target {self.target_ess:.0f}), {self.divergences} divergent"
            + (f"; worst {', '.join(self.worst)}" if self.failing and self.worst else "")
        )


def key_columns(labels: Sequence[str], dpars: Sequence[str], blocks: int) -> np.ndarray:
    """Positions of the quantities every parameterization shares: the intercept at zero predictors (or
    the sampled one), the slopes, each block's sds and the family's parameters."""
    keys = {names.INTERCEPT_AT_ZERO, names.SLOPES, *dpars, *(names.block(i).sd for i in range(1, blocks + 1))}
    if names.INTERCEPT_AT_ZERO not in {label.split("[")[0] for label in labels}:
        keys.add(names.INTERCEPT)
    return np.array([i for i, label in enumerate(labels) if label.split("[")[0] in keys], dtype=int)


def judge(label: str, outputs: list[ChainOutput], settings: SamplerSettings, keys) -> Verdict:
    """The verdict on a pilot (``outputs``: every chain's pilot draws)."""
    draws = assemble(outputs)
    labels, flat = draws.flat()
    columns = key_columns(labels, keys[0], keys[1])
    quantities = np.concatenate([flat[:, :, columns], draws.sampler["lp__"][:, :, None]], axis=2)
    shown = [labels[i] for i in columns] + ["lp__"]
    rhat, bulk, _ = diagnostics.convergence_stats(quantities)
    pilot = quantities.shape[1]
    projected = np.nan_to_num(bulk, nan=np.inf) * settings.iter_sampling / pilot
    order = np.argsort(projected)
    seconds = max(o.seconds.get("sampling", np.nan) for o in outputs)
    target = TARGET_ESS_PER_DRAW * settings.chains * settings.iter_sampling
    return Verdict(
        label=label,
        divergences=int(draws.sampler["divergent__"].sum()),
        max_rhat=float(np.nanmax(rhat)) if np.isfinite(rhat).any() else 1.0,
        projected_ess=float(projected[order[0]]),
        target_ess=target,
        seconds_per_draw=(seconds / pilot) if np.isfinite(seconds) else 1.0,
        worst=tuple(shown[i] for i in order[:3] if projected[i] < target),
    )


def better(candidate: Verdict, current: Verdict) -> bool:
    """Whether to switch to ``candidate``. Chains that mix come first (divergences may yield to a
    higher adapt_delta, chains that have not met to nothing but more time); then no divergences;
    then clearly more ESS per second (by a fifth: a pilot's ESS is rough)."""
    if candidate.mixing != current.mixing:
        return candidate.mixing
    if (candidate.divergences > 0) != (current.divergences > 0):
        return candidate.divergences == 0
    return candidate.ess_per_second > 1.2 * current.ess_per_second


@dataclass(frozen=True)
class Candidate:
    """A parameterization the fit may run: its label (for notes) and its Stan data."""

    label: str
    data: dict


def sample_checked(
    engine,
    program,
    candidates: Sequence[Candidate],
    settings: SamplerSettings,
    keys: tuple[Sequence[str], int],
    progress: Callable | None = None,
    careful: Sequence[float] = (),
) -> tuple[list[ChainOutput], Candidate, tuple[str, ...], float]:
    """NUTS on ``candidates[0]``, checked at the end of warm-up (see the module's docstring): the
    chains' outputs, the candidate that ran, notes on what was tried, and the adapt_delta its
    warm-up used. ``keys``: the family's parameter names and the number of group-level blocks.
    ``careful``: higher adapt_delta values to warm the chosen candidate up again with, in turn,
    while its pilot has divergent transitions (empty when the user set adapt_delta)."""
    pilot = pilot_size(settings)
    if not pilot:
        outputs = engine.sample(program, candidates[0].data, settings, progress)
        return outputs, candidates[0], (), settings.adapt_delta
    seed = settings.seed if settings.seed is not None else random.randrange(2**31)
    first = replace(settings, seed=seed, iter_sampling=pilot)

    def try_(candidate: Candidate, delta: float, label: str):
        outputs = engine.sample(
            program, candidate.data, replace(first, adapt_delta=delta), _quiet_totals(progress)
        )
        verdict = judge(label, outputs, settings, keys)
        notes.append(str(verdict))
        return outputs, verdict

    notes: list[str] = []
    chosen, delta = candidates[0], settings.adapt_delta
    outputs, verdict = try_(chosen, delta, chosen.label)
    for candidate in candidates[1:]:
        if not verdict.failing:
            break
        tried, other = try_(candidate, delta, candidate.label)
        if better(other, verdict):
            chosen, outputs, verdict = candidate, tried, other
            notes.append(f"switched to {candidate.label}")
    for higher in careful:
        if verdict.divergences == 0 or not higher > delta:
            continue
        tried, other = try_(chosen, higher, f"{chosen.label} at adapt_delta {higher}")
        if other.divergences < verdict.divergences and (other.mixing or not verdict.mixing):
            outputs, verdict, delta = tried, other, higher
            notes.append(f"adapt_delta raised to {higher}")
    if any(output.adapted is None for output in outputs):  # an engine that did not say: run it whole
        whole = replace(settings, seed=seed, adapt_delta=delta)
        return engine.sample(program, chosen.data, whole, progress), chosen, tuple(notes), delta
    continued = replace(
        settings,
        seed=(seed + 1) % 2**31,  # another random stream than the warm-up's
        iter_warmup=0,
        iter_sampling=settings.iter_sampling - pilot,
        init=[last_draw(output) for output in outputs],
        adapted=tuple(output.adapted for output in outputs),
    )
    more = engine.sample(program, chosen.data, continued, _shifted(progress, settings.iter_warmup + pilot))
    return [join(a, b) for a, b in zip(outputs, more)], chosen, tuple(notes), delta


def last_draw(output: ChainOutput) -> dict:
    """A chain's last draw as Stan initial values (every constrained quantity by name and shape)."""
    kept = replace(output, values=output.values[-1:])
    return {name: values[0, 0] for name, values in assemble([kept]).parameters.items()}


def join(pilot: ChainOutput, rest: ChainOutput) -> ChainOutput:
    """A chain's pilot and its continuation as one chain."""
    seconds = dict(pilot.seconds)
    seconds["sampling"] = pilot.seconds.get("sampling", 0.0) + rest.seconds.get("sampling", 0.0)
    return replace(
        pilot,
        values=np.concatenate([pilot.values, rest.values]),
        seconds=seconds,
        messages=pilot.messages + rest.messages,
    )


_ITERATION = re.compile(r"Iteration:\s*(\d+)\s*/\s*(\d+)")
_TOTAL = re.compile(r"seconds \(Total\)")


def _quiet_totals(progress):
    """The progress callback without the pilot's closing lines (the run goes on after it)."""
    if progress is None:
        return None
    return lambda chain, message: None if _TOTAL.search(message) else progress(chain, message)


def _shifted(progress, offset: int):
    """The progress callback for a continuation: its iterations counted after ``offset``."""
    if progress is None:
        return None

    def shifted(chain: int, message: str) -> None:
        match = _ITERATION.search(message)
        if match:
            message = message.replace(match.group(1), str(int(match.group(1)) + offset), 1)
        progress(chain, message)

    return shifted
