"""The check at the end of warm-up (lmmformula.pilot) on hand-made chain outputs: which pilots fail, which
candidate wins, and how a passing pilot is continued. Real fits of the same machinery are in
test_parameterization.py (marked slow)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import lmmformula as lf
from lmmformula.cache import strip_comments
from lmmformula.draws import assemble
from lmmformula.engines.base import Adapted, ChainOutput, SamplerSettings, read_adaptation
from lmmformula.pilot import PILOT_RHAT, Candidate, better, judge, last_draw, pilot_size, sample_checked

SAMPLER = ("lp__", "accept_stat__", "stepsize__", "treedepth__", "n_leapfrog__", "divergent__", "energy__")
PARAMETERS = ("b_Intercept", "b.1", "sd_1.1", "z_1.1.1", "z_1.1.2")
COLUMNS = SAMPLER + PARAMETERS
KEYS = ((), 1)  # no family parameters, one block
SETTINGS = SamplerSettings(chains=4, iter_warmup=1000, iter_sampling=1000, seed=5)


def _chain(chain: int, values: dict[str, np.ndarray], draws: int = 200, divergent: int = 0) -> ChainOutput:
    rng = np.random.default_rng(chain)
    table = np.zeros((draws, len(COLUMNS)))
    for position, name in enumerate(COLUMNS):
        table[:, position] = values[name] if name in values else rng.normal(size=draws)
    table[:, COLUMNS.index("divergent__")] = 0
    table[:divergent, COLUMNS.index("divergent__")] = 1
    table[:, COLUMNS.index("sd_1.1")] = np.abs(table[:, COLUMNS.index("sd_1.1")]) + 0.1
    return ChainOutput(
        chain=chain,
        columns=COLUMNS,
        values=table,
        seconds={"warm-up": 1.0, "sampling": 0.2 * draws / 200},
        adapted=Adapted(0.3 + 0.01 * chain, np.full(4, 0.5)),
    )


def _mixed(**options) -> list[ChainOutput]:
    return [_chain(c, {}, **options) for c in range(1, 5)]


def _stuck(name: str = "b.1") -> list[ChainOutput]:
    """Chains that each wander near their own value of ``name``: they have not met."""
    outputs = []
    for c in range(1, 5):
        walk = np.cumsum(np.random.default_rng(10 + c).normal(0, 0.02, 200)) + 3.0 * c
        outputs.append(_chain(c, {name: walk}))
    return outputs


def test_pilot_size():
    assert pilot_size(SETTINGS) == 200
    assert pilot_size(replace(SETTINGS, iter_sampling=500)) == 100
    assert pilot_size(replace(SETTINGS, iter_sampling=200)) == 0  # too short to judge
    assert pilot_size(replace(SETTINGS, iter_warmup=50)) == 0
    assert pilot_size(replace(SETTINGS, chains=1)) == 0


def test_independent_draws_pass():
    verdict = judge("auto", _mixed(), SETTINGS, KEYS)
    assert not verdict.failing
    assert verdict.max_rhat < 1.05
    assert verdict.projected_ess > 2000  # 800 independent draws, projected to 4000
    assert verdict.target_ess == 400
    assert verdict.seconds_per_draw == pytest.approx(0.001)


def test_chains_that_have_not_met_fail_and_are_named():
    verdict = judge("auto", _stuck("b.1"), SETTINGS, KEYS)
    assert verdict.failing
    assert verdict.max_rhat > 2
    assert verdict.worst[0] == "b[1]"


def test_only_the_shared_quantities_are_judged():
    """z holds centered coefficients in one parameterization and standardized effects in another: a
    stuck z is not what the check reads (the sds and coefficients it moves are)."""
    assert not judge("auto", _stuck("z_1.1.2"), SETTINGS, KEYS).failing
    assert judge("auto", _stuck("sd_1.1"), SETTINGS, KEYS).failing


def test_a_divergent_transition_fails_the_pilot():
    verdict = judge("auto", _mixed(divergent=1), SETTINGS, KEYS)
    assert verdict.divergences == 4 and verdict.failing


def test_better_prefers_mixing_then_no_divergences_then_clearly_more_ess_per_second():
    good = judge("a", _mixed(), SETTINGS, KEYS)
    bad = judge("b", _stuck(), SETTINGS, KEYS)
    divergent = judge("c", _mixed(divergent=1), SETTINGS, KEYS)
    assert better(good, bad) and not better(bad, good)
    assert better(good, divergent) and not better(divergent, good)
    # both fail: chains that mix (a higher adapt_delta may remove their divergences) beat chains that
    # have not met
    assert better(divergent, bad) and not better(bad, divergent)
    slower = replace(good, seconds_per_draw=good.seconds_per_draw * 1.1)
    assert not better(good, slower)  # within 20 %: keep the first choice
    assert better(good, replace(good, seconds_per_draw=good.seconds_per_draw * 2))


class _Engine:
    """A stand-in engine that hands back recorded pilots per data set and records every call (the
    decision logic only; no model is fitted here)."""

    def __init__(self, pilots: dict[str, list[ChainOutput]]) -> None:
        self.pilots = pilots
        self.calls: list[tuple[str, SamplerSettings]] = []

    def sample(self, program, data, settings, progress=None):
        self.calls.append((data["which"], settings))
        if settings.adapted is None:
            careful = f"{data['which']}@{settings.adapt_delta}"
            return self.pilots.get(careful, self.pilots[data["which"]])
        return [_chain(c, {}, draws=settings.iter_sampling) for c in range(1, settings.chains + 1)]


def test_a_failing_first_choice_switches_and_the_better_one_is_continued():
    engine = _Engine({"centered": _stuck(), "noncentered": _mixed()})
    candidates = [
        Candidate("centered", {"which": "centered"}),
        Candidate("noncentered", {"which": "noncentered"}),
    ]
    outputs, ran, notes, delta = sample_checked(engine, None, candidates, SETTINGS, KEYS)
    assert ran.label == "noncentered"
    assert notes[-1] == "switched to noncentered" and notes[0].startswith("centered: pilot")
    assert [which for which, _ in engine.calls] == ["centered", "noncentered", "noncentered"]
    pilot, continued = engine.calls[1][1], engine.calls[2][1]
    assert (pilot.iter_warmup, pilot.iter_sampling, pilot.seed) == (1000, 200, 5)
    assert (continued.iter_warmup, continued.iter_sampling, continued.seed) == (0, 800, 6)
    # each chain goes on from its last pilot draw with what its warm-up adapted
    assert [a.stepsize for a in continued.adapted] == pytest.approx([0.31, 0.32, 0.33, 0.34])
    last = engine.pilots["noncentered"][2].values[-1]
    assert continued.init[2]["b"][0] == last[COLUMNS.index("b.1")]
    assert [len(o.values) for o in outputs] == [1000] * 4
    assert outputs[0].seconds["sampling"] == pytest.approx(0.2 + 0.8)


def test_a_passing_first_choice_is_continued_without_trying_others():
    engine = _Engine({"auto": _mixed(), "other": _stuck()})
    candidates = [Candidate("auto", {"which": "auto"}), Candidate("other", {"which": "other"})]
    _, ran, notes, _ = sample_checked(engine, None, candidates, SETTINGS, KEYS)
    assert ran.label == "auto" and len(notes) == 1
    assert [which for which, _ in engine.calls] == ["auto", "auto"]


def test_a_failing_choice_without_alternatives_goes_on_and_says_so():
    """parameterization chosen by the user: no switch, the note carries the verdict for the warning."""
    engine = _Engine({"noncentered": _stuck()})
    _, ran, notes, _ = sample_checked(
        engine, None, [Candidate("noncentered", {"which": "noncentered"})], SETTINGS, KEYS
    )
    assert ran.label == "noncentered"
    assert "worst b[1]" in notes[0]


def test_an_alternative_that_has_not_met_either_does_not_replace_the_first_choice():
    engine = _Engine({"auto": _stuck("b.1"), "other": _stuck("sd_1.1")})
    candidates = [Candidate("auto", {"which": "auto"}), Candidate("other", {"which": "other"})]
    _, ran, notes, _ = sample_checked(engine, None, candidates, SETTINGS, KEYS)
    assert ran.label == "auto" and len(notes) == 2


def test_divergences_warm_up_again_at_a_higher_adapt_delta():
    """A mixing pilot with divergent transitions is warmed up again at each careful adapt_delta in turn
    until one has none; the run goes on from that warm-up and reports its adapt_delta."""
    engine = _Engine(
        {"auto": _mixed(divergent=2), "auto@0.95": _mixed(divergent=1), "auto@0.99": _mixed(divergent=0)}
    )
    outputs, ran, notes, delta = sample_checked(
        engine, None, [Candidate("auto", {"which": "auto"})], SETTINGS, KEYS, careful=(0.95, 0.99)
    )
    assert delta == 0.99 and notes[-1] == "adapt_delta raised to 0.99"
    assert [s.adapt_delta for _, s in engine.calls] == [
        0.8,
        0.95,
        0.99,
        0.8,
    ]  # the continuation adapts nothing
    # without careful values (the user set adapt_delta) nothing is warmed up again
    engine.calls.clear()
    *_, delta = sample_checked(engine, None, [Candidate("auto", {"which": "auto"})], SETTINGS, KEYS)
    assert delta == 0.8 and len(engine.calls) == 2


def test_short_runs_are_not_checked():
    engine = _Engine({"auto": _mixed()})
    short = replace(SETTINGS, iter_sampling=100)
    sample_checked(engine, None, [Candidate("auto", {"which": "auto"})], short, KEYS)
    assert len(engine.calls) == 1 and engine.calls[0][1] == short


def test_last_draw_as_initial_values():
    output = _chain(1, {})
    init = last_draw(output)
    assert set(init) == {"b_Intercept", "b", "sd_1", "z_1"}
    assert init["z_1"].shape == (1, 2)
    assert init["z_1"][0, 1] == output.values[-1, COLUMNS.index("z_1.1.2")]


def test_read_adaptation_from_stan_comments():
    diagonal = (
        "Adaptation terminated\nStep size = 0.412\nDiagonal elements of inverse mass matrix:\n0.5, 1.25, 2\n"
    )
    adapted = read_adaptation(diagonal)
    assert adapted.stepsize == 0.412
    np.testing.assert_array_equal(adapted.inv_metric, [0.5, 1.25, 2.0])
    dense = "Adaptation terminated\nStep size = 0.2\nElements of inverse mass matrix:\n1, 0.5\n0.5, 2\n"
    np.testing.assert_array_equal(read_adaptation(dense).inv_metric, [[1, 0.5], [0.5, 2]])
    assert read_adaptation("") is None


def _recorded(which: str) -> list[ChainOutput]:
    """Pilots recorded from real fits (tests/data/pilot_orthodont.npz): Orthodont, ``distance ~ age + Sex +
    (age | Subject)``, 4 chains x (1000 warm-up + 200 pilot draws), seed 2, adapt_delta 0.95, with every
    block centered and with auto's choice (partially centered); the key columns only."""
    recorded = np.load(Path(__file__).parent / "data" / "pilot_orthodont.npz")
    columns = tuple(str(c) for c in recorded["columns"])
    seconds = recorded[f"{which}_sampling_seconds"]
    return [
        ChainOutput(c + 1, columns, recorded[which][c], {"sampling": float(seconds[c])})
        for c in range(len(seconds))
    ]


