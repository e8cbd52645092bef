"""The engines: compile cache, sampling, seeds, clean-up, interrupts. Behaviour both backends share runs
on each backend present (the ``backend`` fixture: the embedded engine, and cmdstanpy where CmdStan is
installed); tests of the embedded engine's own machinery say ``backend="embedded"``.

The coffee model is compiled once per machine and backend (cached); the fits here stay small except
the acceptance fit, which uses the defaults.
"""

from __future__ import annotations

import ast
import asyncio
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import lmmformula as lf
from lmmformula import cache, diagnostics, names
from lmmformula.engines import SamplerSettings, cmdstan, embedded

from .conftest import all_chain_workers, assert_ctrl_c_stops_everything, reference

pytestmark = pytest.mark.slow


def test_coffee_fit_matches_lme4(coffee_fit):
    ref = reference("coffee")
    post = coffee_fit.posterior
    assert int(coffee_fit.sampler["divergent__"].sum()) == 0
    labels, flat = coffee_fit.draws_.flat()
    varying = flat.std(axis=(0, 1)) > 0
    assert np.nanmax(diagnostics.rhat(flat[:, :, varying])) < 1.01
    assert coffee_fit.problems == ()
    for name, draws in (("(Intercept)", post[names.INTERCEPT_AT_ZERO]), ("x", post[names.SLOPES][..., 0])):
        assert abs(draws.mean() - ref["fixef"][name]) < 0.25 * ref["fixef_se"][name], name
    sds = post[names.block(1).sd].mean(axis=(0, 1))
    assert sds[0] == pytest.approx(ref["varcorr"]["group"]["sd"]["(Intercept)"], rel=0.10)
    assert sds[1] == pytest.approx(ref["varcorr"]["group"]["sd"]["x"], rel=0.10)
    assert post["sigma"].mean() == pytest.approx(ref["residual_sd"], rel=0.10)
    assert post[names.block(1).effects].shape == (4, 1000, 100, 2)
    assert coffee_fit.timings["sampling_wall"] > 0


def test_draws_keep_stan_shapes(coffee_fit):
    post = coffee_fit.posterior
    # centered on (Intercept, x), sampled with the intercept at the mean of x: z holds, per level,
    # (intercept + mean(x) * slope, slope), and r = coefficients - (b_Intercept, b), element by element
    one = names.block(1)
    assert coffee_fit.model.stan_data[one.centered] == 2  # both columns
    assert post[one.z].shape == (4, 1000, 2, 100) and post[one.effects].shape == (
        4,
        1000,
        100,
        2,
    )
    mean_x = coffee_fit.model.stan_data[one.design][:, 1].mean()
    slope = post[one.z][:, :, 1, :]
    intercept = post[one.z][:, :, 0, :] - mean_x * slope
    np.testing.assert_allclose(
        post[one.effects][..., 0], intercept - post[names.INTERCEPT_AT_ZERO][..., None], atol=1e-5
    )
    np.testing.assert_allclose(post[one.effects][..., 1], slope - post[names.SLOPES][..., 0, None], atol=1e-5)
    cor = post[one.correlation]
    np.testing.assert_allclose(cor[..., 0, 0], 1.0)
    np.testing.assert_allclose(cor[..., 0, 1], cor[..., 1, 0])


def test_same_seed_gives_identical_draws(coffee_model, backend):
    kwargs = dict(chains=2, iter_warmup=150, iter_sampling=100, seed=42, progress=False, backend=backend)
    with pytest.warns(diagnostics.SamplingWarning):  # short chains: low ESS is expected
        first = coffee_model.fit(**kwargs)
    with pytest.warns(diagnostics.SamplingWarning):
        second = coffee_model.fit(**kwargs)
    for name, values in first.posterior.items():
        np.testing.assert_array_equal(values, second.posterior[name], err_msg=name)
    with pytest.warns(diagnostics.SamplingWarning):
        other = coffee_model.fit(**{**kwargs, "seed": 43})
    assert not np.array_equal(first.posterior["sigma"], other.posterior["sigma"])


