"""Memory and time of the after-fit functions at InstEval's size: 73,421 rows x 4,000 draws.

The fit is hand-made (draws of the right shapes near lme4's estimates, no sampling): how much memory a
prediction takes depends on the shapes, not on where the draws came from. Each function runs in a fresh
process; its peak resident memory (``ru_maxrss``) is reported next to the memory of the process holding
the model and draws before the call (the baseline), so "added" is what the call itself needed.

    python benchmarks/after_fit_memory.py [--out benchmarks/results/after_fit_memory.txt]

One row of new data: the median wall time of 20 ``fitted`` calls after a first one.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import lmmformula as lf
from lmmformula import names
from lmmformula.draws import Draws
from lmmformula.engines import SamplerSettings

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from simulations import get_case  # noqa: E402

CHAINS, DRAWS = 4, 1000
#: lme4's REML estimates of InstEval (intercept, service, sds of s, d, dept:service; sigma)
ESTIMATES = {"Intercept": 3.2807, "service": -0.0535, "sd": (0.3247, 0.5124, 0.1097), "sigma": 1.1768}

CALLS = {
    "posterior_epred (the whole matrix)": lambda fit: fit.posterior_epred(),
    "log_lik (the whole matrix)": lambda fit: fit.log_lik(),
    "fitted (per-row summary)": lambda fit: fit.fitted(),
    "predict (per-row summary)": lambda fit: fit.predict(seed=1),
    "loo": lambda fit: fit.loo(),
    "waic": lambda fit: fit.waic(),
    "bayes_R2": lambda fit: fit.bayes_R2(),
}


def handmade_fit(seed: int = 0) -> lf.Fit:
    case = get_case("InstEval")
    model = lf.Model(case.formula, case.data, family=case.family)
    rng = np.random.default_rng(seed)
    shape = (CHAINS, DRAWS)
    spec = model.design
    posterior = {
        names.INTERCEPT_AT_ZERO: rng.normal(ESTIMATES["Intercept"], 0.01, shape),
        names.SLOPES: rng.normal(ESTIMATES["service"], 0.01, shape + (len(spec.fixed_columns),)),
        "sigma": rng.normal(ESTIMATES["sigma"], 0.003, shape),
    }
    for i, (block, sd) in enumerate(zip(spec.blocks, ESTIMATES["sd"]), start=1):
        scale = np.abs(rng.normal(sd, 0.01, shape + (1,)))
        posterior[names.block(i).sd] = scale
        posterior[names.block(i).effects] = (
            rng.normal(size=shape + (len(block.factor.levels), 1)) * scale[..., None, :]
        )
    sampler = {
        "divergent__": np.zeros(shape),
        "treedepth__": np.full(shape, 5.0),
        "lp__": rng.normal(size=shape),
    }
    settings = SamplerSettings(chains=CHAINS, iter_warmup=DRAWS, iter_sampling=DRAWS)
    return lf.Fit(model, Draws(posterior, sampler), settings, "handmade", {}, ())


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(name: str) -> dict:
    """In this process: build the fit, then call ``name``; memory in MB."""
    fit = handmade_fit()
    baseline = peak_mb()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random draws give large Pareto k
        CALLS[name](fit)
    seconds = time.perf_counter() - start
    peak = peak_mb()
    return {"baseline": baseline, "peak": peak, "added": peak - baseline, "seconds": seconds}


def one_row_seconds() -> float:
    fit = handmade_fit()
    row = get_case("InstEval").data.iloc[[0]]
    fit.fitted(row)
    times = []
    for _ in range(20):
        start = time.perf_counter()
        fit.fitted(row)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(HERE / "results" / "after_fit_memory.txt"))
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)))
        return
    lines = [
        f"# after_fit_memory.py, {datetime.date.today()}, lmmformula {lf.__version__}, "
        f"Python {platform.python_version()}, {platform.machine()}",
        f"# InstEval shapes: {handmade_fit().model.nobs} rows x {CHAINS * DRAWS} draws; "
        "a (draws, rows) float64 matrix is "
        f"{handmade_fit().model.nobs * CHAINS * DRAWS * 8 / 1e9:.2f} GB",
        f"{'call':40} {'baseline MB':>12} {'peak MB':>9} {'added MB':>9} {'seconds':>8}",
    ]
    for name in CALLS:
        out = subprocess.run(
            [sys.executable, __file__, "--one", name], check=True, capture_output=True, text=True
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        lines.append(
            f"{name:40} {result['baseline']:12.0f} {result['peak']:9.0f} {result['added']:9.0f} "
            f"{result['seconds']:8.1f}"
        )
        print(lines[-1], flush=True)
    lines.append(f"one new row, fitted(): {one_row_seconds() * 1000:.1f} ms (median of 20)")
    lines.append(
        "# the whole-matrix calls return the 2.35 GB matrix itself, filled a block of rows at a time: their "
        "peak is that plus one block; the summaries, loo, waic and bayes_R2 hold a block at a time"
    )
    print("\n".join(lines[-2:]))
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
