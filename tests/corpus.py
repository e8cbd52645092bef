"""Helpers shared by the bad-input corpora (test_bad_input.py, test_bad_input_idioms.py)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

import lmmformula as lf

GROUPS = tuple(f"g{i}" for i in range(1, 7))


def base(n: int = 72, seed: int = 1) -> pd.DataFrame:
    """Small simulated data; every level of f, g, h appears, all numbers are well behaved."""
    rng = np.random.default_rng(seed)

    def spread(levels) -> np.ndarray:
        return rng.permutation(np.resize(np.asarray(levels, dtype=object), n))

    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "z": rng.normal(size=n),
            "pos": rng.uniform(0.5, 3.0, size=n),
            "f": spread(["lo", "mid", "hi"]).astype(str),
            "g": spread(GROUPS).astype(str),
            "h": spread(["h1", "h2", "h3"]).astype(str),
        }
    )
    frame["y"] = 1.5 + 0.8 * frame["x"] + rng.normal(size=n)
    frame["count"] = rng.poisson(np.exp(0.3 + 0.4 * frame["x"]))
    frame["trials"] = rng.integers(1, 9, size=n)
    frame["s"] = rng.binomial(frame["trials"], 0.4)
    frame["yes"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-frame["x"]))).astype(int)
    frame["xi"] = np.arange(n) % 5
    return frame


def rx(pattern: str) -> re.Pattern:
    """A message requirement given as a case-insensitive pattern instead of a substring."""
    return re.compile(pattern, re.IGNORECASE)


def strip_comments(code: str) -> str:
    """``code`` without ``//`` and ``/* */`` comments and without blank lines.

    As stanc reads it: a line comment ends at ``\\n`` or ``\\r``; a block comment at the first
    ``*/``. Lines are split on ``\\n`` only, so a stray ``\\r`` or ``\\u2028`` outside a comment
    stays visible in the result.
    """
    kept: list[str] = []
    i, n = 0, len(code)
    while i < n:
        pair = code[i : i + 2]
        if pair == "//":
            j = i + 2
            while j < n and code[j] not in "\r\n":
                j += 1
            i = j
        elif pair == "/*":
            end = code.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            kept.append(code[i])
            i += 1
    lines = "".join(kept).split("\n")
    return "\n".join(line.rstrip(" \t") for line in lines if line.strip(" \t"))


# --------------------------------------------------------------------------------------------
# case types and their runners
# --------------------------------------------------------------------------------------------


def foreign_chain(exc: BaseException) -> list[BaseException]:
    """Exceptions Python would print above ``exc`` that are not lmmformula's own."""
    shown, seen, current = [], {id(exc)}, exc
    while True:
        following = current.__cause__
        if following is None and not current.__suppress_context__:
            following = current.__context__
        if following is None or id(following) in seen:
            return shown
        seen.add(id(following))
        if not isinstance(following, lf.LmmformulaError):
            shown.append(following)
        current = following
