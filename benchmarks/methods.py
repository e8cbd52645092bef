"""The algorithms other than NUTS against NUTS on the same program: coffee and sleepstudy.

For each method (seed 3, the embedded engine): wall seconds, Pareto k and importance ESS, each fixed
effect's distance from NUTS's mean in NUTS posterior sds, and the group-level sds next to NUTS's.
For optimize with the Jacobian: its lp__ against the best of 4000 NUTS draws on the same data (every
block non-centered, as optimize sees it: ``model.method_data``).

    python benchmarks/methods.py [--out benchmarks/results/methods.txt]
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

import lmmformula as lf
from lmmformula.engines import SamplerSettings, embedded
from lmmformula.engines.base import APPROXIMATIONS

HERE = Path(__file__).resolve().parent
CASES = {
    "coffee": ("y ~ x + (x | group)", "coffee"),
    "sleepstudy": ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
}


def sds(fit: lf.Fit) -> str:
    table = fit.varcorr()["Estimate"]
    return " ".join(f"{value:.2f}" for key, value in table.items() if key[1].startswith("sd("))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "results" / "methods.txt"))
    args = parser.parse_args()
    warnings.simplefilter("ignore", lf.SamplingWarning)
    lines = [
        f"# methods.py, {datetime.date.today()}, lmmformula {lf.__version__}, "
        f"Python {platform.python_version()}, {os.cpu_count()} cores; embedded engine, seed 3; NUTS: "
        "4 x (1000 + 1000), seed 1",
        f"{'case':11} {'method':10} {'wall s':>7} {'k':>7} {'IS ESS':>7} {'gap (NUTS sds)':>16} "
        f"{'group sds':>14} flagged",
    ]
    for case, (formula, data) in CASES.items():
        model = lf.Model(formula, lf.load_dataset(data))
        nuts = model.fit(seed=1, progress=False, backend="embedded")
        reference = nuts.fixef()
        lines.append(
            f"{case:11} {'nuts':10} {nuts.timings['sampling_wall']:7.2f} {'':>7} {'':>7} {'':>16} "
            f"{sds(nuts):>14}"
        )
        for method in APPROXIMATIONS:
            started = time.perf_counter()
            try:
                fit = model.fit(method=method, seed=3, backend="embedded")
            except lf.EngineError as error:
                reason = str(error).splitlines()
                lines.append(f"{case:11} {method:10} failed: {reason[2] if len(reason) > 2 else reason[-1]}")
                continue
            wall = time.perf_counter() - started
            gap = np.abs(fit.fixef()["Estimate"] - reference["Estimate"]) / reference["Est.Error"]
            k = "" if fit.pareto_k is None else f"{fit.pareto_k:.2f}"
            ess = "" if fit.importance_ess is None else f"{fit.importance_ess:.1f}"
            lines.append(
                f"{case:11} {method:10} {wall:7.2f} {k:>7} {ess:>7} "
                f"{' '.join(f'{g:.2f}' for g in gap):>16} {sds(fit):>14} {bool(fit.problems)}"
            )
        program = embedded.compile_program(model.stan_code)
        data_nc = model.method_data("optimize")
        outputs = embedded.sample(program, data_nc, SamplerSettings(chains=4, seed=2, cores=2))
        best = max(o.values[:, o.columns.index("lp__")].max() for o in outputs)
        mode = model.fit(method="optimize", jacobian=True, seed=1, backend="embedded")
        lines.append(
            f"# {case}: optimize (jacobian) lp__ {mode.sampler['lp__'][0, 0]:.3f} >= best of 4000 NUTS draws "
            f"on the same data {best:.3f}"
        )
    print("\n".join(lines), flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
