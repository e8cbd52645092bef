"""lmmformula against bambi + nutpie on a real crossed bernoulli model, in one run (issue 26's peer check).

VerbAgg (lme4: 316 respondents x 24 items, 7,584 rows, ``y ~ Anger + Gender + btype + situ + (1 | id) +
(1 | item)``), 4 chains x (1000 + 1000), seed 1, one after the other on this machine: lmmformula at its
defaults with its program removed from the cache first (so its total wall includes the compile, not the
one-time runner build), then bambi's model compiled by nutpie (numba) and sampled, in bambi's own venv
(``benchmarks/peer_bambi.py``). ESS per second of total wall, min bulk ESS over the population-level
coefficients and group sds (bambi's figure over every variable beside it). Run:

    python -m venv /work/venv-bambi
    /work/venv-bambi/bin/pip install bambi==0.17.2 nutpie==0.16.8 "matplotlib<3.11"
    python benchmarks/peer_real.py --python /work/venv-bambi/bin/python
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import lmmformula as lf
from lmmformula import diagnostics
from lmmformula.cache import cache_root, program_key
from lmmformula.engines import embedded
from lmmformula.pilot import key_columns

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from real_data import load, references  # noqa: E402


def ours(entry: dict, seed: int) -> dict:
    data = load(entry)
    model = lf.Model(entry["formula"], data, family=entry["family"])  # only to find its cache entry
    folder = cache_root() / "embedded" / program_key(model.stan_code, embedded.TOOLCHAIN)
    shutil.rmtree(folder, ignore_errors=True)  # the compile counts; the runner (built once) does not
    started = time.perf_counter()
    model = lf.Model(entry["formula"], data, family=entry["family"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(seed=seed, progress=False)
    total = time.perf_counter() - started
    labels, flat = fit.draws_.flat()
    keys = key_columns(labels, (), len(model.design.blocks))
    rhat, bulk, _ = diagnostics.convergence_stats(flat)
    return {
        "tool": f"lmmformula {lf.__version__} (auto)",
        "total_s": total,
        "compile_s": fit.timings["compile"],
        "compiled_now": bool(fit.timings["compiled_now"]),
        "sampling_s": fit.timings["sampling_wall"],
        "min_bulk_ess_population_sd": float(np.nanmin(bulk[keys])),
        "min_bulk_ess": float(np.nanmin(bulk)),
        "max_rhat": float(np.nanmax(rhat)),
        "divergent": int(fit.sampler["divergent__"].sum()),
        "parameterization": fit.parameterization,
    }


def peer(entry: dict, seed: int, python: str) -> dict:
    csv = HERE / "data" / f"{entry['name']}.csv"
    categorical = ",".join(entry["ngroups"])
    started = time.perf_counter()
    done = subprocess.run(
        [python, str(HERE / "peer_bambi.py"), str(csv), "--formula", entry["formula"], "--categorical",
         categorical, "--seed", str(seed)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    record = json.loads(done.stdout.strip().splitlines()[-1])
    record["total_s"] = time.perf_counter() - started  # with the interpreter's and the imports' start
    return record


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--python", required=True, help="the Python of bambi's venv")
    parser.add_argument("--row", default="verbagg")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    entry = next(e for e in references() if e["name"] == args.row)
    records = [ours(entry, args.seed), peer(entry, args.seed, args.python)]
    lines = [f"{entry['name']} ({entry['source']}, {entry['nobs']} rows): {entry['formula']}", ""]
    for r in records:
        ess = r["min_bulk_ess_population_sd"]
        lines.append(
            f"{r['tool']:<40} total {r['total_s']:6.1f} s | min bulk ESS (coefficients, sds) {ess:7.0f} | "
            f"{ess / r['total_s']:6.1f} ESS/s of total wall | all variables {r['min_bulk_ess']:6.0f} | "
            f"R-hat {r['max_rhat']:.3f} | divergent {r['divergent']}"
        )
    ratio = (records[0]["min_bulk_ess_population_sd"] / records[0]["total_s"]) / (
        records[1]["min_bulk_ess_population_sd"] / records[1]["total_s"]
    )
    lines += ["", f"lmmformula / peer, ESS per second of total wall: {ratio:.1f}"]
    text = "\n".join(lines) + "\n"
    print(text)
    out = HERE / "results" / "peer_real"
    out.with_suffix(".txt").write_text(text)
    out.with_suffix(".json").write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
