"""Cost per leapfrog step of the generated InstEval program against a hand-edited variant that sums the three
intercept-only blocks with one sparse product (``benchmarks/handwritten/insteval_csr_prototype.stan``).

Same data, parameters, sampler settings and seed, so the same trajectories. The prototype was cut from the
generated program of 2026-11-29; if the generator changes, regenerate it the same way before comparing.

    python benchmarks/csr_prototype.py [--iter 300]

Results: ``benchmarks/results/csr_prototype.txt``.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import lmmformula as lf
from lmmformula.engines import SamplerSettings

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gradient_cost import run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iter", type=int, default=300, help="warmup and sampling iterations each, 2 chains")
    parser.add_argument("--out", default=str(HERE / "results" / "csr_prototype.txt"))
    args = parser.parse_args()
    model = lf.Model("y ~ service + (1 | s) + (1 | d) + (1 | dept:service)", lf.load_dataset("InstEval"))
    settings = SamplerSettings(chains=2, iter_warmup=args.iter, iter_sampling=args.iter, seed=1, cores=2)
    lines = [
        f"# python benchmarks/csr_prototype.py --iter {args.iter}, {datetime.date.today()}, embedded engine",
        "# 2 chains, seed 1; ms/step = chain sampling seconds / its leapfrog steps, mean over chains",
        f"{'program':<16}{'ms/step':>9}{'leapfrogs':>11}",
    ]
    prototype = (HERE / "handwritten" / "insteval_csr_prototype.stan").read_text()
    for label, code in (("generated", model.stan_code), ("sparse product", prototype)):
        row = run(code, model.stan_data, settings)
        lines.append(f"{label:<16}{row['ms_per_step']:>9.3f}{int(row['leapfrogs'].sum()):>11}")
        print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
