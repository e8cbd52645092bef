"""Centered, non-centered or auto: sampling efficiency per data set, one fit per (row, column).

Rows are the shipped data sets, then the simulations of ``benchmarks/simulations.py``;
columns are ``parameterization="noncentered"``, ``"centered"`` and ``"auto"``, and for designs
with several blocks sharing a population coefficient ``naive``: every block centered on it (the
rule before blocks were judged together; not part of the check), and where auto sweeps a block's
intercepts ``unswept``: auto's choices without sweeping (not part of the check either; it shows
what sweeping is worth). Every fit uses the embedded
engine with the same settings, at ``Model.fit``'s defaults (so adapt_delta is 0.95 where the
chosen parameterization partially centers a correlated block, 0.8 otherwise). Per fit it
records: compile seconds (and whether this fit compiled or found the program in the cache),
sampling wall seconds, the minimum bulk ESS over every scalar in ``fit.posterior``
(parameters, transformed parameters, group-level coefficients; constants skipped) and its
parameter, ESS per second of sampling wall, divergences, the maximum R-hat and its parameter,
post-warmup leapfrog steps summed over chains, and seconds per leapfrog step (the slowest
chain's sampling seconds over the largest per-chain post-warmup leapfrog count: post-warmup
only, as the draws hold no warmup).

The last column checks each row: "auto" converged (max R-hat < 1.01, no divergences, min
bulk ESS >= 400) and its ESS/s is at least 0.9 x that of the better fixed choice (the better converged
one: a fixed choice with divergences or R-hat >= 1.01 does not count; when neither converged the ratio is
shown but not checked, since a chain with divergences is biased and its ESS says nothing).

Results merge into a JSON sidecar, one record per (row, column), so running a subset of rows
updates only those; the text table is regenerated from it. Run:

    python benchmarks/parameterization.py                       # everything (slow: InstEval)
    python benchmarks/parameterization.py --rows coffee,data_poor
    python benchmarks/parameterization.py --quick                # smoke test, own results file
    python benchmarks/parameterization.py --dry-run              # build + stanc-check only, no fits
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path

import numpy as np

import lmmformula as lf
from lmmformula import diagnostics
from lmmformula.cache import strip_comments
from lmmformula.codegen import center_map, column_means
from lmmformula.draws import Draws
from lmmformula.stanc import check_program

sys.path.insert(0, str(Path(__file__).resolve().parent))
from simulations import Case, all_case_names, get_case  # noqa: E402

COLUMNS = ("noncentered", "centered", "auto", "unswept", "naive")
FIXED = ("noncentered", "centered")
RESULTS = Path(__file__).resolve().parent / "results"
MIN_ESS, MAX_RHAT, EFFICIENCY = 400, 1.01, 0.9


@dataclass(frozen=True)
class RunSettings:
    """Sampler settings shared by every fit of a run."""

    chains: int
    iterations: int  # warmup and sampling, each
    seed: int

    @property
    def label(self) -> str:
        return f"{self.chains}x({self.iterations}+{self.iterations})"


# ---------------------------------------------------------------------------- diagnostics


def convergence(draws: Draws) -> dict:
    """Min bulk ESS and max R-hat over every non-constant scalar, with the parameters that set them."""
    labels, flat = draws.flat()
    rhat, bulk, _ = diagnostics.convergence_stats(flat)
    constants = int(np.isnan(rhat).sum())
    if constants == len(labels):
        return {
            "min_bulk_ess": float("nan"),
            "worst_ess_parameter": "",
            "max_rhat": float("nan"),
            "worst_rhat_parameter": "",
            "scalars": len(labels),
            "constant_scalars": constants,
        }
    return {
        "min_bulk_ess": float(np.nanmin(bulk)),
        "worst_ess_parameter": labels[int(np.nanargmin(bulk))],
        "max_rhat": float(np.nanmax(rhat)),
        "worst_rhat_parameter": labels[int(np.nanargmax(rhat))],
        "scalars": len(labels),
        "constant_scalars": constants,
    }


def leapfrog_cost(sampler: dict[str, np.ndarray], timings: dict[str, float]) -> dict:
    """Post-warmup leapfrog steps (all chains) and seconds per step of the slowest chain."""
    per_chain = np.asarray(sampler["n_leapfrog__"]).sum(axis=1)
    slowest = timings.get("sampling_max_chain", float("nan"))
    return {
        "leapfrog_total": int(per_chain.sum()),
        "s_per_leapfrog": float(slowest) / float(per_chain.max()) if per_chain.max() > 0 else float("nan"),
    }


# ---------------------------------------------------------------------------- one fit


def naive(case: Case) -> list[lf.BlockParameterization]:
    """Every block centered on every population-level coefficient it carries: the rule before blocks were
    judged together (two crossed intercept blocks both centered on the population intercept)."""
    spec = lf.Model(case.formula, case.data, family=case.family, parameterization="noncentered").design
    coefficients = spec.coefficient_names
    return [
        lf.BlockParameterization(True, tuple(c for c in block.columns if c in coefficients))
        for block in spec.blocks
    ]


def naive_is_centered(case: Case) -> bool:
    centered = lf.Model(case.formula, case.data, family=case.family, parameterization="centered")
    return [replace(p, swept=False) for p in centered.parameterizations] == naive(case)


def unswept(case: Case) -> list[lf.BlockParameterization]:
    """auto's choices without sweeping any block's intercepts."""
    auto = lf.Model(case.formula, case.data, family=case.family)
    return [replace(p, swept=False) for p in auto.parameterizations]


def auto_sweeps(case: Case) -> bool:
    return any(p.swept for p in lf.Model(case.formula, case.data, family=case.family).parameterizations)


def chosen(case: Case, column: str) -> tuple[str, ...]:
    """The per-block choices ``column`` makes for ``case``."""
    if column == "naive":
        return tuple(str(p) for p in naive(case))
    if column == "unswept":
        return tuple(str(p) for p in unswept(case))
    return tuple(str(p) for p in build(case, column).parameterizations)


def build(case: Case, column: str) -> lf.Model:
    """The model for ``column``. lmmformula refuses to center two blocks on one coefficient, so the
    naive column takes the all-centered model and points every block's center map (Stan data ``F_i``)
    at every coefficient it carries: the same program, other data."""
    if column == "unswept":
        return lf.Model(case.formula, case.data, family=case.family, parameterization=unswept(case))
    if column != "naive":
        return lf.Model(case.formula, case.data, family=case.family, parameterization=column)
    model = lf.Model(case.formula, case.data, family=case.family, parameterization="centered")
    coefficients = model.design.coefficient_names
    for i, (block, choice) in enumerate(zip(model.design.blocks, naive(case)), start=1):
        if f"F_{i}" in model.stan_data:
            model.stan_data[f"F_{i}"] = center_map(
                block, coefficients, choice.centers, column_means(model.data_design)
            )
        if f"w_{i}" in model.stan_data:  # a block centered on a coefficient is not swept
            model.stan_data[f"w_{i}"] = np.zeros_like(model.stan_data[f"w_{i}"])
    return model


def measure(case: Case, column: str, settings: RunSettings) -> dict:
    """Fit ``case`` with ``parameterization=column``; the record for the results table."""
    model = build(case, column)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", diagnostics.SamplingWarning)
        fit = model.fit(
            chains=settings.chains,
            iter_warmup=settings.iterations,
            iter_sampling=settings.iterations,
            seed=settings.seed,
            backend="embedded",
            progress=False,
        )
    wall = fit.timings["sampling_wall"]
    record = {
        "chosen": list(chosen(case, column)),
        "compile_s": fit.timings["compile"],
        "compiled_now": bool(fit.timings["compiled_now"]),
        "sampling_wall_s": wall,
        "adapt_delta": fit.settings.adapt_delta,  # 0.95 with a partially centered correlated block
        "divergent": int(np.asarray(fit.sampler["divergent__"]).sum()),
        "treedepth_hits": int((np.asarray(fit.sampler["treedepth__"]) >= fit.settings.max_treedepth).sum()),
        "problems": list(fit.problems),
    }
    record |= convergence(fit.draws_)
    record |= leapfrog_cost(fit.sampler, fit.timings)
    record["ess_per_s"] = record["min_bulk_ess"] / wall
    return record


def safe_measure(case: Case, column: str, settings: RunSettings) -> dict:
    """``measure``, but a failed fit becomes a record with its error instead of ending the run."""
    try:
        return measure(case, column, settings)
    except Exception as error:  # one failed fit should not lose the others
        return {"error": f"{type(error).__name__}: {error}"}


# ---------------------------------------------------------------------------- results file


def load_records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return json.loads(path.read_text())["records"]


def merge(records: list[dict], new: dict) -> list[dict]:
    """Records with ``new`` replacing the one of the same (row, column)."""
    key = (new["row"], new["column"])
    return [r for r in records if (r["row"], r["column"]) != key] + [new]


def save_records(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"records": records}, indent=1, default=float) + "\n")


def ordered(records: list[dict]) -> list[dict]:
    """Known rows in the benchmark's order (unknown ones last), columns in COLUMNS order."""
    names = all_case_names()
    rank = {name: i for i, name in enumerate(names)}
    return sorted(
        records,
        key=lambda r: (rank.get(r["row"], len(names)), r["row"], COLUMNS.index(r["column"])),
    )


