"""Engines that compile and sample Stan programs, behind one narrow interface:

``compile_program(code, announce=None) -> CompiledProgram`` and
``sample(program, data, settings, progress) -> list[ChainOutput]``.
"""

from __future__ import annotations

from types import ModuleType

from ..errors import ArgumentError, EngineError
from . import cmdstan, embedded
from .base import ApproximationSettings, ChainOutput, CompiledProgram, SamplerSettings, default_cores

BACKENDS = ("auto", "embedded", "cmdstanpy")

__all__ = [
    "ApproximationSettings",
    "ChainOutput",
    "CompiledProgram",
    "SamplerSettings",
    "default_cores",
    "get_engine",
]


def get_engine(backend: str) -> tuple[str, ModuleType]:
    """The engine for ``backend``: "auto" picks cmdstanpy when CmdStan is installed."""
    if backend not in BACKENDS:
        raise ArgumentError(f"backend={backend!r} is not one of {', '.join(map(repr, BACKENDS))}")
    if backend == "cmdstanpy" or (backend == "auto" and cmdstan.available()):
        if not cmdstan.available():
            raise EngineError(
                "backend='cmdstanpy' needs CmdStan (cmdstanpy.install_cmdstan()); "
                "backend='embedded' needs nothing more"
            )
        return "cmdstanpy", cmdstan
    return "embedded", embedded
