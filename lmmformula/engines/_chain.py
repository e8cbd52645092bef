"""Worker process of the embedded engine: runs one chain in its main thread.

Started as ``python -m lmmformula.engines._chain MODULE SOCKET DATA ARGUMENTS`` where
DATA is a pickle of the Stan data and ARGUMENTS one of ``(init, sampler_arguments)``. Draws and messages go to
the parent over the Unix socket SOCKET; this process prints nothing, except the reason
when MODULE cannot be loaded (exit code ``MODULE_FAILED``), to stderr.
"""

from __future__ import annotations

import ctypes
import importlib.util
import pickle
import signal
import sys

_PR_SET_PDEATHSIG = 1
# Exit code when the compiled module cannot be loaded: the parent then rebuilds it.
MODULE_FAILED = 3


def _die_with_parent() -> None:
    """Ask Linux to end this process if the parent dies, so no chain is left orphaned."""
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the parent's cleanup still applies
        pass


def main(module_path: str, socket_path: str, data_path: str, arguments_path: str) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    _die_with_parent()
    with open(data_path, "rb") as handle:
        data = pickle.load(handle)
    with open(arguments_path, "rb") as handle:
        init, arguments = pickle.load(handle)
    try:
        spec = importlib.util.spec_from_file_location("stan_services", module_path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as error:  # ImportError, OSError, ...: a damaged or foreign file
        print(f"{type(error).__name__}: {error}", file=sys.stderr, flush=True)
        return MODULE_FAILED
    return int(module.hmc_nuts_diag_e_adapt_wrapper(socket_path, data, init, **arguments))


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
