"""Nested grouping factors: detection from the data, hierarchical centering along the nesting (the
parameterization and its Stan data), and the program's density, which must not change with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmmformula as lf
from lmmformula import names
from lmmformula.engines import embedded
from lmmformula.nesting import nested_in, parent_levels
from lmmformula.stanc import check_program

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def pastes() -> pd.DataFrame:
    """lme4's Pastes: 10 batches x 3 casks x 2 samples (benchmarks/data/make_real_data.R)."""
    return pd.read_csv(DATA / "pastes.csv", dtype={"batch": str, "cask": str})


def _two_level(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    school = np.repeat(np.arange(12), 40)
    klass = np.repeat(np.arange(48), 10)  # 4 classes of 10 pupils per school
    x = rng.normal(size=len(school))
    w = rng.normal(size=12)[school]  # a school-level predictor
    y = 1 + 0.5 * x + 0.3 * w + rng.normal(0, 1.5, 12)[school] + rng.normal(0, 1.0, 48)[klass]
    y = y + rng.normal(size=len(school))
    return pd.DataFrame(
        {"y": y, "x": x, "w": w, "school": [f"s{i}" for i in school], "klass": [f"k{i}" for i in klass]}
    )


def test_nesting_is_read_from_the_data_whatever_the_formula_says(pastes):
    nested = lf.Model("strength ~ 1 + (1 | batch/cask)", pastes)
    assert [b.factor.name for b in nested.design.blocks] == ["batch", "batch:cask"]
    assert nested_in(nested.data_design) == (None, 0)
    # the same hierarchy written as two terms, in the other order: casks labelled uniquely
    pastes = pastes.assign(sample=pastes.batch + pastes.cask)
    spelled = lf.Model("strength ~ 1 + (1 | sample) + (1 | batch)", pastes)
    assert nested_in(spelled.data_design) == (1, None)
    np.testing.assert_array_equal(
        parent_levels(spelled.data_design, 0, 1), np.repeat(np.arange(1, 11), 3)
    )  # each sample's batch, in level order


def test_crossed_factors_are_not_nested(toy):
    model = lf.Model("y ~ x + (1 | g) + (1 | a)", toy)
    assert nested_in(model.data_design) == (None, None)


def test_a_centered_nested_block_varies_around_its_parent_level(pastes):
    """Pastes: the batches say little (non-centered), the casks much (centered on the intercept); the
    casks then also vary around their batch's effect, and the switch and the casks' batches are data."""
    model = lf.Model("strength ~ 1 + (1 | batch/cask)", pastes)
    batch, cask = model.parameterizations
    assert not batch.centered and not batch.swept
    assert cask == lf.BlockParameterization(True, ("Intercept",), parent="batch")
    data = model.stan_data
    assert data[names.block(2).parent_switch] == 1.0
    np.testing.assert_array_equal(data[names.block(2).parent_level], np.repeat(np.arange(1, 11), 3))
    assert "r_2[:, 1] -= H_2 * r_1[P_2, 1];" in model.stan_code
    # a non-centered cask block switches it off: the same program
    noncentered = lf.Model("strength ~ 1 + (1 | batch/cask)", pastes, parameterization="noncentered")
    assert noncentered.stan_data[names.block(2).parent_switch] == 0.0
    assert noncentered.stan_code.split("data {")[1] == model.stan_code.split("data {")[1]
    check_program(model.stan_code)


def test_a_chain_of_centered_blocks_shares_the_intercept_and_the_parents_predictors():
    """Both levels centered: the schools on the intercept and their predictor w, the classes on their
    school's coefficient, which carries both (so they are the classes' centers too)."""
    data = _two_level()
    model = lf.Model("y ~ x + w + (1 | school) + (1 | klass)", data, parameterization="centered")
    school, klass = model.parameterizations
    assert school.centers == ("Intercept",) and school.level_centers == ("w",) and school.parent is None
    assert klass.centers == ("Intercept",) and klass.level_centers == ("w",) and klass.parent == "school"
    assert not school.swept
    check_program(model.stan_code)


def test_explicit_parent_is_checked(pastes):
    good = lf.BlockParameterization(True, ("Intercept",), parent="batch")
    model = lf.Model("strength ~ 1 + (1 | batch/cask)", pastes, parameterization=["noncentered", good])
    assert model.parameterizations[1] == good
    with pytest.raises(lf.ArgumentError, match="not a factor its levels are nested in; that is 'batch'"):
        lf.Model(
            "strength ~ 1 + (1 | batch/cask)",
            pastes,
            parameterization=["noncentered", lf.BlockParameterization(True, ("Intercept",), parent="cask")],
        )
    with pytest.raises(lf.ArgumentError, match="not a factor its levels are nested in"):
        lf.Model(
            "strength ~ 1 + (1 | batch/cask)",
            pastes,
            parameterization=[
                lf.BlockParameterization(True, ("Intercept",), parent="batch:cask"),
                "noncentered",
            ],
        )


@pytest.mark.slow
def test_centering_on_the_parent_leaves_the_density_unchanged(pastes):
    """The program's own log density at the same effects with the switch on and off: the casks' sampled
    coefficients differ by their batch's effect (a shear of Jacobian one), the density must not."""
    model = lf.Model("strength ~ 1 + (1 | batch/cask)", pastes)
    data = dict(model.stan_data)
    rng = np.random.default_rng(4)
    r_batch, r_cask = rng.normal(0, 1.3, 10), rng.normal(0, 2.9, 30)
    point = {"Intercept": 60.0, "sigma": 0.8, "sd_1": [1.3], "sd_2": [2.9], "z_1": (r_batch / 1.3)[:, None]}
    parent = data[names.block(2).parent_level] - 1
    program = embedded.compile_program(model.stan_code)
    density = {
        switch: embedded.log_density(
            program,
            data | {"H_2": switch},
            point | {"z_2": (r_cask + 60.0 + switch * r_batch[parent])[:, None]},
        )
        for switch in (0.0, 1.0)
    }
    assert density[1.0] == pytest.approx(density[0.0], rel=1e-12, abs=1e-9)
    # and it moves with sigma as the model's normal likelihood and sigma's student_t prior do
    from scipy import stats

    mu = 60.0 + r_batch[data["J_1"] - 1] + r_cask[data["J_2"] - 1]
    moved = embedded.log_density(
        program,
        data | {"H_2": 1.0},
        point | {"z_2": (r_cask + 60.0 + r_batch[parent])[:, None], "sigma": 0.9},
    )
    mu_parts = stats.norm.logpdf(data["Y"], mu, 0.9).sum() - stats.norm.logpdf(data["Y"], mu, 0.8).sum()
    sigma_prior = stats.t.logpdf(
        0.9, data["prior_sigma_df"], data["prior_sigma_location"], data["prior_sigma_scale"]
    )
    sigma_prior -= stats.t.logpdf(
        0.8, data["prior_sigma_df"], data["prior_sigma_location"], data["prior_sigma_scale"]
    )
    assert moved - density[1.0] == pytest.approx(mu_parts + sigma_prior, rel=1e-9)
