"""The two backends on the same programs: the embedded engine against cmdstanpy with a CmdStan.

For coffee (``y ~ x + (x | group)``) and sleepstudy (``Reaction ~ Days + (Days | Subject)``): compile
seconds into an empty cache, sampling wall time and the slowest chain's warm-up and sampling seconds
(4 chains x (1000 + 1000) on every core), and how far apart the draws are with the same seed (max absolute
and relative difference over every parameter: 0 means the same draws at full precision).

    CMDSTAN=/path/to/cmdstan python benchmarks/backends.py [--out benchmarks/results/backends.txt]

Needs CmdStan (``cmdstanpy.cmdstan_path()``); runs nothing else at the same time.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import warnings
from pathlib import Path

import numpy as np

import lmmformula as lf

HERE = Path(__file__).resolve().parent
CASES = {
    "coffee": ("y ~ x + (x | group)", "coffee"),
    "sleepstudy": ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
}


def main() -> None:
    import cmdstanpy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "results" / "backends.txt"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    os.environ["LMMFORMULA_CACHE"] = tempfile.mkdtemp(prefix="lmmformula-bench-cache-")  # empty: compiles
    lines = [
        f"# backends.py, {datetime.date.today()}, lmmformula {lf.__version__}, "
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores; "
        f"CmdStan {cmdstanpy.cmdstan_version()} "
        f"({cmdstanpy.cmdstan_path()}); 4 chains x (1000 + 1000), seed {args.seed}",
        f"{'case':12} {'backend':10} {'compile s':>9} {'sampling s':>10} {'warm-up max':>11} "
        f"{'sampling max':>12} {'max |diff|':>11} {'max rel diff':>12}",
    ]
    print("\n".join(lines), flush=True)
    for case, (formula, data) in CASES.items():
        model = lf.Model(formula, lf.load_dataset(data))
        fits = {}
        for backend in ("embedded", "cmdstanpy"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", lf.SamplingWarning)
                fits[backend] = model.fit(seed=args.seed, progress=False, backend=backend)
        for backend, fit in fits.items():
            diff, rel = _difference(fit, fits["embedded"])
            t = fit.timings
            lines.append(
                f"{case:12} {backend:10} {t['compile']:9.1f} {t['sampling_wall']:10.2f} "
                f"{t['warmup_max_chain']:11.2f} {t['sampling_max_chain']:12.2f} {diff:11.2e} {rel:12.2e}"
            )
            print(lines[-1], flush=True)
        ratio = fits["embedded"].timings["sampling_wall"] / fits["cmdstanpy"].timings["sampling_wall"]
        lines.append(f"# {case}: embedded sampling wall / cmdstanpy's = {ratio:.2f}")
        print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


def _difference(fit, reference) -> tuple[float, float]:
    """Largest absolute and relative difference between two fits' draws, over every parameter."""
    worst, worst_rel = 0.0, 0.0
    for name, values in reference.posterior.items():
        other = fit.posterior[name]
        gap = np.abs(other - values)
        worst = max(worst, float(gap.max(initial=0.0)))
        scale = np.maximum(np.abs(values), 1e-300)
        worst_rel = max(worst_rel, float((gap / scale).max(initial=0.0)))
    return worst, worst_rel


if __name__ == "__main__":
    main()
