"""The user-facing Model: formula + data -> design -> Stan program and Stan data."""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, replace

import numpy as np
import pandas as pd

from . import approximations, diagnostics
from .cache import cache_root
from .codegen import build_data, prior_only_data, render_code
from .design import Design, DesignSpec, build_design, check_identifiable
from .draws import assemble
from .engines import ApproximationSettings, ChainOutput, SamplerSettings, default_cores, get_engine
from .engines.base import METHODS
from .errors import ArgumentError, DesignWarning, EngineError
from .families import Family, get_family
from .fit import Fit
from .formula import parse_formula
from .parameterization import (
    BlockParameterization,
    block_information,
    choose_parameterizations,
    default_adapt_delta,
)
from .pilot import CAREFUL, Candidate, sample_checked
from .priors import WEAKLY_INFORMATIVE, Priors, PriorSpec, prior_targets, resolve_priors
from .progress import ChainProgress


class Model:
    """A Bayesian mixed model from an lme4-style formula, ready to sample with Stan.

    Building a Model checks the formula and the data, builds the design, chooses the
    parameterization, sets the priors and renders the Stan program; nothing is compiled
    until :meth:`fit`.

    Parameters
    ----------
    formula : str
        lme4-style formula, e.g. ``"y ~ x + (x | group)"``. The fixed part is formulaic
        syntax (``C(f)``, ``scale(x)``, ``poly(x, 2)``, ``log(x)``, ``a:b``, ``a * b``);
        group-level terms are ``(expr | g)`` (correlated), ``(expr || g)`` (uncorrelated),
        ``(1 | a/b)`` (nested: ``a`` and ``a:b``) and ``(1 | a:b)`` (interaction). Column
        names with spaces or symbols go in backticks. Binomial: ``cbind(successes, failures) ~ ...``.
    data : pandas.DataFrame
        One row per observation. Never modified. Rows with a missing value in a column
        the formula uses are dropped, with a :class:`DesignWarning` counting them.
    family : str or Family, default "gaussian"
        A family name (any in ``lf.families.FAMILIES``: ``"gaussian"``, ``"student"``,
        ``"bernoulli"``, ``"binomial"``, ``"poisson"``, ``"negbinomial"``, ``"gamma"``,
        ``"lognormal"``, ``"beta"``, ``"exponential"``, ``"weibull"``,
        ``"zero_inflated_poisson"``, ``"zero_inflated_negbinomial"``, ``"hurdle_poisson"``,
        ``"hurdle_negbinomial"``, ``"cumulative"``; default links) or a Family with its link,
        e.g. ``lf.get_family("bernoulli", link="probit")``.
    priors : list, dict or str, optional
        A list of :func:`prior` results, e.g. ``[lf.prior("normal(0, 1)", class_="b", coef="x"),
        lf.prior("exponential(2)", class_="sd", group="g")]``; or the shorthand ``{class:
        "distribution(numbers)"}`` for whole classes (``"Intercept"``, ``"b"``, ``"sd"``, ``"cor"``
        and the family's own parameters: ``"sigma"``, ``"shape"``, ``"nu"``, ``"phi"``, ``"zi"``,
        ``"hu"``); or ``"weakly_informative"`` (alone or in the list): normal(0, 2.5 sd(y) / sd(x))
        on each slope instead of brms's flat default (rstanarm's autoscale). Defaults follow brms:
        Student-t priors scaled to the response, flat on ``b``; :meth:`get_prior` shows them.
    parameterization : str or sequence, default "auto"
        ``"auto"`` (chosen per group-level block from the data), ``"centered"``,
        ``"noncentered"``, or one entry per block (in the order of ``model.design.blocks``),
        each one of those words or a :class:`BlockParameterization`. The choice is Stan data,
        so it never changes the program (docs/parameterization.md).

    Attributes
    ----------
    formula : str
        The formula as given.
    family : Family
        The response family.
    parameterizations : tuple of BlockParameterization
        What was chosen for each group-level block.
    priors : Priors
        Every prior as used (defaults where not given); :meth:`get_prior` shows them as a table.
    stan_code : str
        The Stan program.
    stan_data : dict
        The data for the program.
    design : DesignSpec
        The design, re-applicable to new data.
    nobs : int
        Observations used (after dropping incomplete rows).

    Raises
    ------
    FormulaError, PriorError, DataError, ArgumentError
        For a formula, prior, data set or argument that cannot make a model; the message
        names the term, column or argument and says what to do.

    Examples
    --------
    >>> model = Model("y ~ x + (x | group)", data)
    >>> print(model.stan_code)
    >>> fit = model.fit(seed=1)
    >>> fit.fixef()
    """

    def __init__(
        self,
        formula: str,
        data: pd.DataFrame,
        family: str | Family = "gaussian",
        priors=None,
        parameterization: str | Sequence[str | BlockParameterization] = "auto",
    ) -> None:
        self.formula = formula
        self.family = get_family(family)
        self._design: Design = build_design(parse_formula(formula), self.family, data)
        # per block and column, how well the groups inform their coefficients: decides the parameterization
        # here and the default adapt_delta in fit (computed once)
        self._information = block_information(self._design) if self._design.spec.blocks else []
        self.parameterizations = choose_parameterizations(self._design, parameterization, self._information)
        # "auto" may switch at the end of warm-up when its choice fails (lmmformula.pilot); a choice the
        # user made is kept, and a failing one is warned about
        self.switchable = isinstance(parameterization, str) and parameterization == "auto"
        self.priors: Priors = resolve_priors(
            prior_targets(self._design.spec, self._design.X, self._design.response.y), priors
        )
        check_identifiable(self._design, flat_slopes=self.priors.flat_slopes)
        self.stan_code: str = render_code(self._design, self.parameterizations, self.priors)
        self.stan_data: dict = build_data(self._design, self.parameterizations, self.priors)

    def fit(
        self,
        chains: int = 4,
        iter_warmup: int = 1000,
        iter_sampling: int = 1000,
        seed: int | None = None,
        adapt_delta: float | None = None,
        max_treedepth: int = 10,
        metric: str = "diag",
        init: float | dict | list[dict] | None = None,
        cores: int | None = None,
        backend: str = "auto",
        progress: bool = True,
        sample_prior: str = "no",
        method: str = "nuts",
        draws: int | None = None,
        jacobian: bool | None = None,
        num_paths: int | None = None,
        iter: int | None = None,  # noqa: A002 (cmdstanpy's name)
    ) -> Fit:
        """Sample the posterior with Stan's adaptive NUTS, or approximate it (``method``).

        The program is compiled on the first fit of its structure (then cached, see
        docs/engine.md); the same ``seed`` on the same data gives the same draws.

        Parameters
        ----------
        chains : int, default 4
            Number of Markov chains.
        iter_warmup, iter_sampling : int, default 1000
            Warm-up (adaptation) and kept iterations per chain.
        seed : int, optional
            Random seed in [0, 2**31); random when not given.
        adapt_delta : float, optional
            Target acceptance rate; raise it (e.g. 0.95) when there are divergences. By default
            brms's 0.8, or 0.95 for a model with a partially centered correlated block whose
            non-centered slopes the groups say little about (their correlation is weakly
            identified and a larger step diverges near +-1; see docs/parameterization.md).
        max_treedepth : int, default 10
            Largest tree depth of NUTS.
        metric : {"diag", "dense"}, default "diag"
            The mass matrix adapted in warm-up: diagonal, or dense (a full covariance; worth it for
            models with few parameters and strongly correlated posteriors, costly for many).
        init : float, dict, list of dict or "pathfinder", optional
            An init radius (uniform on (-radius, radius) unconstrained; default 2), a dict of
            initial values by Stan name, one dict per chain, or ``"pathfinder"``: each chain starts
            at its own draw of a Pathfinder run (4 paths) on the same program and data.
        cores : int, optional
            How many chains run at once (default: all cores, at most ``chains``).
        backend : {"auto", "embedded", "cmdstanpy"}, default "auto"
            ``"auto"`` uses cmdstanpy when CmdStan is installed, else the embedded engine.
        progress : bool, default True
            Show progress (bars on a terminal or in Jupyter, plain lines otherwise).
        sample_prior : {"no", "yes", "only"}, default "no"
            As brms: ``"only"`` samples the priors alone (the same program, its likelihood switched
            off by the data ``prior_only``), for prior predictive checks (``fit.pp_check()`` on such
            a fit); ``"yes"`` also samples them next to the posterior (:meth:`Fit.prior_draws`).
            Both need proper priors: a flat prior on ``b`` or ``Intercept`` is an error naming it.
        method : {"nuts", "pathfinder", "laplace", "optimize", "meanfield", "fullrank"}, default "nuts"
            The algorithm (Stan's services; brms's ``algorithm``). The others are fast approximations
            whose Fit has the same API, its draws as one "chain" with no R-hat or ESS:
            ``"pathfinder"`` (Zhang et al. 2022; ``num_paths`` L-BFGS paths, their normal
            approximations' draws resampled by Pareto-smoothed importance weights), ``"laplace"``
            (a normal approximation at the mode, on the unconstrained scale), ``"meanfield"`` and
            ``"fullrank"`` (ADVI, Stan's experimental variational inference), each with the Pareto k
            of its importance ratios as a check (``fit.pareto_k``; above 0.7, use NUTS); and
            ``"optimize"``, the posterior mode by L-BFGS (one draw; with ``jacobian=False``, the
            penalized maximum likelihood estimate). optimize and laplace run on every block
            non-centered (the joint mode of a centered block lies at sd = 0); for a model with
            group-level terms the joint mode is not lme4's estimate, and they warn so. ``chains``,
            ``iter_warmup``, ``iter_sampling``,
            ``adapt_delta``, ``max_treedepth``, ``metric`` and ``cores`` are NUTS's and are ignored.
        draws : int, optional
            Draws of an approximation to keep (default 1000; for pathfinder also each path's).
        jacobian : bool, optional
            optimize and laplace: whether the density includes the Jacobian of the constraining
            transforms (cmdstanpy's defaults: False for optimize, True for laplace).
        num_paths : int, optional
            pathfinder: number of paths (default 4; they run in parallel on the embedded engine).
        iter : int, optional
            Most iterations of the optimizer (optimize, laplace: 2000; pathfinder: 1000) or of ADVI
            (10000).

        Returns
        -------
        Fit
            The draws, read in the model's terms (:meth:`Fit.fixef`, :meth:`Fit.ranef`, ...).
            Sampling problems (divergences, R-hat, ESS) are warned about as a
            :class:`SamplingWarning` and kept in ``fit.problems``.

        Raises
        ------
        ArgumentError
            For an invalid setting.
        EngineError
            When compiling or a chain fails.
        """
        if method not in METHODS:
            raise ArgumentError(f"method={method!r} is not one of {', '.join(map(repr, METHODS))}")
        if sample_prior not in ("no", "yes", "only"):
            raise ArgumentError(f"sample_prior must be 'no', 'yes' or 'only'; got {sample_prior!r}")
        options = {"draws": draws, "jacobian": jacobian, "num_paths": num_paths, "iter": iter}
        if method != "nuts":
            return self._approximate(method, options, seed, init, backend, progress, sample_prior)
        given = [name for name, value in options.items() if value is not None]
        if given:
            raise ArgumentError(
                f"{', '.join(given)}: only for the approximate methods (method='pathfinder', 'laplace', "
                "'optimize', 'meanfield', 'fullrank'); NUTS takes iter_warmup and iter_sampling"
            )
        pathfinder_init = isinstance(init, str)
        if pathfinder_init and init != "pathfinder":
            raise ArgumentError(
                f"init={init!r}: a radius, a dict of initial values, one dict per chain, or 'pathfinder'"
            )
        settings = SamplerSettings(
            chains=chains,
            iter_warmup=iter_warmup,
            iter_sampling=iter_sampling,
            seed=seed,
            adapt_delta=default_adapt_delta(self._design, self.parameterizations, self._information)
            if adapt_delta is None
            else adapt_delta,
            max_treedepth=max_treedepth,
            metric=metric,
            init=None if pathfinder_init else init,
            cores=min(default_cores() if cores is None else cores, chains),
            refresh=max(1, (iter_warmup + iter_sampling) // 100),
        )
        self._check_sample_prior(sample_prior)
        name, engine = get_engine(backend)
        started = time.perf_counter()
        program = engine.compile_program(self.stan_code, _announce_compile if progress else None)
        prior_only = prior_only_data(self.stan_data, self.design)
        data = prior_only if sample_prior == "only" else self.stan_data
        initialized = 0.0
        if pathfinder_init:
            initialized = time.perf_counter()
            settings = replace(settings, init=_pathfinder_inits(engine, program, data, chains, seed))
            initialized = time.perf_counter() - initialized
        candidates = [Candidate(_label(self.parameterizations), data)]
        if sample_prior != "only":
            candidates += self.alternatives()
        # divergences in the pilot: warm up again more carefully, unless the user chose adapt_delta
        careful = () if adapt_delta is not None else tuple(d for d in CAREFUL if d > settings.adapt_delta)
        draws_, timings, problems, ran, notes, used = _sample(
            engine, program, candidates, settings, progress, started, (self._pilot_keys(), careful)
        )
        settings = replace(settings, adapt_delta=used)
        if pathfinder_init:
            timings["pathfinder_init"] = initialized
        prior = None
        if sample_prior == "yes":
            prior = _sample(
                engine,
                program,
                [Candidate("prior", prior_only)],
                settings,
                progress,
                time.perf_counter(),
                None,
            )[0]
        return Fit(
            self, draws_, settings, name, timings, tuple(problems), sample_prior, prior, notes=notes,
            parameterization=ran.label,
        )  # fmt: skip

    def alternatives(self) -> list[Candidate]:
        """What a fit may switch to when the pilot of :attr:`parameterizations` fails (only when they
        were chosen by ``"auto"``): every block non-centered, or, when none was centered, every block
        centered. The same program: only the data differ."""
        if not self.switchable or not self._design.spec.blocks:
            return []
        centered = any(choice.centered for choice in self.parameterizations)
        word = "noncentered" if centered else "centered"
        choices = choose_parameterizations(self._design, word, self._information)
        if choices == self.parameterizations:
            return []
        return [Candidate(_label(choices, word), build_data(self._design, choices, self.priors))]

    def _pilot_keys(self) -> tuple[tuple[str, ...], int]:
        return tuple(dpar.name for dpar in self.family.dpars), len(self._design.spec.blocks)

    def _check_sample_prior(self, sample_prior: str) -> None:
        if sample_prior != "no" and self.priors.improper():
            raise ArgumentError(
                f"sample_prior={sample_prior!r} needs proper priors, but "
                f"{' and '.join(self.priors.improper())}: "
                "give them one, e.g. priors='weakly_informative' or [lf.prior('normal(0, 5)', class_='b')]"
            )

    def _approximate(self, method, options, seed, init, backend, progress, sample_prior) -> Fit:
        """A fit by one of the algorithms other than NUTS (see :meth:`fit`)."""
        if options["jacobian"] is not None and method not in ("optimize", "laplace"):
            raise ArgumentError(
                f"jacobian: only for method='optimize' or 'laplace' ({method} always works on the "
                "unconstrained scale)"
            )
        if options["num_paths"] is not None and method != "pathfinder":
            raise ArgumentError("num_paths: only for method='pathfinder'")
        if sample_prior == "yes":
            raise ArgumentError("sample_prior='yes' is for method='nuts'; fit the priors alone with 'only'")
        self._check_sample_prior(sample_prior)
        given = {name: value for name, value in options.items() if value is not None}
        settings = ApproximationSettings(method=method, seed=seed, init=init, **given)
        name, engine = get_engine(backend)
        program = engine.compile_program(self.stan_code, _announce_compile if progress else None)
        data = self.method_data(method)
        if sample_prior == "only":
            data = prior_only_data(self.stan_data, self.design)
        started = time.perf_counter()
        try:
            output = engine.approximate(program, data, settings)
        except EngineError as error:
            hint = (
                "L-BFGS found no mode from this start: try another seed or init, or method='nuts'"
                if method == "optimize"
                else f"The {method} approximation drew values the model cannot evaluate: it is far from the "
                "posterior; use method='nuts'"
            )
            raise EngineError(f"{error}\n{hint}") from None
        approximation = approximations.finish(output, settings, grouped=bool(self.design.blocks))
        timings = {
            "compile": program.compile_seconds,
            "compiled_now": float(program.compiled_now),
            "sampling_wall": time.perf_counter() - started,
        }
        diagnostics.warn_problems(list(approximation.problems))
        draws_ = assemble([approximation.output])
        return Fit(
            self,
            draws_,
            settings,
            name,
            timings,
            approximation.problems,
            sample_prior,
            pareto_k=approximation.pareto_k,
            importance_ess=approximation.importance_ess,
        )

    def method_data(self, method: str = "nuts") -> dict:
        """The Stan data a fit by ``method`` runs on (same program). NUTS, meanfield and fullrank:
        :attr:`stan_data`. optimize, laplace and pathfinder: every group-level block as
        ``parameterization="noncentered"`` has it, whatever the model chose, because they follow
        L-BFGS, and the density of a centered block grows without bound as its sds go to 0
        (Pathfinder's fixed effects on sleepstudy landed 34 posterior sds from NUTS's on the centered
        blocks, within 1 non-centered; benchmarks/methods.py).

        Parameters
        ----------
        method : str, default "nuts"
            One of :meth:`fit`'s methods.

        Returns
        -------
        dict
            The data, by Stan name.
        """
        if method not in METHODS:
            raise ArgumentError(f"method={method!r} is not one of {', '.join(map(repr, METHODS))}")
        if method not in ("optimize", "laplace", "pathfinder"):
            return self.stan_data
        noncentered = choose_parameterizations(self._design, "noncentered", self._information)
        return build_data(self._design, noncentered, self.priors)

    def description(self) -> dict:
        """What makes this model, as JSON-ready values: formula, family and link, the user's priors,
        the parameterization of each block, rows dropped, the design (population-level columns;
        each block's factor, columns and levels) and the program. With the data it was built on
        (:attr:`data_design`'s ``frame``), :meth:`restore` makes the same model again; a saved fit
        stores both (see :meth:`Fit.save`)."""
        spec = self.design
        return {
            "formula": self.formula,
            "family": self.family.name,
            "link": self.family.link,
            "priors": [asdict(user) for user in self.priors.user],
            "weakly_informative": self.priors.weakly_informative,
            "parameterization": [asdict(choice) for choice in self.parameterizations],
            "nobs": self.nobs,
            "rows_dropped": self._design.n_dropped,
            "design": {
                "population_level": ["Intercept"] * spec.has_intercept + list(spec.fixed_columns),
                "blocks": [
                    {
                        "factor": b.factor.name,
                        "columns": list(b.columns),
                        "correlated": b.correlated,
                        "levels": list(b.factor.levels),
                    }
                    for b in spec.blocks
                ],
            },
            "stan_code": self.stan_code,
        }

    @classmethod
    def restore(cls, description: dict, frame: pd.DataFrame) -> Model:
        """The model :meth:`description` describes, built again on ``frame`` (the columns it uses,
        complete rows: :attr:`data_design`'s ``frame``), with the same priors and parameterization.

        Raises
        ------
        ArgumentError
            When the description lacks an entry or holds one this version cannot read.
        """
        try:
            priors = [PriorSpec(**entry) for entry in description["priors"]]
            if description["weakly_informative"]:
                priors.append(WEAKLY_INFORMATIVE)
            parameterization = [
                BlockParameterization(**{k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()})
                for entry in description["parameterization"]
            ]
            family = get_family(description["family"], description["link"])
            formula, dropped = description["formula"], int(description["rows_dropped"])
        except (KeyError, TypeError, ValueError) as error:
            raise ArgumentError(f"a model description this version cannot read ({error!r})") from None
        with warnings.catch_warnings():  # said when the model was first built
            warnings.simplefilter("ignore", DesignWarning)
            model = cls(formula, frame, family=family, priors=priors, parameterization=parameterization)
        model._design = replace(model._design, n_dropped=dropped)
        saved, rebuilt = description.get("design"), model.description()["design"]
        if saved is not None and saved != rebuilt:
            raise ArgumentError(
                "the model rebuilt from the saved data has another design than the saved one (its levels "
                f"or columns differ: saved {_design_difference(saved, rebuilt)}); its draws would be read "
                "against the wrong levels or coefficients. Refit the model with this version of lmmformula"
            )
        return model

    def get_prior(self) -> pd.DataFrame:
        """The priors of this model as brms's ``get_prior`` shows them: one row per class, per
        coefficient, grouping factor and group-level term (prior, class, coef, group, resp, dpar,
        nlpar, lb, ub, source). ``source`` is "default" or "user" where a prior is set, "(vectorized)"
        where a row takes the prior of a less specific one; flat priors show as "(flat)"."""
        return self.priors.table()

    @property
    def design(self) -> DesignSpec:
        """The design spec: its terms, blocks and levels; rebuilds X and Z for new data."""
        return self._design.spec

    @property
    def data_design(self) -> Design:
        """The fitting data's design: X, each block's Z and levels, the response (rows with
        missing values removed)."""
        return self._design

    @property
    def nobs(self) -> int:
        """Observations used by the model (after dropping incomplete rows)."""
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


def _design_difference(saved: dict, rebuilt: dict) -> str:
    """The first place where two descriptions' designs differ, for a message."""
    if saved.get("population_level") != rebuilt["population_level"]:
        return f"population-level {saved.get('population_level')}, rebuilt {rebuilt['population_level']}"
    for old, new in zip(saved.get("blocks", []), rebuilt["blocks"]):
        if old != new:
            return (
                f"{old.get('factor')} levels {old.get('levels', [])[:5]}..., rebuilt {new['levels'][:5]}..."
            )
    return f"{len(saved.get('blocks', []))} group-level blocks, rebuilt {len(rebuilt['blocks'])}"


def _announce_compile() -> None:
    print(
        "Compiling the Stan program for this model structure (first fit of it in this cache: "
        f"{cache_root()}); typically 60-120 s on a 2-core machine, longer on a loaded one; the first "
        "compile in a new cache also builds lmmformula's runner, about 2 minutes more. "
        "Later fits of the same structure reuse it.",
        file=sys.stderr,
        flush=True,
    )


def _pathfinder_inits(engine, program, data: dict, chains: int, seed: int | None) -> list[dict]:
    """One set of initial values per chain: distinct draws of a Pathfinder run (4 paths) on the same
    program and data, picked by their importance weights (as dicts of Stan values)."""
    settings = ApproximationSettings(method="pathfinder", seed=seed)
    output = engine.approximate(program, data, settings)
    weights, _ = approximations.importance_weights(
        approximations.log_ratios(output.columns, output.values, "pathfinder")
    )
    # distinct draws even when a few weights hold all the mass (a poor approximation): the rest
    # share a floor
    weights = weights + 1e-3 / len(weights)
    rows = np.random.default_rng(seed).choice(
        len(weights), size=chains, replace=len(weights) < chains, p=weights / weights.sum()
    )
    kept = ChainOutput(chain=1, columns=output.columns, values=output.values[rows], seconds={})
    parameters = assemble([kept]).parameters  # name -> (1, chains, ...)
    return [{name: values[0, i] for name, values in parameters.items()} for i in range(chains)]


def _label(choices, word: str = "auto") -> str:
    return f"{word} ({'; '.join(str(choice) for choice in choices)})" if choices else word


def _sample(engine, program, candidates, settings, progress, started, check):
    """Run the chains (checked at the end of warm-up when ``check``, the pilot's keys and careful
    adapt_delta values, is given, see lmmformula.pilot): the draws, the timings, the sampling problems
    (warned about), the candidate that ran, the pilot's notes and the adapt_delta used."""
    bars = ChainProgress(settings.iter_warmup, settings.iter_sampling) if progress else None
    sampling_started = time.perf_counter()
    try:
        if check is None:
            outputs = engine.sample(program, candidates[0].data, settings, bars)
            ran, notes, used = candidates[0], (), settings.adapt_delta
        else:
            keys, careful = check
            outputs, ran, notes, used = sample_checked(
                engine, program, candidates, settings, keys, bars, careful
            )
    finally:
        if bars is not None:
            bars.close()
    finished = time.perf_counter()
    draws = assemble(outputs)
    labels, flat = draws.flat()
    problems = diagnostics.sampler_problems(labels, flat, draws.sampler, settings.max_treedepth)
    if problems and notes:
        problems.append("checked at the end of warm-up: " + "; ".join(notes))
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
    return draws, timings, problems, ran, notes, used


def get_prior(
    formula: str, data: pd.DataFrame, family: str | Family = "gaussian", priors=None
) -> pd.DataFrame:
    """The priors the model ``formula`` on ``data`` would have, as brms's ``get_prior``: the
    defaults (scaled to the data) with their numbers, and any ``priors`` you pass.

    Parameters
    ----------
    formula, data, family, priors
        As :class:`Model` (see :func:`prior` for priors on one coefficient or group).

    Returns
    -------
    pandas.DataFrame
        :meth:`Model.get_prior`'s table: prior, class, coef, group, resp, dpar, nlpar, lb, ub, source.
    """
    return Model(formula, data, family, priors).get_prior()


def make_stancode(
    formula: str,
    data: pd.DataFrame,
    family: str | Family = "gaussian",
    priors=None,
    parameterization: str | Sequence[str | BlockParameterization] = "auto",
) -> str:
    """The Stan program for ``formula`` on ``data``, as brms's ``make_stancode``.

    Parameters are those of :class:`Model`; returns ``Model(...).stan_code``.
    """
    return Model(formula, data, family, priors, parameterization).stan_code


def make_standata(
    formula: str,
    data: pd.DataFrame,
    family: str | Family = "gaussian",
    priors=None,
    parameterization: str | Sequence[str | BlockParameterization] = "auto",
) -> dict:
    """The Stan data for ``formula`` on ``data``, as brms's ``make_standata``.

    Parameters are those of :class:`Model`; returns ``Model(...).stan_data``.
    """
    return Model(formula, data, family, priors, parameterization).stan_data
