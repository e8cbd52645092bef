"""The fit file (lmmformula.fitfile): Fit.save writes a netCDF-4 DataTree that ArviZ reads alone, and
lf.load rebuilds a Fit from it without the data or a compile, across versions."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
import warnings

import netCDF4
import numpy as np
import pandas as pd
import pytest

import lmmformula as lf
from lmmformula import fitfile

from .test_results import handmade_fit

FORMULA = "y ~ x + f + (x | g) + (1 | site)"


@pytest.fixture(scope="module")
def fit(toy):
    data = toy.copy()
    data.loc[[3, 7, 11], "x"] = np.nan  # three incomplete rows, dropped and counted
    with pytest.warns(lf.DesignWarning, match="dropped 3 of 240 rows"):
        return handmade_fit(FORMULA, data, seed=4)


@pytest.fixture(scope="module")
def saved(fit, tmp_path_factory):
    path = tmp_path_factory.mktemp("fitfile") / "fit.lmm"
    fit.save(path)
    return path


def _run(code: str, cwd) -> str:
    """Run ``code`` in a fresh Python process (nothing of this one's state); its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=cwd, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_round_trip_gives_the_same_fit(fit, saved):
    loaded = lf.load(saved)
    assert loaded.model.stan_code == fit.model.stan_code
    assert loaded.model.description() == fit.model.description()
    assert loaded.model.nobs == fit.model.nobs == 237
    assert "(3 rows with missing values dropped)" in str(loaded.summary())
    assert str(loaded.summary()) == str(fit.summary())
    for name, values in fit.posterior.items():
        np.testing.assert_array_equal(loaded.posterior[name], values, err_msg=name)
    for name, values in fit.sampler.items():
        np.testing.assert_array_equal(loaded.sampler[name], values, err_msg=name)
    pd.testing.assert_frame_equal(loaded.varcorr(), fit.varcorr())
    pd.testing.assert_frame_equal(loaded.coef()["site"], fit.coef()["site"])
    assert loaded.coef()["site"].index.tolist() == [101, 102, 103, 104, 105]  # the column's own values
    assert loaded.settings == fit.settings and loaded.backend == fit.backend
    assert loaded.model.parameterizations == fit.model.parameterizations


def test_predictions_in_a_fresh_process_without_the_data(fit, saved, toy, tmp_path):
    """Another process, which never sees the fitting data, predicts new rows (a new level of g too)
    exactly as the original fit does with the same seed."""
    newdata = toy.iloc[:6].assign(g=["g1", "g2", "new", "g3", "g4", "g5"])
    newdata.to_csv(tmp_path / "new.csv", index=False)
    out = _run(
        f"""
        import json, pandas as pd, lmmformula as lf
        fit = lf.load({str(saved)!r})
        new = pd.read_csv({str(tmp_path / "new.csv")!r}, dtype={{"g": str, "site": int}})
        print(json.dumps({{
            "epred": fit.posterior_epred(new, allow_new_levels=True, seed=3).tolist(),
            "predict": fit.posterior_predict(new, allow_new_levels=True, seed=3).tolist(),
            "fitted": fit.posterior_epred(seed=3)[:, :5].tolist(),
        }}))
        """,
        tmp_path,
    )
    there = json.loads(out)
    np.testing.assert_array_equal(there["epred"], fit.posterior_epred(newdata, allow_new_levels=True, seed=3))
    np.testing.assert_array_equal(
        there["predict"], fit.posterior_predict(newdata, allow_new_levels=True, seed=3)
    )
    np.testing.assert_array_equal(there["fitted"], fit.posterior_epred(seed=3)[:, :5])


def test_the_file_opens_with_arviz_alone(fit, saved, tmp_path):
    out = _run(
        f"""
        import json, sys, arviz_base
        tree = arviz_base.convert_to_datatree({str(saved)!r})
        assert "lmmformula" not in sys.modules
        post = tree["posterior"]
        print(json.dumps({{
            "groups": sorted(tree.children),
            "x": post["x"].values.tolist(),
            "r_g_dims": list(post["r_g"].dims),
            "levels": [str(v) for v in post["r_g"].coords["g"].values],
            "formula": tree.attrs["formula"],
        }}))
        """,
        tmp_path,
    )
    there = json.loads(out)
    assert {"posterior", "sample_stats", "observed_data", "constant_data"} <= set(there["groups"])
    slopes = fit.posterior["b"][..., list(fit.model.design.fixed_columns).index("x")]
    np.testing.assert_array_equal(there["x"], slopes)
    assert there["r_g_dims"] == ["chain", "draw", "g", "g__term"]
    assert there["levels"] == list(fit.model.design.blocks[0].factor.levels)
    assert there["formula"] == FORMULA


def _set_attributes(path, **attributes) -> None:
    with netCDF4.Dataset(path, "a") as handle:
        for name, value in attributes.items():
            handle.setncattr(name, value)


def test_a_file_from_another_version_loads(fit, saved, tmp_path, monkeypatch):
    older = tmp_path / "older.lmm"
    older.write_bytes(saved.read_bytes())
    _set_attributes(older, lmmformula_version="0.0.9")  # written by an older release, same format
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same program: nothing to say
        pd.testing.assert_frame_equal(lf.load(older).fixef(), fit.fixef())
    monkeypatch.setattr(fitfile, "__version__", "9.9.9")  # read by a newer release
    pd.testing.assert_frame_equal(lf.load(older).fixef(), fit.fixef())


def test_a_different_program_is_said_and_a_newer_format_refused(fit, saved, tmp_path):
    changed = tmp_path / "changed.lmm"
    changed.write_bytes(saved.read_bytes())
    with netCDF4.Dataset(changed, "a") as handle:
        content = json.loads(handle.getncattr("lmmformula_fit"))
        content["model"]["stan_code"] += "\n// as another version wrote it\n"
        handle.setncattr("lmmformula_fit", json.dumps(content))
        handle.setncattr("lmmformula_version", "0.0.9")
    with pytest.warns(lf.DesignWarning, match="written by lmmformula 0.0.9, whose Stan program"):
        loaded = lf.load(changed)
    pd.testing.assert_frame_equal(loaded.fixef(), fit.fixef())

    newer = tmp_path / "newer.lmm"
    newer.write_bytes(saved.read_bytes())
    _set_attributes(newer, lmmformula_format_version=np.int64(fitfile.FORMAT_VERSION + 1))
    with pytest.raises(
        lf.ArgumentError,
        match=r"format 2, newer than this version \(.*\) reads \(format 1\): upgrade lmmformula",
    ):
        lf.load(newer)


def test_old_pickles_load_with_a_deprecation_warning(fit, tmp_path):
    path = tmp_path / "old.pkl"
    with open(path, "wb") as handle:  # what lmmformula 0.1's Fit.save wrote
        pickle.dump({"format": "lmmformula-fit", "version": "0.1.0", "fit": fit}, handle)
    with pytest.warns(DeprecationWarning, match=r"pickled fit .*fit\.save\(path\)"):
        loaded = lf.load(path)
    pd.testing.assert_frame_equal(loaded.fixef(), fit.fixef())


def test_files_that_are_not_fits_are_refused(tmp_path):
    with pytest.raises(lf.ArgumentError, match="cannot read .*missing.lmm"):
        lf.load(tmp_path / "missing.lmm")
    (tmp_path / "text.lmm").write_text("y,x\n1,2\n")
    with pytest.raises(lf.ArgumentError, match="not a file written by lmmformula's Fit.save"):
        lf.load(tmp_path / "text.lmm")
    (tmp_path / "other.pkl").write_bytes(pickle.dumps({"some": "thing"}))
    with pytest.warns(DeprecationWarning), pytest.raises(lf.ArgumentError, match="not a file written"):
        lf.load(tmp_path / "other.pkl")
    with netCDF4.Dataset(tmp_path / "plain.nc", "w") as handle:
        handle.createDimension("n", 2)
    with pytest.raises(lf.ArgumentError, match="netCDF file but not one written by lmmformula"):
        lf.load(tmp_path / "plain.nc")


def test_every_kind_of_column_comes_back(tmp_path):
    """Ordered and unordered categories, booleans, integers, floats and labels, under names that
    netCDF could not hold as variable names."""
    rng = np.random.default_rng(2)
    n = 60
    data = pd.DataFrame(
        {
            "the response": rng.normal(size=n),
            "dose/kg": rng.choice([1, 2, 4], size=n),
            "grade": pd.Categorical(rng.choice(["low", "mid", "high"], size=n), ["low", "mid", "high"], True),
            "treated": rng.choice([True, False], size=n),
            "clinic": rng.choice(["north", "south", "east"], size=n),
            "colour": pd.Categorical(rng.choice(["red", "blue"], size=n)),
        }
    )
    fit = handmade_fit(
        "Q('the response') ~ Q('dose/kg') + grade + treated + colour + (1 | clinic)", data, seed=1
    )
    fit.save(tmp_path / "kinds.lmm")
    loaded = lf.load(tmp_path / "kinds.lmm")
    pd.testing.assert_frame_equal(loaded.model.data_design.frame, fit.model.data_design.frame)
    assert loaded.model.design.fixed_columns == fit.model.design.fixed_columns
    pd.testing.assert_frame_equal(loaded.fixef(), fit.fixef())


@pytest.mark.slow
def test_a_real_fit_round_trip(coffee_fit, tmp_path):
    coffee_fit.save(tmp_path / "coffee.lmm")
    loaded = lf.load(tmp_path / "coffee.lmm")
    assert str(loaded.summary()) == str(coffee_fit.summary())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lf.ComparisonWarning)  # a few large Pareto k, both the same
        assert loaded.loo().elpd == pytest.approx(coffee_fit.loo().elpd, rel=1e-12)
    assert loaded.timings == pytest.approx(coffee_fit.timings)


