"""Simulation-based calibration (Talts et al. 2018) of every family in the registry.

For each family: draw every parameter of ``y ~ x + (1 | g)`` from its prior, simulate a data set
from them with the family's own numpy ``random``, fit it, and record the rank of each true value
among the posterior draws (thinned to 99 draws, so ranks run 0..99). If the program, the priors
and the sampler are right, every parameter's ranks are uniform. Reported per scalar parameter:
the chi-square test of uniformity over 10 bins and the smallest and largest bin. Results go to
``benchmarks/results/sbc.txt`` (table), ``sbc.json`` (every rank) and ``sbc.png`` (histograms).

    python benchmarks/sbc.py [--sims 100] [--families gaussian,poisson] [--seed 1]

Proper priors everywhere (SBC needs them; ``b`` has a normal prior here instead of brms's flat
one); the table PRIORS gives them by parameter class and family parameter, not by family.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

import lmmformula as lf
from lmmformula.families import FAMILIES, Family
from lmmformula.priors import parse_prior

HERE = Path(__file__).resolve().parent
ROWS, GROUPS, TRIALS = 60, 12, 10
KEEP = 99  # thinned posterior draws per simulation: ranks 0..99, ten bins of ten
CHAINS, WARMUP, SAMPLING = 1, 400, 990  # one chain thinned by 10: nearly independent draws
BINS = 10
#: Priors by parameter class and by family parameter name (the simulation draws from these too).
PRIORS = {
    "Intercept": "normal(0, 1)",
    "b": "normal(0, 0.5)",
    "sd": "normal(0, 0.5)",
    "sigma": "normal(0, 1)",
    "shape": "gamma(4, 1)",
    "nu": "gamma(2, 0.1)",
    "phi": "gamma(4, 0.4)",
    "zi": "beta(2, 5)",
    "hu": "beta(2, 5)",
}
#: Where the intercept prior sits on each link's scale, so that simulated means stay moderate.
INTERCEPT_CENTER = {"log": 1.0}


def priors_for(family: Family) -> dict[str, str]:
    intercept = PRIORS["Intercept"]
    center = INTERCEPT_CENTER.get(family.link) if not family.ordinal else None
    if center is not None:
        intercept = f"normal({center:g}, 0.5)"
    return {
        "Intercept": intercept,
        "b": PRIORS["b"],
        "sd": PRIORS["sd"],
        **{dpar.name: PRIORS[dpar.name] for dpar in family.dpars},
    }


def draw_prior(text: str, rng: np.random.Generator, lower: float | None = None, upper: float | None = None,
               size: int | None = None) -> np.ndarray | float:  # fmt: skip
    """A draw from a prior text such as 'normal(0, 1)', truncated to [lower, upper] as Stan's bounds do."""
    prior = parse_prior(text, "draw", ("real", "positive", "unit"))
    samplers = {
        "normal": lambda a: rng.normal(a[0], a[1], size),
        "student_t": lambda a: a[1] + a[2] * rng.standard_t(a[0], size),
        "gamma": lambda a: rng.gamma(a[0], 1 / a[1], size),
        "beta": lambda a: rng.beta(a[0], a[1], size),
        "exponential": lambda a: rng.exponential(1 / a[0], size),
    }
    for _ in range(10_000):  # rejection: the bounds cut the prior, as the constrained parameter does
        value = samplers[prior.distribution](prior.args)
        inside = (lower is None or np.all(value > lower)) and (upper is None or np.all(value < upper))
        if inside:
            return value
    raise RuntimeError(f"cannot draw from {text} within ({lower}, {upper})")


def simulate(family: Family, rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, float]]:
    """One data set and the true values of every scalar parameter, under Stan's names."""
    priors = priors_for(family)
    x = rng.normal(size=ROWS)
    g = np.concatenate([np.arange(GROUPS), rng.integers(0, GROUPS, ROWS - GROUPS)])
    b = float(draw_prior(priors["b"], rng))
    sd = float(draw_prior(priors["sd"], rng, lower=0))
    effects = rng.normal(0, sd, GROUPS)
    truth = {"b[1]": b, "sd_1[1]": sd}
    eta = (x - x.mean()) * b + effects[g]
    extras = dict(family.options)
    if family.ordinal:
        thresholds = np.sort(draw_prior(priors["Intercept"], rng, size=3))
        truth.update({f"Intercept[{k + 1}]": float(t) for k, t in enumerate(thresholds)})
        extras["thresholds"] = thresholds
    else:
        intercept = float(draw_prior(priors["Intercept"], rng))
        truth["Intercept"] = intercept
        eta = eta + intercept
    for dpar in family.dpars:
        value = float(draw_prior(priors[dpar.name], rng, lower=dpar.lower, upper=dpar.upper))
        truth[dpar.name] = value
        extras[dpar.name] = value
    trials = np.full(ROWS, TRIALS) if family.response == "binomial" else None
    mu = family.mu(eta)
    if family.response == "unit":
        mu = np.clip(mu, 1e-6, 1 - 1e-6)
    y = family.random(rng, mu, **extras, trials=trials)
    if family.response == "unit":
        y = np.clip(y, 1e-9, 1 - 1e-9)
    data = pd.DataFrame({"y": y, "x": x, "g": [f"g{v:02d}" for v in g]})
    if trials is not None:
        data["n"] = trials
    return data, truth


