"""Worker process of the embedded engine: runs one chain through lmmformula's runner.

Started as ``python .../lmmformula/engines/_chain.py LIBRARY DRAWS DATA INIT ARGUMENTS`` (by
path, so that the lmmformula package is not imported):
LIBRARY is the compiled model (the model linked with ``native/runner.cpp``), DRAWS the
file the draws are written to (float64, ``num_samples x columns``, the column names in
DRAWS + ``.columns``), DATA and INIT Stan JSON files (INIT may be ""), ARGUMENTS a JSON
object of sampler settings. Stan's messages go to stdout, one per line as
``level:text`` (line breaks inside a message escaped as ``\\n``). Exit codes: 0 done,
1 stopped, 2 failed (the reason on stdout as an ``error:`` line), ``MODULE_FAILED``
when LIBRARY cannot be loaded (the reason on stderr).
"""

from __future__ import annotations

import ctypes
import json
import signal
import sys

import numpy as np

MODULE_FAILED = 3
_PR_SET_PDEATHSIG = 1
_LEVELS = ("debug", "info", "warn", "error", "fatal")
MESSAGE = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p)


def _die_with_parent() -> None:
    """Ask Linux to end this process if the parent dies, so no chain is left orphaned."""
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the parent's cleanup still applies
        pass


def load_runner(path: str) -> ctypes.CDLL:
    """The compiled model's C interface (see native/runner.cpp), with argument types set."""
    library = ctypes.CDLL(path)
    text, size = ctypes.c_char_p, ctypes.c_long
    library.lmf_columns.restype = ctypes.c_long
    library.lmf_columns.argtypes = [text, text, size, text, size]
    library.lmf_nuts.restype = ctypes.c_int
    library.lmf_nuts.argtypes = [
        text, text, ctypes.c_int, ctypes.c_uint, ctypes.c_uint, ctypes.c_double,
        ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_double,
        ctypes.POINTER(ctypes.c_double), size, ctypes.POINTER(ctypes.c_int), MESSAGE,
        text, size, text, size,
    ]  # fmt: skip
    library.lmf_log_density.restype = ctypes.c_int
    library.lmf_log_density.argtypes = [text, text, ctypes.POINTER(ctypes.c_double), text, size]
    return library


def _say(level: int, text: bytes) -> None:
    name = _LEVELS[level] if 0 <= level < len(_LEVELS) else "info"
    line = text.decode(errors="replace").replace("\n", "\\n")
    sys.stdout.write(f"{name}:{line}\n")
    sys.stdout.flush()


def main(library_path: str, draws_path: str, data_path: str, init_path: str, arguments_path: str) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    _die_with_parent()
    try:
        runner = load_runner(library_path)
    except (OSError, AttributeError) as error:  # a damaged or foreign file
        print(f"{type(error).__name__}: {error}", file=sys.stderr, flush=True)
        return MODULE_FAILED
    with open(arguments_path) as handle:
        arguments = json.load(handle)
    error = ctypes.create_string_buffer(1 << 16)
    names = ctypes.create_string_buffer(1 << 24)
    columns = runner.lmf_columns(data_path.encode(), names, len(names), error, len(error))
    if columns < 0:
        _say(3, error.value)
        return 2
    with open(draws_path + ".columns", "w") as handle:
        handle.write(names.value.decode())
    shape = (arguments["num_samples"], columns)
    draws = np.lib.format.open_memmap(draws_path, mode="w+", dtype=np.float64, shape=shape)
    stop = ctypes.c_int(0)
    adaptation = ctypes.create_string_buffer(1 << 20)
    callback = MESSAGE(_say)
    code = runner.lmf_nuts(
        data_path.encode(),
        init_path.encode(),
        int(arguments["dense"]),
        arguments["seed"],
        arguments["chain"],
        arguments["init_radius"],
        arguments["num_warmup"],
        arguments["num_samples"],
        arguments["refresh"],
        arguments["max_depth"],
        arguments["delta"],
        draws.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
        columns,
        ctypes.byref(stop),
        callback,
        adaptation,
        len(adaptation),
        error,
        len(error),
    )
    draws.flush()
    del draws
    if code == 2:
        _say(3, error.value)
    return code


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
