"""What every engine takes and gives: a compiled program, sampler settings, chain output."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ArgumentError, EngineError


@dataclass(frozen=True)
class CompiledProgram:
    """A Stan program compiled for one engine; ``path`` is its module or executable."""

    code: str
    key: str
    path: Path
    compile_seconds: float
    compiled_now: bool


@dataclass(frozen=True, eq=False)
class Adapted:
    """What a chain's warm-up adapted: NUTS's step size and the inverse metric (a vector for the
    diagonal metric, a matrix for the dense one)."""

    stepsize: float
    inv_metric: np.ndarray


def read_adaptation(comments: str) -> Adapted | None:
    """The step size and inverse metric from Stan's comment lines after warm-up (``Step size = ...``,
    then the metric's rows after ``... inverse mass matrix:``); None when there are none."""
    lines = [line.lstrip("#").strip() for line in comments.splitlines()]
    step = [float(line.split("=", 1)[1]) for line in lines if line.startswith("Step size =")]
    start = next((i for i, line in enumerate(lines) if line.endswith("inverse mass matrix:")), None)
    if not step or start is None:
        return None
    rows = []
    for line in lines[start + 1 :]:
        if not line or not (line[0].isdigit() or line[0] in "-+."):
            break
        rows.append([float(value) for value in line.split(",")])
    metric = np.array(rows[0]) if "Diagonal" in lines[start] else np.array(rows)
    return Adapted(step[-1], metric)


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings, with CmdStan's meaning and defaults."""

    chains: int = 4
    iter_warmup: int = 1000
    iter_sampling: int = 1000
    seed: int | None = None
    adapt_delta: float = 0.8
    max_treedepth: int = 10
    metric: str = "diag"
    init: float | dict | list[dict] | None = None
    cores: int = 1
    refresh: int = 100
    # a continuation of adapted chains: per chain the step size and inverse metric its warm-up ended
    # with (and its last draw as init); no warm-up then, and no adaptation
    adapted: tuple[Adapted, ...] | None = None

    def __post_init__(self) -> None:
        if self.adapted is not None and (len(self.adapted) != self.chains or self.iter_warmup != 0):
            raise ArgumentError("a continuation takes one adapted state per chain and no warm-up")
        for name in ("chains", "iter_warmup", "iter_sampling", "max_treedepth", "cores", "refresh"):
            value = getattr(self, name)
            minimum = 0 if name == "iter_warmup" else 1
            if not isinstance(value, int | np.integer) or value < minimum:
                raise ArgumentError(f"{name}={value!r}: must be an integer >= {minimum}")
        if self.metric not in ("diag", "dense"):
            raise ArgumentError(
                f"metric={self.metric!r}: 'diag' (a diagonal mass matrix, the default) or 'dense' "
                "(a full one, for few parameters with strong posterior correlations)"
            )
        if not 0 < self.adapt_delta < 1:
            raise ArgumentError(f"adapt_delta={self.adapt_delta!r}: must be between 0 and 1, e.g. 0.95")
        if self.seed is not None and not (isinstance(self.seed, int | np.integer) and 0 <= self.seed < 2**31):
            raise ArgumentError(f"seed={self.seed!r}: must be an integer in [0, 2**31)")
        if isinstance(self.init, list) and len(self.init) != self.chains:
            raise ArgumentError(
                f"init: a list needs one dict per chain ({self.chains}), got {len(self.init)}"
            )

    def init_for(self, chain: int) -> tuple[dict, float]:
        """Initial values and init radius for chain ``chain`` (1-based)."""
        if self.init is None:
            return {}, 2.0
        if isinstance(self.init, int | float):
            return {}, float(self.init)
        if isinstance(self.init, list):
            return dict(self.init[chain - 1]), 2.0
        return dict(self.init), 2.0


APPROXIMATIONS = ("optimize", "laplace", "pathfinder", "meanfield", "fullrank")
METHODS = ("nuts", *APPROXIMATIONS)
#: Most iterations of each method's optimizer (laplace's finds its mode) or of ADVI by default (CmdStan's).
DEFAULT_ITER = {"optimize": 2000, "laplace": 2000, "pathfinder": 1000, "meanfield": 10000, "fullrank": 10000}


