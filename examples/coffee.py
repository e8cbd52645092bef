"""The coffee-roasting competition, from the blog post that started lmmformula.

100 teams roast coffee; more beans (x) raise the cupping score (y) on average, but each
team has its own intercept and slope (simulated: group sds 10 and 1, noise sd 1, with
the true team effects in columns b0_ran and b1_ran). We fit the plain regression the
blog starts from, then the mixed model y ~ x + (x | group), and check it against the
truth. Writes a figure of the team estimates against the truth.

    python examples/coffee.py [--figure coffee_estimates.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write the figure to a file; no screen needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import lmmformula as lf  # noqa: E402

FIGURE = Path(__file__).with_name("coffee_estimates.png")


def section(title: str) -> None:
    print(f"\n{'=' * 8} {title} {'=' * (70 - len(title))}")


def plain_regression(data) -> None:
    """lm(y ~ x): all 1000 rows treated as independent."""
    X = np.column_stack([np.ones(len(data)), data.x])
    coefficients, rss, *_ = np.linalg.lstsq(X, data.y, rcond=None)
    sigma2 = rss[0] / (len(data) - 2)
    se = np.sqrt(np.diag(sigma2 * np.linalg.inv(X.T @ X)))
    for name, estimate, error in zip(("(Intercept)", "x"), coefficients, se):
        print(f"  {name:<12} {estimate:8.4f}  (SE {error:.4f})")
    print(f"  residual SE {np.sqrt(sigma2):.3f}: the teams' differences end up in the noise")


def main() -> None:
    parser = argparse.ArgumentParser(description="The coffee-roasting mixed model.")
    parser.add_argument(
        "--figure", type=Path, default=FIGURE, help=f"where to write the figure ({FIGURE.name})"
    )
    args = parser.parse_args()
    coffee = lf.load_dataset("coffee")
    print(f"coffee: {len(coffee)} rows, {coffee.group.nunique()} teams")

    section("Plain regression, lm(y ~ x)")
    plain_regression(coffee)

    section("Mixed model, y ~ x + (x | group)")
    model = lf.Model("y ~ x + (x | group)", coffee)
    print(model)
    fit = model.fit(seed=1)
    print(fit.summary())

    section("fixef")
    print(fit.fixef().round(3))

    section("ranef, first ten teams")
    ranef = fit.ranef()["group"]
    print(ranef.loc[[str(g) for g in range(1, 11)]].round(3))

    section("coef for team 1 = fixef + ranef")
    fixef = fit.fixef()["Estimate"]
    coef = fit.coef()["group"].loc["1"]
    print("fixef        ", fixef.round(4).to_dict())
    print("ranef        ", ranef.loc["1"].round(4).to_dict())
    print("coef         ", coef.round(4).to_dict())
    draws = fit.draws()
    by_draw = draws["b_x"] + draws["r_group[1,x]"]
    print(
        "coef == fixef + ranef:",
        bool(np.allclose(coef, fixef + ranef.loc["1"], atol=1e-12)),
        "(posterior means);",
        bool(np.isclose(by_draw.mean(), coef["x"], atol=1e-12)),
        "(slope, draw by draw)",
    )

    section("Group-level sds against the simulation's truth")
    varcorr = fit.varcorr()
    for term, truth in (("Intercept", 10.0), ("x", 1.0)):
        row = varcorr.loc[("group", f"sd({term})")]
        inside = row["Q2.5"] <= truth <= row["Q97.5"]
        print(
            f"  sd({term}): {row['Estimate']:.3f} [{row['Q2.5']:.3f}, {row['Q97.5']:.3f}], "
            f"simulated {truth:g} ({'inside' if inside else 'outside'} the 95% interval)"
        )

    section("Team effects against the truth")
    ranef_long = fit.ranef(summary=True)["group"]
    truth = coffee.groupby("group")[["b0_ran", "b1_ran"]].first()
    table = truth.join(ranef.rename(columns={"Intercept": "est_b0", "x": "est_b1"}))
    table["b0_diff"] = table.est_b0 - table.b0_ran
    table["b1_diff"] = table.est_b1 - table.b1_ran
    print(table.loc[[str(g) for g in range(1, 11)]].round(3))
    offset = truth.b0_ran.mean()
    print(
        f"  The simulated team intercepts b0_ran average {offset:+.2f}, not 0, while the model's team\n"
        f"  effects average 0 (the population intercept takes the mean), so every b0_diff is about "
        f"{-offset:+.2f}.\n  Below, the RMSE compares deviations from each column's own mean."
    )
    for truth_column, estimate_column in (("b0_ran", "est_b0"), ("b1_ran", "est_b1")):
        error = table[estimate_column] - table[truth_column]
        error = error - error.mean()
        correlation = np.corrcoef(table[truth_column], table[estimate_column])[0, 1]
        print(f"  {truth_column}: correlation {correlation:.3f}, RMSE {np.sqrt((error**2).mean()):.3f}")

    figure, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for axis, term, truth_column in zip(axes, ("Intercept", "x"), ("b0_ran", "b1_ran")):
        rows = ranef_long.xs(term, level="term").loc[truth.index]
        axis.errorbar(
            truth[truth_column],
            rows["Estimate"],
            yerr=[rows["Estimate"] - rows["Q2.5"], rows["Q97.5"] - rows["Estimate"]],
            fmt="o",
            markersize=3,
            alpha=0.7,
        )
        low, high = truth[truth_column].min(), truth[truth_column].max()
        axis.plot([low, high], [low, high], color="black", linewidth=1, label="estimate = truth")
        axis.set_xlabel(f"simulated {truth_column}")
        axis.set_ylabel(f"posterior ranef ({term}), 95% interval")
        axis.set_title(f"Team {'intercepts' if term == 'Intercept' else 'slopes'}")
        axis.legend(loc="upper left")
    figure.suptitle("y ~ x + (x | group): estimated team effects against the simulation")
    figure.tight_layout()
    figure.savefig(args.figure, dpi=110)
    print(f"\nwrote {args.figure}")

    section("After the fit")
    print("fitted values for team 1 at x = 0 and x = 1 (its coef intercept, and intercept + slope):")
    print(fit.fitted(pd.DataFrame({"x": [0.0, 1.0], "group": ["1", "1"]})).round(2).to_string())
    r2 = fit.bayes_R2().loc["R2", "Estimate"]
    print(f"\nPSIS-LOO: elpd_loo {fit.loo().elpd:.1f}; Bayesian R2 {r2:.3f}")
    check = fit.pp_check("dens_overlay", seed=1)
    check_path = args.figure.with_name(args.figure.stem + "_pp_check.png")
    check.savefig(check_path, dpi=110)
    print(f"wrote {check_path} (posterior predictive check: y against 10 replicated data sets)")


if __name__ == "__main__":
    main()
