"""The cmdstanpy backend, for users who have CmdStan installed.

Same programs, same settings (translated to CmdStan's names), the same chain output at full precision
(``sig_figs=18``: every double round-trips) and the same manners as the embedded engine: progress bars
fed by CmdStan's console lines, nothing else printed (cmdstanpy's logging is held back while it runs),
per-chain warm-up and sampling seconds, and no chain process outliving an interrupt (Ctrl-C, a Jupyter
kernel interrupt, SIGTERM). Executables are cached in the same cache, under ``cmdstan/``.
"""

from __future__ import annotations

import contextlib
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

from ..cache import cached_build, program_key
from ..errors import EngineError
from .base import ChainOutput, CompiledProgram, SamplerSettings, elapsed, killed_message, sigterm_unwinds

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
        with _quiet(), sigterm_unwinds():
            compiled = Path(cmdstanpy.compile_stan_file(str(folder / "model.stan")))
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
    folder = tempfile.mkdtemp(prefix=f"lmmformula-{os.getpid()}-cmdstan-")
    console = _Console(progress)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["fit"] = model.sample(
                data=data,
                chains=settings.chains,
                parallel_chains=settings.cores,
                iter_warmup=settings.iter_warmup,
                iter_sampling=settings.iter_sampling,
                seed=settings.seed,
                adapt_delta=settings.adapt_delta,
                max_treedepth=settings.max_treedepth,
                metric=f"{settings.metric}_e",
                inits=settings.init,
                refresh=settings.refresh,
                sig_figs=SIG_FIGS,
                show_progress=False,
                show_console=True,  # the lines come to _Console, which feeds the bars
                output_dir=folder,
            )
        except BaseException as exc:  # noqa: BLE001 (handed to the waiting thread)
            outcome["error"] = exc

    try:
        with sigterm_unwinds(), _quiet(), contextlib.redirect_stdout(console):
            worker = threading.Thread(target=run, name="lmmformula-cmdstanpy", daemon=True)
            worker.start()
            try:
                while worker.is_alive():
                    worker.join(0.1)
            except BaseException:  # Ctrl-C, a kernel interrupt, SIGTERM: no chain may outlive us
                _stop_chains(program.path)
                worker.join()
                raise
        if "error" in outcome:
            raise EngineError(_failure(outcome["error"], console, settings.chains))
        fit = outcome["fit"]
        values = fit.draws(concat_chains=False)  # (draw, chain, column)
        columns = tuple(fit.column_names)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return [
        ChainOutput(
            chain=chain + 1,
            columns=columns,
            values=values[:, chain, :],
            seconds=elapsed(console.messages.get(chain + 1, [])),
            first_message_at=console.first_at.get(chain + 1),
        )
        for chain in range(settings.chains)
    ]


class _Console(io.TextIOBase):
    """Stands in for stdout while cmdstanpy prints CmdStan's console (``Chain [k] <line>``): each line
    goes to the progress callback and is kept per chain (their closing lines give the seconds); other
    text passes through to the real stdout."""

    def __init__(self, progress) -> None:
        self._progress = progress
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
        if match is None:
            if line.strip():
                print(line, file=self._stdout)
            return
        chain, message = int(match.group(1)), match.group(2)
        self.first_at.setdefault(chain, time.perf_counter())
        self.messages.setdefault(chain, []).append(message)
        if self._progress is not None:
            self._progress(chain, message)

    def text(self, chain: int | None = None) -> str:
        chains = sorted(self.messages) if chain is None else [chain]
        return "\n".join(f"chain {c}: {m}" for c in chains for m in self.messages.get(c, []))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """cmdstanpy's INFO and WARNING logging held back (errors still show), as the embedded engine
    prints nothing but progress."""
    logger = logging.getLogger("cmdstanpy")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _failure(error: BaseException, console: _Console, chains: int) -> str:
    """An EngineError's text for a failed run: a chain killed by a signal said as the embedded engine says
    it, else cmdstanpy's message and the chains' last error lines."""
    codes = re.search(r"retcodes=\[([-\d, ]+)\]", str(error))  # cmdstanpy's RunSet, one per chain
    signals = (
        [(k, -int(c)) for k, c in enumerate(codes.group(1).split(","), start=1) if int(c) < 0]
        if codes
        else []
    )
    if signals:
        chain, number = signals[0]
        return killed_message(chain, number, chains > 1)
    lines = [
        f"chain {chain}: {message}"
        for chain, messages in sorted(console.messages.items())
        for message in messages
        if re.search(r"error|exception|rejecting|failed", message, re.IGNORECASE)
    ]
    detail = "\n".join(lines[-8:])
    return f"CmdStan sampling failed: {error}" + (f"\n{detail}" if detail else "")


def _stop_chains(executable: Path) -> None:
    """End every process of ours running ``executable``: SIGTERM, then SIGKILL after 5 s."""
    mine = _children_running(executable)
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


def _children_running(executable: Path) -> list[int]:
    """The processes whose parent is this one and whose executable is ``executable``."""
    target = os.path.realpath(executable)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            if parent == os.getpid() and os.path.realpath(f"/proc/{entry}/exe") == target:
                found.append(int(entry))
        except (OSError, ValueError, IndexError):  # gone, or not ours to read
            continue
    return found


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie, waiting for its parent's wait(), does not)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