@dataclass(frozen=True)
class ApproximationSettings:
    """Settings of the algorithms other than NUTS, with CmdStan's meaning and defaults.

    What an engine's ``approximate`` returns, per method (Stan's own output): ``optimize``
    one row (``lp__`` and the values at the optimum); ``laplace`` ``draws`` rows (``log_p__``,
    ``log_q__``) around the mode L-BFGS finds with the same ``jacobian``; ``pathfinder``
    every path's ``draws`` draws (``lp_approx__``, ``lp__``), not resampled; ``meanfield`` and
    ``fullrank`` the approximation's mean, then ``draws`` draws (``lp__``, ``log_p__``,
    ``log_g__``). ``jacobian`` and ``iter`` left as None take the method's defaults (cmdstanpy's:
    a Jacobian for laplace only; :data:`DEFAULT_ITER`).
    """

    method: str
    draws: int = 1000
    jacobian: bool | None = None
    num_paths: int = 4
    iter: int | None = None
    seed: int | None = None
    init: float | dict | None = None
    refresh: int = 100

    def __post_init__(self) -> None:
        if self.method not in APPROXIMATIONS:
            raise ArgumentError(f"method={self.method!r} is not one of {', '.join(map(repr, METHODS))}")
        if self.jacobian is None:
            object.__setattr__(self, "jacobian", self.method == "laplace")
        if not isinstance(self.jacobian, bool | np.bool_):
            raise ArgumentError(f"jacobian={self.jacobian!r}: must be True or False")
        if self.iter is None:
            object.__setattr__(self, "iter", DEFAULT_ITER[self.method])
        for name in ("draws", "num_paths", "iter", "refresh"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ArgumentError(f"{name}={value!r}: must be an integer >= 1")
        if self.seed is not None and not (isinstance(self.seed, int | np.integer) and 0 <= self.seed < 2**31):
            raise ArgumentError(f"seed={self.seed!r}: must be an integer in [0, 2**31)")
        if isinstance(self.init, list | str):
            raise ArgumentError(f"init: method={self.method!r} takes a radius or one dict of initial values")

    def init_for(self) -> tuple[dict, float]:
        """Initial values and init radius."""
        if self.init is None:
            return {}, 2.0
        if isinstance(self.init, int | float):
            return {}, float(self.init)
        return dict(self.init), 2.0


def default_cores() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True, eq=False)
class ChainOutput:
    """The draws of one chain: Stan's flat column names and a (draws, columns) array."""

    chain: int
    columns: tuple[str, ...]
    values: np.ndarray
    seconds: dict[str, float]
    first_message_at: float | None = None  # time.perf_counter() when the chain first reported
    messages: tuple[str, ...] = ()  # Stan's messages, in order
    adapted: Adapted | None = None  # what its warm-up adapted (None without one)


def killed_message(who: str, number: int, others: bool) -> str:
    """What to say when the process of ``who`` ("chain 2", or an algorithm's run) was killed by signal
    ``number``."""
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = "an unknown signal"
    message = f"{who} was killed by signal {name} ({number})"
    if number == signal.SIGKILL:
        message += ", e.g. by the out-of-memory killer"
    elif number in (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGFPE, signal.SIGILL):
        message += ": a crash in the compiled model or in Stan"
    elif number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        message += " sent from outside this process"
    if others:
        message += "; the other chains were stopped"
    return message


def elapsed(messages: list[str]) -> dict[str, float]:
    """Warm-up and sampling seconds from Stan's closing log lines."""
    seconds = {}
    for message in messages:
        match = re.search(r"([\d.]+) seconds \((Warm-up|Sampling)\)", message)
        if match:
            seconds[match.group(2).lower()] = float(match.group(1))
    return seconds


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """While compiling or sampling in the main thread, SIGTERM (a job scheduler, a kernel
    restart) unwinds like Ctrl-C does, stopping the compiler or the workers and removing
    the temporary folder, and then has its usual effect: the previous handler is
    restored and called, or, for the default one, the process ends by SIGTERM."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
    if previous in (None, signal.SIG_IGN) or getattr(previous, "_lmmformula", False):
        yield  # not the main thread, SIGTERM ignored, handler not set from Python, or nested
        return
    received = []

    def unwind(signum, frame):
        if not received:  # a second SIGTERM does not interrupt the clean-up
            received.append(frame)
            raise SystemExit(128 + signum)

    unwind._lmmformula = True
    signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    except BaseException:
        if not received:
            raise
        signal.signal(signal.SIGTERM, previous)
        if previous is signal.SIG_DFL:
            os.kill(os.getpid(), signal.SIGTERM)  # ends the process, as if we had not been here
        else:
            previous(signal.SIGTERM, received[0])
        raise EngineError("compiling or sampling was stopped by SIGTERM") from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_stan_json(values: dict, path: Path) -> None:
    """Stan data or initial values as Stan's JSON: integers stay integers, arrays nest."""

    def plain(value):
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.integer | bool | np.bool_):
            return int(value)
        if isinstance(value, np.floating):
            return float(value)
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    path.write_text(json.dumps({name: plain(value) for name, value in values.items()}))
