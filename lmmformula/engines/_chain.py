"""Worker process of the embedded engine: runs one chain (or one run of another algorithm)
through lmmformula's runner.

Started as ``python -S .../lmmformula/engines/_chain.py LIBRARY DRAWS DATA INIT ARGUMENTS`` (by
path, so that the lmmformula package is not imported, and with the standard library only: every
chain waits for this process to start, and numpy and site-packages would double that):
LIBRARY is the compiled model (the model linked with ``native/runner.cpp``), DRAWS the
file the draws are written to (float64, ``rows x columns``; the column names in
DRAWS + ``.columns``, the number of rows written in DRAWS + ``.rows``), DATA and INIT Stan
JSON files (INIT may be ""), ARGUMENTS a JSON object: ``method`` and its settings. Stan's
messages go to stdout, one per line as ``level:text`` (line breaks inside a message escaped
as ``\\n``). Exit codes: 0 done, 1 stopped, 2 failed (the reason on stdout as an
``error:`` line), ``MODULE_FAILED`` when LIBRARY cannot be loaded (the reason on stderr).
"""

from __future__ import annotations

import ctypes
import json
import mmap
import signal
import struct
import sys

MODULE_FAILED = 3
_PR_SET_PDEATHSIG = 1
_LEVELS = ("debug", "info", "warn", "error", "fatal")
MESSAGE = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p)
# the runner's method numbers (native/runner.cpp, enum Method)
METHODS = {"nuts": 0, "optimize": 1, "laplace": 2, "pathfinder": 3, "meanfield": 4, "fullrank": 5}


def _die_with_parent() -> None:
    """Ask Linux to end this process if the parent dies, so no chain is left orphaned."""
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the parent's cleanup still applies
        pass


def load_runner(path: str) -> ctypes.CDLL:
    """The compiled model's C interface (see native/runner.cpp), with argument types set."""
    library = ctypes.CDLL(path)
    c = ctypes
    text, size, number, integer, seed = c.c_char_p, c.c_long, c.c_double, c.c_int, c.c_uint
    buffer, rows, flag = c.POINTER(c.c_double), c.POINTER(c.c_long), c.POINTER(c.c_int)
    library.lmf_columns.restype = ctypes.c_long
    library.lmf_columns.argtypes = [text, integer, text, size, text, size]
    signatures = {
        "lmf_nuts": [
            text, text, integer, seed, seed, number, integer, integer, integer, integer, number, number, text,
            buffer, size, flag, MESSAGE, text, size, text, size,
        ],
        "lmf_optimize": [
            text, text, seed, number, integer, integer, integer, buffer, size, rows, flag, MESSAGE,
            text, size,
        ],
        "lmf_laplace": [
            text, text, seed, number, integer, integer, integer, integer, buffer, size, rows, flag, MESSAGE,
            text, size,
        ],
        "lmf_pathfinder": [
            text, text, seed, number, integer, integer, integer, integer, buffer, size, rows, flag, MESSAGE,
            text, size,
        ],
        "lmf_advi": [
            text, text, integer, seed, number, integer, integer, buffer, size, rows, flag, MESSAGE,
            text, size,
        ],
    }  # fmt: skip
    for name, argtypes in signatures.items():
        function = getattr(library, name)
        function.restype = integer
        function.argtypes = argtypes
    library.lmf_log_density.restype = ctypes.c_int
    library.lmf_log_density.argtypes = [text, text, ctypes.POINTER(ctypes.c_double), text, size]
    return library


def _say(level: int, text: bytes) -> None:
    name = _LEVELS[level] if 0 <= level < len(_LEVELS) else "info"
    line = text.decode(errors="replace").replace("\n", "\\n")
    sys.stdout.write(f"{name}:{line}\n")
    sys.stdout.flush()


def capacity(arguments: dict) -> int:
    """How many rows the method may write (see native/runner.cpp)."""
    method = arguments["method"]
    if method == "nuts":
        return arguments["num_samples"]
    if method == "optimize":
        return 1
    if method == "laplace":
        return arguments["draws"]
    if method == "pathfinder":
        return arguments["num_paths"] * arguments["draws"]
    return arguments["draws"] + 1  # ADVI: the mean first


