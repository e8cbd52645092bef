"""Stage 6: the result of sampling a Model, read in the user's names."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import criteria, plots, predictions, results
from .design import fitted_new_design, new_design
from .draws import Draws
from .engines.base import ApproximationSettings, SamplerSettings
from .errors import ArgumentError, DesignWarning
from .summary import Summary

if TYPE_CHECKING:
    from xarray import DataTree

    from .model import Model

#: to_arviz adds the (draws x rows) log_likelihood and posterior_predictive groups by default up to this size.
PER_ROW_GROUP_LIMIT = 25_000_000


@dataclass(eq=False)
class Fit:
    """Posterior draws of a fitted :class:`Model`, read in the model's terms and levels.

    Made by :meth:`Model.fit`; not built by hand.

    Attributes
    ----------
    model : Model
        The model that was sampled.
    posterior : dict of numpy.ndarray
        Every Stan parameter under its Stan name (``b``, ``sd_1``, ``r_1``, ...), each of
        shape (chain, draw, ...).
    sampler : dict of numpy.ndarray
        The sampler's diagnostics per draw (``lp__``, ``divergent__``, ``treedepth__``,
        ``energy__``, ...), each (chain, draw).
    settings : SamplerSettings or ApproximationSettings
        The settings of the algorithm used (:attr:`method`).
    backend : str
        ``"embedded"`` or ``"cmdstanpy"``.
    timings : dict
        Seconds spent compiling and sampling.
    problems : tuple of str
        The sampling problems found (also warned about as a :class:`SamplingWarning`).
    sample_prior : str
        ``"no"``; ``"only"`` for a prior-only fit (its draws are the priors'); ``"yes"`` when
        :meth:`prior_draws` holds draws of the priors too.
    pareto_k, importance_ess : float or None
        For laplace, pathfinder, meanfield and fullrank: the Pareto k and the effective sample size of
        the importance ratios of the posterior to the approximation (k above 0.7 or an ESS below 100:
        its draws are not a reliable stand-in for the posterior).
    method : str
        The algorithm: ``"nuts"``, ``"optimize"``, ``"laplace"``, ``"pathfinder"``, ``"meanfield"``
        or ``"fullrank"``.
    num_chains, num_draws : int
        Chains, and kept draws per chain (one "chain" for the algorithms other than NUTS; one draw,
        the optimum, for optimize).
    """

    model: Model
    draws_: Draws
    settings: SamplerSettings | ApproximationSettings
    backend: str
    timings: dict[str, float]
    problems: tuple[str, ...]
    sample_prior: str = "no"
    prior_draws_: Draws | None = None
    pareto_k: float | None = None
    importance_ess: float | None = None
    notes: tuple[str, ...] = ()  # what the check at the end of warm-up found (lmmformula.pilot)
    parameterization: str | None = None  # the one the draws came from (auto may have switched)

    @property
    def method(self) -> str:
        """The algorithm that produced the draws."""
        return getattr(self.settings, "method", "nuts")

    @property
    def posterior(self) -> dict[str, np.ndarray]:
        """Every Stan parameter, (chain, draw, ...) arrays under Stan's names."""
        return self.draws_.parameters

    @property
    def sampler(self) -> dict[str, np.ndarray]:
        """The sampler's diagnostics, (chain, draw) arrays."""
        return self.draws_.sampler

    @property
    def num_chains(self) -> int:
        """Number of chains."""
        return next(iter(self.posterior.values())).shape[0]

    @property
    def num_draws(self) -> int:
        """Kept draws per chain."""
        return next(iter(self.posterior.values())).shape[1]

    # ------------------------------------------------------------------ estimates

    def fixef(self, probs: tuple[float, ...] = (0.025, 0.975)) -> pd.DataFrame:
        """Population-level effects, like brms's ``fixef``.

        Parameters
        ----------
        probs : tuple of float, default (0.025, 0.975)
            Quantiles to report.

        Returns
        -------
        pandas.DataFrame
            One row per term (``Intercept`` at zero predictors); columns Estimate (posterior
            mean), Est.Error (posterior sd) and one per quantile (``Q2.5``, ``Q97.5``).
        """
        return results.summarize(results.fixef_draws(self.model.design, self.posterior), probs)

    def ranef(self, summary: bool = False, probs: tuple[float, ...] = (0.025, 0.975)) -> dict:
        """Group-level effects per grouping factor, like lme4's ``ranef(m)$group``.

        Parameters
        ----------
        summary : bool, default False
            False: a levels x terms DataFrame of posterior means. True: long form, indexed
            by (level, term), with Estimate, Est.Error and quantiles.
        probs : tuple of float, default (0.025, 0.975)
            Quantiles to report when ``summary`` is True.

        Returns
        -------
        dict of str to pandas.DataFrame
            Keyed by grouping factor (``"g"``, ``"a:b"``); the index holds the grouping
            column's own values (strings for interactions), so ``ranef["Subject"].loc[308]``
            works for an integer column.
        """
        return _per_group(results.ranef_draws(self.model.design, self.posterior), summary, probs)

    def coef(self, summary: bool = False, probs: tuple[float, ...] = (0.025, 0.975)) -> dict:
        """Group-level coefficients (fixef + ranef), like lme4's ``coef(m)$group``.

        Summed draw by draw, so the uncertainty is right. Parameters and return value as
        :meth:`ranef`; columns are every population-level term, then terms that vary only
        by the factor.
        """
        return _per_group(results.coef_draws(self.model.design, self.posterior), summary, probs)

    def varcorr(self, probs: tuple[float, ...] = (0.025, 0.975)) -> pd.DataFrame:
        """Group-level sds and correlations, and the residual sigma, like lme4's ``VarCorr``.

        Parameters
        ----------
        probs : tuple of float, default (0.025, 0.975)
            Quantiles to report.

        Returns
        -------
        pandas.DataFrame
            Indexed by (group, parameter), e.g. ``("group", "sd(Intercept)")``,
            ``("group", "cor(Intercept,x)")``, ``("Residual", "sigma")``.
        """
        table = results.summarize(results.varcorr_draws(self.model.design, self.posterior), probs)
        table.index.names = ["group", "parameter"]
        return table

    def draws(self) -> pd.DataFrame:
        """Every draw under brms's names (``b_x``, ``sd_g__Intercept``, ``r_g[level,term]``).

        Returns
        -------
        pandas.DataFrame
            One row per draw, with ``.chain`` and ``.draw`` columns.
        """
        return _draw_frame(results.readable_draws(self.model.design, self.posterior))

    def prior_draws(self) -> pd.DataFrame:
        """Draws of the priors, under brms's names as :meth:`draws`, like brms's ``prior_draws``:
        those of a fit with ``sample_prior="yes"`` (sampled by the same program with its likelihood
        switched off), or a prior-only fit's own draws."""
        if self.sample_prior == "only":
            return self.draws()
        if self.prior_draws_ is None:
            raise ArgumentError(
                "this fit has no prior draws: fit with sample_prior='yes' (or 'only' for the priors alone)"
            )
        return _draw_frame(results.readable_draws(self.model.design, self.prior_draws_.parameters))

    def summary(self, prob: float = 0.95) -> Summary:
        """brms-style report: print it, or let Jupyter show it as HTML.

        Parameters
        ----------
        prob : float, default 0.95
            Width of the credible intervals.

        Returns
        -------
        Summary
            Population-level, group-level and family rows with Estimate, Est.Error, the
            interval, Rhat, Bulk_ESS and Tail_ESS, and any sampling problems.
        """
        spec = self.model.design
        probs = ((1 - prob) / 2, (1 + prob) / 2)
        scales = results.scale_draws(spec, self.posterior)
        levels = {block.factor.name: len(block.factor.levels) for block in spec.blocks}
        groups = tuple(
            (factor, count, self._table({s.label: s.draws for s in scales if s.group == factor}, probs, prob))
            for factor, count in levels.items()
        )
        family_rows = {s.label: s.draws for s in scales if s.kind == "dpar"}
        family = self.model.family
        header = (
            ("Family", family.name),
            ("Links", "; ".join([f"mu = {family.link}", *(f"{d.name} = identity" for d in family.dpars)])),
            ("Formula", self.model.formula),
            ("Data", f"{self.model.nobs} observations" + _dropped(self.model)),
            ("Algorithm", _algorithm(self)),
            ("Draws", _draws_line(self)),
            *((("Warm-up check", _check_line(self)),) if self.notes else ()),
        )
        return Summary(
            header=header,
            group_level=groups,
            population_level=self._table(results.fixef_draws(spec, self.posterior), probs, prob),
            family_level=self._table(family_rows, probs, prob) if family_rows else None,
            problems=self.problems,
        )

    def _table(self, draws: dict, probs: tuple[float, float], prob: float) -> pd.DataFrame:
        # R-hat and ESS are NUTS's: the other algorithms' draws are not Markov chains (NA, as brms shows)
        table = results.summarize(draws, probs, convergence=True, chains=self.method == "nuts")
        level = f"{100 * prob:g}%"
        return table.rename(
            columns={
                results.quantile_label(probs[0]): f"l-{level} CI",
                results.quantile_label(probs[1]): f"u-{level} CI",
            }
        )

    def to_arviz(
        self,
        log_likelihood: bool | None = None,
        posterior_predictive: bool | None = None,
        newdata: pd.DataFrame | None = None,
        seed: int | None = None,
    ) -> DataTree:
        """The draws as ArviZ data (arviz-base's ``xarray.DataTree``), in the model's names.

        Parameters
        ----------
        log_likelihood : bool, optional
            Add the log_likelihood group (``y``, dim ``obs``): :meth:`log_lik`. By default when
            draws x rows is at most 25 million (200 MB); larger data leave it out with a
            :class:`DesignWarning` unless you pass True.
        posterior_predictive : bool, optional
            Add the posterior_predictive group (``y``): :meth:`posterior_predict`; default as
            ``log_likelihood``.
        newdata : pandas.DataFrame, optional
            Add the predictions group (``y``, dim ``new_obs``, labelled by newdata's index).
        seed : int, optional
            Seed of the predictive draws.

        Returns
        -------
        xarray.DataTree
            Groups posterior (population-level coefficients, sds, correlations and group-level
            effects under their names), sample_stats, observed_data, constant_data and the
            groups asked for; for arviz-stats (``loo``, ``summary``) and arviz-plots.
        """
        from .inference_data import to_inference_data

        size = self.num_chains * self.num_draws * self.model.nobs
        if (log_likelihood is None or posterior_predictive is None) and size > PER_ROW_GROUP_LIMIT:
            left = [
                n
                for n, v in (
                    ("log_likelihood", log_likelihood),
                    ("posterior_predictive", posterior_predictive),
                )
                if v is None
            ]
            warnings.warn(
                f"to_arviz: left out {' and '.join(left)} ({size / 1e6:.0f} million values, "
                f"{size * 8 / 1e9:.1f} GB each); pass {left[0]}=True to include them",
                DesignWarning,
                stacklevel=2,
            )
        small = size <= PER_ROW_GROUP_LIMIT
        log_likelihood = small if log_likelihood is None else log_likelihood
        posterior_predictive = small if posterior_predictive is None else posterior_predictive
        predictions_ = None
        if newdata is not None:
            draws, rows = self._compute("predict", newdata, seed=seed)
            predictions_ = (draws, newdata.index[rows])
        return to_inference_data(self, log_likelihood, posterior_predictive, predictions_, seed)

    # ------------------------------------------------------------------ after the fit

    def posterior_linpred(
        self,
        newdata: pd.DataFrame | None = None,
        re_formula=None,
        transform: bool = False,
        ndraws: int | None = None,
        allow_new_levels: bool = False,
        sample_new_levels: str = "uncertainty",
        seed: int | None = None,
    ) -> np.ndarray:
        """Draws of the linear predictor, like brms's ``posterior_linpred``.

        Parameters
        ----------
        newdata : pandas.DataFrame, optional
            Rows to predict for (default: the fitting data, rows with missing values removed).
            Stateful transforms reuse the fitting data's state; rows with missing values in the
            columns the prediction needs are dropped with a :class:`DesignWarning`.
        re_formula : None, NA or str, default None
            Group-level terms to include: None all of them, ``np.nan`` / ``"NA"`` / ``"~ 0"``
            none, or a formula of some of them, e.g. ``"~ (1 | Subject)"``.
        transform : bool, default False
            Apply the inverse link (the mean of the response for most families).
        ndraws : int, optional
            Use this many draws picked at random (default: all, chains one after the other).
        allow_new_levels : bool, default False
            Predict for levels of a grouping factor that the fitting data did not have.
        sample_new_levels : {"uncertainty", "gaussian", "old_levels"}, default "uncertainty"
            How a new level's effects are drawn, as brms: in every draw those of a randomly chosen
            existing level; from the fitted (multivariate) normal; or those of one existing level
            chosen once per new level.
        seed : int, optional
            Seed of the random choices (draws, new levels), for reproducible results.

        Returns
        -------
        numpy.ndarray
            (draws, rows).
        """
        options = (re_formula, ndraws, allow_new_levels, sample_new_levels, seed)
        return self._compute("mu" if transform else "eta", newdata, *options)[0]

    def posterior_epred(
        self,
        newdata: pd.DataFrame | None = None,
        re_formula=None,
        ndraws: int | None = None,
        allow_new_levels: bool = False,
        sample_new_levels: str = "uncertainty",
        seed: int | None = None,
    ) -> np.ndarray:
        """Draws of the expected response, like brms's ``posterior_epred`` (a binomial model's
        expected successes out of each row's trials; an ordinal model's expected category).
        Parameters are those of :meth:`posterior_linpred` (but ``transform``); returns (draws, rows)."""
        options = (re_formula, ndraws, allow_new_levels, sample_new_levels, seed)
        return self._compute("epred", newdata, *options)[0]

    def posterior_predict(
        self,
        newdata: pd.DataFrame | None = None,
        re_formula=None,
        ndraws: int | None = None,
        allow_new_levels: bool = False,
        sample_new_levels: str = "uncertainty",
        seed: int | None = None,
    ) -> np.ndarray:
        """Draws of new responses, like brms's ``posterior_predict``: one per posterior draw and
        row (counts out of each row's trials for binomial, categories 1..K for ordinal).
        Parameters are those of :meth:`posterior_linpred` (but ``transform``); returns (draws, rows)."""
        options = (re_formula, ndraws, allow_new_levels, sample_new_levels, seed)
        return self._compute("predict", newdata, *options)[0]

    def predict(
        self, newdata: pd.DataFrame | None = None, probs: tuple[float, ...] = (0.025, 0.975), **options
    ) -> pd.DataFrame:
        """Per-row summary of :meth:`posterior_predict`, like brms's ``predict``: Estimate,
        Est.Error and quantiles (``probs``), indexed by the rows of ``newdata`` used. Parameters are
        those of :meth:`posterior_predict` (``options`` by keyword)."""
        return self._summarize("predict", newdata, probs, options)

    def fitted(
        self, newdata: pd.DataFrame | None = None, probs: tuple[float, ...] = (0.025, 0.975), **options
    ) -> pd.DataFrame:
        """Per-row summary of :meth:`posterior_epred`, like brms's ``fitted``, with quantiles ``probs``.
        Parameters are those of :meth:`posterior_epred` (``options`` by keyword)."""
        return self._summarize("epred", newdata, probs, options)

    def log_lik(
        self,
        newdata: pd.DataFrame | None = None,
        re_formula=None,
        ndraws: int | None = None,
        allow_new_levels: bool = False,
        sample_new_levels: str = "uncertainty",
        seed: int | None = None,
    ) -> np.ndarray:
        """Pointwise log-likelihood, (draws, rows), like brms's ``log_lik``: each row's log density
        (every constant kept) from the family's numpy density, times its weight for a model with
        ``y | weights(w)``. ``newdata`` must have the response. Parameters are those of
        :meth:`posterior_linpred` (but ``transform``)."""
        options = (re_formula, ndraws, allow_new_levels, sample_new_levels, seed)
        return self._compute("log_lik", newdata, *options)[0]

    def loo(self, pointwise: bool = False):
        """Approximate leave-one-out cross-validation (PSIS-LOO, arviz-stats), like brms's ``loo``.

        Parameters
        ----------
        pointwise : bool, default False
            Keep each observation's elpd (``elpd_i``); the Pareto k values are always kept.

        Returns
        -------
        arviz_stats.ELPDData
            ``elpd`` (elpd_loo), ``se``, ``p`` (p_loo), ``pareto_k``; printing it gives loo's table.
            Observations whose Pareto k is too large are counted in a :class:`ComparisonWarning`.
        """
        self._needs_draws("loo")
        posterior = self.to_arviz(log_likelihood=False, posterior_predictive=False).posterior
        prediction, _ = self._prepare(None)
        return criteria.loo(
            posterior,
            self.model.nobs,
            lambda start, stop: prediction.block("log_lik", slice(start, stop)),
            pointwise,
        )

    def waic(self) -> criteria.WAIC:
        """The widely applicable information criterion, like brms's ``waic`` (prefer :meth:`loo`,
        whose Pareto k says when the approximation fails).

        Returns
        -------
        WAIC
            elpd_waic, its standard error, p_waic, waic and the pointwise elpd.
        """
        self._needs_draws("waic")
        prediction, _ = self._prepare(None)
        return criteria.waic(values for _, values in prediction.blocks("log_lik"))

    def bayes_R2(self, probs: tuple[float, ...] = (0.025, 0.975)) -> pd.DataFrame:  # noqa: N802 (brms's name)
        """Bayesian R2 (Gelman et al. 2019), like brms's ``bayes_R2``: per draw, the variance of the
        expected values over that plus the residual variance, summarized.

        Parameters
        ----------
        probs : tuple of float, default (0.025, 0.975)
            Quantiles to report.

        Returns
        -------
        pandas.DataFrame
            One row ``R2``: Estimate, Est.Error and the quantiles.
        """
        y = np.asarray(self.model.data_design.response.y, dtype=float)
        prediction, _ = self._prepare(None)
        return criteria.bayes_r2(((y[rows], values) for rows, values in prediction.blocks("epred")), probs)

    def loo_R2(self, seed: int | None = None):  # noqa: N802 (brms's name)
        """R2 of the leave-one-out predictions (arviz-stats' ``loo_r2``), like brms's ``loo_R2``.

        Parameters
        ----------
        seed : int, optional
            Seed of the predictive draws it uses.

        Returns
        -------
        The estimate and its interval, as arviz-stats gives them.
        """
        import arviz_stats

        self._needs_draws("loo_R2")
        data = self.to_arviz(log_likelihood=True, posterior_predictive=True, seed=seed)
        return arviz_stats.loo_r2(data, "y")

    def pp_check(
        self, type: str = "dens_overlay", ndraws: int | None = None, stat="mean", seed: int | None = None
    ):  # noqa: A002 (brms's name)
        """A posterior predictive check, like brms's ``pp_check``: the response against replicates.

        Parameters
        ----------
        type : {"dens_overlay", "hist", "ecdf", "rootogram", "bars", "loo_pit", "stat"}
            Default "dens_overlay". Densities, histograms or ECDFs of y and of replicated data
            sets; for counts, 0/1 and ordinal responses a hanging rootogram or bars of the
            frequency of each value with the replicates' 90 % intervals; the ECDF of the LOO
            probability integral transform against the uniform; or a statistic of the replicates
            against that of y.
        ndraws : int, optional
            Replicates drawn (default 10 for dens_overlay and ecdf, 8 for hist, all draws otherwise).
        stat : str or callable, default "mean"
            The statistic of ``type="stat"``: "mean", "median", "sd", "min", "max", or a function
            called with ``axis=1`` on the replicates.
        seed : int, optional
            Seed of the replicates.

        Returns
        -------
        matplotlib.figure.Figure
        """
        plots.check_type(type, self.model.family, stat)
        if ndraws is None:
            ndraws = {"dens_overlay": 10, "ecdf": 10, "hist": 8}.get(type)
        y = np.asarray(self.model.data_design.response.y, dtype=float)
        pit = None
        if type == "loo_pit":
            import arviz_stats

            data = self.to_arviz(log_likelihood=True, posterior_predictive=True, seed=seed)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
                pit = np.asarray(arviz_stats.loo_pit(data)["y"])
            yrep = None
        else:
            yrep = np.asarray(self.posterior_predict(ndraws=ndraws, seed=seed), dtype=float)
        return plots.pp_check(y, yrep, type, pit=pit, stat=stat)

    def conditional_effects(
        self,
        effect: str,
        re_formula=np.nan,
        prob: float = 0.95,
        resolution: int = 100,
        conditions=None,
    ) -> ConditionalEffect:
        """How the expected response changes with one predictor, or two (``"x:f"``), like brms's
        ``conditional_effects``: the other predictors at their means (numbers) or first levels
        (categories; a grouping factor at its first level when ``re_formula`` keeps its terms),
        binomial trials at 1.

        Parameters
        ----------
        effect : str
            A predictor (``"x"``), or two joined by ``:`` (``"x:f"``: one line per level of f).
        re_formula : default NA
            Group-level terms to include (as :meth:`posterior_linpred`; brms's default, none).
        prob : float, default 0.95
            Probability mass of the credible band.
        resolution : int, default 100
            Points along a numeric predictor.
        conditions : pandas.DataFrame or dict, optional
            Values to hold other columns at instead of the defaults, as brms's ``conditions``: one
            panel per row of a DataFrame, or per combination of a dict's values (``{"z": [-1, 0, 1]}``,
            as brms's ``make_conditions``); the trials column of a binomial model too.

        Returns
        -------
        ConditionalEffect
            ``data`` (the grid with ``estimate__`` (posterior median), ``lower__``, ``upper__``, and
            ``cond__`` naming the condition when ``conditions`` is given) and ``figure``.
        """
        names_ = [part.strip() for part in str(effect).split(":")]
        if not 1 <= len(names_) <= 2 or not all(names_):
            raise ArgumentError(
                f"effect must name one predictor or two joined by ':' ('x' or 'x:f'); got {effect!r}"
            )
        if not 0 < prob < 1:
            raise ArgumentError(f"prob must be between 0 and 1, got {prob!r}")
        frame = self.model.data_design.frame
        tables = []
        for condition in predictions.conditions_table(conditions, frame, names_):
            grid = predictions.reference_grid(frame, self.model.design, names_, int(resolution), condition)
            draws = self.posterior_epred(grid, re_formula=re_formula)
            table = grid[names_ + list(condition)].copy()
            if conditions is not None:
                table["cond__"] = predictions.condition_label(condition)
            table["estimate__"] = np.median(draws, axis=0)
            table["lower__"] = np.quantile(draws, (1 - prob) / 2, axis=0)
            table["upper__"] = np.quantile(draws, (1 + prob) / 2, axis=0)
            tables.append(table)
        table = pd.concat(tables, ignore_index=True)
        response = " ".join(self.model.design.formula.response)
        return ConditionalEffect(table, plots.conditional_effects(table, names_, response))

    def _prepare(
        self,
        newdata,
        re_formula=None,
        ndraws=None,
        allow_new_levels=False,
        sample_new_levels="uncertainty",
        seed=None,
    ) -> tuple[predictions.Prediction, np.random.Generator]:
        """The :class:`~lmmformula.predictions.Prediction` of ``newdata`` (None: the fitting data) and
        the generator of its predictive draws, both from ``seed``."""
        spec = self.model.design
        if sample_new_levels not in predictions.NEW_LEVEL_STRATEGIES:
            raise ArgumentError(
                f"sample_new_levels must be one of {', '.join(predictions.NEW_LEVEL_STRATEGIES)}; "
                f"got {sample_new_levels!r}"
            )
        keep = predictions.kept_columns(spec, re_formula)
        if newdata is None:
            design = fitted_new_design(self.model.data_design)
        else:
            design = new_design(spec, newdata, tuple(any(row) for row in keep))
        draws_seed, levels_seed, predict_seed = np.random.SeedSequence(seed).spawn(3)
        chosen = predictions.choose_draws(predictions.draw_count(self.posterior), ndraws, draws_seed)
        request = predictions.Request(keep, bool(allow_new_levels), sample_new_levels, chosen, levels_seed)
        prediction = predictions.prepare(spec, self.posterior, design, request)
        return prediction, np.random.default_rng(predict_seed)

    def _compute(self, what: str, newdata, *options, **named) -> tuple[np.ndarray, np.ndarray]:
        """``what`` ("eta", "mu", "epred", "predict", "log_lik") as (draws, rows), and which rows of
        ``newdata`` were used; ``options`` are :meth:`_prepare`'s."""
        prediction, rng = self._prepare(newdata, *options, **named)
        return prediction.matrix(what, rng), prediction.design.kept

    def _summarize(self, what: str, newdata, probs, options) -> pd.DataFrame:
        """Per-row summaries of ``what``, a block of rows at a time."""
        prediction, rng = self._prepare(newdata, **options)
        index = _row_index(newdata, prediction.design.kept)
        parts = [
            predictions.summarize_rows(np.asarray(values, dtype=float), probs, index[rows])
            for rows, values in prediction.blocks(what, rng)
        ]
        return pd.concat(parts) if parts else predictions.summarize_rows(np.empty((1, 0)), probs, index)

    # ------------------------------------------------------------------ persistence

    def _needs_draws(self, what: str) -> None:
        if self.method == "optimize":
            raise ArgumentError(
                f"{what} needs draws of the posterior, but this fit is method='optimize' (one point): "
                "fit with method='nuts', or a fast approximation such as method='pathfinder'"
            )

    def save(self, path: str | Path) -> None:
        """Write the fit to ``path``, a netCDF-4 file; read it back with :func:`load`.

        The file holds ArviZ's groups in the model's names (``xarray.open_datatree(path)`` or
        ``arviz_base.convert_to_datatree(path)`` read it without lmmformula), the draws under
        Stan's names, the columns of the data the model uses, and the model's description
        (formula, family, priors, parameterization, design). :func:`load` rebuilds the Fit from
        it alone: no data, no compiling (lmmformula.fitfile describes the layout).

        Parameters
        ----------
        path : str or pathlib.Path
            File to write (by convention ``*.lmm`` or ``*.nc``).
        """
        from .fitfile import save

        save(self, path)

    def __str__(self) -> str:
        return str(self.summary())

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def __repr__(self) -> str:
        status = "no sampling problems" if not self.problems else f"{len(self.problems)} sampling problem(s)"
        return (
            f"<lmmformula.Fit {self.model.formula!r}: {self.num_chains} chains x {self.num_draws} draws "
            f"({self.backend}), {status}>"
        )


@dataclass(frozen=True, eq=False)
class ConditionalEffect:
    """A conditional effect (:meth:`Fit.conditional_effects`): the grid with ``estimate__``,
    ``lower__`` and ``upper__``, and its matplotlib figure.

    Attributes
    ----------
    data : pandas.DataFrame
    figure : matplotlib.figure.Figure
    """

    data: pd.DataFrame
    figure: object


def load(path: str | Path) -> Fit:
    """Read a fit written by :meth:`Fit.save`: no data, no Stan, no compiling.

    Parameters
    ----------
    path : str or pathlib.Path
        A file written by ``Fit.save`` (a netCDF-4 file; a pickle written by lmmformula 0.1
        loads too, with a DeprecationWarning: load pickles only from sources you trust).

    Returns
    -------
    Fit
        With the model rebuilt from the stored data columns: predictions on new data, loo and
        every summary work as on the original. A file written by another lmmformula version
        loads when its format is one this version reads; a DesignWarning says when that version's
        Stan program for the model differs from this one's.

    Raises
    ------
    ArgumentError
        For a missing or unreadable file, a file not written by ``Fit.save``, or one in a newer
        format.
    """
    from .fitfile import load as load_file

    return load_file(path)


def _draw_frame(named: dict) -> pd.DataFrame:
    """(chain, draw, ...) arrays by name as one row per draw, with ``.chain`` and ``.draw``."""
    chains, draws = np.shape(next(iter(named.values())))[:2]
    frame = pd.DataFrame({name: np.asarray(v).reshape(-1) for name, v in named.items()})
    frame[".chain"] = np.repeat(np.arange(1, chains + 1), draws)
    frame[".draw"] = np.tile(np.arange(1, draws + 1), chains)
    return frame


def _algorithm(fit: Fit) -> str:
    """The summary's Algorithm line."""
    settings = fit.settings
    if fit.method == "nuts":
        return f"NUTS ({settings.metric} metric, adapt_delta = {settings.adapt_delta:g})"
    jacobian = "with" if getattr(settings, "jacobian", False) else "no"
    text = {
        "optimize": f"optimize (L-BFGS; {jacobian} Jacobian adjustment)",
        "laplace": f"laplace (normal approximation at the mode; {jacobian} Jacobian adjustment)",
        "pathfinder": f"pathfinder ({settings.num_paths} paths, resampled by importance weights)",
        "meanfield": "meanfield (ADVI, mean-field normal)",
        "fullrank": "fullrank (ADVI, full-rank normal)",
    }[fit.method]
    if fit.pareto_k is not None:
        text += f"; Pareto k = {fit.pareto_k:.2f}"
    if fit.importance_ess is not None:
        text += f", importance ESS = {fit.importance_ess:.0f}"
    return text


def _draws_line(fit: Fit) -> str:
    """The summary's Draws line."""
    if fit.method == "optimize":
        line = f"the optimum only ({fit.backend})"
    elif fit.method != "nuts":
        line = f"{fit.num_draws} draws from the approximation ({fit.backend})"
    else:
        warmup = fit.settings.iter_warmup
        line = (
            f"{fit.num_chains} chains, each with iter = {warmup + fit.num_draws}; warmup = {warmup}; "
            f"total post-warmup draws = {fit.num_chains * fit.num_draws} ({fit.backend})"
        )
    return line + ("; the priors only (sample_prior='only')" if fit.sample_prior == "only" else "")


def _dropped(model) -> str:
    dropped = model._design.n_dropped
    return f" ({dropped} rows with missing values dropped)" if dropped else ""


def _row_index(newdata, rows: np.ndarray) -> pd.Index:
    """The index of the rows predicted for: newdata's own, or 0..n-1 for the fitting data."""
    if newdata is None:
        return pd.RangeIndex(len(rows))
    return newdata.index[rows]


def _per_group(groups: dict, summary: bool, probs: tuple[float, ...]) -> dict[str, pd.DataFrame]:
    out = {}
    for name, group in groups.items():
        if not summary:
            means = group.draws.mean(axis=(0, 1))
            out[name] = pd.DataFrame(
                means, index=pd.Index(group.levels, name=name), columns=list(group.terms)
            )
            continue
        draws = {
            (level, term): group.draws[:, :, li, ti]
            for li, level in enumerate(group.levels)
            for ti, term in enumerate(group.terms)
        }
        table = results.summarize(draws, probs)
        table.index.names = [name, "term"]
        out[name] = table
    return out


def _check_line(fit: Fit) -> str:
    """What the check at the end of warm-up decided (its notes: ``fit.notes``)."""
    switched = [note for note in fit.notes if note.startswith("switched to ")]
    if switched:
        return f"the first choice failed its pilot; {switched[-1]}"
    return (
        "passed" if len(fit.notes) == 1 and "worst" not in fit.notes[0] else "failed; see the problems below"
    )