def usable(family: Family, data: pd.DataFrame) -> bool:
    """Data a model can be built from (a response that varies, a few non-zero counts, and for an
    ordinal family its top category, which sets the number of thresholds)."""
    y = data["y"].to_numpy()
    top = not family.ordinal or y.max() == 4
    counts = family.response != "count" or (y > 0).sum() >= 3
    return bool(np.ptp(y) > 0 and np.isfinite(y).all() and counts and top)


def ranks_of(fit, truth: dict[str, float]) -> dict[str, int]:
    flat = {}
    for name, values in fit.posterior.items():
        values = np.asarray(values)
        pooled = values.reshape(-1, *values.shape[2:])
        if pooled.ndim == 1:
            flat[name] = pooled
        else:
            for index in np.ndindex(pooled.shape[1:]):
                flat[f"{name}[{','.join(str(i + 1) for i in index)}]"] = pooled[(slice(None), *index)]
    out = {}
    for name, true in truth.items():
        draws = flat[name]
        thinned = draws[np.linspace(0, len(draws) - 1, KEEP).astype(int)]
        out[name] = int((thinned < true).sum())
    return out


def run_family(name: str, sims: int, seed: int) -> dict:
    family = lf.get_family(name)
    rng = np.random.default_rng(seed)
    response = "y | trials(n)" if family.response == "binomial" else "y"
    formula = f"{response} ~ x + (1 | g)"
    ranks: dict[str, list[int]] = {}
    divergent, skipped, started = 0, 0, time.perf_counter()
    done = 0
    while done < sims:
        data, truth = simulate(family, rng)
        if not usable(family, data):
            skipped += 1
            continue
        model = lf.Model(formula, data, family=family, priors=priors_for(family))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = model.fit(
                chains=CHAINS, iter_warmup=WARMUP, iter_sampling=SAMPLING, seed=seed + done, progress=False
            )
        divergent += int(np.asarray(fit.sampler["divergent__"]).sum() > 0)
        for parameter, rank in ranks_of(fit, truth).items():
            ranks.setdefault(parameter, []).append(rank)
        done += 1
    return {
        "family": name,
        "formula": formula,
        "sims": sims,
        "skipped_data_sets": skipped,
        "fits_with_divergences": divergent,
        "seconds": time.perf_counter() - started,
        "ranks": ranks,
    }


def uniformity(ranks: list[int]) -> tuple[float, int, int]:
    counts = np.bincount(np.asarray(ranks) * BINS // (KEEP + 1), minlength=BINS)
    return float(stats.chisquare(counts).pvalue), int(counts.min()), int(counts.max())


def render(records: list[dict], header: str) -> str:
    lines = [header, f"{'family':27s} {'parameter':14s} {'sims':>5s} {'p (chi2)':>9s} {'bins':>9s}  check"]
    tests = sum(len(r["ranks"]) for r in records)
    threshold = 0.01 / max(tests, 1)  # Bonferroni over every parameter of every family
    for record in records:
        for parameter, ranks in record["ranks"].items():
            p, low, high = uniformity(ranks)
            check = "ok" if p >= threshold else "FAIL"
            lines.append(
                f"{record['family']:27s} {parameter:14s} {len(ranks):5d} {p:9.3f} {low:4d}-{high:<4d}  "
                + check
            )
        lines.append(
            f"{'':27s} ({record['seconds']:.0f} s; {record['fits_with_divergences']} fits with divergences; "
            f"{record['skipped_data_sets']} simulated data sets unusable and redrawn)"
        )
    lines.append(
        f"# {tests} tests; 'FAIL' when p < 0.01 / {tests} (Bonferroni); expected bin count "
        f"{records[0]['sims'] / BINS:g} per bin"
        if records
        else "# nothing run"
    )
    return "\n".join(lines) + "\n"


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(r["family"], p, ranks) for r in records for p, ranks in r["ranks"].items()]
    columns = 6
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 1.7 * rows), squeeze=False)
    for axis, (family, parameter, ranks) in zip(axes.flat, panels):
        counts = np.bincount(np.asarray(ranks) * BINS // (KEEP + 1), minlength=BINS)
        axis.bar(np.arange(BINS), counts, width=1.0, color="0.6", edgecolor="white")
        expected = len(ranks) / BINS
        low, high = stats.binom.ppf([0.005, 0.995], len(ranks), 1 / BINS)
        axis.axhspan(low, high, color="tab:blue", alpha=0.15)
        axis.axhline(expected, color="tab:blue", lw=0.8)
        axis.set_title(f"{family}\n{parameter}", fontsize=7)
        axis.set_xticks([])
        axis.tick_params(labelsize=6)
    for axis in list(axes.flat)[len(panels) :]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=100)
    parser.add_argument("--families", help=f"comma-separated subset of: {','.join(FAMILIES)}")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "sbc.txt")
    args = parser.parse_args(argv)
    names = args.families.split(",") if args.families else list(FAMILIES)
    json_path = args.out.with_suffix(".json")
    records = json.loads(json_path.read_text()) if json_path.exists() else []
    for name in names:
        record = run_family(name, args.sims, args.seed)
        records = [r for r in records if r["family"] != name] + [record]
        records.sort(key=lambda r: list(FAMILIES).index(r["family"]))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(records))
        header = (
            f"# python benchmarks/sbc.py --sims {args.sims} --seed {args.seed}; {time.strftime('%Y-%m-%d')}; "
            f"y ~ x + (1 | g), {ROWS} rows, {GROUPS} groups; {CHAINS} chain x ({WARMUP} + {SAMPLING}), "
            f"{KEEP} thinned draws"
        )
        args.out.write_text(render(records, header))
        plot(records, args.out.with_suffix(".png"))
        print(f"{name}: done in {record['seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
