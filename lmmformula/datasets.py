"""Example data sets shipped with the package."""

from __future__ import annotations

from importlib import resources

import pandas as pd

from .errors import ArgumentError

# Grouping columns that look numeric are categorical: read them as strings.
_STRING_COLUMNS = {
    "coffee": {"group": str},
    "sleepstudy": {"Subject": str},
    "Orthodont": {"Subject": str},
    "cbpp": {"herd": str, "period": str},
    "InstEval": {"s": str, "d": str, "studage": str, "lectage": str, "service": str, "dept": str},
}
DATASETS = tuple(_STRING_COLUMNS)  # the names load_dataset knows


def load_dataset(name: str) -> pd.DataFrame:
    """Load a data set shipped with lmmformula.

    Parameters
    ----------
    name : str
        ``"coffee"`` (the simulated coffee-roasting competition: 100 groups, with the true
        group effects ``b0_ran`` and ``b1_ran``), or one of the classic lme4/nlme data sets
        ``"sleepstudy"``, ``"Orthodont"``, ``"cbpp"``, ``"InstEval"``.

    Returns
    -------
    pandas.DataFrame
        A new frame; grouping columns that look numeric are read as strings.
    """
    if name not in _STRING_COLUMNS:
        raise ArgumentError(f"no data set {name!r}; choose one of {', '.join(_STRING_COLUMNS)}")
    folder = resources.files("lmmformula").joinpath("data")
    packed = folder.joinpath(f"{name}.csv.gz")
    if packed.is_file():
        with packed.open("rb") as handle:
            return pd.read_csv(handle, dtype=_STRING_COLUMNS[name], compression="gzip")
    with folder.joinpath(f"{name}.csv").open() as handle:
        return pd.read_csv(handle, dtype=_STRING_COLUMNS[name])
