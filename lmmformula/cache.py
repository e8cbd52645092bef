"""The compiled-model cache: one folder per program and toolchain, filled atomically.

Keys hash the program without its comments, so same-structure formulas share a
compiled model. A lock per key makes a second process wait for the first compile
instead of compiling twice; the finished folder appears with one atomic rename.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_root() -> Path:
    """``$LMMFORMULA_CACHE``, else ``$XDG_CACHE_HOME/lmmformula``, else ``~/.cache/lmmformula``."""
    if os.environ.get("LMMFORMULA_CACHE"):
        return Path(os.environ["LMMFORMULA_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lmmformula"


def strip_comments(code: str) -> str:
    """The program without ``//`` comments and trailing blanks: what the compiler sees."""
    lines = (re.sub(r"//.*$", "", line).rstrip() for line in code.splitlines())
    return "\n".join(line for line in lines if line) + "\n"


def program_key(code: str, toolchain: str) -> str:
    """Hash of the comment-free program and a description of the toolchain."""
    digest = hashlib.sha256()
    digest.update(strip_comments(code).encode())
    digest.update(b"\0" + toolchain.encode())
    return digest.hexdigest()[:20]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_build(kind: str, key: str, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """The folder ``<cache>/<kind>/<key>``, built by ``build(folder)`` if missing.

    Returns the folder and whether it was built now. ``build`` writes into a private
    temporary folder that is renamed into place only when it succeeds.
    """
    final = cache_root() / kind / key
    if final.is_dir():
        return final, False
    with _locked(cache_root() / kind / f"{key}.lock"):
        if final.is_dir():  # another process finished it while we waited
            return final, False
        work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
        try:
            build(work)
            os.replace(work, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final, True
