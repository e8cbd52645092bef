"""Shared fixtures: the shipped data sets, lme4 reference fits (tests/data) and stanc; helpers
that find a process's own descendants in /proc."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmmformula.datasets import load_dataset
from lmmformula.engines import cmdstan
from lmmformula.stanc import check_program, stanc_path

DATA = Path(__file__).parent / "data"

load = load_dataset


# ---------------------------------------------------------------- compiling ahead
#
# A test module may define ``compile_ahead(item) -> Model | None``: the model whose program that test
# will compile. Those programs are compiled in a background thread while the first tests run, so that on
# a fresh cache the machine's second core compiles too (the cache's lock makes a test that needs a
# program being compiled wait for it, never compile it twice). Skipped where CmdStan is installed (the
# tests then run on cmdstanpy).

_ahead: dict = {"stop": threading.Event(), "thread": None}


def pytest_collection_finish(session) -> None:
    if cmdstan.available():
        return
    models = []
    for item in session.items:
        ahead = getattr(getattr(item, "module", None), "compile_ahead", None)
        model = ahead(item) if ahead is not None else None
        if model is not None:
            models.append(model)
    if not models:
        return

    def compile_all() -> None:
        from lmmformula.engines import embedded

        for model in models:
            if _ahead["stop"].is_set():
                return
            try:
                embedded.compile_program(model.stan_code)
            except Exception:  # noqa: BLE001 (the test itself compiles again and reports)
                pass

    _ahead["thread"] = threading.Thread(target=compile_all, name="compile-ahead", daemon=True)
    _ahead["thread"].start()


def pytest_sessionfinish(session) -> None:
    """Let a compile in progress finish (no compiler outlives the session)."""
    _ahead["stop"].set()
    if _ahead["thread"] is not None:
        _ahead["thread"].join()


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


#: The backends present on this machine: the embedded engine always, cmdstanpy where CmdStan is installed.
BACKENDS = ("embedded", "cmdstanpy") if cmdstan.available() else ("embedded",)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Each backend present (tests of behaviour both must share run once per backend)."""
    return request.param


@pytest.fixture(scope="session")
def coffee_model(coffee):
    import lmmformula as lf

    return lf.Model("y ~ x + (x | group)", coffee)


@pytest.fixture(scope="session")
def coffee_fit(coffee_model):
    """The acceptance fit: the defaults, seed 1 (compiles once per machine, then cached)."""
    return coffee_model.fit(seed=1, progress=False)


# ---------------------------------------------------------------- processes, read from /proc


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``: children, grandchildren, ... (a scan of /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # ended meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def command_line(pid: int) -> list[str]:
    """The process's arguments, [""] once it has ended."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return [""]


def chain_workers(pid: int) -> dict[int, int]:
    """The chain processes among the descendants of ``pid``, chain number -> pid: the embedded
    engine's workers, or CmdStan's model executables (``... id=<chain> ... method=sample``; the
    other methods' runs count as chain 1)."""
    workers = {}
    for child in descendants(pid):
        command = command_line(child)
        worker = next((part for part in command if part.endswith("lmmformula/engines/_chain.py")), None)
        if worker is not None:
            draws_path = command[command.index(worker) + 2]
            workers[int(re.search(r"chain(\d+)\.", draws_path).group(1))] = child
        elif any(part.startswith("method=") for part in command):
            number = next((part[3:] for part in command if re.fullmatch(r"id=\d+", part)), "1")
            workers[int(number)] = child
    return workers


def interruptible() -> None:
    """preexec_fn for a child that a test interrupts with SIGINT: the default action restored, as on a
    terminal. A test run started in the background by a non-interactive shell has SIGINT ignored, and
    children inherit that; Python then installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def all_chain_workers(pid: int, chains: int) -> dict[int, int]:
    """``chain_workers(pid)`` once all ``chains`` workers run, else {}."""
    workers = chain_workers(pid)
    return workers if len(workers) == chains else {}


def wait_for(condition, timeout: float, interval: float = 0.1):
    """Poll ``condition()`` until it returns something truthy (returned) or ``timeout`` s pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def prior_arguments(stan_data: dict, parameter_class: str) -> list[float]:
    """The numbers of the one prior on ``parameter_class`` in the Stan data, in argument order: a
    vectorized prior (b, sd) must give every element it covers the same numbers."""
    found = []
    for key, value in stan_data.items():
        if not key.startswith(f"prior_{parameter_class}_") or key.endswith(("_n", "_index")):
            continue
        values = np.unique(np.asarray(value, dtype=float))
        assert len(values) == 1, f"{key}: the elements have different numbers {values}"
        found.append(float(values[0]))
    return found


def assert_ctrl_c_stops_everything(script: str, tmp_path: Path, ready, pause: float) -> None:
    """Run the fit in ``script`` in a fresh Python (temporary files in ``tmp_path``), send it SIGINT
    ``pause`` s after ``ready(pid)`` first returns its chain workers, and check what a user needs: a
    KeyboardInterrupt, no worker left running, no temporary file left behind."""
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        preexec_fn=interruptible,
    )
    try:
        workers = wait_for(lambda: ready(process.pid), 60, interval=0.02)
        assert workers, "the workers never started"
        time.sleep(pause)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode != 0
    assert "KeyboardInterrupt" in err
    assert not [pid for pid in workers.values() if alive(pid)]
    assert list(tmp_path.iterdir()) == []
