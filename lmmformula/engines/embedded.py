"""The embedded engine: Stan's NUTS from the httpstan wheel's toolchain, no server.

Compiling: stanc (bundled) translates the program, g++ builds a Python extension from
it, httpstan's Stan headers and its precompiled ``stan_services.o``; the result is
cached (see :mod:`lmmformula.cache`). Sampling: each chain runs in the main thread of
its own worker process and streams JSON lines over a Unix socket to this process,
which keeps the draws and drives the progress bars.

Faults: a cached module that fails to load in a worker is rebuilt once; a worker that
dies raises :class:`EngineError` naming the chain and stops the others; Ctrl-C, an
exception or SIGTERM (handled while compiling or sampling in the main thread) stop
the compiler or the workers and remove the temporary folder before leaving.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import pickle
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpstan
import numpy as np

from ..cache import cache_root, cached_build, discard, program_key
from ..errors import EngineError
from ..stanc import PROGRAM_NAME, StanCompileError, check_program, with_program_line
from ._chain import MODULE_FAILED
from .base import ChainOutput, CompiledProgram, SamplerSettings

HTTPSTAN_DIR = Path(httpstan.__file__).parent
_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
MODULE_NAME = f"stan_services{_SUFFIX}"
_FLAGS = (
    "-O3",
    "-std=c++17",
    "-fPIC",
    "-shared",
    "-w",
    "-DBOOST_DISABLE_ASSERTS",
    "-DBOOST_PHOENIX_NO_VARIADIC_EXPRESSION",
    "-DSTAN_THREADS",
    "-D_REENTRANT",
    "-D_GLIBCXX_USE_CXX11_ABI=0",
)
_LIBRARIES = ("-lsundials_cvodes", "-lsundials_idas", "-lsundials_nvecserial", "-ltbb")
TOOLCHAIN = (
    f"httpstan {httpstan.__version__}; stanc --filename-in-msg={PROGRAM_NAME}; {' '.join(_FLAGS)}; "
    f"{sys.implementation.cache_tag}{_SUFFIX}"
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
    with _sigterm_unwinds():
        folder, built = cached_build("embedded", key, build, required=(MODULE_NAME,))
    return CompiledProgram(
        code=code,
        key=key,
        path=folder / MODULE_NAME,
        compile_seconds=time.perf_counter() - started,
        compiled_now=built,
    )


def _build(code: str, key: str, folder: Path) -> None:
    name = f"model_{key}"
    try:
        cpp = check_program(code, name=name)  # line numbers as in the program the user sees
    except StanCompileError as error:
        raise EngineError(f"stanc rejected the program:\n{error}") from None
    (folder / "model.stan").write_text(code)
    (folder / f"{name}.cpp").write_text(cpp)
    command = [
        os.environ.get("CXX", "g++"),
        *_FLAGS,
        f"-I{HTTPSTAN_DIR / 'include'}",
        f"-I{sysconfig.get_paths()['include']}",
        str(folder / f"{name}.cpp"),
        str(HTTPSTAN_DIR / "stan_services.o"),
        f"-L{HTTPSTAN_DIR / 'lib'}",
        *_LIBRARIES,
        f"-Wl,-rpath,{HTTPSTAN_DIR / 'lib'}",
        "-o",
        str(folder / MODULE_NAME),
    ]
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

# Per-iteration unconstrained values, momenta and gradients, and initial values: not kept.
_UNUSED_TOPICS = ("diagnostic", "initialization")


@dataclass
class _Chain:
    """Parent-side state of one running chain."""

    number: int
    process: subprocess.Popen
    listener: socket.socket
    log: Path
    connections: dict = field(default_factory=dict)  # socket -> bytes buffer
    topics: dict = field(default_factory=dict)  # socket -> first topic seen
    columns: list[str] | None = None
    rows: list[np.ndarray] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    first_message_at: float | None = None


def sample(
    program: CompiledProgram,
    data: dict,
    settings: SamplerSettings,
    progress=None,
) -> list[ChainOutput]:
    """Run ``settings.chains`` chains, at most ``settings.cores`` at once.

    A cached module that the workers cannot load is rebuilt once (with a warning).
    """
    with _sigterm_unwinds():
        outputs = _run_chains(program, data, settings, progress)
        if isinstance(outputs, str) and not program.compiled_now:
            discard(program.path.parent, f"its module failed to load: {outputs}")
            program = compile_program(program.code)
            outputs = _run_chains(program, data, settings, progress)
    if isinstance(outputs, str):
        raise EngineError(
            f"the compiled model {program.path} failed to load in the worker process:\n{outputs}\n"
            f"Delete the folder {program.path.parent} (or the whole cache, {cache_root()}) to have "
            "it rebuilt by the next fit."
        )
    return outputs


def _run_chains(program, data, settings, progress) -> list[ChainOutput] | str:
    """The chains' outputs, or why the workers could not load the compiled module."""
    # Per-process name: what is left behind (only after SIGKILL) says whose it was.
    folder = Path(tempfile.mkdtemp(prefix=f"lmmformula-{os.getpid()}-"))
    seed = settings.seed if settings.seed is not None else random.randrange(2**31)
    pending = list(range(1, settings.chains + 1))
    running: list[_Chain] = []
    finished: list[ChainOutput] = []
    try:
        data_path = folder / "data.pickle"  # written once, read by every worker
        data_path.write_bytes(pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))
        while pending or running:
            while pending and len(running) < settings.cores:
                number = pending.pop(0)
                running.append(_start(program, data_path, settings, seed, number, folder))
            for chain in _poll(running, progress):
                running.remove(chain)
                if chain.process.wait() == MODULE_FAILED:
                    chain.listener.close()
                    return _log_tail(chain, 500).strip() or "no reason given"
                finished.append(_finish(chain, others=bool(running or pending)))
    finally:  # also on Ctrl-C, SIGTERM or a failed chain: stop every worker before leaving
        _stop(running)
        shutil.rmtree(folder, ignore_errors=True)
    return sorted(finished, key=lambda output: output.chain)


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
        for sock in [chain.listener, *chain.connections]:
            sock.close()


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
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


