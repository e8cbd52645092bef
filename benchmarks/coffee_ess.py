"""Speed of the generated programs against the blog's hand-written Stan model.

One run, one engine (embedded), the same sampler settings for every program:
(a) the blog's loop-and-if model (typed in below as the baseline), (b) lmmformula's
non-centered program, (c) its centered program, (d) parameterization="auto".
Then the data-poor case: many groups of 2-3 rows with small group sds, where the
non-centered form should win and "auto" should pick it.

Prints compile time (first, in an empty cache, and cached), sampling wall time,
min bulk ESS over all parameters, ESS per second, and ratios to (a). Run:

    python benchmarks/coffee_ess.py [--chains 4] [--iter 1000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pandas as pd

import lmmformula as lf
from lmmformula import diagnostics
from lmmformula.draws import assemble
from lmmformula.engines import SamplerSettings, embedded

# The blog's model: group effects centered at zero, a loop over rows and groups.
BLOG_PROGRAM = """
data {
  int N;
  int g;
  array[N] real x;
  array[N] real y;
  array[N] int group;
}
parameters {
  real b0;
  real b1;
  array[g] real b0_ran;
  real<lower=0> b0_ran_sigma;
  array[g] real b1_ran;
  real<lower=0> b1_ran_sigma;
  real<lower=0> sigma;
}
model {
  b0_ran ~ normal(0, b0_ran_sigma);
  b0_ran_sigma ~ uniform(0, 100);
  b1_ran ~ normal(0, b1_ran_sigma);
  b1_ran_sigma ~ uniform(0, 100);
  for (i in 1:N) {
    for (j in 1:g) {
      if (group[i] == j) {
        y[i] ~ normal(b0 + b0_ran[j] + (b1 + b1_ran[j]) * x[i], sigma);
      }
    }
  }
}
"""


def measure(label: str, code: str, data: dict, settings: SamplerSettings) -> dict:
    first = embedded.compile_program(code)
    cached = embedded.compile_program(code)
    started = time.perf_counter()
    outputs = embedded.sample(first, data, settings)
    wall = time.perf_counter() - started
    draws = assemble(outputs)
    labels, flat = draws.flat()
    varying = flat.std(axis=(0, 1)) > 0
    bulk = diagnostics.ess_bulk(flat[:, :, varying])
    worst = int(np.nanargmin(bulk))
    return {
        "program": label,
        "compile_first_s": first.compile_seconds if first.compiled_now else float("nan"),
        "compile_cached_s": cached.compile_seconds,
        "sampling_wall_s": wall,
        "min_bulk_ess": float(bulk[worst]),
        "worst_parameter": np.asarray(labels)[varying][worst],
        "ess_per_s": float(bulk[worst]) / wall,
        "divergent": int(draws.sampler["divergent__"].sum()),
    }


def blog_data(coffee: pd.DataFrame) -> dict:
    codes = coffee.group.astype(int).to_numpy()
    return {
        "N": len(coffee),
        "g": int(codes.max()),
        "x": coffee.x.to_numpy(),
        "y": coffee.y.to_numpy(),
        "group": codes,
    }


def data_poor(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 4, size=300)
    g = np.repeat(np.arange(300), sizes)
    x = rng.normal(size=len(g))
    y = 3 + rng.normal(0, 0.3, 300)[g] + (0.5 + rng.normal(0, 0.2, 300)[g]) * x + rng.normal(size=len(g))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g]})


def table(rows: list[dict], baseline: dict | None) -> str:
    lines = [
        f"{'program':<28}{'compile 1st':>12}{'cached':>9}{'sampling':>10}{'min ESS':>9}"
        f"{'ESS/s':>9}{'div':>5}{'  x wall':>9}{'  x ESS/s':>10}  worst parameter"
    ]
    for row in rows:
        wall_ratio = ess_ratio = float("nan")
        if baseline:
            wall_ratio = baseline["sampling_wall_s"] / row["sampling_wall_s"]
            ess_ratio = row["ess_per_s"] / baseline["ess_per_s"]
        first = row["compile_first_s"]
        first_text = "reused" if np.isnan(first) else f"{first:.1f}s"
        lines.append(
            f"{row['program']:<28}{first_text:>12}{row['compile_cached_s']:>8.3f}s"
            f"{row['sampling_wall_s']:>9.1f}s{row['min_bulk_ess']:>9.0f}{row['ess_per_s']:>9.1f}"
            f"{row['divergent']:>5}{wall_ratio:>9.2f}{ess_ratio:>10.1f}  {row['worst_parameter']}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--iter", type=int, default=1000, help="warmup and sampling iterations each")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    os.environ["LMMFORMULA_CACHE"] = tempfile.mkdtemp(prefix="lmmformula-bench-cache-")
    settings = SamplerSettings(
        chains=args.chains,
        iter_warmup=args.iter,
        iter_sampling=args.iter,
        seed=args.seed,
        cores=os.cpu_count() or 1,
    )
    print(
        f"{args.chains} chains x ({args.iter} warmup + {args.iter} draws), seed {args.seed}, "
        f"{settings.cores} cores, embedded engine, empty cache at start\n"
    )

    coffee = lf.load_dataset("coffee")
    formula = "y ~ x + (x | group)"
    auto = lf.Model(formula, coffee)
    rows = [measure("(a) blog loop-and-if", BLOG_PROGRAM, blog_data(coffee), settings)]
    for label, parameterization in (("(b) non-centered", "noncentered"), ("(c) centered", "centered")):
        model = lf.Model(formula, coffee, parameterization=parameterization)
        rows.append(measure(label, model.stan_code, model.stan_data, settings))
    rows.append(measure(f"(d) auto -> {auto.parameterizations[0]}", auto.stan_code, auto.stan_data, settings))
    print("Coffee data (100 groups of ~10 rows, group sds 10 and 1, noise sd 1):")
    print(table(rows, rows[0]))

    poor = data_poor()
    auto_poor = lf.Model("y ~ x + (x | g)", poor)
    poor_rows = []
    for parameterization in ("noncentered", "centered"):
        model = lf.Model("y ~ x + (x | g)", poor, parameterization=parameterization)
        poor_rows.append(measure(parameterization, model.stan_code, model.stan_data, settings))
    print(
        f"\nData-poor simulation ({len(poor)} rows, 300 groups of 2-3 rows, group sds 0.3 and 0.2); "
        f"auto picks: {auto_poor.parameterizations[0]}"
    )
    print(table(poor_rows, None))


if __name__ == "__main__":
    main()
