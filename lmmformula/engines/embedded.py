"""The embedded engine: Stan's NUTS built from the httpstan wheel's toolchain, no server.

Compiling: lmmformula's runner (``native/runner.cpp``, a small C interface over Stan's
sampling services) is compiled once per toolchain; each program is translated by stanc
(bundled), compiled on its own and linked with the runner into a shared library. Both
are cached (see :mod:`lmmformula.cache`). Only the wheel's stanc, Stan headers and TBB
are used, not httpstan's own module. Sampling: each chain runs in its own worker
process (``_chain.py``), which loads the library with ctypes and has Stan write the
draws as float64 straight into a file this process maps as a numpy array; Stan's
messages come over the worker's stdout and drive the progress bars.

Faults: a cached module that fails to load in a worker is rebuilt once; a worker that
dies raises :class:`EngineError` naming the chain and stops the others; Ctrl-C, an
exception or SIGTERM (handled while compiling or sampling in the main thread) stop
the compiler or the workers and remove the temporary folder before leaving.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import httpstan
import numpy as np

from ..cache import cache_root, cached_build, discard, program_key
from ..errors import EngineError
from ..stanc import PROGRAM_NAME, StanCompileError, check_program, with_program_line
from ._chain import MODULE_FAILED
from .base import (
    ApproximationSettings,
    ChainOutput,
    CompiledProgram,
    SamplerSettings,
    elapsed,
    killed_message,
    read_adaptation,
    sigterm_unwinds,
    write_stan_json,
)

HTTPSTAN_DIR = Path(httpstan.__file__).parent
MODULE_NAME = "model.so"
_FLAGS = (
    "-O3",
    # Eigen checks every coefficient access unless NDEBUG is set (as Python's own extension builds
    # and rstan do): without it the gradients of InstEval's model took 2.2 times as long
    "-DNDEBUG",
    "-std=c++17",
    "-fPIC",
    "-w",
    "-DBOOST_DISABLE_ASSERTS",
    "-DBOOST_PHOENIX_NO_VARIADIC_EXPRESSION",
    "-DSTAN_THREADS",
    "-D_REENTRANT",
    "-D_GLIBCXX_USE_CXX11_ABI=0",
)
_LIBRARIES = ("-ltbb",)
RUNNER_SOURCE = "runner.cpp"
WORKER = Path(__file__).with_name("_chain.py")


def _runner_source() -> str:
    return (resources.files("lmmformula") / "engines" / "native" / RUNNER_SOURCE).read_text()


TOOLCHAIN = (
    f"httpstan {httpstan.__version__} headers; stanc --filename-in-msg={PROGRAM_NAME}; {' '.join(_FLAGS)}; "
    f"runner {hashlib.sha256(_runner_source().encode()).hexdigest()[:12]}"
)


def compile_program(code: str, announce: Callable[[], None] | None = None) -> CompiledProgram:
    """Compile ``code`` once per toolchain; later calls (any process) reuse the cache.

    ``announce`` is called just before a compile that the cache cannot spare.
    """
    key = program_key(code, TOOLCHAIN)

    def build(folder: Path) -> None:
        if announce is not None:
            announce()
        _build(code, key, folder)

    started = time.perf_counter()
    with sigterm_unwinds():
        folder, built = cached_build("embedded", key, build, required=(MODULE_NAME,))
    return CompiledProgram(
        code=code,
        key=key,
        path=folder / MODULE_NAME,
        compile_seconds=time.perf_counter() - started,
        compiled_now=built,
    )


PRECOMPILED = "stan_model_header.hpp"


def warm_up(announce: Callable[[], None] | None = None) -> Path:
    """Build, once per toolchain, what every model's compile needs, and return its folder:
    ``runner.o`` (our C interface over Stan's services) and a precompiled header of Stan's model
    header (about 2 minutes on 2 cores; the first fit does it when nobody has). Call it ahead of
    time, e.g. while building a container image or before fitting on many workers that share
    ``LMMFORMULA_CACHE``; concurrent calls from several processes build it once.

    Every model's translation unit starts by including ``stan/model/model_header.hpp``,
    most of what g++ reads; with it precompiled, a model compiles in about a third of
    the time. Both must be built with the same flags as the models.
    """

    def build(folder: Path) -> None:
        if announce is not None:
            announce()
        source = folder / RUNNER_SOURCE
        source.write_text(_runner_source())
        _compile([*_compiler(), "-c", str(source), "-o", str(folder / "runner.o")], folder, "", "")
        header = folder / PRECOMPILED
        header.write_text("#include <stan/model/model_header.hpp>\n")
        _compile([*_compiler(), "-x", "c++-header", str(header), "-o", f"{header}.gch"], folder, "", "")

    key = program_key(f"{_runner_source()}\n// and {PRECOMPILED}.gch", TOOLCHAIN)
    folder, _ = cached_build("runner", key, build, required=("runner.o", f"{PRECOMPILED}.gch"))
    return folder


def _compiler() -> list[str]:
    return [os.environ.get("CXX", "g++"), *_FLAGS, f"-I{HTTPSTAN_DIR / 'include'}"]


def _build(code: str, key: str, folder: Path) -> None:
    name = f"model_{key}"
    try:
        cpp = check_program(code, name=name)  # line numbers as in the program the user sees
    except StanCompileError as error:
        raise EngineError(f"stanc rejected the program:\n{error}") from None
    (folder / "model.stan").write_text(code)
    (folder / f"{name}.cpp").write_text(cpp)
    runner = warm_up()
    model_object = folder / f"{name}.o"
    precompiled = ["-include", str(runner / PRECOMPILED)]  # g++ takes the .gch beside it
    command = [*_compiler(), *precompiled, "-c", str(folder / f"{name}.cpp"), "-o", str(model_object)]
    _compile(command, folder, cpp, code)
    link = [
        os.environ.get("CXX", "g++"),
        "-shared",
        str(model_object),
        str(runner / "runner.o"),
        f"-L{HTTPSTAN_DIR / 'lib'}",
        *_LIBRARIES,
        f"-Wl,-rpath,{HTTPSTAN_DIR / 'lib'}",
        "-o",
        str(folder / MODULE_NAME),
    ]
    _compile(link, folder, cpp, code)
    model_object.unlink()


def _compile(command: list[str], folder: Path, cpp: str, code: str) -> None:
    """Run the compiler ``command``; a failure raises EngineError at the program's line."""
    try:
        # Its own process group: Ctrl-C in a terminal reaches only us, and we end the
        # whole group (g++ and the cc1plus, as and ld it started) on the way out.
        compiler = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=folder,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise EngineError(
            f"no C++ compiler {command[0]!r} found; the embedded engine needs g++ "
            "(Debian/Ubuntu: apt-get install g++), or set CXX"
        ) from None
    try:
        _, stderr = compiler.communicate()
    except BaseException:  # Ctrl-C, SIGTERM: no compiler may outlive us
        _kill_group(compiler)
        raise
    if compiler.returncode != 0:
        raise EngineError(explain_cxx_failure(stderr, cpp, code))


def _kill_group(process: subprocess.Popen) -> None:
    """End the compiler's process group: SIGTERM first, so that g++ deletes its temporary
    files, then SIGKILL for whatever is left."""
    for signum, patience in ((signal.SIGTERM, 5.0), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, signum)
        except (ProcessLookupError, PermissionError):  # the group is gone
            break
        try:
            process.wait(timeout=patience)
        except subprocess.TimeoutExpired:
            continue
    process.wait()


def explain_cxx_failure(stderr: str, cpp: str, code: str) -> str:
    """The compiler's first error, mapped back to the line of the Stan program it came from.

    stanc marks each statement in the C++ with ``current_statement__ = k;``; entry k of
    ``locations_array__`` names the Stan line.
    """
    message = f"C++ compilation of the Stan program failed:\n{stderr[-4000:]}"
    error = re.search(r"\.cpp:(\d+):\d+: (?:fatal )?error", stderr)
    block = re.search(r"locations_array__ =\s*\{(.*?)\};", cpp, re.DOTALL)
    if not error or not block:
        return message
    locations = re.findall(r'"([^"]*)"', block.group(1))
    for text in reversed(cpp.splitlines()[: int(error.group(1))]):
        statement = re.search(r"current_statement__ = (\d+);", text)
        if statement and int(statement.group(1)) < len(locations):
            return with_program_line(message, locations[int(statement.group(1))], code)
    return message


# ---------------------------------------------------------------- sampling


@dataclass
class _Chain:
    """Parent-side state of one running chain."""

    number: int
    process: subprocess.Popen
    draws: Path
    log: Path
    name: str  # "chain 2", or the method
    buffer: bytes = b""
    messages: list[str] = field(default_factory=list)
    first_message_at: float | None = None
    closed: bool = False


def sample(
    program: CompiledProgram,
    data: dict,
    settings: SamplerSettings,
    progress=None,
) -> list[ChainOutput]:
    """Run ``settings.chains`` chains of NUTS, at most ``settings.cores`` at once."""
    seed = settings.seed if settings.seed is not None else random.randrange(2**31)
    jobs = []
    for number in range(1, settings.chains + 1):
        init, radius = settings.init_for(number)
        arguments = {
            "method": "nuts",
            "seed": seed,
            "chain": number,
            "init_radius": radius,
            "num_warmup": settings.iter_warmup,
            "num_samples": settings.iter_sampling,
            "refresh": settings.refresh,
            "max_depth": settings.max_treedepth,
            "delta": settings.adapt_delta,
            "dense": settings.metric == "dense",
        }
        metric = None
        if settings.adapted is not None:
            arguments["stepsize"] = settings.adapted[number - 1].stepsize
            metric = {"inv_metric": settings.adapted[number - 1].inv_metric}
        jobs.append(_Job(number, arguments, init, metric))
    return _run_jobs(program, data, jobs, settings.cores, progress)


def approximate(program: CompiledProgram, data: dict, settings: ApproximationSettings) -> ChainOutput:
    """One run of an algorithm other than NUTS: its draws as Stan writes them (see
    :class:`ApproximationSettings`)."""
    seed = settings.seed if settings.seed is not None else random.randrange(2**31)
    init, radius = settings.init_for()
    arguments = {
        "method": settings.method,
        "seed": seed,
        "init_radius": radius,
        "jacobian": settings.jacobian,
        "iter": settings.iter,
        "draws": settings.draws,
        "num_paths": settings.num_paths,
        "refresh": settings.refresh,
    }
    (output,) = _run_jobs(program, data, [_Job(1, arguments, init)], 1, None)
    return output


@dataclass(frozen=True)
class _Job:
    """One worker's run: its number (the chain), the runner's arguments, initial values."""

    number: int
    arguments: dict
    init: dict
    metric: dict | None = None  # NUTS without adaptation: the inverse metric, as Stan JSON

    @property
    def name(self) -> str:
        """How messages name it: "chain 2", or the method of a run of another algorithm."""
        method = self.arguments["method"]
        return f"chain {self.number}" if method == "nuts" else method


def _run_jobs(program, data, jobs: list[_Job], cores: int, progress) -> list[ChainOutput]:
    """The jobs' outputs; a cached module that the workers cannot load is rebuilt once (with a
    warning)."""
    with sigterm_unwinds():
        outputs = _run_workers(program, data, jobs, cores, progress)
        if isinstance(outputs, str) and not program.compiled_now:
            discard(program.path.parent, f"its module failed to load: {outputs}")
            program = compile_program(program.code)
            outputs = _run_workers(program, data, jobs, cores, progress)
    if isinstance(outputs, str):
        raise EngineError(
            f"the compiled model {program.path} failed to load in the worker process:\n{outputs}\n"
            f"Delete the folder {program.path.parent} (or the whole cache, {cache_root()}) to have "
            "it rebuilt by the next fit."
        )
    return outputs


def _run_workers(program, data, jobs: list[_Job], cores: int, progress) -> list[ChainOutput] | str:
    """The jobs' outputs, or why the workers could not load the compiled module."""
    # Per-process name: what is left behind (only after SIGKILL) says whose it was.
    folder = Path(tempfile.mkdtemp(prefix=f"lmmformula-{os.getpid()}-"))
    pending = list(jobs)
    running: list[_Chain] = []
    finished: list[ChainOutput] = []
    try:
        data_path = folder / "data.json"  # written once, read by every worker
        write_stan_json(data, data_path)
        while pending or running:
            while pending and len(running) < cores:
                running.append(_start(program, data_path, pending.pop(0), folder))
            for chain in _poll(running, progress):
                running.remove(chain)
                if chain.process.wait() == MODULE_FAILED:
                    return _log_tail(chain, 500).strip() or "no reason given"
                finished.append(_finish(chain, others=bool(running or pending)))
    finally:  # also on Ctrl-C, SIGTERM or a failed chain: stop every worker before leaving
        _stop(running)
        shutil.rmtree(folder, ignore_errors=True)
    return sorted(finished, key=lambda output: output.chain)


def log_density(program: CompiledProgram, data: dict, parameters: dict) -> float:
    """The program's log density (every constant kept, no Jacobian) for ``data`` at the
    constrained ``parameters`` (Stan's names and shapes), evaluated in this process.

    For checks of the generated code against an independent density (tests); sampling never
    loads a model into the Python process itself.
    """
    from ._chain import load_runner  # a model library in this process: only when asked

    runner = load_runner(str(program.path))
    with tempfile.TemporaryDirectory(prefix=f"lmmformula-{os.getpid()}-") as folder:
        data_path, params_path = Path(folder) / "data.json", Path(folder) / "params.json"
        write_stan_json(data, data_path)
        write_stan_json(parameters, params_path)
        value, error = ctypes.c_double(), ctypes.create_string_buffer(1 << 16)
        code = runner.lmf_log_density(
            str(data_path).encode(), str(params_path).encode(), ctypes.byref(value), error, len(error)
        )
    if code != 0:
        raise EngineError(
            f"the model could not evaluate its log density: {error.value.decode(errors='replace')}"
        )
    return value.value


def _stop(chains: list[_Chain]) -> None:
    for chain in chains:
        if chain.process.poll() is None:
            chain.process.terminate()
    for chain in chains:
        try:
            chain.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            chain.process.kill()
            chain.process.wait()
        if chain.process.stdout is not None:
            chain.process.stdout.close()


def _start(program, data_path, job: _Job, folder) -> _Chain:
    number = job.number
    init_path = ""
    if job.init:
        init_path = str(folder / f"chain{number}.init.json")
        write_stan_json(job.init, Path(init_path))
    arguments = dict(job.arguments)
    draws = folder / f"chain{number}.draws.npy"
    if arguments["method"] == "nuts":
        arguments["adaptation_path"] = f"{draws}.adaptation"
    if job.metric is not None:
        arguments["metric"] = str(folder / f"chain{number}.metric.json")
        write_stan_json(job.metric, Path(arguments["metric"]))
    arguments_path = folder / f"chain{number}.arguments.json"
    arguments_path.write_text(json.dumps(arguments))
    log = folder / f"chain{number}.log"
    command = [
        sys.executable,
        "-S",  # the standard library only (see _chain.py): a quicker start
        str(WORKER),  # by path: importing the lmmformula package would cost the worker a second
        str(program.path),
        str(draws),
        str(data_path),
        init_path,
        str(arguments_path),
    ]
    with open(log, "wb") as errors:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            start_new_session=True,  # Ctrl-C reaches only the parent, which stops the workers
        )
    os.set_blocking(process.stdout.fileno(), False)
    return _Chain(number=number, process=process, draws=draws, log=log, name=job.name)


