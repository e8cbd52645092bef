"""Chains in worker processes (the embedded engine: one process per chain, each reading the data)
against Stan's multi-chain service (one process, the data read once, chains on TBB threads), on the
same compiled model, data and seed, 4 chains x (1000 + 1000) on 2 cores, in paired runs (A B A B).

The multi-chain side is a small harness (``benchmarks/native/multi_chain.cpp``) linked with the model
library the engine built; it is not part of the package. Besides the wall times, it checks that both
give the same chains (first and last lp__ of each).

    python benchmarks/chains.py [--out benchmarks/results/chains.txt]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import lmmformula as lf
from lmmformula.engines import SamplerSettings, embedded
from lmmformula.engines.base import write_stan_json

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from engine import crossed_bernoulli  # noqa: E402 (a sibling script)


def build_harness(library: Path, folder: Path) -> Path:
    """The harness, compiled with the engine's flags and linked with ``library``."""
    executable = folder / "multi_chain"
    command = [
        *embedded._compiler(),
        str(HERE / "native" / "multi_chain.cpp"),
        str(library),
        f"-L{embedded.HTTPSTAN_DIR / 'lib'}",
        "-ltbb",
        f"-Wl,-rpath,{embedded.HTTPSTAN_DIR / 'lib'}:{library.parent}",
        "-o",
        str(executable),
    ]
    subprocess.run(command, check=True)
    return executable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "results" / "chains.txt"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pairs", type=int, default=2)
    args = parser.parse_args()
    cases = {
        "coffee": lf.Model("y ~ x + (x | group)", lf.load_dataset("coffee")),
        "crossed_bernoulli": lf.Model(
            "y ~ x + (x | subject) + (1 | item)", crossed_bernoulli(), family="bernoulli"
        ),
    }
    lines = [
        f"# chains.py, {datetime.date.today()}, lmmformula {lf.__version__}, "
        f"Python {platform.python_version()}, {os.cpu_count()} cores; 4 chains x (1000 + 1000) on 2 cores, "
        f"seed {args.seed}; paired runs A B A B",
        f"{'case':18} {'run':4} {'processes s':>11} {'one process s':>13} {'of which data':>13} "
        f"{'same draws':>10}",
    ]
    print("\n".join(lines), flush=True)
    work = Path(tempfile.mkdtemp(prefix="lmmformula-bench-chains-"))
    harnesses: dict[Path, Path] = {}
    for case, model in cases.items():
        program = embedded.compile_program(model.stan_code)
        data_path = work / f"{case}.json"
        write_stan_json(model.stan_data, data_path)
        library = Path(program.path)
        if library not in harnesses:
            harnesses[library] = build_harness(library, Path(tempfile.mkdtemp(dir=work)))
        settings = SamplerSettings(chains=4, seed=args.seed, cores=2)
        ratios = []
        for run in range(1, args.pairs + 1):
            started = time.perf_counter()
            outputs = embedded.sample(program, model.stan_data, settings)
            processes = time.perf_counter() - started
            started = time.perf_counter()
            done = subprocess.run(
                [str(harnesses[library]), str(data_path), "4", str(args.seed), "2", "1000", "1000"],
                capture_output=True,
                text=True,
                check=True,
            )
            single = time.perf_counter() - started
            report = json.loads(done.stdout.strip().splitlines()[-1])
            lp = [output.values[:, output.columns.index("lp__")] for output in outputs]
            same = np.allclose([v[0] for v in lp], report["first_lp"]) and np.allclose(
                [v[-1] for v in lp], report["last_lp"]
            )
            ratios.append(single / processes)
            loading = report["loading"]
            lines.append(
                f"{case:18} {run:4} {processes:11.2f} {single:13.2f} {loading:13.2f} {str(same):>10}"
            )
            print(lines[-1], flush=True)
        lines.append(f"# {case}: one process / processes = {np.mean(ratios):.2f}")
        print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
