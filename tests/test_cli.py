"""The command line (lmmformula.cli), run as users run it: a separate process, on the shipped data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

import lmmformula as lf

SLEEP = "Reaction ~ Days + (Days | Subject)"
CBPP = "incidence | trials(size) ~ period + (1 | herd)"


def run(*args: str, cwd=None, env=None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lmmformula", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def assert_bad_input(done: subprocess.CompletedProcess, *phrases: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and done.stdout == ""
    for phrase in phrases:
        assert phrase in done.stderr, done.stderr


def test_help_and_version():
    script = shutil.which(
        "lmmformula", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    )
    assert script is not None, "pip install puts an lmmformula console script beside python"
    done = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for command in ("fit", "code", "priors", "summary"):
        assert f"    {command} " in done.stdout
    fit_help = run("fit", "--help")
    assert fit_help.returncode == 0 and "--categorical COL" in fit_help.stdout and "--out" in fit_help.stdout
    assert run("--version").stdout.strip() == f"lmmformula {lf.__version__}"
    nothing = run()
    assert nothing.returncode == 2 and "COMMAND" in nothing.stderr


def test_code_prints_the_program(sleepstudy):
    done = run("code", "sleepstudy", SLEEP)
    assert done.returncode == 0, done.stderr
    assert done.stdout == lf.Model(SLEEP, sleepstudy).stan_code


def test_priors_table_with_a_prior_set(cbpp):
    done = run("priors", "cbpp", CBPP, "--family", "binomial", "--prior", "b=normal(0, 1)")
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert rows[0][:4] == ["prior", "class", "coef", "group"]
    expected = lf.Model(CBPP, cbpp, family="binomial", priors=[lf.prior("normal(0, 1)")]).get_prior()
    assert len(rows) == len(expected) + 1
    b_rows = [row for row in rows if row[2:3] == ["b"] or row[1:2] == ["b"]]
    assert any("user" in row for row in b_rows) and "normal(0," in done.stdout


def test_csv_input_with_categorical_columns_and_hints(cbpp, tmp_path):
    """A CSV whose grouping column and period codes are numbers: hints name both; --categorical
    period makes period a factor (three contrasts, as R's cbpp)."""
    csv = tmp_path / "cbpp.csv"
    cbpp.astype({"herd": int, "period": int}).to_csv(csv, index=False)
    plain = run("priors", str(csv), CBPP, "--family", "binomial")
    assert plain.returncode == 0, plain.stderr
    assert "grouping column(s) 'herd' hold numbers" in plain.stderr
    assert (
        "'period' hold a few consecutive whole numbers" in plain.stderr
        and "--categorical period" in plain.stderr
    )
    assert [line.split()[2] for line in plain.stdout.splitlines()[1:] if line.split()[1] == "b"][1:] == [
        "period"
    ]
    coded = run("priors", str(csv), CBPP, "--family", "binomial", "--categorical", "period")
    assert coded.returncode == 0, coded.stderr
    coefficients = [line.split()[2] for line in coded.stdout.splitlines()[1:] if line.split()[1] == "b"][1:]
    assert coefficients == ["period[T.2]", "period[T.3]", "period[T.4]"]
    assert "'period' hold" not in coded.stderr


def test_no_hint_for_numeric_slopes():
    """Days (0-9) and age (8, 10, 12, 14) are slopes: no hint about categories."""
    for data, formula in (("sleepstudy", SLEEP), ("Orthodont", "distance ~ age + (age | Subject)")):
        done = run("code", data, formula)
        assert done.returncode == 0 and "hint" not in done.stderr, done.stderr


def test_parquet_input_gives_the_same_program(sleepstudy, tmp_path):
    sleepstudy.to_parquet(tmp_path / "sleep.parquet")
    done = run("code", str(tmp_path / "sleep.parquet"), SLEEP)
    assert done.returncode == 0, done.stderr
    assert done.stdout == lf.Model(SLEEP, sleepstudy).stan_code


def test_bad_input_exits_2_with_our_message(tmp_path):
    assert_bad_input(run("code", "nowhere.csv", "y ~ x"), "no such file", "shipped data sets")
    assert_bad_input(
        run("code", "sleepstudy", "Reaction ~ Dayz + (1 | Subject)"), "'Dayz'", "did you mean 'Days'"
    )
    assert_bad_input(run("code", "sleepstudy", SLEEP, "--family", "gausian"), "family='gausian'")
    assert_bad_input(run("code", "sleepstudy", SLEEP, "--prior", "normal(0, 1)"), "--prior 'normal(0, 1)'")
    assert_bad_input(run("code", "sleepstudy", SLEEP, "--prior", "b=normal(0)"), "normal")
    assert_bad_input(run("code", "sleepstudy", SLEEP, "--categorical", "days"), "--categorical days", "Days")
    (tmp_path / "broken.csv").write_bytes(b"\xff\xfe\x00bad")
    assert_bad_input(run("code", str(tmp_path / "broken.csv"), "y ~ x"), "cannot read")
    (tmp_path / "fit.lmm").write_text("not a fit")
    assert_bad_input(run("summary", str(tmp_path / "fit.lmm")), "not a file written by lmmformula")
    missing_argument = run("fit", "sleepstudy")
    assert missing_argument.returncode == 2 and "required: formula" in missing_argument.stderr


def test_prior_targets_with_colons_and_checked_options(tmp_path):
    """--prior on an interaction coefficient and on an interaction grouping factor; --prob and --out are
    checked before anything is fitted."""
    done = run(
        "priors", "Orthodont", "distance ~ age * Sex + (1 | Subject:Sex)",
        "--prior", "b:age:Sex[T.Male]=normal(0, 1)", "--prior", "sd::Subject:Sex=exponential(1)",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert ["normal(0,", "1)", "b", "age:Sex[T.Male]", "user"] in rows
    assert ["exponential(1)", "sd", "Subject:Sex", "0", "user"] in rows
    assert_bad_input(run("fit", "sleepstudy", SLEEP, "--prob", "1.5"), "--prob", "between 0 and 1")
    assert_bad_input(run("summary", "fit.lmm", "--prob", "0"), "between 0 and 1")
    assert_bad_input(
        run("fit", "sleepstudy", SLEEP, "--out", str(tmp_path / "no" / "fit.lmm")), "--out", "cannot write"
    )


def test_no_category_hint_for_a_column_already_in_c(cbpp, tmp_path):
    csv = tmp_path / "cbpp.csv"
    cbpp.astype({"herd": int, "period": int}).to_csv(csv, index=False)
    done = run("code", str(csv), "incidence | trials(size) ~ C(period) + (1 | herd)", "--family", "binomial")
    assert done.returncode == 0, done.stderr
    assert "'period'" not in done.stderr


def test_other_failures_exit_1(tmp_path):
    """No C++ compiler for a program the (empty) cache lacks: an EngineError, exit 1, no traceback."""
    env = {**os.environ, "LMMFORMULA_CACHE": str(tmp_path), "CXX": str(tmp_path / "no-such-compiler")}
    done = run("fit", "sleepstudy", SLEEP, "--backend", "embedded", "--quiet", env=env)
    assert done.returncode == 1, done.stderr
    assert "no C++ compiler" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_fit_prints_the_summary_writes_the_fit_and_summary_reads_it(sleepstudy, tmp_path):
    settings = dict(chains=2, iter_warmup=300, iter_sampling=200, seed=3)
    done = run(
        "fit", "sleepstudy", SLEEP, "--chains", "2", "--iter-warmup", "300", "--iter-sampling", "200",
        "--seed", "3", "--backend", "embedded", "--out", "fit.lmm", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with warnings.catch_warnings():  # short chains: the CLI said so on stderr too
        warnings.simplefilter("ignore", lf.SamplingWarning)
        here = lf.Model(SLEEP, sleepstudy).fit(**settings, backend="embedded", progress=False)
    assert "SamplingWarning: Sampling problems" in done.stderr
    assert done.stdout.strip() == str(here.summary()).strip()  # the same draws, from the same seed
    assert "wrote fit.lmm" in done.stderr and (tmp_path / "fit.lmm").is_file()
    again = run("summary", "fit.lmm", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout == done.stdout
    pd.testing.assert_frame_equal(lf.load(tmp_path / "fit.lmm").fixef(), here.fixef())