def test_quiet_and_clean(coffee_model, capfd, tmp_path, monkeypatch, backend):
    monkeypatch.chdir(tmp_path)
    temp = Path(tempfile.gettempdir())
    before = set(temp.glob("lmmformula-*"))
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.warns(diagnostics.SamplingWarning):
        fit = coffee_model.fit(
            chains=2, iter_warmup=100, iter_sampling=50, seed=3, progress=False, backend=backend
        )
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert fit.backend == backend
    for key in ("warmup_max_chain", "sampling_max_chain", "until_sampler_started"):  # the same timings
        assert 0 < fit.timings[key] < fit.timings["sampling_wall"] + 60, key
    assert list(tmp_path.iterdir()) == []
    assert set(temp.glob("lmmformula-*")) == before
    assert signal.getsignal(signal.SIGTERM) is handler  # the SIGTERM handler lives only while sampling


def test_fit_inside_a_running_event_loop(coffee_model, backend):
    async def notebook_cell():
        return coffee_model.fit(
            chains=1, iter_warmup=100, iter_sampling=50, seed=5, progress=False, backend=backend
        )

    with pytest.warns(diagnostics.SamplingWarning):
        fit = asyncio.run(notebook_cell())
    assert fit.posterior["sigma"].shape == (1, 50)


def _run_python(code: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, **kwargs
    )


def test_renamed_formula_in_a_fresh_process_reuses_the_compiled_model(coffee_model, backend):
    with pytest.warns(diagnostics.SamplingWarning):  # compiled for this backend, if it was not
        coffee_model.fit(chains=1, iter_warmup=20, iter_sampling=10, seed=1, progress=False, backend=backend)
    result = _run_python(
        f"""
        import json, warnings
        import lmmformula as lf
        data = lf.load_dataset("coffee").rename(columns={{"y": "score", "x": "beans", "group": "team"}})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = lf.Model("score ~ beans + (beans | team)", data).fit(
                chains=2, iter_warmup=100, iter_sampling=50, seed=1, progress=False, backend={backend!r})
        print(json.dumps(fit.timings))
        """,
        check=True,
    )
    timings = json.loads(result.stdout)
    assert timings["compiled_now"] == 0.0
    print("fresh process, cached model: sampler started after", timings["until_sampler_started"], "s")


def test_ctrl_c_stops_every_worker(coffee_model, tmp_path, backend):
    """A SIGINT to the Python process alone (``kill -INT``, a Jupyter kernel interrupt) stops every chain
    process, on every backend. Counts only this test's own workers: another fit on the machine does not
    matter."""
    with pytest.warns(diagnostics.SamplingWarning):  # compiled for this backend, if it was not
        coffee_model.fit(chains=1, iter_warmup=20, iter_sampling=10, seed=1, progress=False, backend=backend)
    script = f"""
        import lmmformula as lf
        model = lf.Model("y ~ x + (x | group)", lf.load_dataset("coffee"))
        model.fit(
            chains=2, iter_warmup=20000, iter_sampling=20000, seed=1, progress=False, backend={backend!r}
        )
    """
    assert_ctrl_c_stops_everything(script, tmp_path, lambda pid: all_chain_workers(pid, 2), pause=1.0)


def test_stanc_failure_shows_message_and_line():
    with pytest.raises(
        embedded.EngineError, match=r'(?s)stanc rejected.*";" expected.*line 4 of the generated'
    ):
        embedded.compile_program("parameters {\n  real x;\n  real y\n}\nmodel {\n  x ~ std_normal();\n}\n")


def test_cxx_failure_points_at_the_stan_line(coffee_model):
    from lmmformula.stanc import check_program

    code = coffee_model.stan_code
    cpp = check_program(code, name="model_x")
    target = next(n for n, line in enumerate(code.splitlines(), 1) if "normal_id_glm" in line)
    marker = next(
        n
        for n, line in enumerate(cpp.splitlines(), 1)
        if re.search(r"current_statement__ = (\d+);", line)
        and f"line {target}," in _location(cpp, int(re.search(r"= (\d+);", line).group(1)))
    )
    stderr = f"/x/model_x.cpp:{marker + 2}:7: error: no matching function for call to 'normal_id_glm_lpdf'"
    message = embedded.explain_cxx_failure(stderr, cpp, code)
    assert "no matching function" in message
    assert (
        f"line {target} of the generated program:\n  " in message
        and "normal_id_glm" in message.splitlines()[-1]
    )


