"""Progress, fed by Stan's log lines: tqdm bars, one per chain, on a terminal or in Jupyter;
elsewhere (a log file, CI, a pipe) one plain line per chain when it finishes, and no
carriage returns or escape codes."""

from __future__ import annotations

import re
import sys

from tqdm.auto import tqdm

_ITERATION = re.compile(r"Iteration:\s*(\d+)\s*/\s*(\d+)")
_TOTAL = re.compile(r"([\d.]+) seconds \(Total\)")


def interactive(stream=None) -> bool:
    """Whether ``stream`` (default: stderr) is a terminal, or we run in a Jupyter kernel."""
    stream = sys.stderr if stream is None else stream
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or closed
        pass
    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class ChainProgress:
    """``progress(chain, message)`` callback; a chain's bar appears when the chain starts."""

    def __init__(self, iter_warmup: int, iter_sampling: int, bars: bool | None = None) -> None:
        self._warmup = iter_warmup
        self._sampling = iter_sampling
        self._use_bars = interactive() if bars is None else bars
        self._bars: dict[int, tqdm] = {}

    def __call__(self, chain: int, message: str) -> None:
        if not self._use_bars:
            total = _TOTAL.search(message)
            if total:
                print(
                    f"chain {chain} finished: {self._warmup} warm-up + {self._sampling} sampling "
                    f"iterations in {float(total.group(1)):.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
            return
        match = _ITERATION.search(message)
        if not match:
            return
        if chain not in self._bars:
            self._bars[chain] = tqdm(
                total=self._warmup + self._sampling,
                desc=f"chain {chain}",
                position=chain - 1,
                unit="it",
                leave=True,
            )
        bar = self._bars[chain]
        bar.update(int(match.group(1)) - bar.n)
        if "(Sampling)" in message and "sampling" not in bar.desc:
            bar.set_description(f"chain {chain} (sampling)")

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
