"""Simulated (and shipped real) data sets for mixed-model benchmarks.

Every simulation is a pure function of its seed and returns a :class:`Case`: a name, an
lme4-style formula, a family, the data (grouping columns as strings such as "s001") and
``truth``, the values the data were simulated from (population values, not the realized
sample ones). Keys of ``truth``, as lme4 prints the names:

- population-level coefficients: ``"(Intercept)"``, ``"x"``, ``"x1"``, ...
- group-level standard deviations: ``"sd(<factor>:<term>)"``, e.g. ``"sd(subject:(Intercept))"``,
  ``"sd(subject:x)"``; nested factors under lme4's name, e.g. ``"sd(class:school:(Intercept))"`` for
  ``(1 | school/class)`` (lmmformula calls that factor ``school:class``)
- group-level correlations: ``"cor(<factor>:<term1>,<term2>)"``, e.g. ``"cor(subject:(Intercept),x)"``
- the residual standard deviation (gaussian only): ``"sigma"``

:func:`real_cases` gives the shipped data sets with lme4's estimates (``tests/data/*.json``) as
``truth`` under the same keys. Run

    python benchmarks/simulations.py                                  # build each case's Model, print
    python benchmarks/simulations.py --write-csv crossed_bernoulli PATH  # one simulation as CSV
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import lmmformula as lf

LME4_REFERENCES = Path(__file__).resolve().parent.parent / "tests" / "data"


@dataclass(frozen=True, eq=False)
class Case:
    """One benchmark problem: fit ``formula`` with ``family`` to ``data``; ``truth`` as documented above."""

    name: str
    formula: str
    family: str
    data: pd.DataFrame
    truth: dict[str, float]


# ---------------------------------------------------------------------------- helpers


def labels(prefix: str, codes: np.ndarray, count: int) -> np.ndarray:
    """Zero-based level codes -> strings "<prefix>001", ... (zero-padded to the width of ``count``)."""
    width = len(str(count))
    return np.array([f"{prefix}{code + 1:0{width}d}" for code in codes])


def correlated_effects(
    rng: np.random.Generator, levels: int, sds: tuple[float, float], cor: float
) -> np.ndarray:
    """A (levels, 2) array of bivariate normal group effects with the given sds and correlation."""
    covariance = np.array(
        [[sds[0] ** 2, cor * sds[0] * sds[1]], [cor * sds[0] * sds[1], sds[1] ** 2]],
    )
    return rng.multivariate_normal(np.zeros(2), covariance, size=levels)


def covering_codes(rng: np.random.Generator, levels: int, rows: int) -> np.ndarray:
    """``rows`` random level codes in which every one of ``levels`` levels occurs at least once."""
    codes = np.concatenate([np.arange(levels), rng.integers(levels, size=rows - levels)])
    return rng.permutation(codes)


def inverse_logit(eta: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-eta))


# ---------------------------------------------------------------------------- simulations


def crossed_bernoulli(seed: int = 1) -> Case:
    """300 subjects x 24 items, each pair once (7,200 rows), 0/1 response, 5 predictors.

    x1 and x2 are subject-level (constant within a subject), x3, x4 and x5 vary by row; all
    standard normal. Intercept -0.5, subject intercept sd 1.0, item intercept sd 0.7.
    """
    rng = np.random.default_rng(seed)
    n_subjects, n_items = 300, 24
    subject = np.repeat(np.arange(n_subjects), n_items)
    item = np.tile(np.arange(n_items), n_subjects)
    rows = len(subject)
    x = np.column_stack(
        [
            rng.normal(size=n_subjects)[subject],
            rng.normal(size=n_subjects)[subject],
            rng.normal(size=rows),
            rng.normal(size=rows),
            rng.normal(size=rows),
        ]
    )
    beta = np.array([0.4, -0.3, 0.6, 0.2, -0.5])
    intercept, sd_subject, sd_item = -0.5, 1.0, 0.7
    eta = (
        intercept
        + x @ beta
        + rng.normal(0, sd_subject, n_subjects)[subject]
        + rng.normal(0, sd_item, n_items)[item]
    )
    data = pd.DataFrame({"y": rng.binomial(1, inverse_logit(eta))})
    for k in range(5):
        data[f"x{k + 1}"] = x[:, k]
    data["subject"] = labels("s", subject, n_subjects)
    data["item"] = labels("i", item, n_items)
    truth = {"(Intercept)": intercept, **{f"x{k + 1}": float(b) for k, b in enumerate(beta)}}
    truth |= {"sd(subject:(Intercept))": sd_subject, "sd(item:(Intercept))": sd_item}
    return Case(
        "crossed_bernoulli",
        "y ~ x1 + x2 + x3 + x4 + x5 + (1 | subject) + (1 | item)",
        "bernoulli",
        data,
        truth,
    )


def crossed_poisson(seed: int = 1) -> Case:
    """Counts on 400 rows, each a random pair of two crossed factors a (120 levels) and b (60 levels).

    Every level occurs at least once. Intercept 1.0, slope of x 0.3, sds 0.8 (a) and 0.5 (b).
    """
    rng = np.random.default_rng(seed)
    n_a, n_b, rows = 120, 60, 400
    a = covering_codes(rng, n_a, rows)
    b = covering_codes(rng, n_b, rows)
    x = rng.normal(size=rows)
    intercept, slope, sd_a, sd_b = 1.0, 0.3, 0.8, 0.5
    eta = intercept + slope * x + rng.normal(0, sd_a, n_a)[a] + rng.normal(0, sd_b, n_b)[b]
    data = pd.DataFrame(
        {"count": rng.poisson(np.exp(eta)), "x": x, "a": labels("a", a, n_a), "b": labels("b", b, n_b)}
    )
    truth = {"(Intercept)": intercept, "x": slope, "sd(a:(Intercept))": sd_a, "sd(b:(Intercept))": sd_b}
    return Case("crossed_poisson", "count ~ x + (1 | a) + (1 | b)", "poisson", data, truth)


def nested(seed: int = 1) -> Case:
    """Pupils in classes in schools: 30 schools x 5 classes x 12 pupils (1,800 rows), gaussian.

    Class labels ("c1" ... "c5") repeat across schools, so only the nesting ``school/class``
    tells the classes apart. Intercept 2.0, slope 0.5, school sd 1.0, class sd 0.5, noise 1.0.
    """
    rng = np.random.default_rng(seed)
    n_schools, n_classes, n_pupils = 30, 5, 12
    school = np.repeat(np.arange(n_schools), n_classes * n_pupils)
    class_in_school = np.tile(np.repeat(np.arange(n_classes), n_pupils), n_schools)
    class_code = school * n_classes + class_in_school
    rows = len(school)
    x = rng.normal(size=rows)
    intercept, slope, sd_school, sd_class, sigma = 2.0, 0.5, 1.0, 0.5, 1.0
    y = (
        intercept
        + slope * x
        + rng.normal(0, sd_school, n_schools)[school]
        + rng.normal(0, sd_class, n_schools * n_classes)[class_code]
        + rng.normal(0, sigma, rows)
    )
    data = pd.DataFrame(
        {
            "y": y,
            "x": x,
            "school": labels("s", school, n_schools),
            "class": [f"c{c + 1}" for c in class_in_school],
        }
    )
    truth = {
        "(Intercept)": intercept,
        "x": slope,
        "sd(school:(Intercept))": sd_school,
        "sd(class:school:(Intercept))": sd_class,
        "sigma": sigma,
    }
    return Case("nested", "y ~ x + (1 | school/class)", "gaussian", data, truth)


def crossed_slopes(seed: int = 1) -> Case:
    """Random intercepts and slopes on two crossed factors: 60 subjects x 20 items, each pair once.

    x varies by row. Intercept 1.0, slope 0.5; subject sds 1.0 and 0.5, item sds 0.6 and 0.3,
    both correlations 0.3; noise 1.0.
    """
    rng = np.random.default_rng(seed)
    n_subjects, n_items = 60, 20
    subject = np.repeat(np.arange(n_subjects), n_items)
    item = np.tile(np.arange(n_items), n_subjects)
    rows = len(subject)
    x = rng.normal(size=rows)
    intercept, slope, sigma, cor = 1.0, 0.5, 1.0, 0.3
    subject_sds, item_sds = (1.0, 0.5), (0.6, 0.3)
    u = correlated_effects(rng, n_subjects, subject_sds, cor)
    w = correlated_effects(rng, n_items, item_sds, cor)
    y = (
        intercept
        + u[subject, 0]
        + w[item, 0]
        + (slope + u[subject, 1] + w[item, 1]) * x
        + rng.normal(0, sigma, rows)
    )
    data = pd.DataFrame(
        {"y": y, "x": x, "subject": labels("s", subject, n_subjects), "item": labels("i", item, n_items)}
    )
    truth = {"(Intercept)": intercept, "x": slope}
    for factor, sds in (("subject", subject_sds), ("item", item_sds)):
        truth |= {
            f"sd({factor}:(Intercept))": sds[0],
            f"sd({factor}:x)": sds[1],
            f"cor({factor}:(Intercept),x)": cor,
        }
    truth["sigma"] = sigma
    return Case("crossed_slopes", "y ~ x + (x | subject) + (x | item)", "gaussian", data, truth)


def data_poor(seed: int = 1) -> Case:
    """300 groups of 2-3 rows with small group sds (0.3 and 0.2, uncorrelated), noise 1.

    Intercept 3.0, slope 0.5: the groups say little about their own coefficients, the case
    where the non-centered form should win.
    """
    rng = np.random.default_rng(seed)
    n_groups = 300
    g = np.repeat(np.arange(n_groups), rng.integers(2, 4, size=n_groups))
    rows = len(g)
    x = rng.normal(size=rows)
    intercept, slope, sds, sigma = 3.0, 0.5, (0.3, 0.2), 1.0
    u = correlated_effects(rng, n_groups, sds, 0.0)
    y = intercept + u[g, 0] + (slope + u[g, 1]) * x + rng.normal(0, sigma, rows)
    data = pd.DataFrame({"y": y, "x": x, "g": labels("g", g, n_groups)})
    truth = {
        "(Intercept)": intercept,
        "x": slope,
        "sd(g:(Intercept))": sds[0],
        "sd(g:x)": sds[1],
        "cor(g:(Intercept),x)": 0.0,
        "sigma": sigma,
    }
    return Case("data_poor", "y ~ x + (x | g)", "gaussian", data, truth)


SIMULATIONS: dict[str, Callable[[int], Case]] = {
    "crossed_bernoulli": crossed_bernoulli,
    "crossed_poisson": crossed_poisson,
    "nested": nested,
    "crossed_slopes": crossed_slopes,
    "data_poor": data_poor,
}


def simulated_cases(seed: int = 1) -> list[Case]:
    """Every simulation above, in a fixed order, from one seed."""
    return [simulate(seed) for simulate in SIMULATIONS.values()]


# ---------------------------------------------------------------------------- real data

# name -> (data set, formula, family); truth from tests/data/<name>.json when it exists.
REAL = {
    "coffee": ("coffee", "y ~ x + (x | group)", "gaussian"),
    "sleepstudy": ("sleepstudy", "Reaction ~ Days + (Days | Subject)", "gaussian"),
    "Orthodont": ("Orthodont", "distance ~ age + Sex + (age | Subject)", "gaussian"),
    "cbpp": ("cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial"),
    "InstEval": ("InstEval", "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)", "gaussian"),
}


def lme4_truth(reference: dict) -> dict[str, float]:
    """lme4's estimates from one tests/data JSON file, under the ``truth`` keys documented above."""
    truth = {name: float(value) for name, value in reference["fixef"].items()}
    for factor, parts in reference["varcorr"].items():
        truth |= {f"sd({factor}:{term})": float(sd) for term, sd in parts["sd"].items()}
        for pair, value in (parts.get("cor") or {}).items():
            first, second = pair.split("__")
            truth[f"cor({factor}:{first},{second})"] = float(value)
    if reference.get("residual_sd") is not None:
        truth["sigma"] = float(reference["residual_sd"])
    return truth


