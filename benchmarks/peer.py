"""lmmformula against bambi + nutpie on the crossed bernoulli simulation (300 subjects x 24 items).

Writes the simulated data to CSV, fits it with lmmformula (``parameterization="auto"``,
embedded engine) and then, in a subprocess, with bambi + nutpie (``benchmarks/peer_bambi.py``
run by the Python of a separate environment, default /work/venv-bambi). Both use the same
chains, warmup/tune and draws, seed 1, one after the other (never at the same time).

For each it reports compile seconds, sampling seconds, total wall (lmmformula: Model
construction + fit; bambi: model build + nutpie compile + sampling; Python imports excluded),
min bulk ESS over every posterior scalar, ESS per second of sampling and of total wall, and
max R-hat. By default both compile into empty caches (lmmformula's program cache, PyTensor's
compiledir), so compile times are a first fit's; ``--reuse-cache`` uses the normal caches. Run:

    python benchmarks/peer.py [--chains 4] [--iter 1000] [--peer-python /work/venv-bambi/bin/python]

Set up the peer environment once:

    python -m venv /work/venv-bambi
    /work/venv-bambi/bin/pip install bambi==0.17.2 nutpie==0.16.8 "matplotlib<3.11"
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lmmformula as lf
from lmmformula import diagnostics

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from parameterization import convergence, leapfrog_cost, machine  # noqa: E402
from simulations import Case, crossed_bernoulli  # noqa: E402

DEFAULT_PEER_PYTHON = "/work/venv-bambi/bin/python"
SETUP_HINT = (
    "python -m venv /work/venv-bambi && "
    '/work/venv-bambi/bin/pip install bambi==0.17.2 nutpie==0.16.8 "matplotlib<3.11"'
)


def run_lmmformula(case: Case, chains: int, iterations: int, seed: int) -> dict:
    """Fit the case with parameterization="auto"; timings and convergence in the table's terms."""
    started = time.perf_counter()
    model = lf.Model(case.formula, case.data, family=case.family, parameterization="auto")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", diagnostics.SamplingWarning)
        fit = model.fit(
            chains=chains,
            iter_warmup=iterations,
            iter_sampling=iterations,
            seed=seed,
            backend="embedded",
            progress=False,
        )
    total = time.perf_counter() - started
    record = {
        "tool": f"lmmformula {lf.__version__} (auto: {', '.join(str(p) for p in model.parameterizations)})",
        "compile_s": fit.timings["compile"],
        "compiled_now": bool(fit.timings["compiled_now"]),
        "sampling_s": fit.timings["sampling_wall"],
        "total_wall_s": total,
        "divergent": int(fit.sampler["divergent__"].sum()),
    }
    return record | convergence(fit.draws_) | leapfrog_cost(fit.sampler, fit.timings)


def run_peer(
    python: str, csv: Path, chains: int, iterations: int, seed: int, compiledir: Path | None = None
) -> dict:
    """Run peer_bambi.py with the peer environment's Python; its JSON record, or one with an error.

    ``compiledir``: an empty folder for PyTensor's compile cache (so nutpie compiles from
    scratch, as lmmformula does into an empty cache); None keeps the user's cache.
    """
    if not Path(python).is_file():
        return {
            "tool": "bambi + nutpie",
            "error": f"{python} not found; create the environment: {SETUP_HINT}",
        }
    command = [python, str(HERE / "peer_bambi.py"), str(csv), "--chains", str(chains)]
    command += ["--draws", str(iterations), "--tune", str(iterations), "--seed", str(seed)]
    env = dict(os.environ)
    if compiledir is not None:
        flags = [env["PYTENSOR_FLAGS"]] if env.get("PYTENSOR_FLAGS") else []
        env["PYTENSOR_FLAGS"] = ",".join([*flags, f"base_compiledir={compiledir}"])
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        tail = " | ".join(result.stderr.strip().splitlines()[-5:])
        return {"tool": "bambi + nutpie", "error": f"peer_bambi.py exited {result.returncode}: {tail}"}
    return json.loads(lines[-1])


