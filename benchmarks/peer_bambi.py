"""Peer benchmark: the crossed bernoulli simulation with bambi + nutpie; prints one JSON record.

Runs with the Python of the separate bambi environment (not the project's), e.g.

    python -m venv /work/venv-bambi
    /work/venv-bambi/bin/pip install bambi==0.17.2 nutpie==0.16.8 "matplotlib<3.11"
    python benchmarks/simulations.py --write-csv crossed_bernoulli /tmp/crossed_bernoulli.csv
    /work/venv-bambi/bin/python benchmarks/peer_bambi.py /tmp/crossed_bernoulli.csv

``--mode split`` (default) times the three steps apart: bambi builds the PyMC model, nutpie
compiles it (``nutpie.compile_pymc_model``, numba backend), nutpie samples it
(``nutpie.sample``), with the variables bambi itself would keep (no per-row means). This
is what ``bambi.Model.fit(inference_method="nutpie")`` does inside (through PyMC), minus
bambi's tidying of the results. ``--mode fit`` calls that method instead and times it as a
whole (compile and sampling seconds are then null).

Min bulk ESS and max R-hat come from ArviZ over every posterior variable that nutpie
returns: population coefficients, the group sds (and their logs), the non-centered offsets
and the group effects. The JSON goes to
stdout as the last line; everything else to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

FORMULA = "y ~ x1 + x2 + x3 + x4 + x5 + (1 | subject) + (1 | item)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", help="data written by simulations.py --write-csv crossed_bernoulli PATH")
    parser.add_argument(
        "--formula", default=FORMULA, help="a bernoulli model of the CSV (default: the simulation's)"
    )
    parser.add_argument(
        "--categorical", default="subject,item", help="columns read as labels (comma-separated)"
    )
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cores", type=int, default=None, help="default: min(chains, CPUs)")
    parser.add_argument("--mode", choices=("split", "fit"), default="split")
    return parser.parse_args(argv)


def import_peers() -> tuple[dict, float]:
    """Import bambi, nutpie, pymc and arviz; the modules and the seconds the imports took."""
    started = time.perf_counter()
    try:
        import arviz
        import bambi
        import nutpie
        import pandas
        import pymc
    except ImportError as error:
        raise SystemExit(
            f"peer_bambi.py: {error}. Run it with the bambi environment's Python, e.g. "
            '/work/venv-bambi/bin/python (pip install bambi==0.17.2 nutpie==0.16.8 "matplotlib<3.11").'
        ) from error
    modules = {"arviz": arviz, "bambi": bambi, "nutpie": nutpie, "pandas": pandas, "pymc": pymc}
    return modules, time.perf_counter() - started


def sampled_variables(bambi_model, pymc) -> list[str]:
    """The variables bambi keeps when it samples: free variables and deterministics, but not
    the likelihood's per-row parameters (the mean ``p`` of each observation)."""
    pm_model = bambi_model.backend.model
    names = [v.name for v in pymc.util.get_default_varnames(pm_model.unobserved_value_vars, False)]
    likelihood = set(bambi_model.family.likelihood.params)
    deterministic = {v.name for v in pm_model.deterministics}
    return [name for name in names if not (name in likelihood and name in deterministic)]


def fit_split(data, args: argparse.Namespace, peers: dict) -> tuple[object, dict]:
    """Build with bambi, compile and sample with nutpie, each step timed."""
    bambi, nutpie, pymc = peers["bambi"], peers["nutpie"], peers["pymc"]
    started = time.perf_counter()
    model = bambi.Model(args.formula, data, family="bernoulli")
    model.build()
    built = time.perf_counter()
    compiled = nutpie.compile_pymc_model(model.backend.model, var_names=sampled_variables(model, pymc))
    compiled_at = time.perf_counter()
    idata = nutpie.sample(
        compiled,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        cores=args.cores,
        seed=args.seed,
        save_warmup=False,
        progress_bar=False,
    )
    finished = time.perf_counter()
    timings = {
        "build_s": built - started,
        "compile_s": compiled_at - built,
        "sampling_s": finished - compiled_at,
        "total_wall_s": finished - started,
    }
    return idata, timings


def fit_whole(data, args: argparse.Namespace, peers: dict) -> tuple[object, dict]:
    """bambi's own ``fit(inference_method="nutpie")``, timed as one step."""
    started = time.perf_counter()
    model = peers["bambi"].Model(args.formula, data, family="bernoulli")
    idata = model.fit(
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        random_seed=args.seed,
        inference_method="nutpie",
        omit_offsets=False,
        progressbar=False,
    )
    total = time.perf_counter() - started
    return idata, {"build_s": None, "compile_s": None, "sampling_s": None, "total_wall_s": total}


def extreme(dataset, pick: str) -> tuple[float, str]:
    """The smallest ("min") or largest ("max") value over all variables of an ArviZ result, and its name."""
    choose = np.nanargmin if pick == "min" else np.nanargmax
    best_value, best_name = float("nan"), ""
    for name, values in dataset.data_vars.items():
        array = values.to_numpy()
        if not np.isfinite(array).any():
            continue
        index = np.unravel_index(choose(array), array.shape)
        value = float(array[index])
        if np.isnan(best_value) or (value < best_value if pick == "min" else value > best_value):
            labels = [str(values[dim].to_numpy()[i]) for dim, i in zip(values.dims, index)]
            best_value, best_name = value, name + (f"[{','.join(labels)}]" if labels else "")
    return best_value, best_name


def diagnose(idata, arviz) -> dict:
    """Min bulk ESS and max R-hat over every posterior variable; divergences and leapfrog steps."""
    posterior = idata.posterior
    ess, ess_name = extreme(arviz.ess(posterior, method="bulk"), "min")
    rhat, rhat_name = extreme(arviz.rhat(posterior), "max")
    stats = idata.sample_stats
    steps = stats["n_steps"] if "n_steps" in stats else None
    # like lmmformula's benchmarks: population-level coefficients and group sds only
    kept = [name for name in posterior.data_vars if "|" not in name or name.endswith("_sigma")]
    population_ess, population_name = extreme(arviz.ess(posterior[kept], method="bulk"), "min")
    return {
        "min_bulk_ess_population_sd": population_ess,
        "worst_population_sd_parameter": population_name,
        "min_bulk_ess": ess,
        "worst_ess_parameter": ess_name,
        "max_rhat": rhat,
        "worst_rhat_parameter": rhat_name,
        "divergent": int(stats["diverging"].sum()) if "diverging" in stats else None,
        "leapfrog_total": int(steps.sum()) if steps is not None else None,
        "scalars": int(sum(v[0, 0].size for v in posterior.data_vars.values())),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.cores = args.cores or min(args.chains, os.cpu_count() or 1)
    peers, import_s = import_peers()
    data = peers["pandas"].read_csv(
        args.csv, dtype={name: str for name in args.categorical.split(",") if name}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner = fit_split if args.mode == "split" else fit_whole
        idata, timings = runner(data, args, peers)
    record = {
        "tool": f"bambi {peers['bambi'].__version__} + nutpie {peers['nutpie'].__version__}",
        "mode": args.mode,
        "formula": args.formula,
        "rows": len(data),
        "chains": args.chains,
        "tune": args.tune,
        "draws": args.draws,
        "seed": args.seed,
        "cores": args.cores if args.mode == "split" else None,
        "import_s": import_s,
        **timings,
        **diagnose(idata, peers["arviz"]),
        "versions": {name: module.__version__ for name, module in peers.items()},
        "python": sys.version.split()[0],
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
