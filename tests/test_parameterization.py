"""parameterization="auto": centered for data-rich groups, non-centered for data-poor ones, blocks judged
together so that a population-level coefficient is the center of at most one block."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

import lmmformula as lf
from lmmformula import names
from lmmformula.cache import strip_comments
from lmmformula.codegen import build_data, render_code
from lmmformula.engines import embedded
from lmmformula.information import block_information, information_ratios
from lmmformula.parameterization import (
    BlockParameterization,
    assign_centers,
    center_threshold,
    default_adapt_delta,
)

CENTERED_ON_INTERCEPT = BlockParameterization(True, ("Intercept",))
AT_ZERO = BlockParameterization(True, ())
NONCENTERED = BlockParameterization(False)
# what the words give a block with an intercept that varies around zero: its intercepts swept
SWEPT_AT_ZERO = BlockParameterization(True, (), swept=True)
SWEPT_NONCENTERED = BlockParameterization(False, swept=True)


def _simulate(groups: int, rows: tuple[int, int], sd_intercept: float, sd_slope: float, seed: int):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(rows[0], rows[1] + 1, size=groups)
    g = np.repeat(np.arange(groups), sizes)
    x = rng.normal(size=len(g))
    u0 = rng.normal(0, sd_intercept, groups)
    u1 = rng.normal(0, sd_slope, groups)
    y = 3 + u0[g] + (0.5 + u1[g]) * x + rng.normal(size=len(g))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g]})


def _crossed(n_a: int, n_b: int, sd_a: float, sd_b: float, seed: int, family: str = "gaussian"):
    """Every level of a meets every level of b once; intercepts only."""
    rng = np.random.default_rng(seed)
    a, b = (v.ravel() for v in np.meshgrid(np.arange(n_a), np.arange(n_b), indexing="ij"))
    x = rng.normal(size=len(a))
    eta = 0.2 + 0.5 * x + rng.normal(0, sd_a, n_a)[a] + rng.normal(0, sd_b, n_b)[b]
    if family == "bernoulli":
        y = (rng.uniform(size=len(a)) < 1 / (1 + np.exp(-eta))).astype(int)
    else:
        y = eta + rng.normal(size=len(a))
    return pd.DataFrame({"y": y, "x": x, "a": [f"a{i}" for i in a], "b": [f"b{i}" for i in b]})


def test_auto_centers_data_rich_coffee(coffee):
    model = lf.Model("y ~ x + (x | group)", coffee)
    assert model.parameterizations == (BlockParameterization(True, ("Intercept", "x")),)
    # the intercept's row: at x = 0, Intercept (at the mean of x) - mean(x) * b_x
    np.testing.assert_allclose(
        model.stan_data[names.block(1).center_map], [[1.0, -coffee.x.mean()], [0.0, 1.0]]
    )
    assert model.stan_data[names.block(1).centered] == 2  # both columns


def test_auto_does_not_center_data_poor_groups():
    poor = _simulate(groups=300, rows=(2, 3), sd_intercept=0.3, sd_slope=0.2, seed=1)
    model = lf.Model("y ~ x + (x | g)", poor)
    assert model.parameterizations == (NONCENTERED,)  # and not swept: the groups say little about intercepts
    assert model.stan_data[names.block(1).centered] == 0
    np.testing.assert_array_equal(model.stan_data[names.block(1).center_map], 0.0)


def test_auto_decides_per_block():
    rich = _simulate(groups=30, rows=(20, 20), sd_intercept=5.0, sd_slope=0.0, seed=2)
    rng = np.random.default_rng(3)
    rich["h"] = [f"h{i}" for i in rng.integers(0, 200, size=len(rich))]  # ~3 rows each, no effect
    model = lf.Model("y ~ x + (1 | g) + (1 | h)", rich)
    assert model.parameterizations == (CENTERED_ON_INTERCEPT, NONCENTERED)


@pytest.mark.parametrize("family", ["gaussian", "bernoulli"])
def test_crossed_data_rich_factors_share_no_center(family):
    """Two crossed factors both data-rich: only the one whose levels have the most rows (here b: 120 rows
    per level against a's 30) is centered on the intercept; a is centered at zero."""
    data = _crossed(n_a=120, n_b=30, sd_a=1.5, sd_b=1.5, seed=5, family=family)
    model = lf.Model("y ~ x + (1 | a) + (1 | b)", data, family=family)
    assert model.parameterizations == (SWEPT_AT_ZERO, CENTERED_ON_INTERCEPT)
    np.testing.assert_array_equal(model.stan_data[names.block(1).center_map], [[0.0, 0.0]])
    np.testing.assert_array_equal(model.stan_data[names.block(2).center_map], [[1.0, 0.0]])
    # the order of the terms does not matter
    swapped = lf.Model("y ~ x + (1 | b) + (1 | a)", data, family=family)
    assert swapped.parameterizations == (CENTERED_ON_INTERCEPT, SWEPT_AT_ZERO)


def test_crossed_with_a_data_poor_factor():
    """A data-rich factor keeps the intercept; one with small sd and few rows per level is non-centered."""
    data = _crossed(n_a=300, n_b=8, sd_a=0.05, sd_b=1.0, seed=6)
    model = lf.Model("y ~ x + (1 | a) + (1 | b)", data)
    assert model.parameterizations == (NONCENTERED, CENTERED_ON_INTERCEPT)


def test_nested_factors_center_the_outer_one():
    rng = np.random.default_rng(7)
    school = np.repeat(np.arange(20), 60)
    klass = np.repeat(np.arange(20 * 5), 12)  # 5 classes of 12 pupils per school
    y = 2 + rng.normal(0, 2.0, 20)[school] + rng.normal(0, 1.0, 100)[klass] + rng.normal(size=1200)
    data = pd.DataFrame({"y": y, "school": [f"s{i}" for i in school], "klass": [f"c{i % 5}" for i in klass]})
    model = lf.Model("y ~ 1 + (1 | school/klass)", data)
    assert [b.factor.name for b in model.design.blocks] == ["school", "school:klass"]
    # both informed: the schools on the intercept, the classes on their school's coefficient (a chain:
    # lmmformula.nesting), so neither is swept
    assert model.parameterizations == (
        CENTERED_ON_INTERCEPT,
        BlockParameterization(True, ("Intercept",), parent="school"),
    )


def test_slopes_on_two_crossed_factors_each_coefficient_has_one_center():
    """Intercept and slope may go to different blocks: each to the block best informed about it."""
    rng = np.random.default_rng(8)
    a, b = (v.ravel() for v in np.meshgrid(np.arange(40), np.arange(40), indexing="ij"))
    x = rng.normal(size=len(a))
    # a: large intercept sd, tiny slope sd; b: tiny intercept sd, large slope sd
    u_a = rng.normal(0, [3.0, 0.4], (40, 2))
    u_b = rng.normal(0, [0.4, 3.0], (40, 2))
    y = 1 + u_a[a, 0] + u_b[b, 0] + (0.5 + u_a[a, 1] + u_b[b, 1]) * x + rng.normal(size=len(a))
    data = pd.DataFrame({"y": y, "x": x, "a": [f"a{i}" for i in a], "b": [f"b{i}" for i in b]})
    model = lf.Model("y ~ x + (x | a) + (x | b)", data, parameterization="centered")
    assert model.parameterizations == (
        BlockParameterization(True, ("Intercept",)),
        BlockParameterization(True, ("x",)),
    )
    np.testing.assert_array_equal(model.stan_data[names.block(1).center_map], [[1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(
        model.stan_data[names.block(2).center_map], [[0.0, -data.x.mean()], [0.0, 1.0]]
    )


def test_assign_centers_on_hand_made_ratios():
    columns = [("Intercept", "x"), ("Intercept",), ("Intercept", "z")]
    ratios = [np.array([5.0, 2.0]), np.array([9.0]), np.array([7.0, 3.0])]
    names = ("Intercept", "x", "z")
    everything = [True, True, True]
    assert assign_centers(columns, ratios, everything, names) == [["x"], ["Intercept"], ["z"]]
    # a non-centered block is never a center; the next best centered block takes the coefficient
    assert assign_centers(columns, ratios, [True, False, True], names) == [["x"], [], ["Intercept", "z"]]
    # a column with no population-level coefficient ('z' here) varies around zero
    assert assign_centers(columns, ratios, everything, names[:2]) == [["x"], ["Intercept"], []]
    # ties go to the first block
    tie = [np.array([4.0, 1.0]), np.array([4.0])]
    assert assign_centers(columns[:2], tie, [True, True], ("Intercept",)) == [["Intercept"], []]


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
    """18 subjects: at the lower bound the slopes are not informed enough (point ratio 4.1, bound 1.8
    against a threshold of 2.9), the intercepts at the mean day are (10.5): partially centered."""
    model = lf.Model("Reaction ~ Days + (Days | Subject)", sleepstudy)
    ratios = block_information(model._design)[0]
    assert ratios[1] < center_threshold(18) < ratios[0]
    assert model.parameterizations == (
        BlockParameterization(True, ("Intercept", "Days"), noncentered=("Days",)),
    )
    point = information_ratios(
        model._design.Z[0],
        model._design.J[0],
        np.ones(180),
        (sleepstudy.Reaction - sleepstudy.Reaction.mean()).to_numpy(),
        True,
        False,
    )
    assert point[1] > center_threshold(18) > ratios[1]


def test_explicit_choice_applies_to_every_block(toy):
    model = lf.Model("y ~ x + (x | g) + (1 | a)", toy, parameterization="centered")
    assert [p.centered for p in model.parameterizations] == [True, True]
    # the intercept is the center of one block only
    assert sum("Intercept" in p.centers for p in model.parameterizations) == 1
    noncentered = lf.Model("y ~ x + (x | g) + (1 | a)", toy, parameterization="noncentered")
    assert noncentered.parameterizations == (NONCENTERED, NONCENTERED)  # toy's groups have no effects


@pytest.mark.parametrize("bad", ["Centered", "none", 1, None])
def test_bad_parameterization_names_the_argument(toy, bad):
    with pytest.raises(lf.DataError, match="parameterization="):
        lf.Model("y ~ x + (1 | g)", toy, parameterization=bad)


def test_every_combination_of_decisions_gives_one_program(toy, stanc):
    """The decisions travel in the data: every combination renders the same program, which passes stanc,
    with data that say what was decided."""
    model = lf.Model("y ~ x + (x | g) + (1 | a) + (0 + z | b)", toy)
    design = model._design  # noqa: SLF001 - the codegen stage is what is under test
    partial = BlockParameterization(True, ("Intercept", "x"), noncentered=("x",))
    partial_at_zero = BlockParameterization(True, (), noncentered=("x",), swept=True)
    options = [
        [NONCENTERED, SWEPT_NONCENTERED, SWEPT_AT_ZERO, CENTERED_ON_INTERCEPT, partial, partial_at_zero],
        [NONCENTERED, SWEPT_NONCENTERED, AT_ZERO, SWEPT_AT_ZERO, CENTERED_ON_INTERCEPT],
        [NONCENTERED, BlockParameterization(True, ())],
    ]
    programs = set()
    for choice in itertools.product(*options):
        if sum("Intercept" in c.centers for c in choice) > 1:
            continue
        code = render_code(design, choice, model.priors)
        data = build_data(design, choice, model.priors)
        programs.add(strip_comments(code))
        for i, (block, columns) in enumerate(
            zip(choice, [("Intercept", "x"), ("Intercept",), ("z",)]), start=1
        ):
            assert data[f"centered_{i}"] == (len(columns) - len(block.noncentered) if block.centered else 0)
            assert data[f"F_{i}"][:, 0].sum() == float("Intercept" in block.centers)
            if i < 3:  # blocks with an intercept: their sweep weights
                assert data[f"w_{i}"].sum() == pytest.approx(float(block.swept))
    assert len(programs) == 1
    stanc(code)


def test_per_block_choices(toy):
    formula = "y ~ x + (x | g) + (1 | a)"
    mixed = lf.Model(formula, toy, parameterization=["noncentered", "centered"])
    assert mixed.parameterizations == (NONCENTERED, CENTERED_ON_INTERCEPT)
    # an explicit BlockParameterization is taken as it is; the rule assigns the rest around it
    explicit = lf.Model(formula, toy, parameterization=[lf.BlockParameterization(True, ("x",)), "centered"])
    assert explicit.parameterizations == (lf.BlockParameterization(True, ("x",)), CENTERED_ON_INTERCEPT)
    np.testing.assert_allclose(
        explicit.stan_data[names.block(1).center_map], [[0.0, -toy.x.mean()], [0.0, 1.0]]
    )
    assert strip_comments(explicit.stan_code) == strip_comments(mixed.stan_code)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["centered"], "one entry per group-level block"),
        (["centered", "sideways"], "'sideways' is not one of"),
        ([lf.BlockParameterization(True, ("z",)), "auto"], "cannot center \\['z'\\]"),
        ([lf.BlockParameterization(False, ("x",)), "auto"], "non-centered block has no centers"),
    ],
)
def test_bad_per_block_choices(toy, bad, message):
    with pytest.raises(lf.DataError, match=message):
        lf.Model("y ~ x + (x | g) + (1 | a)", toy, parameterization=bad)


@pytest.mark.slow
def test_crossed_poisson_converges_at_defaults():
    """Two crossed factors (120 and 60 levels, 400 rows of random pairs), defaults: no divergences, R-hat
    below 1.01, and the simulation's values inside the 95 % intervals. (With both blocks centered on the
    intercept such a design gave R-hat 1.07 and E-BFMI < 0.3.)"""
    rng = np.random.default_rng(11)
    n_a, n_b, rows = 120, 60, 400
    a = np.concatenate([np.arange(n_a), rng.integers(0, n_a, rows - n_a)])
    b = np.concatenate([rng.permutation(np.arange(rows) % n_b)])
    x = rng.normal(size=rows)
    eta = 1.0 + 0.3 * x + rng.normal(0, 0.8, n_a)[a] + rng.normal(0, 0.5, n_b)[b]
    data = pd.DataFrame(
        {"count": rng.poisson(np.exp(eta)), "x": x, "a": [f"a{i}" for i in a], "b": [f"b{i}" for i in b]}
    )
    model = lf.Model("count ~ x + (1 | a) + (1 | b)", data, family="poisson")
    assert sum("Intercept" in p.centers for p in model.parameterizations) == 1
    fit = model.fit(seed=1, progress=False)
    assert int(fit.sampler["divergent__"].sum()) == 0
    assert not [p for p in fit.problems if p.startswith("R-hat")]
    fixef = fit.fixef()
    varcorr = fit.varcorr()
    for value, (low, high) in (
        (1.0, fixef.loc["Intercept", ["Q2.5", "Q97.5"]]),
        (0.3, fixef.loc["x", ["Q2.5", "Q97.5"]]),
        (0.8, varcorr.loc[("a", "sd(Intercept)"), ["Q2.5", "Q97.5"]]),
        (0.5, varcorr.loc[("b", "sd(Intercept)"), ["Q2.5", "Q97.5"]]),
    ):
        assert low < value < high


def test_per_block_choices_from_a_numpy_array(toy):
    model = lf.Model("y ~ x + (x | g) + (1 | a)", toy, parameterization=np.array(["noncentered", "centered"]))
    assert model.parameterizations == (NONCENTERED, CENTERED_ON_INTERCEPT)


def test_explicit_choices_may_not_share_a_center(toy):
    twice = [CENTERED_ON_INTERCEPT, CENTERED_ON_INTERCEPT]
    with pytest.raises(lf.DataError, match="centers more than one block"):
        lf.Model("y ~ x + (1 | g) + (1 | a)", toy, parameterization=twice)


def test_undefined_ratios_never_center_or_win():
    """A NaN information ratio counts as 'not informative', whatever the column order."""
    assert assign_centers(
        [("Intercept",), ("Intercept",)], [np.array([np.nan]), np.array([0.5])], [True, True], ("Intercept",)
    ) == [[], ["Intercept"]]


def test_an_informed_intercept_is_centered_and_weak_slopes_are_not():
    """30 groups of 20 rows: intercepts well informed (sd 0.8 against a sampling sd of ~0.22),
    slopes weakly (sd 0.4, sampling sd ~0.22): partial centering, the intercept centered (on the
    population intercept and, through the shift to the mean of x, on x's coefficient), the slope
    non-centered given it. A slope the groups say nothing about (sd 0.01) gets the same. Beside
    another factor carrying the same coefficients (slopes on crossed factors, measured worse
    partially centered) the block is centered whole when its slope's ratio exceeds 1 and
    non-centered otherwise."""
    data = _simulate(groups=30, rows=(20, 20), sd_intercept=0.8, sd_slope=0.4, seed=3)
    model = lf.Model("y ~ x + (x | g)", data)
    ratios = block_information(model._design)[0]
    assert ratios[0] > center_threshold(30) > ratios[1]
    partial = BlockParameterization(True, ("Intercept", "x"), noncentered=("x",))
    assert model.parameterizations == (partial,)
    assert model.stan_data[names.block(1).centered] == 1
    flat = _simulate(groups=30, rows=(20, 20), sd_intercept=0.8, sd_slope=0.01, seed=3)
    assert lf.Model("y ~ x + (x | g)", flat).parameterizations == (partial,)
    poor = _simulate(groups=30, rows=(2, 3), sd_intercept=0.3, sd_slope=0.3, seed=3)
    assert lf.Model("y ~ x + (x | g)", poor).parameterizations == (NONCENTERED,)
    data["h"] = [f"h{i % 7}" for i in range(len(data))]
    both = lf.Model("y ~ x + (x | g) + (x | h)", data)  # crossed slopes; h has no effect
    assert block_information(both._design)[0][1] < 1.0
    assert both.parameterizations == (SWEPT_NONCENTERED, NONCENTERED)  # h's intercepts are not informed
    wider = _simulate(groups=30, rows=(20, 20), sd_intercept=0.8, sd_slope=0.5, seed=3)
    wider["h"] = data["h"]
    crossed = lf.Model("y ~ x + (x | g) + (x | h)", wider)
    assert 1.0 < block_information(crossed._design)[0][1] < center_threshold(30)
    assert crossed.parameterizations == (BlockParameterization(True, ("Intercept", "x")), NONCENTERED)


def test_the_intercept_is_judged_at_the_means_of_the_slopes():
    """Ages 8 to 14 (Orthodont): at age 0 the groups' intercepts are extrapolations (ratio near 0);
    at the mean age, which is where the program samples them, they are well informed."""
    rng = np.random.default_rng(4)
    groups, age = 27, np.tile([8.0, 10.0, 12.0, 14.0], 27)
    g = np.repeat(np.arange(groups), 4)
    y = (
        17
        + rng.normal(0, 2, groups)[g]
        + (0.66 + rng.normal(0, 0.1, groups)[g]) * age
        + rng.normal(0, 1.3, len(g))
    )
    data = pd.DataFrame({"y": y, "age": age, "g": [f"s{i}" for i in g]})
    model = lf.Model("y ~ age + (age | g)", data)
    design = model._design
    Z, J = design.Z[0], design.J[0]
    weights, residuals = np.ones(len(y)), y - np.polyval(np.polyfit(age, y, 1), age)
    at_zero = information_ratios(Z, J, weights, residuals, True)
    shifted = Z.copy()
    shifted[:, 1] -= age.mean()
    at_mean = information_ratios(shifted, J, weights, residuals, True)
    assert at_zero[0] < 1 < center_threshold(groups) < at_mean[0]
    assert block_information(design)[0][0] == pytest.approx(at_mean[0], rel=0.05)
    assert model.parameterizations[0].noncentered == ("age",)


def _two_level(seed: int = 2):
    """Pupils in classes in schools: a school-level covariate (constant within school, so within
    class too), a class-level one and a pupil-level one."""
    rng = np.random.default_rng(seed)
    school = np.repeat(np.arange(20), 60)
    klass = school * 3 + np.tile(np.repeat(np.arange(3), 20), 20)
    w_school = rng.normal(size=20)[school]
    v_class = rng.normal(size=60)[klass]
    x = rng.normal(size=len(school))
    eta = (
        1
        + 0.5 * w_school
        - 0.3 * v_class
        + 0.4 * x
        + rng.normal(0, 1.0, 20)[school]
        + rng.normal(0, 0.7, 60)[klass]
    )
    return pd.DataFrame(
        {
            "y": eta + rng.normal(0, 0.5, len(school)),
            "w": w_school,
            "v": v_class,
            "x": x,
            "school": [f"s{i}" for i in school],
            "klass": [f"k{i}" for i in klass],
        }
    )


def test_level_constant_predictors_center_the_intercepts_of_the_factor_they_describe():
    data = _two_level()
    model = lf.Model("y ~ w + v + x + (1 | school) + (1 | klass)", data, parameterization="centered")
    school, klass = model.parameterizations
    assert school.level_centers == ("w",)  # constant within schools and classes: the coarser factor
    # v is constant within classes only; the classes, centered on their school's coefficient, also carry w
    assert klass.level_centers == ("v", "w") and klass.parent == "school"
    assert "x" not in school.level_centers + klass.level_centers  # varies within classes
    G = model.stan_data[names.block(1).level_center_map]  # levels x (Intercept, w, v, x)
    per_school = data.groupby("school", sort=False)["w"].first()
    levels = model.design.blocks[0].factor.levels
    # each school's w minus w's mean over rows (the program's means_X): centered like Xc
    np.testing.assert_allclose(G[:, 1], per_school.loc[list(levels)].to_numpy() - data["w"].mean())
    assert np.all(G[:, [0, 2, 3]] == 0)
    # non-centered blocks have no level centers, and a coefficient that is a column's center is not one
    assert all(
        not c.level_centers
        for c in lf.Model("y ~ w + (1 | school)", data, parameterization="noncentered").parameterizations
    )
    slopes = lf.Model("y ~ w + (w | klass) + (1 | school)", data, parameterization="centered")
    assert "w" in slopes.parameterizations[0].centers  # the slope column's center
    assert all("w" not in c.level_centers for c in slopes.parameterizations)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (BlockParameterization(True, ("Intercept",), noncentered=("Intercept",)), "leave at least its first"),
        (
            BlockParameterization(True, ("Intercept",), level_centers=("x",)),
            "not constant within every level",
        ),
        (BlockParameterization(True, ("Intercept",), level_centers=("zz",)), "not a population-level column"),
        (BlockParameterization(False, level_centers=("w",)), "non-centered block has no centers"),
        (BlockParameterization(True, noncentered=5), "must be a tuple"),
        (BlockParameterization(True, ("Intercept",), swept=True), "varies around zero"),
        (BlockParameterization(True, (), level_centers=("w",), swept=True), "varies around zero"),
        (BlockParameterization(False, swept="yes"), "must be True or False"),
    ],
)
def test_bad_partial_and_level_centers(entry, message):
    with pytest.raises(lf.DataError, match=message):
        lf.Model("y ~ w + x + (1 | school)", _two_level(), parameterization=[entry])


