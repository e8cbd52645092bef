"""Shared fixtures: the shipped data sets, lme4 reference fits (tests/data) and stanc."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmmformula.datasets import load_dataset
from lmmformula.stanc import check_program, stanc_path

DATA = Path(__file__).parent / "data"

load = load_dataset


def reference(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


@pytest.fixture(scope="session")
def coffee() -> pd.DataFrame:
    return load("coffee")


@pytest.fixture(scope="session")
def sleepstudy() -> pd.DataFrame:
    return load("sleepstudy")


@pytest.fixture(scope="session")
def orthodont() -> pd.DataFrame:
    return load("Orthodont")


@pytest.fixture(scope="session")
def cbpp() -> pd.DataFrame:
    return load("cbpp")


@pytest.fixture(scope="session")
def toy() -> pd.DataFrame:
    """Small simulated data with every kind of column the formula corpus needs."""
    rng = np.random.default_rng(20261124)
    n = 240
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "z": rng.normal(size=n),
            "pos": rng.uniform(0.5, 3.0, size=n),
            "f": rng.choice(["lo", "mid", "hi"], size=n),
            "g": rng.choice([f"g{i}" for i in range(12)], size=n),
            "a": rng.choice(["a1", "a2", "a3", "a4"], size=n),
            "b": rng.choice(["b1", "b2", "b3"], size=n),
            "site": rng.choice([101, 102, 103, 104, 105], size=n),  # numeric grouping column
        }
    )
    frame["y"] = 1.5 + 0.8 * frame.x + rng.normal(size=n)
    frame["count"] = rng.poisson(np.exp(0.3 + 0.4 * frame.x))
    frame["yes"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-frame.x))).astype(int)
    frame["trials"] = rng.integers(1, 8, size=n)
    frame["hits"] = rng.binomial(frame.trials, 0.4)
    return frame


@pytest.fixture(scope="session")
def stanc():
    """Checks a program with the stanc bundled in httpstan; returns the generated C++."""
    assert stanc_path().is_file(), "httpstan's stanc is missing"
    return check_program


@pytest.fixture(scope="session")
def coffee_model(coffee):
    import lmmformula as lf

    return lf.Model("y ~ x + (x | group)", coffee)


@pytest.fixture(scope="session")
def coffee_fit(coffee_model):
    """The acceptance fit: the defaults, seed 1 (compiles once per machine, then cached)."""
    return coffee_model.fit(seed=1, progress=False)
