"""The cmdstanpy backend, for users who have CmdStan installed.

Same programs, same settings (translated to CmdStan's names), the same chain output at full precision
(``sig_figs=18``: every double round-trips) and the same manners as the embedded engine: progress bars
fed by CmdStan's console lines, nothing else printed (cmdstanpy's logging is held back while it runs),
per-chain warm-up and sampling seconds, and no chain process outliving an interrupt (Ctrl-C, a Jupyter
kernel interrupt, SIGTERM). Executables are cached in the same cache, under ``cmdstan/``.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..cache import cached_build, program_key
from ..errors import EngineError
from .base import (
    Adapted,
    ApproximationSettings,
    ChainOutput,
    CompiledProgram,
    SamplerSettings,
    elapsed,
    killed_message,
    sigterm_unwinds,
    write_stan_json,
)

#: Significant digits of the draws CmdStan writes: 18 makes every double round-trip.
SIG_FIGS = 18
_CONSOLE_LINE = re.compile(r"^Chain \[(\d+)\] ?(.*)$")


def available() -> bool:
    """Whether cmdstanpy finds a CmdStan installation."""
    try:
        import cmdstanpy

        cmdstanpy.cmdstan_path()
    except Exception:  # cmdstanpy raises ValueError, or a broken install anything else
        return False
    return True


def _toolchain() -> str:
    import cmdstanpy

    return f"cmdstan {cmdstanpy.cmdstan_path()} {cmdstanpy.cmdstan_version()}"


def compile_program(code: str, announce: Callable[[], None] | None = None) -> CompiledProgram:
    import cmdstanpy

    key = program_key(code, _toolchain())

    def build(folder: Path) -> None:
        if announce is not None:
            announce()
        (folder / "model.stan").write_text(code)
        compiled = Path(
            _in_worker(lambda: cmdstanpy.compile_stan_file(str(folder / "model.stan")), _COMPILERS)
        )
        if compiled != folder / "model":
            shutil.move(str(compiled), str(folder / "model"))

    started = time.perf_counter()
    try:
        folder, built = cached_build("cmdstan", key, build, required=("model",))
    except (RuntimeError, ValueError) as exc:  # cmdstanpy's compile errors
        raise EngineError(f"CmdStan could not compile the program:\n{exc}") from None
    return CompiledProgram(
        code=code,
        key=key,
        path=folder / "model",
        compile_seconds=time.perf_counter() - started,
        compiled_now=built,
    )


def sample(
    program: CompiledProgram, data: dict, settings: SamplerSettings, progress=None
) -> list[ChainOutput]:
    """Run the chains with cmdstanpy in a worker thread; this thread waits, so an interrupt reaches it,
    and then stops the chain processes before it goes on."""
    import cmdstanpy

    model = cmdstanpy.CmdStanModel(exe_file=str(program.path))
    with sigterm_unwinds():  # around the folder's removal too: SIGTERM ends the process right after
        folder = Path(tempfile.mkdtemp(prefix=f"lmmformula-{os.getpid()}-cmdstan-"))
        try:
            fit, console = _sample_into(model, program, data, settings, progress, folder)
            values = fit.draws(concat_chains=False)  # (draw, chain, column)
            columns = tuple(fit.column_names)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    adapted = [None] * settings.chains
    metric = getattr(fit, "inv_metric", None)
    metric = fit.metric if metric is None else metric  # cmdstanpy < 1.3 names it metric
    if settings.iter_warmup > 0 and fit.step_size is not None and metric is not None:
        adapted = [
            Adapted(float(fit.step_size[chain]), np.asarray(metric[chain]))
            for chain in range(settings.chains)
        ]
    return [
        ChainOutput(
            chain=chain + 1,
            columns=columns,
            values=values[:, chain, :],
            seconds=elapsed(console.messages.get(chain + 1, [])),
            first_message_at=console.first_at.get(chain + 1),
            messages=tuple(console.messages.get(chain + 1, [])),
            adapted=adapted[chain],
        )
        for chain in range(settings.chains)
    ]


def approximate(program: CompiledProgram, data: dict, settings: ApproximationSettings) -> ChainOutput:
    """One run of optimize, laplace, pathfinder (not resampled) or ADVI, read from CmdStan's output file
    as the embedded engine returns it (see :class:`ApproximationSettings`)."""
    import cmdstanpy

    model = cmdstanpy.CmdStanModel(exe_file=str(program.path))
    init, radius = settings.init_for()
    with sigterm_unwinds():
        folder = Path(tempfile.mkdtemp(prefix=f"lmmformula-{os.getpid()}-cmdstan-"))
        try:
            write_stan_json(data, folder / "data.json")
            common = {
                "data": str(folder / "data.json"),
                "seed": settings.seed,
                "output_dir": str(folder),
                "sig_figs": SIG_FIGS,
                "show_console": True,
                "refresh": settings.refresh,
            }
            if init:
                write_stan_json(init, folder / "init.json")
            inits = str(folder / "init.json") if init else radius
            function, arguments = _method_call(model, settings, inits)
            console = _Console(None, single=True)
            with contextlib.redirect_stdout(console):
                _in_worker(
                    lambda: function(**common, **arguments),
                    lambda command: (
                        bool(command) and os.path.realpath(command[0]) == os.path.realpath(program.path)
                    ),
                    lambda error: EngineError(_failure(error, console, 1, None, settings.method)),
                )
            columns, values = _read_csv(_output_file(folder, _FIRST_COLUMN[settings.method]))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return ChainOutput(
        chain=1,
        columns=columns,
        values=values,
        seconds={},
        first_message_at=console.first_at.get(1),
        messages=tuple(console.messages.get(1, [])),
    )


def _method_call(model, settings: ApproximationSettings, inits) -> tuple[Callable, dict]:
    """The cmdstanpy method for ``settings.method`` and its arguments (beyond the common ones)."""
    if settings.method == "optimize":
        return model.optimize, {
            "inits": inits,
            "algorithm": "lbfgs",
            "jacobian": settings.jacobian,
            "iter": settings.iter,
            "require_converged": False,  # said as a problem of the fit, as the embedded engine does
        }
    if settings.method == "laplace":
        optimize = {"inits": inits, "iter": settings.iter, "require_converged": False}
        return model.laplace_sample, {
            "draws": settings.draws,
            "jacobian": settings.jacobian,
            "opt_args": optimize,
        }
    if settings.method == "pathfinder":
        return model.pathfinder, {
            "inits": inits,
            "num_paths": settings.num_paths,
            "num_single_draws": settings.draws,
            "draws": settings.draws,
            "max_lbfgs_iters": settings.iter,
            "psis_resample": False,  # resampled by lmmformula, as for the embedded engine
        }
    return model.variational, {
        "inits": inits,
        "algorithm": settings.method,
        "iter": settings.iter,
        "draws": settings.draws,
        "require_converged": False,
    }


#: The first column of each method's output file (laplace also leaves its optimization's file).
_FIRST_COLUMN = {
    "optimize": "lp__",
    "laplace": "log_p__",
    "pathfinder": "lp_approx__",
    "meanfield": "lp__",
    "fullrank": "lp__",
}


def _output_file(folder: Path, first_column: str) -> Path:
    """The newest CmdStan output file in ``folder`` whose first column is ``first_column``."""
    for path in sorted(folder.glob("*.csv"), key=lambda path: path.stat().st_mtime, reverse=True):
        with open(path) as handle:
            header = next((line for line in handle if not line.startswith("#")), "")
        if header.split(",", 1)[0].strip() == first_column:
            return path
    raise EngineError(f"CmdStan wrote no output file with the column {first_column} in {folder}")


def _read_csv(path: Path) -> tuple[tuple[str, ...], np.ndarray]:
    """A CmdStan output file's column names and values (every row Stan wrote; numpy parses every
    double exactly)."""
    with open(path) as handle:
        lines = [line for line in handle if line.strip() and not line.startswith("#")]
    values = np.loadtxt(lines[1:], delimiter=",", ndmin=2) if len(lines) > 1 else np.empty((0, 0))
    return tuple(lines[0].strip().split(",")), values


def _metric_arguments(model, settings: SamplerSettings) -> dict:
    """cmdstanpy's metric arguments: the metric's kind, and for a continuation (lmmformula.pilot) each
    chain's adapted step size and inverse metric (``inv_metric`` from cmdstanpy 1.3; before, dicts passed
    as ``metric``)."""
    if settings.adapted is None:
        return {"metric": f"{settings.metric}_e"}
    steps = [a.stepsize for a in settings.adapted]
    if "inv_metric" in inspect.signature(model.sample).parameters:
        return {"metric": f"{settings.metric}_e", "inv_metric": [a.inv_metric for a in settings.adapted],
                "step_size": steps}  # fmt: skip
    return {"metric": [{"inv_metric": a.inv_metric.tolist()} for a in settings.adapted], "step_size": steps}


def _sample_into(model, program, data, settings, progress, folder: Path):
    """cmdstanpy's fit, its files in ``folder``, and the console it printed."""
    console = _Console(progress)
    watch = _ChainWatch(folder, settings.chains)
    write_stan_json(data, folder / "data.json")  # as the embedded engine writes it
    with contextlib.redirect_stdout(console):
        fit = _in_worker(
            lambda: model.sample(
                data=str(folder / "data.json"),
                chains=settings.chains,
                parallel_chains=settings.cores,
                iter_warmup=settings.iter_warmup,
                iter_sampling=settings.iter_sampling,
                seed=settings.seed,
                adapt_delta=settings.adapt_delta,
                max_treedepth=settings.max_treedepth,
                **_metric_arguments(model, settings),
                adapt_engaged=settings.adapted is None,
                inits=settings.init,
                refresh=settings.refresh,
                sig_figs=SIG_FIGS,
                show_progress=False,
                show_console=True,  # the lines come to _Console, which feeds the bars
                output_dir=str(folder),
            ),
            lambda command: bool(command) and os.path.realpath(command[0]) == os.path.realpath(program.path),
            lambda error: EngineError(_failure(error, console, settings.chains, watch.killed)),
            watch,
        )
    return fit, console