def test_recorded_real_pilots_centered_fails_and_auto_is_chosen():
    """The decision on recorded warm-up statistics of a real case: centered whole, Orthodont's pilot has
    divergences and chains that have not met; auto's choice passes, and the check would switch to it."""
    keys = (("sigma",), 1)
    centered = judge("centered", _recorded("centered"), SETTINGS, keys)
    auto = judge("auto", _recorded("auto"), SETTINGS, keys)
    assert centered.failing and centered.divergences > 0 and centered.max_rhat > PILOT_RHAT
    assert not auto.failing
    assert better(auto, centered) and not better(centered, auto)

    class Recorded:
        def __init__(self):
            self.calls = []

        def sample(self, program, data, settings, progress=None):
            self.calls.append(data["which"])
            if settings.adapted is None:
                return _recorded(data["which"])
            return [_chain(c, {}, draws=settings.iter_sampling) for c in range(1, 5)]

    engine = Recorded()
    candidates = [Candidate("centered", {"which": "centered"}), Candidate("auto", {"which": "auto"})]
    _, ran, notes, _ = sample_checked(engine, None, candidates, SETTINGS, keys)
    assert ran.label == "auto" and engine.calls == ["centered", "auto", "auto"]
    assert "worst" in notes[0] and notes[2] == "switched to auto"


