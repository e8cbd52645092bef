"""Sampler arguments are checked before anything compiles, with errors that name them."""

from __future__ import annotations

import pytest

from lmmformula.engines import SamplerSettings


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"chains": 0}, r"chains=0: must be an integer >= 1"),
        ({"iter_sampling": 10.5}, r"iter_sampling=10.5"),
        ({"iter_warmup": -1}, r"iter_warmup=-1: must be an integer >= 0"),
        ({"adapt_delta": 1.2}, r"adapt_delta=1.2: must be between 0 and 1"),
        ({"max_treedepth": 0}, r"max_treedepth=0"),
        ({"seed": -3}, r"seed=-3"),
        ({"chains": 2, "init": [{"sigma": 1.0}]}, r"init: a list needs one dict per chain \(2\), got 1"),
    ],
)
def test_bad_sampler_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        SamplerSettings(**arguments)


def test_init_per_chain():
    assert SamplerSettings().init_for(3) == ({}, 2.0)
    assert SamplerSettings(init=0.5).init_for(1) == ({}, 0.5)
    assert SamplerSettings(init={"sigma": 1.0}).init_for(2) == ({"sigma": 1.0}, 2.0)
    per_chain = SamplerSettings(chains=2, init=[{"sigma": 1.0}, {"sigma": 2.0}])
    assert per_chain.init_for(2) == ({"sigma": 2.0}, 2.0)


def test_fit_checks_cores_before_compiling(coffee_model):
    with pytest.raises(ValueError, match=r"cores=0: must be an integer >= 1"):
        coffee_model.fit(cores=0)
