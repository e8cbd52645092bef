"""InstEval at scale: a default fit of ``y ~ service + (1 | s) + (1 | d) + (1 | dept:service)``.

73,421 ratings, 2,972 students, 1,128 lecturers, 28 department x service cells. Defaults: 4 chains x
(1000 warm-up + 1000 draws) on every core, ``parameterization="auto"``. Reports the compile and sampling
wall time, convergence (max R-hat, divergences, bulk ESS of every population-level parameter and sd, and
the minimum over all parameters), peak memory (the largest total resident memory of this process and all
its descendants at one moment, sampled twice a second; and the largest single child), and the estimates
next to lme4's REML fit.

    python benchmarks/insteval.py [--chains 4] [--iter 1000] [--out benchmarks/results/insteval.txt]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np

import lmmformula as lf
from lmmformula import diagnostics

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from simulations import LME4_REFERENCES, get_case  # noqa: E402


class MemoryWatch:
    """The largest total resident memory (MB) of this process and its descendants, sampled in a thread."""

    def __init__(self, every: float = 0.5) -> None:
        self.peak, self._every, self._stop = 0.0, every, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.peak = max(self.peak, _tree_rss(os.getpid()))


def _tree_rss(root: int) -> float:
    """Resident memory (MB) of ``root`` and every process below it, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier and pid not in tree]
        tree.update(children)
        frontier = children
    total = 0.0
    for pid in tree:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--iter", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--parameterization", default="auto")
    parser.add_argument("--out", default=str(HERE / "results" / "insteval.txt"))
    args = parser.parse_args()

    started = time.perf_counter()
    case = get_case("InstEval")
    model = lf.Model(case.formula, case.data, parameterization=args.parameterization)
    built = time.perf_counter() - started
    with MemoryWatch() as memory:
        fit = model.fit(
            chains=args.chains, iter_warmup=args.iter, iter_sampling=args.iter, seed=args.seed, progress=False
        )
    total = time.perf_counter() - started
    # peak memory of the fit itself, before this script's own diagnostics below
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    labels, flat = fit.draws_.flat()
    rhat, bulk, _ = diagnostics.convergence_stats(flat)
    varying = ~np.isnan(rhat)
    names, bulk, rhat = np.asarray(labels)[varying], bulk[varying], rhat[varying]
    key = [
        n
        for n in names
        if n.split("[")[0] in ("Intercept", "b", "b_Intercept", "sigma") or n.startswith("sd_")
    ]
    key_ess = {n: float(bulk[list(names).index(n)]) for n in key}

    ref = json.loads((LME4_REFERENCES / "InstEval.json").read_text())
    fixef, varcorr = fit.fixef(), fit.varcorr()
    lines = [
        f"# python benchmarks/insteval.py --chains {args.chains} --iter {args.iter} --seed {args.seed} "
        f"--parameterization {args.parameterization}; {datetime.date.today()}, "
        f"{platform.node() or 'machine'} ({os.cpu_count()} cores), embedded engine",
        f"formula: {case.formula}; {model.nobs} rows",
        f"parameterizations: {', '.join(str(p) for p in model.parameterizations)}",
        f"model built in {built:.1f} s; compile {fit.timings['compile']:.1f} s "
        f"({'compiled now' if fit.timings['compiled_now'] else 'cached'}); sampling wall "
        f"{fit.timings['sampling_wall']:.1f} s (slowest chain: warm-up "
        f"{fit.timings['warmup_max_chain']:.1f} s, sampling {fit.timings['sampling_max_chain']:.1f} s); "
        f"total wall {total:.1f} s",
        f"max R-hat {np.nanmax(rhat):.4f} ({names[np.nanargmax(rhat)]}); divergences "
        f"{int(fit.sampler['divergent__'].sum())}; min bulk ESS over all {varying.sum()} parameters "
        f"{np.nanmin(bulk):.0f} ({names[np.nanargmin(bulk)]}); leapfrog steps per draw "
        f"{fit.sampler['n_leapfrog__'].mean():.1f}",
        "bulk ESS of population parameters and sds: " + ", ".join(f"{k} {v:.0f}" for k, v in key_ess.items()),
        f"peak memory of the fit: {memory.peak:.0f} MB at once (this process and its children, sampled every "
        f"0.5 s); this process {self_peak:.0f} MB, largest child {child_peak:.0f} MB (a chain worker, or the "
        "compiler on a first fit)",
        "",
        "estimate          lmmformula (sd)      lme4 REML (se)",
    ]
    for name, ref_name in (("Intercept", "(Intercept)"), ("service[T.1]", "service1")):
        row = fixef.loc[name]
        lines.append(
            f"{name:<16}{row['Estimate']:>9.4f} ({row['Est.Error']:.4f}){ref['fixef'][ref_name]:>12.4f} "
            f"({ref['fixef_se'][ref_name]:.4f})"
        )
    for group in ("s", "d", "dept:service"):
        row = varcorr.loc[(group, "sd(Intercept)")]
        lines.append(
            f"sd({group}){'':<{12 - len(group)}}{row['Estimate']:>9.4f} ({row['Est.Error']:.4f})"
            f"{ref['varcorr'][group]['sd']['(Intercept)']:>12.4f}"
        )
    row = varcorr.loc[("Residual", "sigma")]
    lines.append(f"{'sigma':<16}{row['Estimate']:>9.4f} ({row['Est.Error']:.4f}){ref['residual_sd']:>12.4f}")
    if fit.problems:
        lines.append("problems: " + " | ".join(fit.problems))
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