def _start(program, data_path, settings, seed, number, folder) -> _Chain:
    path = str(folder / f"chain{number}.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)
    init, radius = settings.init_for(number)
    arguments = {
        "random_seed": seed,
        "chain": number,
        "init_radius": radius,
        "num_warmup": settings.iter_warmup,
        "num_samples": settings.iter_sampling,
        "num_thin": 1,
        "save_warmup": False,
        "refresh": settings.refresh,
        "stepsize": 1.0,
        "stepsize_jitter": 0.0,
        "max_depth": settings.max_treedepth,
        "delta": settings.adapt_delta,
        "gamma": 0.05,
        "kappa": 0.75,
        "t0": 10.0,
        "init_buffer": 75,
        "term_buffer": 50,
        "window": 25,
    }
    arguments_path = folder / f"chain{number}.pickle"
    arguments_path.write_bytes(pickle.dumps((init, arguments)))
    log = folder / f"chain{number}.log"
    command = [
        sys.executable,
        "-m",
        "lmmformula.engines._chain",
        str(program.path),
        path,
        str(data_path),
        str(arguments_path),
    ]
    with open(log, "wb") as errors:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,  # Ctrl-C reaches only the parent, which stops the workers
        )
    return _Chain(number=number, process=process, listener=listener, log=log)


