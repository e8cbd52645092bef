"""The embedded engine, old and new, and CmdStan, on the same programs, data and seeds.

- old: the embedded engine before our runner (httpstan's precompiled services; every draw sent as
  JSON over a socket), taken from git (``--old-ref``, default the commit before ad168c0) into a
  temporary worktree;
- new: this checkout's embedded engine (``native/runner.cpp``);
- cmdstanpy: where CmdStan is installed (``CMDSTAN``).

Cases: coffee (``y ~ x + (x | group)``), sleepstudy (``Reaction ~ Days + (Days | Subject)``, coffee's
program) and a simulated crossed bernoulli design (300 subjects x 24 items, ``y ~ x + (x | subject) +
(1 | item)``). Each engine has its own empty cache: one process compiles (compile seconds), fresh
ones sample 4 chains x (1000 + 1000) on 2 cores with seed 1, ``--repeats`` times, the engines taking
turns (this VM's walls vary by +-20% from run to run): the median sampling wall (and the range),
draws per second, the
smallest bulk ESS over the population, sd and sigma parameters per second of sampling wall, and peak
memory (the sampling process and its largest worker or chain process). Then the new engine's compile
table: the one-time warm-up (runner and precompiled header), the first compile of a new structure, a
cached refit.

    python benchmarks/engine.py [--out benchmarks/results/engine.txt] [--old-ref REF]

Nothing else may run meanwhile (2 cores).
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
import textwrap
from pathlib import Path

import numpy as np

import lmmformula as lf
from lmmformula import diagnostics
from lmmformula.engines import cmdstan
from lmmformula.engines.base import write_stan_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: Runs in a fresh process with PYTHONPATH at one engine's source: compile, sample, report.
CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np
    from lmmformula.engines import SamplerSettings
    engine_name, code_path, data_path, out_path, seed, mode = sys.argv[1:7]
    if engine_name == "cmdstanpy":
        from lmmformula.engines import cmdstan as engine
    else:
        from lmmformula.engines import embedded as engine
    code = open(code_path).read()
    data = json.load(open(data_path))
    started = time.perf_counter()
    program = engine.compile_program(code)
    compiled = time.perf_counter() - started
    if mode == "compile":  # its own process: the compiler's memory is not counted with the workers'
        print(json.dumps({"compile": compiled}))
        sys.exit(0)
    settings = SamplerSettings(chains=4, iter_warmup=1000, iter_sampling=1000, seed=int(seed), cores=2)
    started = time.perf_counter()
    outputs = engine.sample(program, data, settings)
    wall = time.perf_counter() - started
    columns = outputs[0].columns
    np.savez(out_path, values=np.stack([o.values for o in outputs]), columns=np.array(columns))
    print(json.dumps({
        "compile": compiled,
        "wall": wall,
        "driver_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }))
    """
)


