"""parameterization="auto": centered for data-rich groups, non-centered for data-poor ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lmmformula as lf
from lmmformula.parameterization import information_ratios


def _simulate(groups: int, rows: tuple[int, int], sd_intercept: float, sd_slope: float, seed: int):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(rows[0], rows[1] + 1, size=groups)
    g = np.repeat(np.arange(groups), sizes)
    x = rng.normal(size=len(g))
    u0 = rng.normal(0, sd_intercept, groups)
    u1 = rng.normal(0, sd_slope, groups)
    y = 3 + u0[g] + (0.5 + u1[g]) * x + rng.normal(size=len(g))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g]})


def test_auto_centers_data_rich_coffee(coffee):
    assert lf.Model("y ~ x + (x | group)", coffee).parameterizations == ("centered",)


def test_auto_does_not_center_data_poor_groups():
    poor = _simulate(groups=300, rows=(2, 3), sd_intercept=0.3, sd_slope=0.2, seed=1)
    assert lf.Model("y ~ x + (x | g)", poor).parameterizations == ("noncentered",)


def test_auto_decides_per_block():
    rich = _simulate(groups=30, rows=(20, 20), sd_intercept=5.0, sd_slope=0.0, seed=2)
    rng = np.random.default_rng(3)
    rich["h"] = [f"h{i}" for i in rng.integers(0, 200, size=len(rich))]  # ~3 rows each, no effect
    model = lf.Model("y ~ x + (1 | g) + (1 | h)", rich)
    assert model.parameterizations == ("centered", "noncentered")


def test_information_ratio_matches_the_simulation():
    """Intercept-only, gaussian, balanced: ratio ~ n * sd^2 / sigma^2."""
    data = _simulate(groups=400, rows=(10, 10), sd_intercept=1.0, sd_slope=0.0, seed=4)
    J = data.g.str[1:].astype(int).to_numpy() + 1
    X = np.column_stack([np.ones(len(data)), data.x])
    residuals = data.y.to_numpy() - X @ np.linalg.lstsq(X, data.y.to_numpy(), rcond=None)[0]
    ones = np.ones((len(data), 1))
    ratio = information_ratios(ones, J, np.ones(len(data)), residuals, True, cautious=False)
    assert ratio[0] == pytest.approx(10.0, rel=0.2)
    cautious = information_ratios(ones, J, np.ones(len(data)), residuals, True)
    assert cautious[0] < ratio[0]


def test_few_groups_lean_non_centered(sleepstudy):
    """18 subjects: the point estimates say data-rich, the lower bound does not."""
    assert lf.Model("Reaction ~ Days + (Days | Subject)", sleepstudy).parameterizations == ("noncentered",)


def test_explicit_choice_applies_to_every_block(toy):
    model = lf.Model("y ~ x + (x | g) + (1 | a)", toy, parameterization="centered")
    assert model.parameterizations == ("centered", "centered")
    assert model.stan_code.count("center_") > 0 and "z_1" not in model.stan_code
