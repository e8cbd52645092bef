"""Real data sets at default settings: noncentered, centered and auto, against lme4 / glmmTMB / ordinal.

Every row is a public data set shipped with an R package (lme4, nlme, glmmTMB, mlmRev, HSAUR3, ordinal,
lmerTest, ...), exported with its frequentist reference fit by ``benchmarks/data/make_real_data.R`` into
``benchmarks/data/NAME.csv`` and ``benchmarks/data/references.json`` (R is needed only to re-export).
Each cell is one ``Model(formula, data, family, parameterization=column).fit(seed=...)`` at the
defaults (4 chains x (1000 + 1000), embedded engine) and records:

- sampling wall seconds (everything after the compile: warm-up, the end-of-warm-up check, any
  switch), the minimum bulk ESS over the population-level coefficients and group sds, and ESS/s;
- divergent transitions and the maximum rank-normalized R-hat over every parameter the program writes;
- agreement with the reference (adaptive quadrature where the export has it, else Laplace / REML): the
  largest |posterior mean - estimate| / SE over the fixed effects, and the largest relative gap of a group
  sd (factors with >= 10 levels);
- for auto: what it chose per block, and whether the check at the end of warm-up switched.

A cell *converged* when R-hat < 1.01, no divergences and ESS >= 400; it *agrees* when every fixed effect
is within 0.5 SE and every sd (>= 10 levels) within 35 %. The last column checks auto: converged, agrees,
and ESS/s >= 0.8 x the best converged fixed choice.

Results merge into ``results/real_data.json`` one cell at a time (so a run can be split), and the table
``results/real_data.txt`` is written from it. Run:

    python benchmarks/real_data.py                               # every row, every column (an hour or more)
    python benchmarks/real_data.py --rows verbagg,grouseticks --columns auto
    python benchmarks/real_data.py --list
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import lmmformula as lf
from lmmformula import diagnostics
from lmmformula.pilot import key_columns

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"
COLUMNS = ("noncentered", "centered", "auto")
FIXED = ("noncentered", "centered")


def references() -> list[dict]:
    return json.loads((DATA / "references.json").read_text())


def load(entry: dict) -> pd.DataFrame:
    """The CSV with every grouping column read as text (ids that look like numbers are labels)."""
    frame = pd.read_csv(DATA / f"{entry['name']}.csv")
    for factor in entry["ngroups"]:
        for column in factor.replace("/", ":").split(":"):
            if column in frame:
                frame[column] = frame[column].astype(str)
    return frame


def _same_factor(a: str, b: str) -> bool:
    return sorted(a.replace("/", ":").split(":")) == sorted(b.replace("/", ":").split(":"))


def agreement(fit: lf.Fit, entry: dict) -> dict:
    """Fixed effects in reference SEs and group sds as relative gaps; names the reference has that the
    fit lacks are listed. Where the export also fitted by adaptive quadrature (``agq``: single-intercept
    GLMMs, where Laplace's approximation is off by up to 1 SE on toenail), that fit is the reference."""
    entry = {**entry, **{k: v for k, v in entry.get("agq", {}).items() if k in ("fixef", "fixef_se", "sd")}}
    fixef = fit.fixef()
    gaps, missing = {}, []
    for name, estimate in entry["fixef"].items():
        if name in fixef.index:
            gaps[name] = abs(float(fixef.loc[name, "Estimate"]) - estimate) / entry["fixef_se"][name]
        else:
            missing.append(name)
    varcorr = fit.varcorr()
    sds = {}
    for factor, terms in entry.get("sd", {}).items():
        groups = [g for g in varcorr.index.get_level_values(0).unique() if _same_factor(g, factor)]
        for term, value in terms.items():
            key = (groups[0], f"sd({term})") if groups else None
            if key is None or key not in varcorr.index:
                missing.append(f"sd {factor} {term}")
                continue
            if entry["ngroups"].get(factor, 0) >= 10 and value > 1e-6:
                sds[f"{factor}:{term}"] = abs(float(varcorr.loc[key, "Estimate"]) - value) / value
    return {
        "fixef_gap_se": max(gaps.values(), default=0.0),
        "worst_fixef": max(gaps, key=gaps.get) if gaps else None,
        "sd_gap": max(sds.values(), default=0.0),
        "worst_sd": max(sds, key=sds.get) if sds else None,
        "missing": missing,
    }


def measure(entry: dict, column: str, seed: int) -> dict:
    data = load(entry)
    model = lf.Model(entry["formula"], data, family=entry["family"], parameterization=column)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = model.fit(seed=seed, progress=False)
    labels, flat = fit.draws_.flat()
    keys = key_columns(labels, (), len(model.design.blocks))
    rhat, bulk, _ = diagnostics.convergence_stats(flat)
    key_bulk = bulk[keys]
    worst = int(np.nanargmin(key_bulk))
    wall = fit.timings["sampling_wall"]
    record = {
        "row": entry["name"],
        "column": column,
        "seed": seed,
        "compile_s": fit.timings["compile"],
        "compiled_now": bool(fit.timings["compiled_now"]),
        "wall_s": wall,
        "min_ess": float(key_bulk[worst]),
        "min_ess_param": labels[keys[worst]],
        "ess_per_s": float(key_bulk[worst]) / wall,
        "divergences": int(fit.sampler["divergent__"].sum()),
        "max_rhat": float(np.nanmax(rhat)),
        "max_rhat_param": labels[int(np.nanargmax(rhat))],
        "adapt_delta": fit.settings.adapt_delta,
        "chosen": [str(p) for p in model.parameterizations],
        "ran": fit.parameterization,
        "switched": any(note.startswith("switched") for note in fit.notes),
        "notes": list(fit.notes),
        "warnings": [str(w.message).splitlines()[0] for w in caught],
        "fixef": fit.fixef()["Estimate"].to_dict(),
        "varcorr": {f"{g} {p}": float(v) for (g, p), v in fit.varcorr()["Estimate"].items()},
        **agreement(fit, entry),
    }
    record["converged"] = (
        record["max_rhat"] < 1.01 and record["divergences"] == 0 and record["min_ess"] >= 400
    )
    record["agrees"] = record["fixef_gap_se"] <= 0.5 and record["sd_gap"] <= 0.35 and not record["missing"]
    return record


def _load_results(path: Path) -> dict:
    if path.exists():
        return {(r["row"], r["column"]): r for r in json.loads(path.read_text())["records"]}
    return {}


def table(records: dict, entries: list[dict]) -> str:
    lines = [
        "Real data at default settings (4 chains x (1000 + 1000), embedded engine). Per cell: "
        "sampling wall s (after the compile) | min bulk ESS over population coefficients and sds | "
        "ESS/s | divergences | max R-hat | fixed-effect gap in reference SEs / largest sd gap. "
        "Check: auto converged (R-hat < 1.01, "
        "0 divergences, ESS >= 400), agrees (fixef <= 0.5 SE, sds <= 35 %), ESS/s >= 0.8 x best converged "
        "fixed choice.",
        "",
    ]
    for entry in entries:
        name = entry["name"]
        cells = {c: records.get((name, c)) for c in COLUMNS}
        if not any(cells.values()):
            continue
        levels = ", ".join(f"{k} {v}" for k, v in entry["ngroups"].items())
        lines.append(f"{name} ({entry['source']}; {entry['family']}; {entry['nobs']} rows; {levels})")
        lines.append(f"  {entry['formula']}")
        for column in COLUMNS:
            r = cells[column]
            if r is None:
                lines.append(f"  {column:<12} not run")
                continue
            mark = ("converged" if r["converged"] else "NOT converged") + (
                ", agrees" if r["agrees"] else ", DISAGREES"
            )
            lines.append(
                f"  {column:<12} {r['wall_s']:7.1f} s | ESS {r['min_ess']:6.0f} ({r['min_ess_param']}) | "
                f"{r['ess_per_s']:7.1f}/s | div {r['divergences']:3d} | R-hat {r['max_rhat']:.3f} "
                f"({r['max_rhat_param']}) | {r['fixef_gap_se']:.2f} SE / {100 * r['sd_gap']:.0f} % | {mark}"
            )
            if column == "auto":
                lines.append(
                    f"  {'':<12} chose: {'; '.join(r['chosen'])}" + ("; SWITCHED" if r["switched"] else "")
                )
                for note in r["notes"]:
                    lines.append(f"  {'':<12}   {note}")
        auto = cells["auto"]
        fixed = [cells[c] for c in FIXED if cells[c] is not None and cells[c]["converged"]]
        if auto is not None:
            best = max((c["ess_per_s"] for c in fixed), default=None)
            ratio = auto["ess_per_s"] / best if best else None
            ok = auto["converged"] and auto["agrees"] and (ratio is None or ratio >= 0.8)
            lines.append(
                f"  check: {'PASS' if ok else 'FAIL'}"
                + (
                    f" (auto / best converged fixed ESS/s = {ratio:.2f})"
                    if ratio is not None
                    else " (no fixed choice converged)"
                )
            )
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", help="comma-separated data set names (default: all)")
    parser.add_argument("--columns", default=",".join(COLUMNS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", default=str(RESULTS / "real_data.json"))
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    entries = references()
    if args.list:
        for e in entries:
            print(f"{e['name']:<18} {e['family']:<26} {e['nobs']:>6} {e['formula']}")
        return
    chosen = args.rows.split(",") if args.rows else [e["name"] for e in entries]
    unknown = set(chosen) - {e["name"] for e in entries}
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}")
    path = Path(args.results)
    records = _load_results(path)
    for entry in entries:
        if entry["name"] not in chosen:
            continue
        for column in args.columns.split(","):
            started = time.perf_counter()
            record = measure(entry, column, args.seed)
            records[(entry["name"], column)] = record
            took = time.perf_counter() - started
            print(
                f"{entry['name']:<18} {column:<12} ESS {record['min_ess']:6.0f} "
                f"R-hat {record['max_rhat']:.3f} div {record['divergences']} "
                f"wall {record['wall_s']:.1f} s (all {took:.0f} s)"
                f"{' SWITCHED' if record['switched'] else ''}",
                flush=True,
            )
            meta = {
                "python": platform.python_version(),
                "lmmformula": lf.__version__,
                "machine": platform.machine(),
            }
            path.write_text(json.dumps({"meta": meta, "records": list(records.values())}, indent=1))
            path.with_suffix(".txt").write_text(table(records, entries))


if __name__ == "__main__":
    sys.exit(main())