def crossed_bernoulli(seed: int = 13):
    """300 subjects x 24 items, a within-subject condition x with subject-varying effects."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    subjects, items = 300, 24
    frame = pd.DataFrame(
        {
            "subject": np.repeat([f"s{i}" for i in range(subjects)], items),
            "item": np.tile([f"i{j}" for j in range(items)], subjects),
            "x": np.tile(np.where(np.arange(items) % 2 == 0, -0.5, 0.5), subjects),
        }
    )
    u0 = rng.normal(0, 1.0, subjects)[np.repeat(np.arange(subjects), items)]
    u1 = rng.normal(0, 0.5, subjects)[np.repeat(np.arange(subjects), items)]
    w0 = rng.normal(0, 0.7, items)[np.tile(np.arange(items), subjects)]
    eta = -0.3 + 0.8 * frame.x + u0 + u1 * frame.x + w0
    frame["y"] = (rng.uniform(size=len(frame)) < 1 / (1 + np.exp(-eta))).astype(int)
    return frame


def cases() -> dict:
    return {
        "coffee": lf.Model("y ~ x + (x | group)", lf.load_dataset("coffee")),
        "sleepstudy": lf.Model("Reaction ~ Days + (Days | Subject)", lf.load_dataset("sleepstudy")),
        "crossed_bernoulli": lf.Model(
            "y ~ x + (x | subject) + (1 | item)", crossed_bernoulli(), family="bernoulli"
        ),
    }


def run(
    engine: str, source: Path, cache: Path, files: tuple[Path, Path], seed: int, out: Path | None, mode: str
) -> dict:
    """One engine on one case in a fresh process: ``mode`` "compile" or "sample" (its draws to
    ``out``); its report."""
    env = {**os.environ, "PYTHONPATH": str(source), "LMMFORMULA_CACHE": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, engine, str(files[0]), str(files[1]), str(out or ""), str(seed), mode],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{engine} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def smallest_ess(path: Path) -> float:
    """The smallest bulk ESS over the population-level, sd and sigma parameters."""
    saved = np.load(path)
    columns = [str(c) for c in saved["columns"]]
    wanted = [
        i
        for i, c in enumerate(columns)
        if c in ("Intercept", "sigma") or c.startswith(("b.", "b[", "sd_")) or c == "b_Intercept"
    ]
    draws = saved["values"][:, :, wanted]
    varying = draws.std(axis=(0, 1)) > 0
    return float(np.min(diagnostics.ess_bulk(draws[:, :, varying])))


def compile_table(source: Path, code: str, other_code: str) -> list[str]:
    """The new engine: one-time warm-up, first compile of a structure, cached refit (fresh processes)."""
    cache = Path(tempfile.mkdtemp(prefix="lmmformula-bench-compile-"))
    script = textwrap.dedent(
        """
        import sys, time
        from lmmformula.engines import embedded
        what, path = sys.argv[1:3]
        started = time.perf_counter()
        if what == "warmup":
            embedded.warm_up()
        else:
            embedded.compile_program(open(path).read())
        print(time.perf_counter() - started)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(source), "LMMFORMULA_CACHE": str(cache)}
    first, second = cache / "first.stan", cache / "second.stan"
    first.write_text(code)
    second.write_text(other_code)
    rows = []
    for label, what, path in (
        ("one-time warm-up (runner + precompiled header)", "warmup", first),
        ("first compile of a new structure", "compile", first),
        ("first compile of another structure", "compile", second),
        ("cached refit (a new process)", "compile", first),
    ):
        done = subprocess.run(
            [sys.executable, "-c", script, what, str(path)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(f"{label:50} {float(done.stdout.strip().splitlines()[-1]):8.1f} s")
    size = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) / 2**20
    rows.append(f"{'cache size after these (MB)':50} {size:8.0f}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "results" / "engine.txt"))
    parser.add_argument("--old-ref", default="ad168c0^")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-old", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="sampling runs per engine and case (median)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lmmformula-bench-engine-"))
    engines = {"new": ("embedded", ROOT)}
    if not args.skip_old:
        old = work / "old"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.old_ref], check=True
        )
        engines = {"old": ("embedded", old), **engines}
    if cmdstan.available():
        engines["cmdstanpy"] = ("cmdstanpy", ROOT)
    lines = [
        f"# engine.py, {datetime.date.today()}, lmmformula {lf.__version__}, "
        f"Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} cores; old = {args.old_ref}; 4 chains x (1000 + 1000) on 2 "
        f"cores, seed {args.seed}; each engine in a fresh process with an empty cache; wall = median of "
        f"{args.repeats} sampling runs per engine (fresh processes, engines alternating), min and max "
        "beside it",
        f"{'case':18} {'engine':10} {'compile s':>9} {'wall s':>7} {'min':>7} {'max':>7} {'draws/s':>8} "
        f"{'min ESS':>8} {'ESS/s':>7} {'driver MB':>9} {'worker MB':>9}",
    ]
    print("\n".join(lines), flush=True)
    walls: dict[tuple[str, str], float] = {}
    models = cases()
    try:
        for case, model in models.items():
            code, data = work / f"{case}.stan", work / f"{case}.json"
            code.write_text(model.stan_code)
            write_stan_json(model.stan_data, data)
            compiled = {
                label: run(engine, source, work / f"cache-{label}", (code, data), args.seed, None, "compile")
                for label, (engine, source) in engines.items()
            }
            reports: dict[str, list[dict]] = {label: [] for label in engines}
            # the engines take turns (A B C A B C ...), so drifts in the machine's speed are shared
            for _ in range(args.repeats):
                for label, (engine, source) in engines.items():
                    out = work / f"{case}-{label}.npz"
                    reports[label].append(
                        run(engine, source, work / f"cache-{label}", (code, data), args.seed, out, "sample")
                    )
            for label in engines:
                wall_times = [report["wall"] for report in reports[label]]
                wall = float(np.median(wall_times))
                ess = smallest_ess(work / f"{case}-{label}.npz")  # the same seed: the same draws in every run
                walls[case, label] = wall
                lines.append(
                    f"{case:18} {label:10} {compiled[label]['compile']:9.1f} {wall:7.2f} "
                    f"{min(wall_times):7.2f} {max(wall_times):7.2f} {4000 / wall:8.0f} {ess:8.0f} "
                    f"{ess / wall:7.0f} "
                    f"{max(r['driver_mb'] for r in reports[label]):9.0f} "
                    f"{max(r['worker_mb'] for r in reports[label]):9.0f}"
                )
                print(lines[-1], flush=True)
            for other in ("old", "cmdstanpy"):
                if (case, other) in walls:
                    ratio = walls[case, "new"] / walls[case, other]
                    lines.append(f"# {case}: new engine's sampling wall / {other}'s = {ratio:.2f}")
                    print(lines[-1], flush=True)
        lines.append("")
        lines.append("# compile table, new embedded engine (coffee's program, then crossed_bernoulli's)")
        lines += compile_table(ROOT, models["coffee"].stan_code, models["crossed_bernoulli"].stan_code)
        print("\n".join(lines[-6:]), flush=True)
    finally:
        if not args.skip_old:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(work / "old")], check=False
            )
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
