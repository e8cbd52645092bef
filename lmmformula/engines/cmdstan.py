"""The cmdstanpy backend, for users who have CmdStan installed.

Same programs, same settings (translated to CmdStan's names), same chain output as the
embedded engine; executables are cached in the same cache under ``cmdstan/``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..cache import cached_build, program_key
from .base import ChainOutput, CompiledProgram, SamplerSettings


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
        cmdstanpy.CmdStanModel(stan_file=str(folder / "model.stan"), compile=True)

    started = time.perf_counter()
    folder, built = cached_build("cmdstan", key, build, required=("model",))
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
    import cmdstanpy

    model = cmdstanpy.CmdStanModel(
        stan_file=str(program.path.with_suffix(".stan")), exe_file=str(program.path)
    )
    output_dir = tempfile.mkdtemp(prefix="lmmformula-cmdstan-")
    try:
        fit = model.sample(
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
            show_progress=progress is not None,
            output_dir=output_dir,
        )
        values = fit.draws(concat_chains=False)  # (draw, chain, column)
        columns = tuple(fit.column_names)
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)
    return [
        ChainOutput(chain=chain + 1, columns=columns, values=values[:, chain, :], seconds={})
        for chain in range(settings.chains)
    ]