def test_explicit_partial_and_level_centers_are_taken_as_given():
    data = _two_level()
    entry = BlockParameterization(True, ("Intercept",), level_centers=("w",))
    model = lf.Model("y ~ w + x + (1 | school)", data, parameterization=[entry])
    assert model.parameterizations == (entry,)
    assert "intercepts also on per-level w" in str(entry)
    slope = BlockParameterization(True, ("Intercept", "x"), noncentered=("x",))
    assert lf.Model("y ~ x + (x | school)", data, parameterization=[slope]).stan_data["centered_1"] == 1
    with pytest.raises(lf.DataError, match="last columns"):
        lf.Model(
            "y ~ x + (x + w | school)",
            data,
            parameterization=[BlockParameterization(True, noncentered=("x",))],
        )


def _cholesky_shifted(sd, cor, Z):
    C = np.eye(len(sd))
    C[0, 1:] = Z[:, 1:].mean(axis=0)
    covariance = C @ np.diag(sd) @ cor @ np.diag(sd) @ C.T
    return C, np.linalg.cholesky(covariance)


@pytest.mark.slow
def test_every_number_of_centered_columns_gives_the_same_posterior(coffee):
    """The program's density at the same effects, computed by the program itself, for 0, 1 and 2
    centered columns (and per-level centers from G): the z that give those effects differ, and
    the densities differ by exactly the Jacobian of the non-centered rows, levels x log det of
    S's trailing block, S = chol(C Sigma C')."""
    model = lf.Model("y ~ x + (x | group)", coffee)
    data = dict(model.stan_data)
    rng = np.random.default_rng(8)
    n_levels, Z = data["N_1"], np.asarray(data["Z_1"])
    sd, rho = np.array([0.7, 0.4]), -0.3
    cor = np.array([[1.0, rho], [rho, 1.0]])
    effects = rng.normal(size=(n_levels, 2)) * sd
    point = {"Intercept": 2.0, "b": [0.8], "sigma": 1.1, "sd_1": sd, "L_1": np.linalg.cholesky(cor)}
    mean_x = np.mean(data["X"][:, 0])
    beta = np.array([2.0 - 0.8 * mean_x, 0.8])  # b_Intercept, b
    G = np.zeros((n_levels, 2))
    G[:, 1] = rng.normal(size=n_levels)  # as if x were constant within levels
    # F_1 maps (Intercept, b) to the block's centers at zero x: (b_Intercept, b)
    data["G_1"], data["F_1"] = G, np.array([[1.0, -mean_x], [0.0, 1.0]])
    C, S = _cholesky_shifted(sd, cor, Z)
    u = effects @ C.T  # C * effects, one row per level
    centers = np.tile(C @ beta, (n_levels, 1))
    centers[:, 0] += G @ beta
    w = np.linalg.solve(S, u.T).T  # standardized
    program = embedded.compile_program(model.stan_code)
    density = {}
    for P in (0, 1, 2):
        z = np.where(np.arange(2) < P, u + centers, w)  # centered rows hold coefficients, the rest w
        density[P] = embedded.log_density(program, data | {"centered_1": P}, point | {"z_1": z.T})
    jacobian = {P: n_levels * np.sum(np.log(np.diag(S)[P:])) for P in (0, 1, 2)}
    for P in (0, 1):
        assert density[P] - density[2] == pytest.approx(jacobian[P], rel=1e-8, abs=1e-6)