class _ChainWatch:
    """Watches the chain processes while they run: one that ends without having finished its output
    (its CSV file lacks CmdStan's closing "Elapsed Time" lines) was killed or crashed; the others are
    then stopped, as the embedded engine does, instead of running on to no use."""

    def __init__(self, folder: Path, chains: int) -> None:
        self._folder = folder
        self._chains = chains
        self._pids: dict[int, int] = {}  # chain -> pid
        self._done: set[int] = set()
        self.killed: int | None = None

    def __call__(self, recognize) -> None:
        if self.killed is not None:
            return
        for pid in _descendants(os.getpid()) if len(self._pids) < self._chains else ():  # until all started
            command = _command(pid)
            if recognize(command):
                chain = next((int(part[3:]) for part in command if re.fullmatch(r"id=\d+", part)), 1)
                self._pids.setdefault(chain, pid)
        for chain, pid in self._pids.items():
            if chain in self._done or _alive(pid):
                continue
            if not self._finished(chain):
                self.killed = chain
                _stop_descendants(recognize)
                return
            self._done.add(chain)

    def _finished(self, chain: int) -> bool:
        for path in self._folder.glob(f"*_{chain}.csv"):
            with contextlib.suppress(OSError), open(path, "rb") as handle:
                handle.seek(max(0, path.stat().st_size - 4096))
                if b"Elapsed Time" in handle.read():
                    return True
        return False


