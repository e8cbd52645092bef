"""A fit on disk: one netCDF-4 file that ArviZ (or xarray) reads without lmmformula, and that
:func:`load` turns back into a :class:`~lmmformula.Fit` without the original data or a compile.

The file is an ``xarray.DataTree``:

- ArviZ's groups in the model's names (``posterior``, ``sample_stats``, ``observed_data``,
  ``constant_data``, ``prior``), as :meth:`Fit.to_arviz` makes them;
- ``lmmformula_draws`` / ``lmmformula_sampler`` / ``lmmformula_prior_draws``: the draws under
  Stan's names, exactly as sampled;
- ``lmmformula_data``: the columns the model uses (complete rows), one variable per column;
- root attributes: ``lmmformula_format`` (:data:`FORMAT`), ``lmmformula_format_version``
  (:data:`FORMAT_VERSION`), ``lmmformula_version`` (the writer's) and ``lmmformula_fit``: JSON
  with the model's :meth:`~lmmformula.Model.description` (formula, family, priors,
  parameterization, design: levels, columns; the program), the algorithm's settings, timings,
  problems, and how to read each data column back.

Loading rebuilds the Model from the stored columns (so every level, column name and
stateful transform such as ``center(x)`` is recomputed exactly) and attaches the stored draws.
Files written with ``pickle`` by lmmformula 0.1 still load, with a DeprecationWarning.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import __version__
from .draws import Draws
from .engines.base import ApproximationSettings, SamplerSettings
from .errors import ArgumentError, DesignWarning

if TYPE_CHECKING:
    from .fit import Fit

FORMAT = "lmmformula-fit"
#: Raised when the layout changes in a way an older reader cannot follow.
FORMAT_VERSION = 1
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_DRAWS, _SAMPLER = "lmmformula_draws", "lmmformula_sampler"
_PRIOR, _DATA = "lmmformula_prior_draws", "lmmformula_data"


def save(fit: Fit, path: str | Path) -> None:
    """Write ``fit`` to ``path`` (see the module's description of the layout)."""
    import xarray as xr

    tree = fit.to_arviz(log_likelihood=False, posterior_predictive=False)
    children = {name: tree[name].to_dataset() for name in tree.children}
    children[_DRAWS] = _arrays(fit.posterior)
    children[_SAMPLER] = _arrays(fit.sampler)
    if fit.prior_draws_ is not None:
        children[_PRIOR] = _arrays(fit.prior_draws_.parameters)
    data, columns = _encode_frame(fit.model.data_design.frame)
    children[_DATA] = data
    content = {
        "model": fit.model.description(),
        "backend": fit.backend,
        "method": fit.method,
        "settings": _jsonable(asdict(fit.settings)),
        "timings": {key: float(value) for key, value in fit.timings.items()},
        "problems": list(fit.problems),
        "sample_prior": fit.sample_prior,
        "pareto_k": fit.pareto_k,
        "importance_ess": fit.importance_ess,
        "notes": list(fit.notes),
        "parameterization": fit.parameterization,
        "data_columns": columns,
    }
    out = xr.DataTree.from_dict(children)
    out.attrs.update(tree.attrs)
    out.attrs.update(
        {
            "lmmformula_format": FORMAT,
            "lmmformula_format_version": FORMAT_VERSION,
            "lmmformula_version": __version__,
            "lmmformula_fit": json.dumps(content),
        }
    )
    encoding = {
        f"/{group}": {name: {"zlib": True, "complevel": 4} for name in dataset.data_vars}
        for group, dataset in children.items()
        if group != _DATA
    }
    path = Path(path)
    # into a temporary file beside it, renamed into place: a failed write never leaves half a file, nor
    # destroys the one that was there
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        out.to_netcdf(partial, engine="netcdf4", encoding=encoding)
        os.replace(partial, path)
    except OSError as error:
        raise ArgumentError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        partial.unlink(missing_ok=True)


def load(path: str | Path) -> Fit:
    """Read a fit written by :meth:`Fit.save` (see :func:`lmmformula.load`)."""
    import xarray as xr

    from .fit import Fit
    from .model import Model

    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as error:
        raise ArgumentError(f"cannot read {path}: {error.strerror or error}") from None
    if head != _HDF5_SIGNATURE:
        return _load_pickle(path, head)
    try:
        with xr.open_datatree(path, engine="netcdf4") as opened:
            tree = opened.load()
    except (OSError, ValueError) as error:
        raise ArgumentError(f"{path} is not a readable fit file: {error}") from None
    if tree.attrs.get("lmmformula_format") != FORMAT:
        raise ArgumentError(f"{path} is a netCDF file but not one written by lmmformula's Fit.save")
    written_with = tree.attrs.get("lmmformula_version", "?")
    if int(tree.attrs.get("lmmformula_format_version", 0)) > FORMAT_VERSION:
        raise ArgumentError(
            f"{path} was written by lmmformula {written_with} in fit-file format "
            f"{tree.attrs['lmmformula_format_version']}, newer than this version ({__version__}) reads "
            f"(format {FORMAT_VERSION}): upgrade lmmformula (pip install -U lmmformula); the ArviZ "
            "groups in it open with xarray.open_datatree all the same"
        )
    content = json.loads(tree.attrs["lmmformula_fit"])
    frame = _decode_frame(tree[_DATA].to_dataset(), content["data_columns"])
    model = Model.restore(content["model"], frame)
    if model.stan_code != content["model"]["stan_code"]:
        warnings.warn(
            f"{path.name} was written by lmmformula {written_with}, whose Stan program for this model "
            f"differs from this version's ({__version__}); the saved draws are used as they are. Refit "
            "to get draws from this version's program",
            DesignWarning,
            stacklevel=3,
        )
    settings_type = SamplerSettings if content["method"] == "nuts" else ApproximationSettings
    known = {f.name for f in fields(settings_type)}
    settings = settings_type(**{k: v for k, v in content["settings"].items() if k in known})
    prior = None
    if _PRIOR in tree.children:
        prior = Draws(_read_arrays(tree[_PRIOR].to_dataset()), {})
    return Fit(
        model,
        Draws(_read_arrays(tree[_DRAWS].to_dataset()), _read_arrays(tree[_SAMPLER].to_dataset())),
        settings,
        content["backend"],
        content["timings"],
        tuple(content["problems"]),
        content["sample_prior"],
        prior,
        pareto_k=content["pareto_k"],
        importance_ess=content["importance_ess"],
        notes=tuple(content.get("notes", ())),  # none in files written before the warm-up check
        parameterization=content.get("parameterization"),
    )


def _load_pickle(path: Path, head: bytes) -> Fit:
    """A fit pickled by lmmformula 0.1's Fit.save."""
    if not head.startswith(b"\x80"):
        raise ArgumentError(f"{path} is not a file written by lmmformula's Fit.save")
    warnings.warn(
        f"{path.name} is a pickled fit (lmmformula 0.1): such files only load with a compatible "
        "lmmformula and Python, and unpickling runs code, so load only files you trust. Save it "
        "again (fit.save(path)) to get the portable netCDF format; pickles will stop loading in a "
        "future version",
        DeprecationWarning,
        stacklevel=4,
    )
    with open(path, "rb") as handle:
        try:
            content = pickle.load(handle)
        except Exception as error:  # noqa: BLE001 (any unpickling failure is the same to the user)
            raise ArgumentError(
                f"{path}: a pickled fit this version cannot read ({type(error).__name__}: {error})"
            ) from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise ArgumentError(f"{path} is not a file written by lmmformula's Fit.save")
    return content["fit"]


# ---------------------------------------------------------------- arrays and columns


def _arrays(named: dict[str, np.ndarray]):
    """(chain, draw, ...) arrays as a Dataset with their own dims (``<name>_dim_<k>``)."""
    import xarray as xr

    return xr.Dataset(
        {
            name: (("chain", "draw", *(f"{name}_dim_{k}" for k in range(np.ndim(v) - 2))), np.asarray(v))
            for name, v in named.items()
        }
    )


def _read_arrays(dataset) -> dict[str, np.ndarray]:
    return {str(name): np.asarray(dataset[name].values) for name in dataset.data_vars}


def _encode_frame(frame: pd.DataFrame):
    """The data's columns as variables ``column_<i>`` (netCDF names cannot hold every column
    name), and per column its name and how to read it back."""
    import xarray as xr

    variables, columns = {}, []
    for i, name in enumerate(frame.columns):
        values = frame[name]
        entry: dict = {"name": str(name)}
        if isinstance(values.dtype, pd.CategoricalDtype):
            entry |= {
                "kind": "category",
                "categories": _jsonable(list(values.cat.categories)),
                "ordered": bool(values.cat.ordered),
            }
            stored = values.cat.codes.to_numpy(dtype=np.int64)
        elif pd.api.types.is_bool_dtype(values):
            entry["kind"], stored = "bool", values.to_numpy(dtype=np.int8)
        elif pd.api.types.is_integer_dtype(values):
            entry["kind"], stored = "int", values.to_numpy(dtype=np.int64)
        elif pd.api.types.is_float_dtype(values):
            entry["kind"], stored = "float", values.to_numpy(dtype=float)
        elif values.dtype == object and all(isinstance(v, int | np.integer) and not isinstance(v, bool)
                                            for v in values):  # fmt: skip
            entry["kind"], stored = "object int", values.to_numpy(dtype=np.int64)  # e.g. ids as Python ints
        else:  # labels: as plain objects, or pandas's string dtype
            entry["kind"], stored = "str", np.array([str(v) for v in values], dtype=object)
            entry["dtype"] = str(values.dtype)  # "object", or pandas's "str" / "string"
        variables[f"column_{i}"] = ("row", stored)
        columns.append(entry)
    return xr.Dataset(variables), columns


def _decode_frame(dataset, columns: list[dict]) -> pd.DataFrame:
    out = {}
    for i, entry in enumerate(columns):
        values = np.asarray(dataset[f"column_{i}"].values)
        kind = entry["kind"]
        if kind == "category":
            out[entry["name"]] = pd.Categorical.from_codes(
                values.astype(np.int64), categories=entry["categories"], ordered=entry["ordered"]
            )
        elif kind == "bool":
            out[entry["name"]] = values.astype(bool)
        elif kind == "object int":
            out[entry["name"]] = pd.Series([int(v) for v in values], dtype=object)
        elif kind == "str":
            out[entry["name"]] = _labels([str(v) for v in values], entry.get("dtype", "object"))
        else:
            out[entry["name"]] = values.astype(np.int64 if kind == "int" else float)
    return pd.DataFrame(out)


def _labels(values: list[str], dtype: str) -> pd.Series:
    """Labels in the string dtype they were saved from, as far as this pandas has it."""
    labels = pd.Series(values, dtype=object)
    try:
        return labels.astype(dtype)
    except (TypeError, ValueError):  # a dtype this pandas does not know
        return labels


def _jsonable(value):
    """Settings and categories as JSON values (numpy arrays and scalars as lists and numbers)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