def model_choices(model: lf.Model) -> list[bool]:
    return [choice.centered for choice in model.parameterizations]


def test_sweep_weights_follow_the_rows_and_need_a_population_intercept(toy):
    """A swept block's weights are its levels' shares of the rows; a block not swept has zeros, as has one
    whose groups say little about their intercepts (toy's g has no effect); a model without a population
    intercept (or with an ordinal family's thresholds) has no sweep at all."""
    rng = np.random.default_rng(12)
    data = _crossed(n_a=20, n_b=10, sd_a=1.5, sd_b=1.5, seed=12).sample(frac=0.8, random_state=1)
    data["g"] = rng.choice(["g1", "g2", "g3", "g4", "g5"], size=len(data))  # no effect
    model = lf.Model("y ~ x + (1 | a) + (1 | b) + (1 | g)", data, parameterization="noncentered")
    assert model.parameterizations == (SWEPT_NONCENTERED, SWEPT_NONCENTERED, NONCENTERED)
    for i, column in ((1, "a"), (2, "b")):
        levels = model.design.blocks[i - 1].factor.levels
        rows = data[column].value_counts()
        expected = np.array([rows[level] for level in levels], dtype=float) / len(data)
        np.testing.assert_allclose(model.stan_data[names.block(i).sweep_weights], expected)
    np.testing.assert_array_equal(model.stan_data[names.block(3).sweep_weights], 0.0)
    assert f"real {names.SWEPT} =" in model.stan_code
    formula = "y ~ x + (1 | a) + (1 | b) + (1 | g)"
    explicit = lf.Model(formula, data, parameterization=[NONCENTERED, "noncentered", "noncentered"])
    np.testing.assert_array_equal(explicit.stan_data[names.block(1).sweep_weights], 0.0)
    assert strip_comments(explicit.stan_code) == strip_comments(model.stan_code)
    no_intercept = lf.Model("y ~ 0 + x + (1 | g)", toy, parameterization="noncentered")
    assert names.SWEPT not in no_intercept.stan_code
    assert names.block(1).sweep_weights not in no_intercept.stan_data
    with pytest.raises(lf.DataError, match="needs a population-level intercept"):
        lf.Model("y ~ 0 + x + (1 | g)", toy, parameterization=[SWEPT_NONCENTERED])
    slopes_only = lf.Model("y ~ x + (0 + x | g)", toy, parameterization="noncentered")
    assert names.SWEPT not in slopes_only.stan_code
    ordinal = data.assign(k=1 + (data["y"] > data["y"].median()).astype(int) + (data["y"] > 0).astype(int))
    cumulative = lf.Model("k ~ x + (1 | a)", ordinal, family="cumulative", parameterization="noncentered")
    assert cumulative.parameterizations == (NONCENTERED,)
    assert names.SWEPT not in cumulative.stan_code