def _poll(running: list[_Chain], progress) -> list[_Chain]:
    """Read whatever the chains sent; return the chains that have ended."""
    sockets = {chain.listener: chain for chain in running}
    for chain in running:
        sockets.update({connection: chain for connection in chain.connections})
    readable, _, _ = select.select(list(sockets), [], [], 0.05)
    for sock in readable:
        chain = sockets[sock]
        if sock is chain.listener:
            connection, _ = sock.accept()
            chain.connections[connection] = b""
            continue
        block = sock.recv(1 << 20)
        if not block:
            rest = chain.connections.pop(sock)
            sock.close()
            if chain.topics.get(sock) not in _UNUSED_TOPICS:
                try:
                    _consume(chain, sock, rest + b"\n", progress)
                except ValueError:  # a line cut short: the worker died while writing it
                    pass
            continue
        if chain.topics.get(sock) in _UNUSED_TOPICS:
            continue  # read and dropped unparsed: the bulk of the traffic
        buffered = chain.connections[sock] + block
        cut = buffered.rfind(b"\n")
        if cut >= 0:
            _consume(chain, sock, buffered[: cut + 1], progress)
            buffered = buffered[cut + 1 :]
        chain.connections[sock] = buffered
    return [chain for chain in running if _ended(chain)]


def _ended(chain: _Chain) -> bool:
    """The worker has exited and everything it sent has been read."""
    if chain.process.poll() is None or chain.connections:
        return False
    waiting, _, _ = select.select([chain.listener], [], [], 0)
    return not waiting


def _consume(chain: _Chain, sock: socket.socket, payload: bytes, progress) -> None:
    for line in payload.split(b"\n"):
        if not line or chain.topics.get(sock) in _UNUSED_TOPICS:
            continue
        message = json.loads(line)
        topic = chain.topics.setdefault(sock, message["topic"])
        if topic in _UNUSED_TOPICS:
            continue
        values = message["values"]
        if topic == "sample" and isinstance(values, dict):  # a draw (other messages: adaptation)
            if chain.columns is None:
                chain.columns = list(values)
            chain.rows.append(np.fromiter(values.values(), dtype=float, count=len(values)))
        elif topic == "logger":
            text = values[0] if values else ""
            if chain.first_message_at is None:
                chain.first_message_at = time.perf_counter()
            chain.messages.append(text)
            if progress is not None:
                progress(chain.number, text)


def _finish(chain: _Chain, others: bool) -> ChainOutput:
    code = chain.process.wait()
    chain.listener.close()
    if code < 0:
        raise EngineError(_killed(chain, -code, others))
    if code != 0 or chain.columns is None:
        errors = [m.split(":", 1)[1].strip() for m in chain.messages if m.startswith(("error:", "warn:"))]
        detail = "\n".join(errors[-5:]) or _log_tail(chain) or f"worker exited with code {code}"
        raise EngineError(f"chain {chain.number} failed:\n{detail}")
    return ChainOutput(
        chain=chain.number,
        columns=tuple(chain.columns),
        values=np.vstack(chain.rows) if chain.rows else np.empty((0, len(chain.columns))),
        seconds=_elapsed(chain.messages),
        first_message_at=chain.first_message_at,
    )


def _killed(chain: _Chain, number: int, others: bool) -> str:
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = "an unknown signal"
    message = f"chain {chain.number} was killed by signal {name} ({number})"
    if number == signal.SIGKILL:
        message += ", e.g. by the out-of-memory killer"
    elif number in (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGFPE, signal.SIGILL):
        message += ": a crash in the compiled model or in Stan"
    elif number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        message += " sent from outside this process"
    if others:
        message += "; the other chains were stopped"
    log = _log_tail(chain, 1000).strip()
    return f"{message}\n{log}" if log else message


def _log_tail(chain: _Chain, size: int = 2000) -> str:
    try:
        return chain.log.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def _elapsed(messages: list[str]) -> dict[str, float]:
    """Warm-up and sampling seconds from Stan's closing log lines."""
    seconds = {}
    for message in messages:
        match = re.search(r"([\d.]+) seconds \((Warm-up|Sampling)\)", message)
        if match:
            seconds[match.group(2).lower()] = float(match.group(1))
    return seconds