def test_ids_stored_as_python_ints_keep_their_level_order(tmp_path):
    """An object column of Python ints (ids) as grouping factor: its levels in numeric order come back
    in that order (as text they would sort 1, 10, 11, 2 and the draws would land on other levels)."""
    rng = np.random.default_rng(5)
    data = pd.DataFrame({"y": rng.normal(size=48), "x": rng.normal(size=48)})
    data["id"] = pd.Series([1, 2, 10, 11] * 12, dtype=object)
    fit = handmade_fit("y ~ x + (1 | id)", data, seed=2)
    fit.save(tmp_path / "ids.lmm")
    loaded = lf.load(tmp_path / "ids.lmm")
    assert loaded.model.design.blocks[0].factor.levels == fit.model.design.blocks[0].factor.levels
    pd.testing.assert_frame_equal(loaded.ranef()["id"], fit.ranef()["id"])


def test_a_design_that_comes_back_different_is_refused(fit, saved, tmp_path):
    """Should a version rebuild other levels from the same data, the draws would sit on the wrong ones:
    refused, not silently misread."""
    changed = tmp_path / "levels.lmm"
    changed.write_bytes(saved.read_bytes())
    with netCDF4.Dataset(changed, "a") as handle:
        content = json.loads(handle.getncattr("lmmformula_fit"))
        content["model"]["design"]["blocks"][0]["levels"].reverse()
        handle.setncattr("lmmformula_fit", json.dumps(content))
    with pytest.raises(lf.ArgumentError, match="another design than the saved one .*Refit"):
        lf.load(changed)


def test_a_failed_write_leaves_the_old_file(fit, saved, tmp_path, monkeypatch):
    target = tmp_path / "keep.lmm"
    target.write_bytes(saved.read_bytes())
    import xarray

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xarray.DataTree, "to_netcdf", broken)
    with pytest.raises(lf.ArgumentError, match="cannot write .*No space left"):
        fit.save(target)
    assert target.read_bytes() == saved.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["keep.lmm"]
