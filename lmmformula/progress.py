"""Progress bars, one per chain, fed by Stan's "Iteration: k / n" log lines."""

from __future__ import annotations

import re

from tqdm.auto import tqdm

_ITERATION = re.compile(r"Iteration:\s*(\d+)\s*/\s*(\d+)")


class ChainProgress:
    """``progress(chain, message)`` callback; a chain's bar appears when the chain starts."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._bars: dict[int, tqdm] = {}

    def __call__(self, chain: int, message: str) -> None:
        match = _ITERATION.search(message)
        if not match:
            return
        if chain not in self._bars:
            self._bars[chain] = tqdm(
                total=self._total, desc=f"chain {chain}", position=chain - 1, unit="it", leave=True
            )
        bar = self._bars[chain]
        bar.update(int(match.group(1)) - bar.n)
        if "(Sampling)" in message and "sampling" not in bar.desc:
            bar.set_description(f"chain {chain} (sampling)")

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
