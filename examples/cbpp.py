"""After the fit, for counts: contagious bovine pleuropneumonia (lme4's cbpp).

15 herds were checked four times (periods 1-4); each row counts the cattle with new serological cases
(incidence) out of those in the herd (size). A binomial GLMM with herd intercepts, as lme4's example:

    incidence | trials(size) ~ period + (1 | herd)

The script fits it and a model without period, then does what a brms user does next: predictions for a
herd not in the data, leave-one-out cross-validation and the comparison of the two models, the Bayesian
R2, posterior predictive checks for counts (bars, rootogram, LOO-PIT) and the effect of period. Writes its
figures next to --figures (default: docs/figures/cbpp_*.png).

    python examples/cbpp.py [--figures docs/figures]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write the figures to files; no screen needed
import pandas as pd  # noqa: E402

import lmmformula as lf  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "figures"


def section(title: str) -> None:
    print(f"\n{'=' * 8} {title} {'=' * (70 - len(title))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figures", type=Path, default=FIGURES, help="folder of the figures")
    args = parser.parse_args()
    args.figures.mkdir(parents=True, exist_ok=True)
    pd.set_option("display.width", 110)

    cbpp = lf.load_dataset("cbpp")
    print(f"cbpp: {len(cbpp)} rows, {cbpp.herd.nunique()} herds, {cbpp['size'].sum()} cattle-periods")
    fit = lf.Model("incidence | trials(size) ~ period + (1 | herd)", cbpp, family="binomial").fit(seed=1)
    section("the fit")
    print(fit.summary())

    section("a new herd of 20 cattle, each period")
    new = pd.DataFrame({"period": ["1", "2", "3", "4"], "size": 20, "herd": "new herd"})
    print("expected cases, the herd's own intercept drawn as brms's sample_new_levels='uncertainty':")
    print(fit.fitted(new, allow_new_levels=True, seed=1).round(2))
    print("expected cases for the average herd (re_formula='~ 0'):")
    print(fit.fitted(new, re_formula="~ 0").round(2))
    print("new counts (posterior_predict), the herd's intercept drawn too:")
    print(fit.predict(new, allow_new_levels=True, seed=1).round(2))

    section("leave-one-out cross-validation")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", lf.ComparisonWarning)
        print(fit.loo())
        without = lf.Model("incidence | trials(size) ~ 1 + (1 | herd)", cbpp, family="binomial").fit(seed=1)
        table = lf.loo_compare(period=fit, no_period=without)
    for warning in caught:
        print(f"warning: {warning.message}")
    print(table.round(2))
    section("Bayesian R2")
    print(fit.bayes_R2().round(3))

    section("figures")
    for name, figure in (
        ("bars", fit.pp_check("bars", seed=1)),
        ("rootogram", fit.pp_check("rootogram", seed=1)),
        ("loo_pit", fit.pp_check("loo_pit", seed=1)),
        ("period", fit.conditional_effects("period").figure),
    ):
        path = args.figures / f"cbpp_{name}.png"
        figure.savefig(path, dpi=90)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
