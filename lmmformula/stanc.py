"""The stanc compiler bundled in the httpstan wheel: find it and check programs with it."""

from __future__ import annotations

import re
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

PROGRAM_NAME = "model.stan_code"


class StanCompileError(RuntimeError):
    """stanc rejected a program; the message shows stanc's report and the offending line."""


def stanc_path() -> Path:
    """Path of the stanc binary shipped with httpstan."""
    path = Path(str(resources.files("httpstan") / "stanc"))
    if not path.exists():
        raise FileNotFoundError(f"httpstan's stanc not found at {path}; reinstall httpstan")
    return path


def check_program(code: str, name: str = "model", timeout: float = 60.0) -> str:
    """Translate ``code`` to C++ with stanc; return the C++ or raise StanCompileError."""
    with tempfile.TemporaryDirectory(prefix="lmmformula-stanc-") as folder:
        source = Path(folder) / f"{name}.stan"
        target = Path(folder) / f"{name}.hpp"
        source.write_text(code)
        result = subprocess.run(
            [
                str(stanc_path()),
                f"--name={name}",
                f"--filename-in-msg={PROGRAM_NAME}",  # runtime messages point at model.stan_code
                f"--o={target}",
                str(source),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            message = result.stderr or result.stdout
            raise StanCompileError(with_program_line(message, message, code))
        return target.read_text()


def with_program_line(message: str, located: str, code: str) -> str:
    """``message`` plus the program line that ``located`` names ("line N")."""
    lines = code.splitlines()
    match = re.search(r"line (\d+)", located)
    if match and 0 < int(match.group(1)) <= len(lines):
        number = int(match.group(1))
        return f"{message.strip()}\n\nline {number} of the generated program:\n  {lines[number - 1]}"
    return message.strip()
