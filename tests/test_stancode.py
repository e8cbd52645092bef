"""Generated Stan programs: the formula corpus through stanc, snapshots, same structure -> same code."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmmformula as lf
from lmmformula import names

SNAPSHOTS = Path(__file__).parent / "snapshots"

# (formula, family, expected group-level blocks as (factor, columns, correlated))
CORPUS = [
    ("y ~ x", "gaussian", []),
    ("y ~ 1 + (1 | g)", "gaussian", [("g", ("Intercept",), False)]),
    ("y ~ x + (x | g)", "gaussian", [("g", ("Intercept", "x"), True)]),
    ("y ~ x + (0 + x | g)", "gaussian", [("g", ("x",), False)]),
    ("y ~ x + (x || g)", "gaussian", [("g", ("Intercept", "x"), False)]),
    ("y ~ x + (1 | g) + (0 + x | g)", "gaussian", [("g", ("Intercept", "x"), False)]),
    ("y ~ x * z + (x * z || g)", "gaussian", [("g", ("Intercept", "x", "z", "x:z"), False)]),
    ("y ~ x * z + (x * z | g)", "gaussian", [("g", ("Intercept", "x", "z", "x:z"), True)]),
    ("y ~ f + (f || g)", "gaussian", [("g", ("Intercept", "f[T.lo]", "f[T.mid]"), False)]),
    ("y ~ f + (0 + f | g)", "gaussian", [("g", ("f[hi]", "f[lo]", "f[mid]"), True)]),
    ("y ~ C(f) + x:z + (1 | g)", "gaussian", [("g", ("Intercept",), False)]),
    ("y ~ I(x ** 2) + np.log(pos) + (1 | g)", "gaussian", [("g", ("Intercept",), False)]),
    ("y ~ x - 1 + (1 | g)", "gaussian", [("g", ("Intercept",), False)]),
    ("y ~ 0 + x + (x | g)", "gaussian", [("g", ("Intercept", "x"), True)]),
    ("y ~ 0 + (1 | g)", "gaussian", [("g", ("Intercept",), False)]),
    ("y ~ x + (1 | a/b)", "gaussian", [("a", ("Intercept",), False), ("a:b", ("Intercept",), False)]),
    (
        "y ~ x + (1 | a) + (1 | a:b)",
        "gaussian",
        [("a", ("Intercept",), False), ("a:b", ("Intercept",), False)],
    ),
    ("y ~ x + (x | a/b)", "gaussian", [("a", ("Intercept", "x"), True), ("a:b", ("Intercept", "x"), True)]),
    ("y ~ x + (1 | g) + (1 | a)", "gaussian", [("g", ("Intercept",), False), ("a", ("Intercept",), False)]),
    (
        "y ~ x + (x | g) + (1 | a) + (0 + z | a)",
        "gaussian",
        [("g", ("Intercept", "x"), True), ("a", ("Intercept", "z"), False)],
    ),
    ("y ~ x + (x | g) + (0 + z | g)", "gaussian", [("g", ("Intercept", "x"), True), ("g", ("z",), False)]),
    ("y ~ x + (1 | site)", "gaussian", [("site", ("Intercept",), False)]),
    ("np.log(pos) ~ x + (1 | g)", "gaussian", [("g", ("Intercept",), False)]),
    ("yes ~ x + (1 | g)", "bernoulli", [("g", ("Intercept",), False)]),
    ("yes ~ 1 + (x | g)", "bernoulli", [("g", ("Intercept", "x"), True)]),
    ("count ~ x + f + (x | g)", "poisson", [("g", ("Intercept", "x"), True)]),
    ("count ~ (1 | a:b)", "poisson", [("a:b", ("Intercept",), False)]),
    ("cbind(hits, trials - hits) ~ x + (1 | g)", "binomial", [("g", ("Intercept",), False)]),
    (
        "cbind(hits, trials - hits) ~ 1 + (1 | g) + (1 | site)",
        "binomial",
        [("g", ("Intercept",), False), ("site", ("Intercept",), False)],
    ),
    ("yes ~ x", "binomial", []),
]


def _blocks(model: lf.Model) -> list:
    return [(b.factor.name, b.columns, b.correlated) for b in model.design.blocks]


@pytest.mark.parametrize("parameterization", ["noncentered", "centered"])
@pytest.mark.parametrize(("formula", "family", "blocks"), CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus_passes_stanc(toy, stanc, formula, family, blocks, parameterization):
    model = lf.Model(formula, toy, family=family, parameterization=parameterization)
    assert _blocks(model) == blocks
    stanc(model.stan_code)
    _check_data_matches_declarations(model)


def _check_data_matches_declarations(model: lf.Model) -> None:
    """Every name declared in the data block is in stan_data, and nothing else is."""
    data_block = model.stan_code.split("data {", 1)[1].split("\n}", 1)[0]
    declared = set(re.findall(r"\b(\w+);", data_block))
    assert declared == set(model.stan_data)
    N = model.stan_data[names.ROWS]
    assert len(model.stan_data[names.RESPONSE]) == N
    for key, value in model.stan_data.items():
        if re.fullmatch(r"[JZ]_\d+", key):
            assert len(value) == N


def test_coffee_program_passes_stanc(coffee, stanc):
    code = lf.make_stancode("y ~ x + (x | group)", coffee)
    cpp = stanc(code)
    assert "normal_id_glm" in code
    model_block = code.split("\nmodel {", 1)[1]
    assert "for (n in" not in model_block  # vectorized: no loop over observations
    # one vector to add: gathered (the intercept column of Z is not multiplied), no sparse product
    assert "mu = (alpha + r_1[:, 1])[J_1];" in code and "mu += Z_1[:, m] .* r_1[J_1, m];" in code
    assert "csr_matrix_times_vector" not in code
    assert len(cpp) > 1000


def test_coffee_data(coffee):
    data = lf.make_standata("y ~ x + (x | group)", coffee)
    assert (
        data[names.ROWS] == 1000
        and data[names.SLOPE_COUNT] == 1
        and data[names.block(1).levels] == 100
        and data[names.block(1).columns] == 2
    )
    np.testing.assert_array_equal(data[names.block(1).design][:, 0], 1.0)
    np.testing.assert_array_equal(data[names.block(1).design][:, 1], coffee.x.to_numpy())
    # J_1 indexes the sorted string levels: row 0 is group "75"
    levels = sorted(coffee.group.unique())
    assert levels[data[names.block(1).level_of][0] - 1] == coffee.group[0] == "75"


def _strip_comments(code: str) -> str:
    return "\n".join(line.split("//")[0].rstrip() for line in code.splitlines())


def test_renamed_columns_give_the_same_program(coffee):
    renamed = coffee.rename(columns={"y": "score", "x": "beans", "group": "team"})
    original = lf.make_stancode("y ~ x + (x | group)", coffee)
    other = lf.make_stancode("score ~ beans + (beans | team)", renamed)
    assert original != other  # the comments name the user's terms
    assert _strip_comments(original) == _strip_comments(other)


def test_same_structure_on_other_data_gives_the_same_program(coffee, sleepstudy):
    coffee_code = lf.make_stancode("y ~ x + (x | group)", coffee, parameterization="noncentered")
    sleep_code = lf.make_stancode(
        "Reaction ~ Days + (Days | Subject)", sleepstudy, parameterization="noncentered"
    )
    assert _strip_comments(coffee_code) == _strip_comments(sleep_code)


def _assert_same_model(a: lf.Model, b: lf.Model) -> None:
    assert _strip_comments(a.stan_code) == _strip_comments(b.stan_code)
    assert a.stan_data.keys() == b.stan_data.keys()
    for key in a.stan_data:
        np.testing.assert_array_equal(a.stan_data[key], b.stan_data[key], err_msg=key)


@pytest.mark.parametrize(
    ("short", "long"),
    [
        ("y ~ x + (x || g)", "y ~ x + (1 | g) + (0 + x | g)"),
        ("y ~ x + (1 | a/b)", "y ~ x + (1 | a) + (1 | a:b)"),
        ("y ~ x * z + (x * z || g)", "y ~ x * z + (1 | g) + (0 + x | g) + (0 + z | g) + (0 + x:z | g)"),
        ("y ~ x + (x | a/b)", "y ~ x + (x | a) + (x | a:b)"),
    ],
)
def test_lme4_equivalences(toy, short, long):
    for parameterization in ("noncentered", "centered"):
        _assert_same_model(
            lf.Model(short, toy, parameterization=parameterization),
            lf.Model(long, toy, parameterization=parameterization),
        )


def test_uncorrelated_categorical_gets_one_sd_per_column(toy):
    model = lf.Model("y ~ f + (f || g)", toy, parameterization="noncentered")
    assert model.stan_data[names.block(1).columns] == 3
    assert "cholesky_factor_corr" not in model.stan_code
    assert "vector<lower=0>[M_1] sd_1;" in model.stan_code


def test_centered_program_centers_on_population_coefficients(coffee):
    model = lf.Model("y ~ x + (x | group)", coffee, parameterization="centered")
    # around the sampled intercept, at the means of the predictors; F_1 holds the means
    coefficients = "append_row(Intercept, b)"
    centers = f"level_centers(C_1 * F_1 * {coefficients}, G_1 * {coefficients})"
    assert f"r_1 = (C_inv_1 * (z_1 - {centers}))';" in model.stan_code  # the centered branch
    assert "to_vector(standardized(C_1 * r_1', z_1, S_1, centered_1)) ~ std_normal();" in model.stan_code
    assert model.stan_data[names.block(1).centered] == 2  # both columns
    assert not model.stan_data[names.block(1).level_center_map].any()  # x varies within groups
    assert not model.stan_data[names.block(1).sweep_weights].any()  # centered on the intercept: not swept
    # the intercept's row: the level's intercept at x = 0 is Intercept - mean(x) * b_x from its center
    np.testing.assert_allclose(
        model.stan_data[names.block(1).center_map], [[1.0, -coffee.x.mean()], [0.0, 1.0]]
    )
    # a group-level column that is not in the fixed part varies around zero
    partial = lf.Model("y ~ 1 + (x | group)", coffee, parameterization="centered")
    np.testing.assert_array_equal(partial.stan_data[names.block(1).center_map], [[1.0], [0.0]])


def test_default_priors_follow_brms(coffee):
    from scipy.stats import median_abs_deviation

    y = coffee.y.to_numpy()
    data = lf.make_standata("y ~ x + (x | group)", coffee)
    scale = max(2.5, round(median_abs_deviation(y, scale="normal"), 1))
    assert data["prior_Intercept_location"] == round(float(np.median(y)), 1) == 3.8
    assert data["prior_Intercept_scale"] == scale == 8.7
    assert data["prior_Intercept_df"] == 3
    assert list(data["prior_sd_1_student_t_scale"]) == [scale, scale] and data["prior_sigma_scale"] == scale
    assert data["prior_cor_1_eta"] == 1
    code = lf.make_stancode("y ~ x + (x | group)", coffee)
    prior = "student_t(prior_Intercept_df, prior_Intercept_location, prior_Intercept_scale)"
    assert f"alpha ~ {prior};" in code  # the intercept at the means of the predictors
    assert "\n  b ~" not in code  # flat slopes


def test_default_priors_for_other_families(toy):
    poisson = lf.make_standata("count ~ x + (1 | g)", toy, family="poisson")
    assert poisson["prior_Intercept_location"] == round(float(np.log(np.median(toy["count"]))), 1)
    assert poisson["prior_Intercept_scale"] == poisson["prior_sd_1_student_t_scale"][0] == 2.5
    bernoulli = lf.make_standata("yes ~ x + (1 | g)", toy, family="bernoulli")
    assert bernoulli["prior_Intercept_location"] == 0 and bernoulli["prior_Intercept_scale"] == 2.5
    assert "prior_sigma_scale" not in bernoulli


def test_user_priors_keep_numbers_in_the_data(coffee, stanc):
    priors = {"b": "normal(0, 5)", "sd": "exponential(1)", "cor": "lkj(2)", "sigma": "normal(0, 3)"}
    model = lf.Model("y ~ x + (x | group)", coffee, priors=priors)
    stanc(model.stan_code)
    code = model.stan_code
    assert "b[prior_b_normal_index] ~ normal(prior_b_normal_location, prior_b_normal_scale);" in code
    assert "sd_1[prior_sd_1_exponential_index] ~ exponential(prior_sd_1_exponential_rate);" in model.stan_code
    assert list(model.stan_data["prior_b_normal_scale"]) == [5] and model.stan_data["prior_cor_1_eta"] == 2
    other = lf.Model("y ~ x + (x | group)", coffee, priors={**priors, "b": "normal(1, 10)"})
    assert other.stan_code == model.stan_code


def test_binomial_data_from_cbind(cbpp, stanc):
    model = lf.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    stanc(model.stan_code)
    np.testing.assert_array_equal(model.stan_data[names.RESPONSE], cbpp.incidence)
    np.testing.assert_array_equal(model.stan_data["trials"], cbpp["size"])
    assert model.stan_data[names.SLOPE_COUNT] == 3  # period 2, 3, 4 against period 1
    assert "binomial_logit_glm(trials, Xc, mu, b)" in model.stan_code


SNAPSHOT_CASES = {
    "coffee_auto": ("y ~ x + (x | group)", "gaussian", "auto", "coffee"),
    "coffee_noncentered": ("y ~ x + (x | group)", "gaussian", "noncentered", "coffee"),
    "sleepstudy_uncorrelated": (
        "Reaction ~ Days + (Days || Subject)",
        "gaussian",
        "noncentered",
        "sleepstudy",
    ),
    "cbpp_binomial": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial", "auto", "cbpp"),
    "toy_crossed_poisson": ("count ~ x + (1 | g) + (1 | a)", "poisson", "noncentered", "toy"),
}


@pytest.mark.parametrize("name", sorted(SNAPSHOT_CASES))
def test_snapshots(name, request):
    formula, family, parameterization, dataset = SNAPSHOT_CASES[name]
    data = request.getfixturevalue(dataset.lower())
    code = lf.make_stancode(formula, data, family=family, parameterization=parameterization)
    path = SNAPSHOTS / f"{name}.stan"
    if os.environ.get("LMMFORMULA_UPDATE_SNAPSHOTS") == "1":
        path.write_text(code)
    assert path.exists(), f"missing snapshot {path}; run with LMMFORMULA_UPDATE_SNAPSHOTS=1"
    assert code == path.read_text()


def test_caller_data_is_not_modified(toy):
    before = toy.copy(deep=True)
    data = toy.copy()
    data.loc[3, "x"] = np.nan
    snapshot = data.copy(deep=True)
    with pytest.warns(UserWarning, match="dropped 1 of 240 rows"):
        lf.Model("y ~ x + (x | g) + (1 | site)", data)
    lf.Model("cbind(hits, trials - hits) ~ f + (1 | a/b)", data.dropna(), family="binomial")
    pd.testing.assert_frame_equal(data, snapshot)
    pd.testing.assert_frame_equal(toy, before)


@pytest.mark.parametrize(
    "formula,effects",
    [
        # the first block has no intercept: the intercept gets its own sparse column
        (
            "y ~ x + (0 + x || g) + (1 + x || h)",
            "append_row(alpha, append_row(to_vector(r_1), to_vector(r_2)))",
        ),
        # it has one: the intercept rides on it, the first block's other columns follow
        (
            "y ~ x + (1 + x || g) + (1 | h)",
            "append_row(append_row(alpha + r_1[:, 1], to_vector(r_1[:, 2:M_1])), to_vector(r_2))",
        ),
        # a single vector to add: gathered, no sparse product
        ("y ~ x + (1 | g) + (1 | h)", None),
    ],
)
def test_group_level_sum_is_sparse_from_two_added_vectors(formula, effects):
    data = pd.DataFrame({"x": [0.1, 0.5, 0.9, 1.3] * 3, "g": list("abc") * 4, "h": list("pq") * 6})
    data["y"] = np.arange(12.0) % 5
    code = lf.Model(formula, data).stan_code
    if effects is None:
        assert "csr_matrix_times_vector" not in code and "mu += r_2[J_2, 1];" in code
    else:
        assert f"csr_matrix_times_vector(N, P_csr, csr_w, csr_v, csr_u, {effects});" in code


@pytest.mark.slow
@pytest.mark.parametrize("formula", ["y ~ x + (0 + x || g) + (1 + x || h)", "y ~ x + (1 + x || g) + (1 | h)"])
def test_sparse_group_design_gives_the_linear_predictor_numpy_does(formula):
    """The sparse group-level design (an intercept column, or the intercept on the first block's intercepts;
    blocks of one and two columns; level indices; stacked effects): at one parameter point the compiled
    program's log density changes between two responses by what numpy's normal densities at the
    hand-computed linear predictor do."""
    from scipy import stats

    from lmmformula.engines import embedded

    rng = np.random.default_rng(11)
    n = 120
    data = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "g": rng.choice(list("abcde"), size=n),
            "h": rng.choice([f"h{i}" for i in range(7)], size=n),
        }
    )
    data["y"] = rng.normal(size=n)
    model = lf.Model(formula, data, parameterization=[lf.BlockParameterization(False)] * 2)
    code, first = model.stan_code, model.stan_data
    assert "csr_matrix_times_vector" in code
    point = {names.INTERCEPT: 0.3, names.SLOPES: np.array([-0.7]), "sigma": 1.4}
    x = first[names.DESIGN][:, 0]
    eta = 0.3 - 0.7 * (x - x.mean())  # not swept: Intercept is the intercept at mean(x)
    for i in (1, 2):
        block = names.block(i)
        z = rng.normal(size=(first[block.levels], first[block.columns]))
        sd = rng.uniform(0.3, 1.0, size=first[block.columns])
        point |= {block.sd: sd, block.z: z}
        effects = (z * sd)[first[block.level_of] - 1]
        eta = eta + (first[block.design] * effects).sum(axis=1)
    second = dict(first, Y=rng.normal(size=n))
    change = stats.norm.logpdf(first["Y"], eta, 1.4) - stats.norm.logpdf(second["Y"], eta, 1.4)
    program = embedded.compile_program(code)
    stan_change = embedded.log_density(program, first, point) - embedded.log_density(program, second, point)
    assert stan_change == pytest.approx(change.sum(), rel=1e-9)