# ---------------------------------------------------------------- real fits (the embedded engine)


@pytest.mark.slow
def test_a_failing_centered_pilot_switches_on_real_data(orthodont):
    """Orthodont (27 subjects of 4 rows, ages 8-14) centered whole diverges (docs/parameterization.md);
    offered auto's choice as the alternative, the check switches to it before the draws are kept, and
    the continued chains have every draw asked for, converged."""
    from lmmformula import diagnostics
    from lmmformula.engines import embedded

    formula = "distance ~ age + Sex + (age | Subject)"
    centered = lf.Model(formula, orthodont, parameterization="centered")
    auto = lf.Model(formula, orthodont)
    assert auto.parameterizations != centered.parameterizations
    assert strip_comments(auto.stan_code) == strip_comments(centered.stan_code)  # one program, other data
    program = embedded.compile_program(auto.stan_code)
    settings = SamplerSettings(
        chains=4, iter_warmup=1000, iter_sampling=1000, seed=2, adapt_delta=0.95, cores=2
    )
    candidates = [Candidate("centered", centered.stan_data), Candidate("auto", auto.stan_data)]
    outputs, ran, notes, delta = sample_checked(embedded, program, candidates, settings, (("sigma",), 1))
    assert ran.label == "auto" and "switched to auto" in notes, notes
    assert delta == 0.95
    assert [len(o.values) for o in outputs] == [1000] * 4
    draws = assemble(outputs)
    assert int(draws.sampler["divergent__"].sum()) <= 2  # auto's own rate here: 0-6 in 5 seeds at 0.8
    labels, flat = draws.flat()
    keys = [
        i for i, label in enumerate(labels) if label.split("[")[0] in ("b_Intercept", "b", "sd_1", "sigma")
    ]
    rhat, bulk, _ = diagnostics.convergence_stats(flat[:, :, keys])
    assert rhat.max() < 1.01 and bulk.min() > 400


