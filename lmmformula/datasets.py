"""Example data sets shipped with the package."""

from __future__ import annotations

from importlib import resources

import pandas as pd

# Grouping columns that look numeric are categorical: read them as strings.
_STRING_COLUMNS = {
    "coffee": {"group": str},
    "sleepstudy": {"Subject": str},
    "Orthodont": {"Subject": str},
    "cbpp": {"herd": str, "period": str},
    "InstEval": {"s": str, "d": str, "studage": str, "lectage": str, "service": str, "dept": str},
}


def load_dataset(name: str) -> pd.DataFrame:
    """Load a shipped data set: ``coffee``, ``sleepstudy``, ``Orthodont``, ``cbpp`` or ``InstEval``.

    ``coffee`` is the simulated coffee-roasting competition (100 groups, with the true
    group effects ``b0_ran`` and ``b1_ran``); the others are the classic lme4/nlme data.
    """
    if name not in _STRING_COLUMNS:
        raise ValueError(f"no data set {name!r}; choose one of {', '.join(_STRING_COLUMNS)}")
    folder = resources.files("lmmformula").joinpath("data")
    packed = folder.joinpath(f"{name}.csv.gz")
    if packed.is_file():
        with packed.open("rb") as handle:
            return pd.read_csv(handle, dtype=_STRING_COLUMNS[name], compression="gzip")
    with folder.joinpath(f"{name}.csv").open() as handle:
        return pd.read_csv(handle, dtype=_STRING_COLUMNS[name])