#: The processes a CmdStan compile runs (make, stanc and the C++ toolchain).
_COMPILERS = ("make", "stanc", "g++", "c++", "clang++", "cc1plus", "as", "ld", "collect2")


def _in_worker(work, ours, failed=None, watch=None):
    """``work()`` in a worker thread while this one waits, so that Ctrl-C, a kernel interrupt or SIGTERM
    reach it here; then every descendant process that ``ours`` recognizes (its command line; for the
    compile, names in a tuple) is stopped before the interrupt goes on. cmdstanpy's logging is held
    back meanwhile. An exception of ``work`` is raised here, as ``failed(error)`` when given.
    ``watch(recognize)`` is called while waiting (it may stop processes itself)."""
    outcome: dict = {}
    recognize = (
        (lambda command: bool(command) and Path(command[0]).name in ours) if isinstance(ours, tuple) else ours
    )

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 (handed to the waiting thread)
            outcome["error"] = exc

    with sigterm_unwinds(), _quiet():
        worker = threading.Thread(target=run, name="lmmformula-cmdstanpy", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.1)
                if watch is not None:
                    watch(recognize)
        except BaseException:  # no chain or compiler may outlive us
            _stop_descendants(recognize)
            worker.join()
            raise
    if "error" in outcome:
        error = outcome["error"]
        if failed is None or not isinstance(error, Exception):
            raise error
        raise failed(error) from None
    return outcome["value"]