def row_check(row: list[dict]) -> str:
    """The row's verdict: does "auto" converge and come within EFFICIENCY of the better fixed choice?"""
    by_column = {r["column"]: r for r in row if "error" not in r}
    auto = by_column.get("auto")
    # a fixed choice with divergences or R-hat >= 1.01 is not a fit to match: compare with converged ones
    present = [by_column[c] for c in FIXED if c in by_column]
    converged = [r for r in present if not r["divergent"] and r["max_rhat"] < MAX_RHAT]
    fixed = [r["ess_per_s"] for r in (converged or present)]
    if auto is None or not fixed:
        return "n/a (needs auto and a fixed column)"
    failures = []
    if not auto["max_rhat"] < MAX_RHAT:
        failures.append(f"R-hat {auto['max_rhat']:.4f}")
    if auto["divergent"]:
        failures.append(f"{auto['divergent']} div")
    if not auto["min_bulk_ess"] >= MIN_ESS:
        failures.append(f"ESS {auto['min_bulk_ess']:.0f}")
    ratio = auto["ess_per_s"] / max(fixed) if fixed else float("nan")
    if converged and not ratio >= EFFICIENCY:
        failures.append("slow")
    settings = {r["settings"] for r in row}
    note = "" if len(settings) == 1 else ", settings differ"
    if len(present) < len(FIXED):
        note += ", one fixed column missing"
    if not converged:
        note += "; no fixed choice converged, so no efficiency check"
    verdict = "ok" if not failures else "FAIL " + "; ".join(failures)
    return f"{verdict} ({ratio:.2f}x best fixed{note})"