def with_rates(record: dict) -> dict:
    """Add ESS per second of sampling and of total wall."""
    if "error" in record:
        return record
    ess = record["min_bulk_ess"]
    sampling, total = record.get("sampling_s"), record["total_wall_s"]
    return record | {
        "ess_per_sampling_s": ess / sampling if sampling else float("nan"),
        "ess_per_total_s": ess / total,
    }


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}s"


def render(records: list[dict], header: list[str]) -> str:
    """The comparison table, one line per tool, then each tool's description."""
    lines = [
        *header,
        f"{'':<4}{'compile':>9}{'sampling':>10}{'total':>9}{'min ESS':>9}{'ESS/s samp':>12}"
        f"{'ESS/s total':>13}{'R-hat':>8}{'div':>6}  worst (ESS)",
    ]
    notes = []
    for number, record in enumerate(records, start=1):
        tag = f"({number})"
        notes.append(f"{tag} {record['tool']}")
        if "error" in record:
            lines.append(f"{tag:<4}  not run: {record['error']}")
            continue
        compiled = "" if record.get("compiled_now", True) else " (cached)"
        notes[-1] += compiled
        divergent = record.get("divergent")
        lines.append(
            f"{tag:<4}{_seconds(record.get('compile_s')):>9}{_seconds(record.get('sampling_s')):>10}"
            f"{_seconds(record['total_wall_s']):>9}{record['min_bulk_ess']:>9.0f}"
            f"{record['ess_per_sampling_s']:>12.2f}{record['ess_per_total_s']:>13.2f}"
            f"{record['max_rhat']:>8.3f}{'?' if divergent is None else divergent:>6}  "
            f"{record['worst_ess_parameter']}"
        )
    return "\n".join(lines + notes) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--iter", type=int, default=1000, help="warmup (tune) and sampling draws, each")
    parser.add_argument("--seed", type=int, default=1, help="sampler seed and simulation seed")
    parser.add_argument("--peer-python", default=DEFAULT_PEER_PYTHON, help="Python of the bambi environment")
    parser.add_argument("--csv", type=Path, help="where to write the simulated data (default: a temp file)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "peer_bambi.txt")
    parser.add_argument(
        "--reuse-cache", action="store_true", help="use the normal compile caches (lmmformula's, PyTensor's)"
    )
    parser.add_argument("--only", choices=("lmmformula", "bambi"), help="run one side only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = "python " + shlex.join(["benchmarks/peer.py", *(sys.argv[1:] if argv is None else argv)])
    header = [
        f"# {command}, {time.strftime('%Y-%m-%d %H:%M')}, {machine()}",
        f"# crossed_bernoulli (seed {args.seed}): 7,200 rows, 300 subjects x 24 items; "
        f"{args.chains} chains x ({args.iter} warmup + {args.iter} draws), seed {args.seed}",
        "# total = build + compile + sampling (imports excluded); ESS = min bulk ESS over every posterior "
        "scalar; ESS/s per second of sampling and of total wall",
    ]
    case = crossed_bernoulli(args.seed)
    records = []
    with tempfile.TemporaryDirectory(prefix="lmmformula-peer-") as scratch:
        csv = args.csv or Path(scratch) / "crossed_bernoulli.csv"
        case.data.to_csv(csv, index=False)
        if args.only != "bambi":
            if not args.reuse_cache:
                os.environ["LMMFORMULA_CACHE"] = str(Path(scratch) / "cache")
            print("fitting with lmmformula ...", file=sys.stderr, flush=True)
            records.append(with_rates(run_lmmformula(case, args.chains, args.iter, args.seed)))
        if args.only != "lmmformula":
            print(f"fitting with bambi + nutpie ({args.peer_python}) ...", file=sys.stderr, flush=True)
            compiledir = None if args.reuse_cache else Path(scratch) / "pytensor"
            peer = run_peer(args.peer_python, csv, args.chains, args.iter, args.seed, compiledir)
            if "error" in peer:
                print(f"peer not run: {peer['error']}", file=sys.stderr)
            records.append(with_rates(peer))
    text = render(records, header)
    print(text, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps({"records": records}, indent=1) + "\n")


if __name__ == "__main__":
    main()