class DrawsFile:
    """A ``.npy`` file of ``rows x columns`` float64 (C order), mapped into memory for the runner to
    write into; the parent reads it with ``numpy.load``. Written by hand (the header is format
    1.0's: magic, version, length, a Python-literal dict padded so that the data start 64-byte
    aligned) so that the worker needs no numpy."""

    def __init__(self, path: str, rows: int, columns: int) -> None:
        order = "<" if sys.byteorder == "little" else ">"
        text = f"{{'descr': '{order}f8', 'fortran_order': False, 'shape': ({rows}, {columns}), }}"
        text += " " * (-(10 + len(text) + 1) % 64) + "\n"
        header = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin-1")
        size = len(header) + 8 * rows * columns
        with open(path, "w+b") as handle:
            handle.write(header)
            handle.truncate(size)
            self._map = mmap.mmap(handle.fileno(), size)
        self._values = (ctypes.c_double * (rows * columns)).from_buffer(self._map, len(header))
        # from the address: a cast of the array itself would tie the two in a reference cycle
        self.pointer = ctypes.cast(ctypes.addressof(self._values), ctypes.POINTER(ctypes.c_double))

    def close(self) -> None:
        del self.pointer, self._values  # no view may outlive the mapping
        self._map.flush()
        self._map.close()


def _run(
    runner, arguments: dict, files: tuple[bytes, bytes], out, columns: int, say, error
) -> tuple[int, int]:
    """Call the runner's function for the method, writing to the doubles at ``out``: (return
    code, rows written)."""
    data, init = files
    a = arguments
    stop, rows = ctypes.c_int(0), ctypes.c_long(0)
    common = (ctypes.byref(rows), ctypes.byref(stop), say, error, len(error))
    method = a["method"]
    if method == "nuts":
        adaptation = ctypes.create_string_buffer(1 << 24)
        code = runner.lmf_nuts(
            data, init, int(a["dense"]), a["seed"], a["chain"], a["init_radius"], a["num_warmup"],
            a["num_samples"], a["refresh"], a["max_depth"], a["delta"], a.get("stepsize", 1.0),
            a.get("metric", "").encode(), out, columns, ctypes.byref(stop), say, adaptation, len(adaptation),
            error, len(error),
        )  # fmt: skip
        with open(a["adaptation_path"], "w") as handle:  # Stan's step size and inverse metric, as comments
            handle.write(adaptation.value.decode(errors="replace"))
        return code, a["num_samples"]
    if method == "optimize":
        code = runner.lmf_optimize(
            data, init, a["seed"], a["init_radius"], int(a["jacobian"]), a["iter"], a["refresh"], out,
            columns, *common,
        )  # fmt: skip
    elif method == "laplace":
        code = runner.lmf_laplace(
            data, init, a["seed"], a["init_radius"], int(a["jacobian"]), a["iter"], a["draws"], a["refresh"],
            out, columns, *common,
        )  # fmt: skip
    elif method == "pathfinder":
        code = runner.lmf_pathfinder(
            data, init, a["seed"], a["init_radius"], a["num_paths"], a["draws"], a["iter"], a["refresh"], out,
            columns, *common,
        )  # fmt: skip
    else:
        code = runner.lmf_advi(
            data, init, int(method == "fullrank"), a["seed"], a["init_radius"], a["iter"], a["draws"], out,
            columns, *common,
        )  # fmt: skip
    return code, rows.value


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
    method = METHODS[arguments["method"]]
    columns = runner.lmf_columns(data_path.encode(), method, names, len(names), error, len(error))
    if columns < 0:
        _say(3, error.value)
        return 2
    with open(draws_path + ".columns", "w") as handle:
        handle.write(names.value.decode())
    draws = DrawsFile(draws_path, capacity(arguments), columns)
    callback = MESSAGE(_say)
    code, rows = _run(
        runner, arguments, (data_path.encode(), init_path.encode()), draws.pointer, columns, callback, error
    )
    draws.close()
    with open(draws_path + ".rows", "w") as handle:
        handle.write(str(rows))
    if code == 2:
        _say(3, error.value)
    return code


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