def _poll(running: list[_Chain], progress) -> list[_Chain]:
    """Read whatever the chains said; return the chains that have ended."""
    pipes = {chain.process.stdout: chain for chain in running if not chain.closed}
    readable, _, _ = select.select(list(pipes), [], [], 0.05) if pipes else ([], [], [])
    for pipe in readable:
        chain = pipes[pipe]
        block = pipe.read(1 << 20)
        if block is None:
            continue
        if not block:
            chain.closed = True
            _consume(chain, chain.buffer + b"\n", progress)
            chain.buffer = b""
            continue
        buffered = chain.buffer + block
        cut = buffered.rfind(b"\n")
        if cut >= 0:
            _consume(chain, buffered[: cut + 1], progress)
            buffered = buffered[cut + 1 :]
        chain.buffer = buffered
    return [chain for chain in running if chain.closed and chain.process.poll() is not None]


def _consume(chain: _Chain, payload: bytes, progress) -> None:
    for line in payload.decode(errors="replace").split("\n"):
        if not line:
            continue
        text = line.replace("\\n", "\n")
        if chain.first_message_at is None:
            chain.first_message_at = time.perf_counter()
        chain.messages.append(text)
        if progress is not None:
            progress(chain.number, text)


def _finish(chain: _Chain, others: bool) -> ChainOutput:
    code = chain.process.wait()
    chain.process.stdout.close()
    if code < 0:
        raise EngineError(_killed(chain, -code, others))
    if code != 0 or not chain.draws.exists():
        errors = [m.split(":", 1)[1].strip() for m in chain.messages if m.startswith(("error:", "fatal:"))]
        warned = [m.split(":", 1)[1].strip() for m in chain.messages if m.startswith("warn:")]
        detail = "\n".join((errors or warned)[-5:]) or _log_tail(chain) or f"worker exited with code {code}"
        raise EngineError(f"{chain.name} failed:\n{detail}")
    columns = tuple(Path(f"{chain.draws}.columns").read_text().split("\t"))
    rows = int(Path(f"{chain.draws}.rows").read_text())
    adaptation = Path(f"{chain.draws}.adaptation")
    return ChainOutput(
        chain=chain.number,
        columns=columns,
        values=np.array(np.load(chain.draws, mmap_mode="r")[:rows]),
        seconds=elapsed(chain.messages),
        first_message_at=chain.first_message_at,
        messages=tuple(chain.messages),
        adapted=read_adaptation(adaptation.read_text()) if adaptation.exists() else None,
    )


def _killed(chain: _Chain, number: int, others: bool) -> str:
    message = killed_message(chain.name, number, others)
    log = _log_tail(chain, 1000).strip()
    return f"{message}\n{log}" if log else message


def _log_tail(chain: _Chain, size: int = 2000) -> str:
    try:
        return chain.log.read_text(errors="replace")[-size:]
    except OSError:
        return ""