@pytest.mark.slow
def test_a_continued_run_is_reproducible_and_whole(sleepstudy):
    """The pilot and its continuation: the same seed gives the same draws, every draw asked for is there,
    the pilot's draws first, and the fit records what the check found."""
    model = lf.Model("Reaction ~ Days + (Days | Subject)", sleepstudy)
    kwargs = dict(chains=2, iter_warmup=300, iter_sampling=300, seed=11, progress=False)
    first, second = model.fit(**kwargs), model.fit(**kwargs)
    assert first.num_draws == 300 and len(first.notes) >= 1 and first.notes[0].startswith("auto")
    for name, values in first.posterior.items():
        np.testing.assert_array_equal(values, second.posterior[name], err_msg=name)
    # the continuation runs at the step size the warm-up adapted (as Stan prints it: 6 digits)
    steps = first.sampler["stepsize__"]
    pilot = 60  # a fifth of 300
    assert np.all(steps[:, :pilot] == steps[:, :1]) and np.all(
        steps[:, pilot:] == steps[:, pilot : pilot + 1]
    )
    np.testing.assert_allclose(steps[:, pilot], steps[:, 0], rtol=1e-5)


@pytest.mark.slow
def test_a_run_too_short_to_converge_warns_with_the_parameters_and_the_fixes(sleepstudy):
    model = lf.Model("Reaction ~ Days + (Days | Subject)", sleepstudy, parameterization="noncentered")
    with pytest.warns(lf.SamplingWarning) as caught:
        model.fit(chains=2, iter_warmup=15, iter_sampling=30, seed=1, progress=False)
    text = str(caught[0].message)
    assert "R-hat above 1.01 for" in text or "bulk ESS below" in text
    assert "b_Intercept" in text or "sd_1[1]" in text or "Intercept" in text
    assert "parameterization=" in text and "iter_warmup=" in text and "adapt_delta=0.95" in text
