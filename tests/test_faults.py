"""Faults of the embedded engine, with real processes and real signals: a broken compile
cache, a worker killed from outside, Ctrl-C and SIGTERM while compiling or sampling, and
progress output that is not a terminal.

Every process check looks only at this test's own descendants (read from /proc), so
another fit running on the machine does not disturb it.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shutil
import signal
import struct
import subprocess
import sys
import termios
import textwrap
from pathlib import Path

import pytest

import lmmformula as lf
from lmmformula import cache
from lmmformula.engines import embedded
from lmmformula.engines.base import CompiledProgram, SamplerSettings

from .conftest import alive, all_chain_workers, command_line, descendants, interruptible, wait_for

# ---------------------------------------------------------------- the cache (no compiler)


def _fake_build(log: list):
    def build(folder: Path) -> None:
        log.append(folder)
        (folder / "module.so").write_bytes(b"\x7fELF" + bytes(1000))
        (folder / "model.stan").write_text("model {}\n")

    return build


def _corrupt_missing_module(entry: Path) -> None:
    (entry / "module.so").unlink()


def _corrupt_truncated_module(entry: Path) -> None:
    with open(entry / "module.so", "r+b") as handle:
        handle.truncate(100)


def _corrupt_missing_marker(entry: Path) -> None:
    (entry / cache.MARKER).unlink()


def _corrupt_unreadable_marker(entry: Path) -> None:
    (entry / cache.MARKER).write_text('{"files": ')


@pytest.mark.parametrize(
    ("corrupt", "problem"),
    [
        (_corrupt_missing_module, "module.so is missing"),
        (_corrupt_truncated_module, "module.so has 100 bytes instead of 1004"),
        (_corrupt_missing_marker, "no complete.json marker"),
        (_corrupt_unreadable_marker, "unreadable complete.json marker"),
    ],
)
def test_broken_cache_entry_is_rebuilt_with_a_warning(tmp_path, monkeypatch, corrupt, problem):
    monkeypatch.setenv("LMMFORMULA_CACHE", str(tmp_path))
    builds = []
    entry, built = cache.cached_build("test", "key", _fake_build(builds), required=("module.so",))
    assert built and cache.entry_problem(entry, ("module.so",)) is None
    assert cache.cached_build("test", "key", _fake_build(builds)) == (entry, False)
    corrupt(entry)
    expected = f"compile cache entry {re.escape(str(entry))} was incomplete/corrupt \\({problem}\\)"
    with pytest.warns(RuntimeWarning, match=expected + "; rebuilding"):
        again, built = cache.cached_build("test", "key", _fake_build(builds), required=("module.so",))
    assert (again, built) == (entry, True) and len(builds) == 2
    assert cache.entry_problem(entry, ("module.so",)) is None
    assert sorted(p.name for p in (tmp_path / "test").iterdir()) == ["key", "key.lock"]


def test_half_written_folder_without_a_marker_is_rebuilt(tmp_path, monkeypatch):
    """A folder put in place by hand (an interrupted copy) has no marker."""
    monkeypatch.setenv("LMMFORMULA_CACHE", str(tmp_path))
    (tmp_path / "test" / "key").mkdir(parents=True)
    (tmp_path / "test" / "key" / "module.so").write_bytes(b"\x7fELF")
    with pytest.warns(RuntimeWarning, match="no complete.json marker"):
        entry, built = cache.cached_build("test", "key", _fake_build([]), required=("module.so",))
    assert built and (entry / "module.so").stat().st_size == 1004


def test_interrupted_build_leaves_no_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMFORMULA_CACHE", str(tmp_path))

    def build(folder: Path) -> None:
        (folder / "module.so").write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.cached_build("test", "key", build)
    assert [p.name for p in (tmp_path / "test").iterdir()] == ["key.lock"]


# ---------------------------------------------------------------- the real engine


def _program(coffee_model) -> CompiledProgram:
    """The coffee program, compiled into the default cache (a cache hit after the first run)."""
    return embedded.compile_program(coffee_model.stan_code)


def _copy_entry(program: CompiledProgram, root: Path) -> Path:
    copy = root / "embedded" / program.key
    shutil.copytree(program.path.parent, copy)
    return copy


def _spoil_module(module: Path) -> None:
    """Same size (the marker still matches), but no longer a shared object."""
    with open(module, "r+b") as handle:
        handle.write(bytes(64))


@pytest.mark.slow
def test_truncated_module_is_detected_before_sampling(coffee_model, tmp_path, monkeypatch):
    """compile_program finds the truncated module; the rebuild is stood in for by a copy of
    the good entry, so no compiler runs."""
    program = _program(coffee_model)
    monkeypatch.setenv("LMMFORMULA_CACHE", str(tmp_path))
    copy = _copy_entry(program, tmp_path)
    with open(copy / embedded.MODULE_NAME, "r+b") as handle:
        handle.truncate(4096)
    good = program.path.parent

    def copy_good_entry(code: str, key: str, folder: Path) -> None:
        for path in good.iterdir():
            if path.name != cache.MARKER:
                shutil.copy(path, folder / path.name)

    monkeypatch.setattr(embedded, "_build", copy_good_entry)
    broken = f"{re.escape(str(copy))} was incomplete/corrupt"
    with pytest.warns(RuntimeWarning, match=f"{broken} .*has 4096 bytes"):
        rebuilt = embedded.compile_program(coffee_model.stan_code)
    assert rebuilt.compiled_now and rebuilt.path == copy / embedded.MODULE_NAME
    assert rebuilt.path.stat().st_size == program.path.stat().st_size


@pytest.mark.slow
def test_module_that_fails_to_load_right_after_its_compile_is_a_clear_error(coffee_model, tmp_path):
    program = _program(coffee_model)
    copy = _copy_entry(program, tmp_path)
    _spoil_module(copy / embedded.MODULE_NAME)
    fresh = CompiledProgram(
        code=program.code,
        key=program.key,
        path=copy / embedded.MODULE_NAME,
        compile_seconds=0.0,
        compiled_now=True,  # just built: no second build is tried
    )
    settings = SamplerSettings(chains=2, iter_warmup=10, iter_sampling=10, cores=2)
    with pytest.raises(lf.EngineError) as raised:
        embedded.sample(fresh, coffee_model.stan_data, settings)
    message = str(raised.value)
    assert f"the compiled model {fresh.path} failed to load in the worker process" in message
    assert "OSError" in message and f"Delete the folder {copy}" in message
    assert "Traceback" not in message


@pytest.mark.slow
def test_cached_module_that_fails_to_load_is_rebuilt(coffee_model, tmp_path, monkeypatch):
    """One real compile: the module keeps its size (the marker matches), the workers cannot
    load it, the entry is rebuilt and the fit goes on. The runner is the default cache's (linked),
    so that the compile is the model's alone (not two more minutes for the runner)."""
    program = _program(coffee_model)
    runner = embedded.warm_up()
    monkeypatch.setenv("LMMFORMULA_CACHE", str(tmp_path))
    (tmp_path / "runner").mkdir()
    (tmp_path / "runner" / runner.name).symlink_to(runner, target_is_directory=True)
    copy = _copy_entry(program, tmp_path)
    _spoil_module(copy / embedded.MODULE_NAME)
    broken = f"{re.escape(str(copy))} was incomplete/corrupt"
    with pytest.warns(RuntimeWarning, match=f"{broken} .*failed to load"):
        with pytest.warns(lf.SamplingWarning):  # short chains
            fit = coffee_model.fit(
                chains=2, iter_warmup=100, iter_sampling=50, seed=1, progress=False, backend="embedded"
            )
    assert fit.posterior["sigma"].shape == (2, 50)
    assert cache.entry_problem(copy, (embedded.MODULE_NAME,)) is None
    assert (copy / embedded.MODULE_NAME).read_bytes()[:4] == b"\x7fELF"