class _Console(io.TextIOBase):
    """Stands in for stdout while cmdstanpy prints CmdStan's console (``Chain [k] <line>``): each line
    goes to the progress callback and is kept per chain (their closing lines give the seconds); other
    text passes through to the real stdout."""

    def __init__(self, progress, single: bool = False) -> None:
        self._progress = progress
        self._single = single  # one process, whose lines cmdstanpy does not prefix: all are chain 1
        self._stdout = sys.stdout  # the stdout this one stands in for
        self._pending = ""
        self.messages: dict[int, list[str]] = {}
        self.first_at: dict[int, float] = {}

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._line(line)
        return len(text)

    def _line(self, line: str) -> None:
        match = _CONSOLE_LINE.match(line)
        if match is None and self._single:
            chain, message = 1, line
        elif match is None:
            if line.strip():
                print(line, file=self._stdout)
            return
        else:
            chain, message = int(match.group(1)), match.group(2)
        self.first_at.setdefault(chain, time.perf_counter())
        self.messages.setdefault(chain, []).append(message)
        if self._progress is not None:
            self._progress(chain, message)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """cmdstanpy's logging held back, as the embedded engine prints nothing but progress: what goes
    wrong comes as an EngineError (or a SamplingWarning) instead."""
    from cmdstanpy.utils import get_logger

    logger = get_logger()  # made (and set to DEBUG) on its first use: make it first
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _failure(
    error: BaseException, console: _Console, chains: int, killed: int | None, method: str = "sampling"
) -> str:
    """An EngineError's text for a failed run: a chain killed by a signal said as the embedded engine says
    it (``killed``: the chain that died first, when the others were stopped for it), else cmdstanpy's
    message and the chains' last error lines."""
    codes = re.search(r"retcodes=\[([-\d, ]+)\]", str(error))  # cmdstanpy's RunSet, one per chain
    signals = (
        {k: -int(c) for k, c in enumerate(codes.group(1).split(","), start=1) if int(c) < 0} if codes else {}
    )
    if signals:
        chain = killed if killed in signals else min(signals)
        who = f"chain {chain}" if method == "sampling" else method
        return killed_message(who, signals[chain], killed is not None and chains > 1)
    lines = [
        f"chain {chain}: {message}"
        for chain, messages in sorted(console.messages.items())
        for message in messages
        if re.search(r"error|exception|rejecting|failed", message, re.IGNORECASE)
    ]
    detail = "\n".join(lines[-8:])
    return f"CmdStan {method} failed: {error}" + (f"\n{detail}" if detail else "")


def _stop_descendants(recognize) -> None:
    """End this process's descendants whose command line ``recognize`` accepts: SIGTERM, then SIGKILL
    after 5 s."""
    mine = [pid for pid in _descendants(os.getpid()) if recognize(_command(pid))]
    for number, patience in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
        for pid in mine:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, number)
        deadline = time.monotonic() + patience
        while mine and time.monotonic() < deadline:
            mine = [pid for pid in mine if _alive(pid)]
            time.sleep(0.05)
        mine = [pid for pid in mine if _alive(pid)]
        if not mine:
            return


def _descendants(root: int) -> list[int]:
    """Every live process below ``root`` (a scan of /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # gone meanwhile
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _command(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline") as handle:
            return [part for part in handle.read().split("\0") if part]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie, waiting for its parent's wait(), does not)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