@pytest.mark.slow
@pytest.mark.parametrize("correlated", [True, False])
def test_sweeping_leaves_the_posterior_unchanged(coffee, correlated):
    """Sweeping moves the block's weighted mean intercept into the sampled Intercept: a change of
    coordinates with Jacobian 1. The program's own density at the same effects, with the weights on
    and the sampled Intercept carrying their mean, equals its density with the weights off, for the
    non-centered, the centered-at-zero and the partially centered forms."""
    formula = "y ~ x + (x | group)" if correlated else "y ~ x + (x || group)"
    model = lf.Model(formula, coffee, parameterization="noncentered")
    data = dict(model.stan_data)
    assert data["w_1"].sum() == pytest.approx(1.0)
    sweep_weights = np.asarray(data["w_1"])
    rng = np.random.default_rng(9)
    n_levels, Z = data["N_1"], np.asarray(data["Z_1"])
    sd, rho = np.array([0.7, 0.4]), -0.3 if correlated else 0.0
    cor = np.array([[1.0, rho], [rho, 1.0]])
    effects = rng.normal(size=(n_levels, 2)) * sd
    intercept = 2.0  # at the means of the predictors
    point = {"b": [0.8], "sigma": 1.1, "sd_1": sd}
    program = embedded.compile_program(model.stan_code)
    if correlated:
        point["L_1"] = np.linalg.cholesky(cor)
        C, S = _cholesky_shifted(sd, cor, Z)
        u = effects @ C.T
        w = np.linalg.solve(S, u.T).T
        forms = {P: np.where(np.arange(2) < P, u, w).T for P in (0, 1, 2)}
    else:
        forms = {0: effects / sd, 1: np.column_stack([effects[:, 0], effects[:, 1] / sd[1]]), 2: effects}
    # the mean intercept it sweeps: a correlated block's at the means of its other columns
    swept = float(sweep_weights @ (u[:, 0] if correlated else effects[:, 0]))
    for P, z in forms.items():
        off = data | {"centered_1": P, "w_1": np.zeros(n_levels)}
        on = data | {"centered_1": P}
        plain = embedded.log_density(program, off, point | {"Intercept": intercept, "z_1": z})
        carried = embedded.log_density(program, on, point | {"Intercept": intercept + swept, "z_1": z})
        assert np.isfinite(plain)
        assert carried == pytest.approx(plain, rel=1e-10, abs=1e-8), P


def test_careful_adapt_delta_only_for_slopes_the_groups_say_little_about(sleepstudy, orthodont):
    """Partially centered correlated blocks: Orthodont's age slope (ratio 0) gets adapt_delta 0.95,
    sleepstudy's Days slope (ratio 1.8, no divergences at 0.8) keeps brms's 0.8; so does a model
    without a partially centered correlated block."""
    formula = "distance ~ age + Sex + (age | Subject)"
    partial = lf.Model(formula, orthodont)
    sleep = lf.Model("Reaction ~ Days + (Days | Subject)", sleepstudy)
    for model, ratio_below_one, expected in ((partial, True, 0.95), (sleep, False, 0.8)):
        assert model.parameterizations[0].noncentered == (model.design.blocks[0].columns[1],)
        assert (block_information(model._design)[0][1] < 1.0) == ratio_below_one
        assert default_adapt_delta(model._design, model.parameterizations) == expected
    whole = lf.Model(formula, orthodont, parameterization="centered")
    assert default_adapt_delta(whole._design, whole.parameterizations) == 0.8