def record_line(r: dict) -> str:
    column = r["column"]
    if r["column"] == "auto" and "chosen" in r:
        column = "auto: " + "/".join(_short(p) for p in r["chosen"])
    if "error" in r:
        return f"{r['row']:<18}{column:<28}{r['settings']:>14}  error: {r['error'][:200]}"
    if r.get("same_as"):
        column += f" (= {r['same_as']})"
    if r.get("adapt_delta", 0.8) != 0.8:
        column += f" [adapt_delta {r['adapt_delta']}]"
    compile_text = f"{r['compile_s']:.1f}s" + ("" if r["compiled_now"] else " c")
    return (
        f"{r['row']:<18}{column:<28}{r['settings']:>14}{compile_text:>10}{r['sampling_wall_s']:>9.1f}s"
        f"{r['min_bulk_ess']:>9.0f}{r['ess_per_s']:>9.2f}{r['divergent']:>6}{r['max_rhat']:>8.3f}"
        f"{r['leapfrog_total']:>11}{1e6 * r['s_per_leapfrog']:>10.1f}  {r['worst_ess_parameter']:<14}"
    )


def _short(choice: str) -> str:
    """'centered on population Intercept, x' -> 'c(Intercept,x)', 'centered at zero' -> 'c0'; per-level
    centers (group-level predictors) as '+G(...)', non-centered trailing columns as ' nc(...)'."""
    choice, swept = choice.removesuffix("; intercepts swept"), choice.endswith("; intercepts swept")
    main, _, partial = choice.partition("; ")
    main, _, level = main.partition(", intercepts also on per-level ")
    if main.startswith("centered on population "):
        text = "c(" + main.removeprefix("centered on population ").replace(", ", ",") + ")"
    else:
        text = {"centered at zero": "c0", "noncentered": "nc", "centered": "c"}.get(main, main)
    if level:
        text += "+G(" + level.replace(", ", ",") + ")"
    if partial:
        text += " nc(" + partial.removesuffix(" non-centered").replace(", ", ",") + ")"
    return text + ("~" if swept else "")


