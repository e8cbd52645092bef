"""The user-facing Model: formula + data -> design -> Stan program and Stan data."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from . import diagnostics
from .cache import cache_root
from .codegen import build_data, render_code
from .design import Design, DesignSpec, build_design
from .draws import assemble
from .engines import SamplerSettings, default_cores, get_engine
from .families import Family, get_family
from .fit import Fit
from .formula import parse_formula
from .parameterization import BlockParameterization, choose_parameterizations
from .priors import resolve_priors
from .progress import ChainProgress


class Model:
    """A Bayesian mixed model from an lme4-style formula.

    >>> model = Model("y ~ x + (x | group)", data)
    >>> print(model.stan_code)

    ``parameterization``: ``"auto"`` (default: chosen per group-level block from the data),
    ``"centered"``, ``"noncentered"``, or one entry per block (in the order of
    ``model.design.blocks``), each one of those words or an :class:`BlockParameterization`.
    ``model.parameterizations`` says what was chosen; the choice is Stan data, so it never
    changes the program (see docs/parameterization.md).
    """

    def __init__(
        self,
        formula: str,
        data: pd.DataFrame,
        family: str | Family = "gaussian",
        priors: Mapping[str, str] | None = None,
        parameterization: str | Sequence[str | BlockParameterization] = "auto",
    ) -> None:
        self.formula = formula
        self.family = get_family(family)
        self._design: Design = build_design(parse_formula(formula), self.family, data)
        self.parameterizations = choose_parameterizations(self._design, parameterization)
        self.priors = resolve_priors(self.family, self._design.response.y, priors)
        self.stan_code: str = render_code(self._design, self.parameterizations, self.priors)
        self.stan_data: dict = build_data(self._design, self.parameterizations, self.priors)

    def fit(
        self,
        chains: int = 4,
        iter_warmup: int = 1000,
        iter_sampling: int = 1000,
        seed: int | None = None,
        adapt_delta: float = 0.8,
        max_treedepth: int = 10,
        init: float | dict | list[dict] | None = None,
        cores: int | None = None,
        backend: str = "auto",
        progress: bool = True,
    ) -> Fit:
        """Sample the posterior with Stan's NUTS.

        ``backend="auto"`` uses cmdstanpy when CmdStan is installed, else the embedded
        engine. ``init`` is an init radius, a dict of initial values, or one dict per
        chain. ``cores`` (default: all) caps the chains run at once. The same ``seed``
        on the same data gives the same draws.
        """
        settings = SamplerSettings(
            chains=chains,
            iter_warmup=iter_warmup,
            iter_sampling=iter_sampling,
            seed=seed,
            adapt_delta=adapt_delta,
            max_treedepth=max_treedepth,
            init=init,
            cores=min(default_cores() if cores is None else cores, chains),
            refresh=max(1, (iter_warmup + iter_sampling) // 100),
        )
        name, engine = get_engine(backend)
        started = time.perf_counter()
        program = engine.compile_program(self.stan_code, _announce_compile if progress else None)
        bars = ChainProgress(iter_warmup, iter_sampling) if progress else None
        sampling_started = time.perf_counter()
        try:
            outputs = engine.sample(program, self.stan_data, settings, bars)
        finally:
            if bars is not None:
                bars.close()
        finished = time.perf_counter()
        draws = assemble(outputs)
        labels, flat = draws.flat()
        problems = diagnostics.sampler_problems(labels, flat, draws.sampler, max_treedepth)
        diagnostics.warn_problems(problems)
        first = [o.first_message_at for o in outputs if o.first_message_at is not None]
        timings = {
            "compile": program.compile_seconds,
            "compiled_now": float(program.compiled_now),
            "sampling_wall": finished - sampling_started,
            "warmup_max_chain": max((o.seconds.get("warm-up", np.nan) for o in outputs), default=np.nan),
            "sampling_max_chain": max((o.seconds.get("sampling", np.nan) for o in outputs), default=np.nan),
        }
        if first:
            timings["until_sampler_started"] = min(first) - started
        return Fit(self, draws, settings, name, timings, tuple(problems))

    @property
    def design(self) -> DesignSpec:
        """The design spec: rebuilds X and Z for new data."""
        return self._design.spec

    @property
    def nobs(self) -> int:
        return self._design.n

    def __repr__(self) -> str:
        blocks = ", ".join(
            f"{b.factor.name}: {', '.join(b.columns)} ({p})"
            for b, p in zip(self.design.blocks, self.parameterizations)
        )
        return (
            f"<lmmformula.Model {self.design.formula.formula!r}, family {self.family}, "
            f"{self.nobs} observations; group-level: {blocks or 'none'}>"
        )


def _announce_compile() -> None:
    print(
        "Compiling the Stan program for this model structure (first fit of it in this cache: "
        f"{cache_root()}); typically 45-70 s on a 2-core machine, longer on a loaded one. "
        "Later fits of the same structure reuse it.",
        file=sys.stderr,
        flush=True,
    )


def make_stancode(
    formula: str,
    data: pd.DataFrame,
    family: str | Family = "gaussian",
    priors: Mapping[str, str] | None = None,
    parameterization: str | Sequence[str | BlockParameterization] = "auto",
) -> str:
    """The Stan program for ``formula`` on ``data`` (see :class:`Model`)."""
    return Model(formula, data, family, priors, parameterization).stan_code


def make_standata(
    formula: str,
    data: pd.DataFrame,
    family: str | Family = "gaussian",
    priors: Mapping[str, str] | None = None,
    parameterization: str | Sequence[str | BlockParameterization] = "auto",
) -> dict:
    """The Stan data for ``formula`` on ``data`` (see :class:`Model`)."""
    return Model(formula, data, family, priors, parameterization).stan_data
