"""PSIS-LOO against exact leave-one-out: refit the model N times, each without one row.

For a gaussian and a poisson model ``y ~ x + (1 | g)`` on small simulated data (40 rows, 8 groups), the
exact elpd is sum_i log mean_s p(y_i | theta_s), theta_s drawn from the fit without row i (every refit with
the full data's priors, so the model is the same); ``fit.loo()`` approximates it from the one full fit.
Reports both, their difference, the PSIS standard error and the Monte Carlo error of the exact sum, and the
largest Pareto k.

    python benchmarks/loo_exact.py [--rows 40] [--out benchmarks/results/loo_exact.txt]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import logsumexp

import lmmformula as lf

HERE = Path(__file__).resolve().parent


def simulate(family: str, rows: int, groups: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.arange(rows) % groups
    x = rng.normal(size=rows)
    effects = rng.normal(0, 0.5, groups)
    if family == "gaussian":
        y = 1.0 + 0.6 * x + effects[g] + rng.normal(0, 0.8, rows)
    else:
        y = rng.poisson(np.exp(0.8 + 0.4 * x + effects[g]))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k}" for k in g]})


def exact_elpd(formula: str, data: pd.DataFrame, family: str, priors: dict, settings: dict):
    """Per row: log mean_s p(y_i | theta_s) from the fit without row i, and its Monte Carlo sd."""
    values, errors = [], []
    for i in range(len(data)):
        rest = data.drop(index=data.index[i])
        fit = lf.Model(formula, rest, family=family, priors=priors).fit(**settings)
        ll = fit.log_lik(newdata=data.iloc[[i]])[:, 0]
        values.append(float(logsumexp(ll) - np.log(len(ll))))
        weights = np.exp(ll - ll.max())
        # delta method: sd of log(mean(p)) from the sd of mean(p), draws taken as independent
        errors.append(float(weights.std(ddof=1) / weights.mean() / np.sqrt(len(ll))))
    return np.array(values), np.array(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--out", default=str(HERE / "results" / "loo_exact.txt"))
    args = parser.parse_args()
    settings = {"chains": 4, "iter_warmup": 1000, "iter_sampling": 1000, "seed": 1, "progress": False}
    formula = "y ~ x + (1 | g)"
    lines = [
        f"# python benchmarks/loo_exact.py --rows {args.rows} --groups {args.groups}; "
        f"{datetime.date.today()}, {platform.node() or 'machine'} ({os.cpu_count()} cores); {formula}, "
        "4 chains x (1000 + 1000), seed 1",
        "family      elpd_loo (se)      exact elpd (MC sd)   difference   max Pareto k   refits   seconds",
    ]
    for family in ("gaussian", "poisson"):
        started = time.perf_counter()
        data = simulate(family, args.rows, args.groups, seed=7)
        model = lf.Model(formula, data, family=family)
        used = model.design.parameter_classes
        priors = {name: str(prior.prior) for name, prior in model.priors.items() if used.get(name)}
        full = model.fit(**settings)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", lf.ComparisonWarning)
            loo = full.loo(pointwise=True)
        exact, errors = exact_elpd(formula, data, family, priors, settings)
        mc = float(np.sqrt((errors**2).sum()))
        difference = loo.elpd - exact.sum()
        lines.append(
            f"{family:<11}{loo.elpd:9.2f} ({loo.se:5.2f}){exact.sum():12.2f} ({mc:4.2f}){difference:12.2f}"
            f"{np.max(loo.pareto_k):14.2f}{len(data):9d}{time.perf_counter() - started:10.0f}"
        )
        print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