# ---------------------------------------------------------------- signals, in a child process

_LONG_FIT = """
import sys
import lmmformula as lf
model = lf.Model("y ~ x + (x | group)", lf.load_dataset("coffee"))
try:
    model.fit(chains=2, iter_warmup=20000, iter_sampling=20000, seed=1, progress=False)
except lf.EngineError as error:
    print(error)
    sys.exit(3)
"""


def _start_fit(tmp_path: Path, code: str = _LONG_FIT, **env: str) -> subprocess.Popen:
    """A child python running ``code`` with its own TMPDIR (tmp_path / "tmp")."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(temp), **env},
        preexec_fn=interruptible,
    )


def _workers_of(process: subprocess.Popen) -> dict[int, int]:
    workers = wait_for(lambda: all_chain_workers(process.pid, 2), 60)
    if not workers:
        process.kill()
        pytest.fail(f"the workers never started: {process.communicate()}")
    return workers


@pytest.mark.slow
def test_worker_killed_from_outside_names_the_chain_and_stops_the_others(coffee_fit, tmp_path):
    process = _start_fit(tmp_path)
    try:
        workers = _workers_of(process)
        wait_for(lambda: False, 1.0)  # let the chains get going
        os.kill(workers[2], signal.SIGKILL)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 3, err
    assert out.startswith(
        "chain 2 was killed by signal SIGKILL (9), e.g. by the out-of-memory killer; "
        "the other chains were stopped"
    )
    assert "Traceback" not in out + err
    assert not alive(workers[1])
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.slow
def test_sigterm_while_sampling_stops_the_workers_and_removes_the_temporary_folder(coffee_fit, tmp_path):
    process = _start_fit(tmp_path)
    try:
        workers = _workers_of(process)
        folders = list((tmp_path / "tmp").glob(f"lmmformula-{process.pid}-*"))
        assert len(folders) == 1 and (folders[0] / "data.json").exists()
        wait_for(lambda: False, 1.0)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGTERM  # ended by SIGTERM, as without lmmformula
    assert wait_for(lambda: not [pid for pid in workers.values() if alive(pid)], 5)
    # (cmdstanpy's own folder, made when it is imported and removed at a normal exit, may stay)
    assert list((tmp_path / "tmp").glob("lmmformula-*")) == []


_COMPILERS = ("g++", "c++", "cc1plus", "as", "ld", "collect2")


@pytest.mark.slow
def test_ctrl_c_while_compiling_leaves_no_cache_entry_and_no_compiler(coffee_fit, tmp_path):
    """A fresh compile into an empty cache, interrupted once cc1plus runs."""
    root = tmp_path / "cache"
    process = _start_fit(tmp_path, LMMFORMULA_CACHE=str(root))

    def name(pid: int) -> str:
        return Path(command_line(pid)[0]).name

    def compilers() -> list[int]:
        return [pid for pid in descendants(process.pid) if name(pid) in _COMPILERS]

    try:
        running = wait_for(lambda: [pid for pid in compilers() if name(pid) == "cc1plus"], 120)
        assert running, f"the compiler never started: {process.communicate(timeout=5)}"
        wait_for(lambda: False, 2.0)
        seen = compilers()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode != 0 and "KeyboardInterrupt" in err
    assert wait_for(lambda: not [pid for pid in seen if alive(pid)], 5), "a compiler outlived the fit"
    for engine in ("embedded", "cmdstan"):  # whichever backend "auto" chose
        if (root / engine).exists():
            assert [p.name for p in (root / engine).iterdir() if not p.name.endswith(".lock")] == []
    assert list((tmp_path / "tmp").iterdir()) == []


# ---------------------------------------------------------------- progress output

_SHORT_FIT = """
import warnings
import lmmformula as lf
warnings.simplefilter("ignore", lf.SamplingWarning)
model = lf.Model("y ~ x + (x | group)", lf.load_dataset("coffee"))
model.fit(chains=2, iter_warmup=100, iter_sampling=50, seed=1)
"""


@pytest.mark.slow
def test_progress_to_a_file_is_one_plain_line_per_chain(coffee_fit, tmp_path):
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        subprocess.run(
            [sys.executable, "-c", _SHORT_FIT], stdin=subprocess.DEVNULL, stderr=stderr, check=True
        )
    text = log.read_text()
    assert "\r" not in text and "\x1b" not in text
    finished = re.findall(
        r"^chain (\d) finished: 100 warm-up \+ 50 sampling iterations in \d+\.\d s$", text, re.MULTILINE
    )
    assert sorted(finished) == ["1", "2"]
    assert len(text.splitlines()) == 2, text


@pytest.mark.slow
def test_progress_on_a_terminal_draws_bars(coffee_fit):
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 0 columns: no bars
    process = subprocess.Popen(
        [sys.executable, "-c", _SHORT_FIT], stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            block = os.read(controller, 1 << 16)
        except OSError:  # EIO: the child closed the terminal
            break
        if not block:
            break
        output += block
    os.close(controller)
    assert process.wait(timeout=60) == 0
    text = output.decode(errors="replace")
    assert "chain 1 (sampling): 100%" in text and "chain 2 (sampling): 100%" in text
    assert "finished:" not in text


def test_compile_message_says_what_why_and_how_long(capsys):
    from lmmformula.model import _announce_compile

    _announce_compile()
    message = capsys.readouterr().err
    assert "for this model structure" in message and str(cache.cache_root()) in message
    assert len(re.findall(r"\d+-\d+ s", message)) == 1 and "60-120 s" in message


def test_cache_info_and_clear_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMFORMULA_CACHE", str(tmp_path / "cache"))
    assert lf.cache_info().entries == {} and lf.cache_info().size_bytes == 0

    def build(folder: Path) -> None:
        (folder / "model.so").write_bytes(b"x" * 1000)

    cache.cached_build("embedded", "aaa", build)
    cache.cached_build("embedded", "bbb", build)
    cache.cached_build("runner", "ccc", build)
    (tmp_path / "cache" / "embedded" / "broken").mkdir()  # no marker: not counted
    info = lf.cache_info()
    assert info.root == tmp_path / "cache"
    assert info.entries == {"embedded": 2, "runner": 1}
    assert info.size_bytes >= 3000
    assert "2 embedded, 1 runner" in str(info)
    freed = lf.clear_cache()
    assert freed >= 3000
    assert lf.cache_info().entries == {}
    assert not (tmp_path / "cache" / "embedded" / "aaa").exists()