def real_case(name: str, references: Path = LME4_REFERENCES) -> Case:
    """A shipped data set as a Case; truth = lme4's estimates, or {} without a reference file."""
    dataset, formula, family = REAL[name]
    path = references / f"{name}.json"
    truth = lme4_truth(json.loads(path.read_text())) if path.is_file() else {}
    return Case(name, formula, family, lf.load_dataset(dataset), truth)


def real_cases(references: Path = LME4_REFERENCES) -> list[Case]:
    """coffee, sleepstudy, Orthodont, cbpp and InstEval, in that order."""
    return [real_case(name, references) for name in REAL]


def all_case_names() -> list[str]:
    """Real cases first, then the simulations."""
    return [*REAL, *SIMULATIONS]


def get_case(name: str, seed: int = 1) -> Case:
    """One case by name: a real data set or a simulation (from ``seed``)."""
    if name in REAL:
        return real_case(name)
    if name in SIMULATIONS:
        return SIMULATIONS[name](seed)
    raise ValueError(f"no case {name!r}; choose from {', '.join(all_case_names())}")


# ---------------------------------------------------------------------------- command line


def describe(case: Case) -> str:
    """Build the case's Model (no compiling) and describe data, formula and parameterizations."""
    model = lf.Model(case.formula, case.data, family=case.family)
    blocks = ", ".join(
        f"{block.factor.name} ({len(block.factor.levels)} levels): {choice}"
        for block, choice in zip(model.design.blocks, model.parameterizations)
    )
    truth = ", ".join(f"{key}={value:.3g}" for key, value in case.truth.items()) or "none"
    return (
        f"{case.name}: {case.formula!r} ({case.family}), {model.nobs} rows\n"
        f"  parameterizations: {tuple(str(p) for p in model.parameterizations)}\n"
        f"  blocks: {blocks}\n"
        f"  truth: {truth}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--write-csv",
        nargs=2,
        metavar=("CASE", "PATH"),
        help="write one case's data to PATH as CSV and stop",
    )
    args = parser.parse_args()
    if args.write_csv:
        name, path = args.write_csv
        case = get_case(name, args.seed)
        case.data.to_csv(path, index=False)
        print(f"wrote {case.name} ({len(case.data)} rows, {case.formula!r}) to {path}")
        return
    for case in [*real_cases(), *simulated_cases(args.seed)]:
        print(describe(case))


if __name__ == "__main__":
    main()
