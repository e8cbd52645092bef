"""Cost per leapfrog step: lmmformula's generated program against a hand-written one.

For each case the generated program (``parameterization="auto"``) and a hand-written Stan program
with the same parameters (order, types, sizes), data, priors and parameterization
(``benchmarks/handwritten/*.stan``) run with the same engine, sampler settings and seed. Cost per
leapfrog step = a chain's sampling seconds / its total ``n_leapfrog__`` over the sampling draws,
averaged over chains. The generated program also writes its transformed parameters (``r_i``,
``b_Intercept``) and generated quantities with every draw; the hand-written ones write only their
parameters, so the ratio includes that output cost (reported as values written per draw).

    python benchmarks/gradient_cost.py [--cases coffee,crossed_bernoulli,InstEval] [--iter 1000]

Results: ``benchmarks/results/gradient_cost.txt``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
from pathlib import Path

import numpy as np

import lmmformula as lf
from lmmformula.draws import assemble
from lmmformula.engines import SamplerSettings, embedded

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import simulations  # noqa: E402

# case (benchmarks/simulations.py) -> (hand-written program, the auto decisions it assumes)
CASES = {
    "coffee": ("coffee.stan", ["centered on population Intercept, x"]),
    "crossed_bernoulli": (
        "crossed_bernoulli.stan",
        ["centered at zero, intercepts also on per-level x1, x2", "centered on population Intercept"],
    ),
    "InstEval": (
        "insteval.stan",
        [
            "centered at zero",
            "centered at zero",
            "centered on population Intercept, intercepts also on per-level service[T.1]",
        ],
    ),
}


def declared_data(code: str) -> set[str]:
    """Names declared in a program's data block."""
    block = code.split("data {", 1)[1].split("\n}", 1)[0]
    return set(re.findall(r"\b(\w+);", re.sub(r"//.*", "", block)))


def run(code: str, data: dict, settings: SamplerSettings) -> dict:
    program = embedded.compile_program(code)
    outputs = embedded.sample(program, {k: v for k, v in data.items() if k in declared_data(code)}, settings)
    draws = assemble(outputs)
    leapfrogs = draws.sampler["n_leapfrog__"].sum(axis=1)
    seconds = np.array([o.seconds.get("sampling", np.nan) for o in outputs])
    per_step = seconds / leapfrogs
    return {
        "compile_s": program.compile_seconds if program.compiled_now else float("nan"),
        "seconds": seconds,
        "leapfrogs": leapfrogs,
        "ms_per_step": 1000 * float(np.mean(per_step)),
        "values_per_draw": sum(int(np.prod(v.shape[2:])) for v in draws.parameters.values()),
        "divergent": int(draws.sampler["divergent__"].sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--iter", type=int, default=1000, help="warmup and sampling iterations each")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=str(HERE / "results" / "gradient_cost.txt"))
    args = parser.parse_args()
    settings = SamplerSettings(
        chains=args.chains,
        iter_warmup=args.iter,
        iter_sampling=args.iter,
        seed=args.seed,
        cores=min(os.cpu_count() or 1, args.chains),
    )
    lines = [
        f"# python benchmarks/gradient_cost.py --cases {args.cases} --iter {args.iter}, "
        f"{datetime.date.today()}, {platform.node() or 'machine'} ({os.cpu_count()} cores), embedded engine",
        f"# {args.chains} chains x ({args.iter} warmup + {args.iter} draws), seed {args.seed}; "
        "ms/step = chain sampling seconds / its leapfrog steps, mean over chains",
        f"{'case':<20}{'program':<14}{'ms/step':>9}{'leapfrogs':>12}{'sampling s':>12}"
        f"{'values/draw':>13}{'div':>5}{'ratio':>8}",
    ]
    print("\n".join(lines), flush=True)
    for name in args.cases.split(","):
        handwritten, assumed = CASES[name]
        case = simulations.get_case(name)
        model = lf.Model(case.formula, case.data, family=case.family)
        decided = [str(p) for p in model.parameterizations]
        if decided != assumed:
            print(f"# {name}: auto decided {decided}, the hand-written program assumes {assumed}", flush=True)
        generated = run(model.stan_code, model.stan_data, settings)
        hand = run((HERE / "handwritten" / handwritten).read_text(), model.stan_data, settings)
        for label, row, ratio in (
            ("generated", generated, generated["ms_per_step"] / hand["ms_per_step"]),
            ("hand-written", hand, 1.0),
        ):
            line = (
                f"{name:<20}{label:<14}{row['ms_per_step']:>9.4f}{int(row['leapfrogs'].sum()):>12}"
                f"{row['seconds'].sum():>12.1f}{row['values_per_draw']:>13}{row['divergent']:>5}{ratio:>8.2f}"
            )
            lines.append(line)
            print(line, flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