def _location(cpp: str, index: int) -> str:
    block = re.search(r"locations_array__ =\s*\{(.*?)\};", cpp, re.DOTALL).group(1)
    return re.findall(r'"([^"]*)"', block)[index]


def _build_once(root: str, log: str) -> None:
    os.environ["LMMFORMULA_CACHE"] = root

    def build(folder: Path) -> None:
        with open(log, "a") as handle:
            handle.write("build\n")
        time.sleep(1.0)
        (folder / "artifact").write_text("complete")

    cache.cached_build("test", "samekey", build)


def test_two_processes_compiling_the_same_program_build_it_once(tmp_path):
    log = tmp_path / "log"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_build_once, args=(str(tmp_path), str(log))) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert log.read_text() == "build\n"
    assert (tmp_path / "test" / "samekey" / "artifact").read_text() == "complete"
    assert [p.name for p in (tmp_path / "test").iterdir() if not p.name.endswith(".lock")] == ["samekey"]


def _warm_up(root: str) -> None:
    os.environ["LMMFORMULA_CACHE"] = root
    print(embedded.warm_up())


FAKE_COMPILER = """\
import sys, time
from pathlib import Path
with open(sys.argv[0] + ".log", "a") as log:
    log.write(Path(sys.argv[sys.argv.index("-o") + 1]).name + "\\n")
time.sleep(1.0)
Path(sys.argv[sys.argv.index("-o") + 1]).write_text("built")
"""