def render(records: list[dict], header: str) -> str:
    """The text table: one line per (row, column), the row's check on its last line."""
    lines = [
        header,
        "# compile: 'c' = found in the cache; auto choices per block: nc = noncentered, c0 = centered at "
        "zero, c(terms) = centered on those population terms, +G(terms) = intercepts also on those per-level "
        "(group-level) predictors, nc(columns) = those columns non-centered given the centered ones, ~ = its "
        "intercepts swept into the population intercept",
        "# ESS = min bulk ESS over every posterior scalar; ESS/s per second of sampling wall; leapfrog = "
        "post-warmup steps, all chains; us/leap = slowest chain's sampling s per step",
        f"{'row':<18}{'column':<28}{'chains x iter':>14}{'compile':>10}{'sampling':>10}{'min ESS':>9}"
        f"{'ESS/s':>9}{'div':>6}{'R-hat':>8}{'leapfrog':>11}{'us/leap':>10}  {'worst (ESS)':<14}  check",
    ]
    records = ordered(records)
    rows = list(dict.fromkeys(r["row"] for r in records))
    for name in rows:
        row = [r for r in records if r["row"] == name]
        for r in row:
            check = f"  {row_check(row)}" if r is row[-1] else ""
            lines.append((record_line(r) + check).rstrip())
    runs: dict[tuple[str, str], list[str]] = {}
    for r in records:
        runs.setdefault((r["date"], r["command"]), []).append(f"{r['row']}/{r['column']}")
    for (date, command), fits in runs.items():
        lines.append(f"# measured {date} by {command}: {', '.join(fits)}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- run


def machine() -> str:
    try:
        httpstan = metadata.version("httpstan")
    except metadata.PackageNotFoundError:
        httpstan = "?"
    return (
        f"{os.cpu_count()}-core {platform.machine()} {platform.system()}, "
        f"Python {platform.python_version()}, lmmformula {lf.__version__}, httpstan {httpstan}"
    )


def dry_run(cases: list[Case], columns: list[str]) -> None:
    """Build each Model and stanc-check each distinct program: no C++ compile, no sampling."""
    for case in cases:
        programs = {}
        for column in columns:
            model = build(case, column)
            programs.setdefault(strip_comments(model.stan_code), []).append(column)
            print(f"{case.name:<18}{column:<12} {chosen(case, column)}")
        for code in programs:
            check_program(code)
        print(f"{'':<18}{len(programs)} distinct program(s) (comments aside), all pass stanc")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", help=f"comma-separated subset of: {','.join(all_case_names())}")
    parser.add_argument("--columns", help=f"comma-separated subset of: {','.join(COLUMNS)}")
    parser.add_argument("--chains", type=int, help="default 4 (2 with --quick)")
    parser.add_argument("--iter", type=int, help="warmup and sampling iterations, each; default 1000")
    parser.add_argument("--seed", type=int, default=1, help="sampler seed (and simulation seed)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 chains x (100 + 100)")
    parser.add_argument("--out", type=Path, help="text table; the JSON sidecar sits next to it")
    parser.add_argument("--dry-run", action="store_true", help="build models and stanc-check only")
    args = parser.parse_args(argv)
    args.chains = args.chains or (2 if args.quick else 4)
    args.iter = args.iter or (100 if args.quick else 1000)
    default_out = "parameterization_quick.txt" if args.quick else "parameterization.txt"
    args.out = args.out or RESULTS / default_out
    return args


def selection(text: str | None, allowed: list[str] | tuple[str, ...], what: str) -> list[str]:
    if not text:
        return list(allowed)
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in allowed]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return chosen


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rows = selection(args.rows, all_case_names(), "rows")
    columns = selection(args.columns, COLUMNS, "columns")
    cases = [get_case(name, args.seed) for name in rows]
    if args.dry_run:
        dry_run(cases, columns)
        return
    settings = RunSettings(args.chains, args.iter, args.seed)
    command = "python " + shlex.join(
        ["benchmarks/parameterization.py", *(sys.argv[1:] if argv is None else argv)]
    )
    date = time.strftime("%Y-%m-%d %H:%M")
    header = f"# {command}, {date}, {machine()}"
    sidecar = args.out.with_suffix(".json")
    print(f"{settings.label} per fit, seed {settings.seed}, embedded engine; results: {args.out}", flush=True)
    for case in cases:
        measured: dict[tuple[str, ...], dict] = {}  # choices -> the record of the fit that used them
        for column in columns:
            if column == "naive" and naive_is_centered(case):
                continue  # one block, or blocks that share no coefficient: the same as "centered"
            if column == "unswept" and not auto_sweeps(case):
                continue  # the same as "auto"
            record = {"row": case.name, "column": column, "settings": settings.label}
            record |= {"formula": case.formula, "family": case.family, "nobs": len(case.data)}
            record |= {"seed": settings.seed, "date": date, "command": command}
            choices = chosen(case, column)
            if choices in measured:
                # the same program, data and seed give the same draws: reuse that fit, say so
                record |= {**measured[choices], "same_as": measured[choices]["column"]}
                record["column"] = column
            else:
                record |= safe_measure(case, column, settings)
                if "error" not in record:
                    measured[choices] = dict(record)
            print(record_line(record), flush=True)
            records = merge(load_records(sidecar), record)
            save_records(sidecar, records)
            args.out.write_text(render(records, header))
    print()
    print(render(load_records(sidecar), header), end="")


if __name__ == "__main__":
    main()
