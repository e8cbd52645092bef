"""Many fits at once: :func:`fit_many` on any ``concurrent.futures.Executor`` (a local process
pool by default; Dask's ``Client.get_executor()`` or Ray's for a cluster), and :func:`sbc`,
simulation-based calibration built on it.

Every distinct Stan program is compiled once, here, before any fit starts; the workers then
find it compiled. How they get it (``share``): ``"cache"``, the parent's compile cache folder,
which the workers must see (local processes, or a cluster on a shared filesystem); or
``"ship"``, the compiled module travels with each task and is installed into the worker's own
cache (a cluster without a shared filesystem; the embedded backend only).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .cache import cache_root
from .engines import default_cores, get_engine
from .errors import ArgumentError, DesignWarning, EngineError, LmmformulaError
from .progress import interactive

SHARES = ("cache", "ship")


@dataclass(frozen=True)
class _Task:
    """What a worker needs for one fit (pickled to it)."""

    model: object  # a Model
    fit_args: dict
    cache: str  # the parent's cache folder ("cache") or "" ("ship")
    module: bytes | None = None  # the compiled module ("ship")
    key: str = ""


def fit_many(
    models,
    executor: Executor | None = None,
    *,
    data: Mapping[str, pd.DataFrame] | None = None,
    model_args: dict | None = None,
    share: str = "cache",
    progress: bool = True,
    **fit_args,
):
    """Fit many models, each distinct program compiled once, the fits spread over ``executor``.

    Parameters
    ----------
    models : list of Model, dict of str to Model, or str
        The models; or one formula, fitted to each DataFrame of ``data``.
    executor : concurrent.futures.Executor, optional
        Where the fits run: by default a local pool of processes, one per core (closed
        afterwards); or any Executor the caller owns, e.g. ``distributed.Client().get_executor()``
        (Dask) or a ``ProcessPoolExecutor`` of their own.
    data : dict of str to pandas.DataFrame, optional
        With a formula as ``models``: the data sets, by name.
    model_args : dict, optional
        With a formula as ``models``: :class:`Model`'s other arguments (family, priors, ...).
    share : {"cache", "ship"}, default "cache"
        How workers get the compiled program: the parent's cache folder (it must be visible to
        them) or a copy sent with each task (see the module notes).
    progress : bool, default True
        A bar over the fits, on a terminal or in Jupyter (never the chains' bars).
    **fit_args
        :meth:`Model.fit`'s arguments, the same for every model, except ``seed``: one for all, or one
        per model (a list in the models' order, or a dict by their keys). ``cores`` defaults to 1
        here (the workers are the parallelism) and ``progress`` to False.

    Returns
    -------
    list or dict
        Per model, in the input's order (a dict for dict input or a formula): its :class:`Fit`, or
        the exception its fit raised (one failure does not stop the others; a warning counts them).

    Examples
    --------
    >>> fits = lf.fit_many("Reaction ~ Days + (Days | Subject)", data=boots, chains=2, seed=1)
    >>> from distributed import Client
    >>> fits = lf.fit_many(models, executor=Client().get_executor())
    """
    from .model import Model

    if share not in SHARES:
        raise ArgumentError(
            f"share={share!r}: 'cache' (a folder the workers see) or 'ship' (sent with each task)"
        )
    keys, items = _models(models, data, model_args)
    labels = [k if isinstance(k, str) and k.startswith("model ") else repr(k) for k in keys]
    for label, model in zip(labels, items):
        if not isinstance(model, Model):
            raise ArgumentError(f"fit_many: {label} is a {type(model).__name__}, not an lf.Model")
    fit_args = {"cores": 1, **fit_args, "progress": False}
    name, engine = get_engine(fit_args.get("backend", "auto"))
    fit_args["backend"] = name  # as resolved here: workers must not pick another engine
    seeds = _seeds(fit_args.pop("seed", None), keys)
    if share == "ship" and name != "embedded":
        raise ArgumentError(
            "share='ship' sends the embedded engine's module; use backend='embedded', or share='cache'"
        )

    results: list = [None] * len(items)
    compiled = _compile_each_program_once(items, engine, results)
    own = executor is None
    if own:
        executor = ProcessPoolExecutor(max_workers=min(default_cores(), len(items)) or 1)
    bar = tqdm(total=len(items), desc="fits", unit="fit") if progress and interactive() else None
    try:
        futures: dict[Future, int] = {}
        modules: dict[str, bytes] = {}
        for i, model in enumerate(items):
            if results[i] is not None:  # its program did not compile
                continue
            program = compiled[model.stan_code]
            module = None
            if share == "ship":  # read once per program
                module = modules.setdefault(program.key, program.path.read_bytes())
            arguments = {**fit_args, "seed": seeds[i]}
            task = _Task(model, arguments, str(cache_root()) if share == "cache" else "", module, program.key)
            futures[executor.submit(_fit_one, task)] = i
        for future in as_completed(futures):
            i = futures[future]
            try:
                results[i] = future.result()
            except BrokenProcessPool as error:
                results[i] = EngineError(
                    f"a worker process died ({error}). In a script, call fit_many under "
                    "`if __name__ == '__main__':` (multiprocessing's spawn and forkserver start methods "
                    "import the script again in every worker); otherwise the worker ran out of memory or "
                    "was killed"
                )
            except Exception as error:  # noqa: BLE001 (the failure goes in its slot)
                results[i] = error
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
        if own:
            executor.shutdown(cancel_futures=True)
    failed = [(label, r) for label, r in zip(labels, results) if isinstance(r, BaseException)]
    if failed:
        label, error = failed[0]
        warnings.warn(
            f"fit_many: {len(failed)} of {len(items)} fits failed (their slots hold the error); the first, "
            f"{label}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
            DesignWarning,
            stacklevel=2,
        )
    if isinstance(models, str) or isinstance(models, Mapping):
        return dict(zip(keys, results))
    return results


def _seeds(seed, keys: list) -> list:
    """One seed per model: the same for all (an int or None), or one each (a list in the models' order,
    or a dict by the same keys)."""
    if seed is None or isinstance(seed, int | np.integer):
        return [seed] * len(keys)
    if isinstance(seed, Mapping):
        missing = [k for k in keys if k not in seed]
        if missing:
            raise ArgumentError(f"seed: a dict of seeds needs one for every model; none for {missing[0]!r}")
        return [seed[k] for k in keys]
    if isinstance(seed, Sequence) and not isinstance(seed, str):
        if len(seed) != len(keys):
            raise ArgumentError(f"seed: {len(seed)} seeds for {len(keys)} models; give one per model")
        return list(seed)
    raise ArgumentError(f"seed={seed!r}: an integer, or one per model (a list, or a dict by model)")


def _models(models, data, model_args) -> tuple[list, list]:
    """(labels, models) from fit_many's input."""
    from .model import Model

    if isinstance(models, str):
        if not isinstance(data, Mapping) or not data:
            raise ArgumentError(
                "fit_many(formula, data={name: DataFrame, ...}): give the data sets as a dict"
            )
        built = {}
        for label, frame in data.items():
            try:
                built[label] = Model(models, frame, **(model_args or {}))
            except LmmformulaError as error:
                raise type(error)(f"data set {label!r}: {error}") from None
        return list(built), list(built.values())
    if data is not None or model_args is not None:
        raise ArgumentError("data= and model_args= go with a formula as models (fit_many(formula, data=...))")
    if isinstance(models, Mapping):
        return list(models), list(models.values())
    if isinstance(models, Sequence):
        return [f"model {i}" for i in range(len(models))], list(models)
    raise ArgumentError("models: a list or dict of lf.Model, or a formula with data={name: DataFrame}")


def _compile_each_program_once(models: list, engine, results: list) -> dict:
    """Compile every distinct program (in input order); a failure goes into its models' slots."""
    compiled, failures = {}, {}
    for model in models:
        code = model.stan_code
        if code in compiled or code in failures:
            continue
        try:
            compiled[code] = engine.compile_program(code)
        except LmmformulaError as error:
            failures[code] = error
    for i, model in enumerate(models):
        if model.stan_code in failures:
            results[i] = failures[model.stan_code]
    return compiled


def _fit_one(task: _Task):
    """In a worker: make the compiled program findable, then fit."""
    if task.cache:
        os.environ["LMMFORMULA_CACHE"] = task.cache
    elif task.module is not None:
        _install(task)
    return task.model.fit(**task.fit_args)


def _install(task: _Task) -> None:
    """Put the shipped module into this worker's cache, as a compile would have."""
    from .cache import cached_build
    from .engines import embedded

    def build(folder: Path) -> None:
        (folder / embedded.MODULE_NAME).write_bytes(task.module)
        (folder / "model.stan").write_text(task.model.stan_code)

    cached_build("embedded", task.key, build, required=(embedded.MODULE_NAME,))


# ---------------------------------------------------------------- simulation-based calibration


@dataclass(frozen=True, eq=False)
class SBC:
    """The result of :func:`sbc`.

    Attributes
    ----------
    ranks : pandas.DataFrame
        One row per simulation, one column per scalar parameter (brms's names: ``b_x``,
        ``sd_g__Intercept``, ``sigma``, ...): the rank of the true value among the ``draws``
        kept posterior draws, 0..draws. Uniform if program, priors and sampler are right.
    draws : int
        Posterior draws each rank counts among (ranks run 0..draws).
    failed : tuple of str
        The simulations whose fit failed (left out of ``ranks``), with their errors.
    """

    ranks: pd.DataFrame
    draws: int
    failed: tuple[str, ...]

    def uniformity(self, bins: int = 10) -> pd.DataFrame:
        """Per parameter: the chi-square test of uniform ranks over ``bins`` bins (statistic and
        p-value) and the smallest and largest bin count against the expected count."""
        from scipy import stats

        rows = {}
        edges = np.linspace(0, self.draws + 1, bins + 1)
        for column in self.ranks:
            counts, _ = np.histogram(self.ranks[column], bins=edges)
            test = stats.chisquare(counts)
            rows[column] = {
                "chi2": float(test.statistic),
                "p": float(test.pvalue),
                "min bin": int(counts.min()),
                "max bin": int(counts.max()),
                "expected": len(self.ranks) / bins,
            }
        return pd.DataFrame.from_dict(rows, orient="index")

    def plot(self, bins: int = 10):
        """Histograms of the ranks, one panel per parameter, with the band a uniform histogram
        stays in 99 % of the time per bin; returns the matplotlib Figure."""
        import matplotlib.pyplot as plt
        from scipy import stats

        columns = list(self.ranks)
        width = min(4, len(columns))
        rows = -(-len(columns) // width)
        figure, axes = plt.subplots(rows, width, figsize=(3 * width, 2.4 * rows), squeeze=False)
        n = len(self.ranks)
        low, high = stats.binom.ppf([0.005, 0.995], n, 1 / bins)
        for axis, column in zip(axes.flat, columns):
            axis.axhspan(low, high, color="0.88")
            axis.axhline(n / bins, color="0.6", linewidth=0.8)
            axis.hist(
                self.ranks[column], bins=np.linspace(0, self.draws + 1, bins + 1), color="C0", alpha=0.8
            )
            axis.set_title(column, fontsize=9)
            axis.set_yticks([])
        for axis in list(axes.flat)[len(columns) :]:
            axis.set_visible(False)
        figure.suptitle(f"SBC ranks: {n} simulations, {self.draws} draws each")
        figure.tight_layout()
        return figure


def sbc(
    model,
    n: int = 100,
    executor: Executor | None = None,
    *,
    draws: int = 99,
    seed: int | None = None,
    share: str = "cache",
    progress: bool = True,
    **fit_args,
) -> SBC:
    """Simulation-based calibration (Talts et al. 2018) of ``model``'s program, priors and sampler.

    Draws ``n`` parameter sets from the priors (a prior-only fit of the same program), simulates
    a response from each with the family's own random draws (the model's predictors and groups,
    the fitting data's rows), fits each simulated data set with :func:`fit_many` on
    ``executor``, and ranks every true value among ``draws`` posterior draws, thinned evenly.

    Parameters
    ----------
    model : Model
        With proper priors on every parameter (brms's flat ``b`` default is not: set one) and a
        response that is a data column.
    n : int, default 100
        Simulations.
    executor : concurrent.futures.Executor, optional
        As :func:`fit_many`.
    draws : int, default 99
        Posterior draws kept per simulation (ranks run 0..draws); each fit needs at least as many.
    seed : int, optional
        Seeds the prior draws, the simulated responses and each fit (simulation i uses seed + i).
    share, progress
        As :func:`fit_many`.
    **fit_args
        :meth:`Model.fit`'s, for every simulation's fit (e.g. ``chains=1, iter_sampling=990`` for
        nearly independent thinned draws).

    Returns
    -------
    SBC
        ``ranks`` (simulations x parameters), ``uniformity()`` and ``plot()``.
    """
    from .model import Model

    if not isinstance(model, Model):
        raise ArgumentError(f"sbc: model must be an lf.Model, not {type(model).__name__}")
    if not isinstance(n, int | np.integer) or n < 2:
        raise ArgumentError(f"n={n!r}: the number of simulations, an integer >= 2")
    response = _response_column(model)
    if fit_args.get("method", "nuts") == "nuts":
        kept = fit_args.get("chains", 4) * fit_args.get("iter_sampling", 1000)
        if kept < draws:
            raise ArgumentError(
                f"draws={draws}: each fit keeps only {kept} draws; raise iter_sampling or chains"
            )
    if model.priors.improper():
        raise ArgumentError(
            f"sbc needs proper priors (it draws the parameters from them), but "
            f"{' and '.join(model.priors.improper())}: set them, e.g. priors=[lf.prior('normal(0, 1)', "
            "class_='b')] or priors='weakly_informative'"
        )
    # every simulation's model keeps these priors: the data-scaled defaults at the original's numbers
    description = {**model.description(), "weakly_informative": False}
    description["priors"] = [asdict(spec) for spec in model.priors.pinned()]
    rng = np.random.default_rng(seed)
    prior = model.fit(
        sample_prior="only",
        chains=1,
        iter_warmup=1000,
        iter_sampling=max(10 * n, 1000),
        seed=int(rng.integers(2**31)),
        progress=False,
        backend=fit_args.get("backend", "auto"),
    )
    chosen = np.linspace(0, prior.num_draws - 1, n).round().astype(int)
    # responses simulated at every prior draw: prediction draws come from the fitting rows
    simulated = prior.posterior_predict(seed=int(rng.integers(2**31)))[chosen]
    frame = model.data_design.frame
    models, truths = {}, {}
    for i, row in enumerate(chosen):
        data = frame.copy()
        data[response] = simulated[i]
        label = f"simulation {i + 1}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DesignWarning)
            models[label] = Model.restore(description, data)
        truths[label] = _scalars(model, {k: v[:, row : row + 1] for k, v in prior.posterior.items()})
    seeds = {label: None if seed is None else seed + i for i, label in enumerate(models)}
    fits = fit_many(models, executor, share=share, progress=progress, **{**fit_args, "seed": seeds})
    ranks, failed = {}, []
    for label, fit in fits.items():
        if isinstance(fit, BaseException):
            failed.append(f"{label}: {type(fit).__name__}: {fit}")
            continue
        total = fit.num_chains * fit.num_draws
        if total < draws:
            raise ArgumentError(
                f"draws={draws}: each fit kept only {total} draws; raise iter_sampling or chains"
            )
        keep = np.linspace(0, total - 1, draws).round().astype(int)
        estimates = _scalars(model, fit.posterior)
        ranks[label] = {
            name: int((values.reshape(-1)[keep] < truths[label][name].reshape(-1)[0]).sum())
            for name, values in estimates.items()
        }
    return SBC(pd.DataFrame.from_dict(ranks, orient="index"), draws, tuple(failed))


def _response_column(model) -> str:
    response = model.design.formula.response
    frame = model.data_design.frame
    if len(response) != 1 or response[0] not in frame.columns:
        raise ArgumentError(
            f"sbc: the response {' and '.join(response)} is not one data column; give the model a plain "
            "column as its response (compute it into the data first)"
        )
    return response[0]


def _scalars(model, posterior: dict) -> dict[str, np.ndarray]:
    """Every scalar parameter worth calibrating, by brms's name: population-level coefficients
    (``b_x``), group-level sds and correlations and the family's own parameters (``sd_g__x``,
    ``cor_g__a__b``, ``sigma``)."""
    from .results import fixef_draws, scale_draws

    named = {f"b_{name}": values for name, values in fixef_draws(model.design, posterior).items()}
    named.update({scale.brms_name: scale.draws for scale in scale_draws(model.design, posterior)})
    return {name: np.asarray(values) for name, values in named.items()}
