"""The coffee-roasting competition: from lme4's formula to a Stan program.

100 teams roast coffee; more beans (x) raise the cupping score (y) on average, but each
team has its own intercept and slope. This script reproduces the blog's starting point
(a plain regression that ignores the teams) and builds the mixed model
``y ~ x + (x | group)``: its design, its default priors and the Stan program.
"""

from __future__ import annotations

import numpy as np

import lmmformula as lf


def plain_regression(data) -> None:
    """lm(y ~ x): the fit that treats all 1000 rows as independent."""
    X = np.column_stack([np.ones(len(data)), data.x])
    coefficients, rss, *_ = np.linalg.lstsq(X, data.y, rcond=None)
    sigma2 = rss[0] / (len(data) - 2)
    se = np.sqrt(np.diag(sigma2 * np.linalg.inv(X.T @ X)))
    print("Plain regression, lm(y ~ x):")
    for name, estimate, error in zip(("(Intercept)", "x"), coefficients, se):
        print(f"  {name:<12} {estimate:8.4f}  (SE {error:.4f})")
    print(f"  residual SE {np.sqrt(sigma2):.3f}\n")


def main() -> None:
    coffee = lf.load_dataset("coffee")
    print(f"coffee: {len(coffee)} rows, {coffee.group.nunique()} groups\n")
    plain_regression(coffee)

    model = lf.Model("y ~ x + (x | group)", coffee)
    print(model, "\n")
    print("Population-level coefficients:", ", ".join(model.design.coefficient_names))
    for block, parameterization in zip(model.design.blocks, model.parameterizations):
        print(
            f"Group-level block by {block.factor.name!r}: {', '.join(block.columns)}; "
            f"{len(block.factor.levels)} levels; correlated={block.correlated}; {parameterization}"
        )
    print("\nDefault priors (brms's rules, scaled to the data):")
    for name, prior in model.priors.items():
        print(f"  {name:<10} {prior.prior}")
    print("\nThe Stan program:\n")
    print(model.stan_code)


if __name__ == "__main__":
    main()
