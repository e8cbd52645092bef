"""Many small fits of one structure: 40 per-subject bootstraps of sleepstudy.

Serially in this process (the chains of each fit on both cores), then with lf.fit_many on a 2-worker
local process pool and on a 2-worker local Dask cluster (each fit's chains one after another in its
worker), each with the compiled module shared through the cache folder and shipped with every task.
Same seeds everywhere, so every row gives the same draws. Reports wall times and how many programs
were compiled (one, before everything; zero after).

    python benchmarks/fit_many.py [--fits 40] [--out benchmarks/results/fit_many.txt]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

import lmmformula as lf
from lmmformula.engines import embedded

HERE = Path(__file__).resolve().parent
FORMULA = "Reaction ~ Days + (Days | Subject)"
FIT = dict(chains=2, iter_warmup=500, iter_sampling=500, backend="embedded")


def bootstraps(count: int) -> dict[str, pd.DataFrame]:
    sleep = lf.load_dataset("sleepstudy")
    subjects = sleep["Subject"].unique()
    out = {}
    for i in range(count):
        picked = np.random.default_rng(i).choice(subjects, size=len(subjects))
        parts = [sleep[sleep["Subject"] == s].assign(Subject=f"{s}.{j}") for j, s in enumerate(picked)]
        out[f"boot {i}"] = pd.concat(parts, ignore_index=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=40)
    parser.add_argument("--out", default=str(HERE / "results" / "fit_many.txt"))
    args = parser.parse_args()
    warnings.simplefilter("ignore", lf.SamplingWarning)
    data = bootstraps(args.fits)
    models = {name: lf.Model(FORMULA, frame) for name, frame in data.items()}
    started = time.perf_counter()
    program = embedded.compile_program(next(iter(models.values())).stan_code)
    compile_seconds = time.perf_counter() - started
    rows = []

    def record(label: str, run) -> dict:
        began = time.perf_counter()
        fits = run()
        wall = time.perf_counter() - began
        failed = sum(isinstance(f, BaseException) for f in fits.values())
        compiled = sum(bool(f.timings.get("compiled_now")) for f in fits.values() if isinstance(f, lf.Fit))
        rows.append((label, wall, failed, compiled))
        print(f"{label:34} {wall:8.1f} s  failed {failed}  compiled {compiled}", flush=True)
        return fits

    reference = record(
        "serial (chains on 2 cores)",
        lambda: {n: m.fit(seed=1, cores=2, progress=False, **FIT) for n, m in models.items()},
    )
    for share in ("cache", "ship"):
        with ProcessPoolExecutor(max_workers=2) as pool:
            fits = record(
                f"process pool, 2 workers, {share}",
                lambda share=share: lf.fit_many(
                    models, executor=pool, share=share, seed=1, progress=False, **FIT
                ),
            )
        same = all(np.array_equal(fits[n].posterior["b"], reference[n].posterior["b"]) for n in models)
        print(f"  same draws as serial: {same}")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        print("distributed not installed: no Dask rows (pip install distributed)")
    else:
        began = time.perf_counter()
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            startup = time.perf_counter() - began
            for share in ("cache", "ship"):
                fits = record(
                    f"Dask LocalCluster, 2 workers, {share}",
                    lambda share=share: lf.fit_many(
                        models, executor=client.get_executor(), share=share, seed=1, progress=False, **FIT
                    ),
                )
                same = all(
                    np.array_equal(fits[n].posterior["b"], reference[n].posterior["b"]) for n in models
                )
                print(f"  same draws as serial: {same}")
        rows.append(("(Dask cluster start-up)", startup, 0, 0))

    serial = rows[0][1]
    lines = [
        f"# fit_many.py, {datetime.date.today()}, lmmformula {lf.__version__}, "
        f"Python {platform.python_version()}, {os.cpu_count()} cores; {args.fits} bootstraps of sleepstudy "
        f"({FORMULA}), each 2 chains x (500 + 500), seed 1; the same draws in every row",
        f"# the program: compiled once before all rows in {compile_seconds:.1f} s "
        f"({'now' if program.compiled_now else 'found in the cache'}); "
        "'compiled' = fits that compiled anything",
        f"{'how':36} {'wall s':>8} {'x serial':>9} {'failed':>7} {'compiled':>9}",
    ]
    lines += [
        f"{label:36} {wall:8.1f} {wall / serial:9.2f} {failed:7d} {compiled:9d}"
        for label, wall, failed, compiled in rows
    ]
    print("\n".join(lines))
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