def test_two_processes_warming_up_at_once_build_the_runner_once(tmp_path, monkeypatch):
    """The runner and precompiled header (what the first fit builds before any model) built by two
    processes at once into an empty cache: one builds, the other waits and reuses it. A stand-in for
    g++ (CXX) records each compile, so that the test costs seconds instead of minutes."""
    compiler = tmp_path / "fake-g++"
    compiler.write_text(f"#!{sys.executable}\n{FAKE_COMPILER}")
    compiler.chmod(0o755)
    monkeypatch.setenv("CXX", str(compiler))
    root = tmp_path / "cache"
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", f"from tests.test_engine import _warm_up; _warm_up({str(root)!r})"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parent.parent,
        )
        for _ in range(2)
    ]
    folders = [run.communicate(timeout=60)[0].strip() for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    assert folders[0] == folders[1] and Path(folders[0]).parent == root / "runner"
    built = Path(f"{compiler}.log").read_text().split()
    assert built == ["runner.o", f"{embedded.PRECOMPILED}.gch"]
    assert (Path(folders[0]) / "runner.o").read_text() == "built"
    assert [p.name for p in (root / "runner").iterdir() if not p.name.endswith(".lock")] == [
        Path(folders[0]).name
    ]


def test_cache_key_ignores_comments():
    code = "parameters {\n  real x;  // a comment\n}\nmodel {\n  x ~ std_normal();\n}\n"
    other = code.replace("a comment", "another comment")
    assert cache.program_key(code, "t") == cache.program_key(other, "t")
    assert cache.program_key(code, "t") != cache.program_key(code, "u")


@pytest.mark.skipif(
    not cmdstan.available(), reason="CmdStan is not installed (cmdstanpy.cmdstan_path() failed)"
)
def test_cmdstanpy_backend_gives_the_same_draws(coffee_model):
    """The same program, settings and seed: CmdStan's draws are the embedded engine's at full precision
    (sig_figs=18), and the Fit has the same fields."""
    kwargs = dict(chains=2, iter_warmup=200, iter_sampling=200, seed=11, progress=False)
    with pytest.warns(diagnostics.SamplingWarning):
        cmd = coffee_model.fit(backend="cmdstanpy", **kwargs)
    with pytest.warns(diagnostics.SamplingWarning):
        emb = coffee_model.fit(backend="embedded", **kwargs)
    assert cmd.backend == "cmdstanpy" and emb.backend == "embedded"
    assert set(cmd.posterior) == set(emb.posterior) and set(cmd.sampler) <= set(emb.sampler) | {"lp__"}
    for name, values in emb.posterior.items():
        np.testing.assert_allclose(cmd.posterior[name], values, rtol=1e-9, atol=1e-12, err_msg=name)
    assert set(cmd.timings) == set(emb.timings)


def test_backend_names_are_checked(coffee_model):
    with pytest.raises(ValueError, match="backend='stan'"):
        coffee_model.fit(backend="stan")
    if not cmdstan.available():
        with pytest.raises(RuntimeError, match="needs CmdStan"):
            coffee_model.fit(backend="cmdstanpy")


@pytest.mark.slow
def test_dense_metric_samples_the_same_posterior(coffee_fit, sleepstudy):
    """metric='dense' adapts a full mass matrix (same program): sleepstudy's fixed effects agree with
    lme4 (tests/data/sleepstudy.json) and with the diagonal metric's fit within Monte Carlo error."""
    lme4 = reference("sleepstudy")
    model = lf.Model("Reaction ~ Days + (Days | Subject)", sleepstudy)
    dense = model.fit(chains=2, iter_warmup=500, iter_sampling=500, seed=3, metric="dense", progress=False)
    diag = model.fit(chains=2, iter_warmup=500, iter_sampling=500, seed=3, progress=False)
    assert abs(dense.fixef().loc["Days", "Estimate"] - lme4["fixef"]["Days"]) < 0.5 * lme4["fixef_se"]["Days"]
    difference = dense.fixef()["Estimate"] - diag.fixef()["Estimate"]
    assert (difference.abs() < 4 * dense.fixef()["Est.Error"] / np.sqrt(200)).all()
    # a full metric moves differently: other step sizes than the diagonal one
    assert not np.allclose(dense.sampler["stepsize__"][:, 0], diag.sampler["stepsize__"][:, 0])


def test_metric_must_be_diag_or_dense():
    with pytest.raises(lf.ArgumentError, match="metric='full'"):
        SamplerSettings(metric="full")


def test_the_chain_worker_writes_a_npy_file_numpy_reads(tmp_path):
    from lmmformula.engines._chain import DrawsFile

    draws = DrawsFile(str(tmp_path / "draws.npy"), 3, 7)
    for i in range(21):
        draws.pointer[i] = 0.5 * i - 3
    draws.close()
    expected = (0.5 * np.arange(21) - 3).reshape(3, 7)
    np.testing.assert_array_equal(np.load(tmp_path / "draws.npy"), expected)
    loaded = np.load(tmp_path / "draws.npy", mmap_mode="r")  # as the engine reads it
    assert loaded.dtype == np.float64 and loaded.offset % 64 == 0
    empty = DrawsFile(str(tmp_path / "empty.npy"), 0, 4)
    empty.close()
    assert np.load(tmp_path / "empty.npy").shape == (0, 4)


def test_the_chain_worker_starts_with_the_standard_library_only(tmp_path):
    # the engine starts it with ``python -S`` (no site-packages, so no numpy): it must get as far as
    # loading the library, which here does not exist
    worker = subprocess.run(
        [sys.executable, "-S", str(embedded.WORKER), str(tmp_path / "missing.so"), "d", "", "", "a"],
        capture_output=True,
        text=True,
    )
    assert worker.returncode == embedded.MODULE_FAILED, worker.stderr
    assert "missing.so" in worker.stderr
    # and imports neither numpy nor the package, also where they could be found (PYTHONPATH)
    script = f"import runpy, sys; runpy.run_path({str(embedded.WORKER)!r}); print(sorted(sys.modules))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    loaded = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True, env=env)
    modules = {name.split(".")[0] for name in ast.literal_eval(loaded.stdout)}
    assert "ctypes" in modules and not modules & {"numpy", "lmmformula"}
