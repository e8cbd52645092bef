"""The compiled-model cache: one folder per program and toolchain, filled atomically.

Keys hash the program without its comments, so same-structure formulas share a
compiled model. A lock per key makes a second process wait for the first compile
instead of compiling twice; the finished folder appears with one atomic rename.
Each folder ends with a marker listing its files and their sizes; a folder whose
marker is missing or does not match (a copy cut short, a file deleted or truncated)
is rebuilt with a ``RuntimeWarning``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MARKER = "complete.json"
# Part of every key: folders of an older layout (no marker) are never mistaken for corrupt ones.
LAYOUT = "layout 2: complete.json"


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
    digest.update(b"\0" + LAYOUT.encode())
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


def cached_build(
    kind: str, key: str, build: Callable[[Path], None], required: Sequence[str] = ()
) -> tuple[Path, bool]:
    """The folder ``<cache>/<kind>/<key>``, built by ``build(folder)`` if missing or broken.

    Returns the folder and whether it was built now. ``build`` writes into a private
    temporary folder that gets its marker and is renamed into place only when it
    succeeds. ``required``: files the folder must hold to count as complete.
    """
    final = cache_root() / kind / key
    if final.is_dir() and entry_problem(final, required) is None:
        return final, False
    with _locked(_lock_path(final)):
        if final.exists() or final.is_symlink():
            problem = entry_problem(final, required)
            if problem is None:  # another process finished it while we waited
                return final, False
            _warn_rebuild(final, problem)
            _remove(final)
        work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
        try:
            build(work)
            _write_marker(work)
            os.replace(work, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final, True


def entry_problem(folder: Path, required: Sequence[str] = ()) -> str | None:
    """Why ``folder`` is not a complete cache entry, or None when it is."""
    try:
        sizes = json.loads((folder / MARKER).read_text())["files"]
    except FileNotFoundError:
        return f"no {MARKER} marker"
    except (OSError, ValueError, KeyError, TypeError):
        return f"unreadable {MARKER} marker"
    if not isinstance(sizes, dict):
        return f"unreadable {MARKER} marker"
    for name in required:
        if name not in sizes:
            return f"{name} is not listed in {MARKER}"
    for name, size in sizes.items():
        try:
            actual = (folder / name).stat().st_size
        except OSError:
            return f"{name} is missing"
        if actual != size:
            return f"{name} has {actual} bytes instead of {size}"
    return None


def discard(folder: Path, problem: str) -> None:
    """Remove the cache entry ``folder``, found broken in use, with a warning that says why."""
    with _locked(_lock_path(folder)):
        if folder.exists():
            _warn_rebuild(folder, problem)
            _remove(folder)


def _lock_path(folder: Path) -> Path:
    return folder.parent / f"{folder.name}.lock"


def _warn_rebuild(folder: Path, problem: str) -> None:
    warnings.warn(
        f"compile cache entry {folder} was incomplete/corrupt ({problem}); rebuilding",
        RuntimeWarning,
        stacklevel=2,
    )


def _write_marker(folder: Path) -> None:
    sizes = {path.name: path.stat().st_size for path in sorted(folder.iterdir()) if path.is_file()}
    (folder / MARKER).write_text(json.dumps({"files": sizes}, indent=1) + "\n")


def _remove(folder: Path) -> None:
    """Move the entry out of the way in one rename (no process sees it half-deleted), then delete it."""
    if folder.is_symlink() or not folder.is_dir():
        folder.unlink(missing_ok=True)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{folder.name}-broken-", dir=folder.parent))
    os.replace(folder, aside / folder.name)
    shutil.rmtree(aside, ignore_errors=True)


@dataclass(frozen=True)
class CacheInfo:
    """What the compile cache holds: see :func:`cache_info`."""

    root: Path
    entries: dict[str, int]  # kind ("embedded", "runner", "cmdstan") -> complete entries
    size_bytes: int

    def __str__(self) -> str:
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(self.entries.items())) or "empty"
        return f"lmmformula compile cache {self.root}: {kinds}; {self.size_bytes / 1e6:.0f} MB"


def cache_info() -> CacheInfo:
    """Where the compile cache is, what it holds and how much disk it takes.

    Returns
    -------
    CacheInfo
        ``root`` (``$LMMFORMULA_CACHE``, else ``$XDG_CACHE_HOME/lmmformula``, else
        ``~/.cache/lmmformula``), ``entries`` (complete entries per kind: compiled programs
        under ``"embedded"`` and ``"cmdstan"``, the runner and its precompiled header under
        ``"runner"``) and ``size_bytes`` (everything under the root).
    """
    root = cache_root()
    entries: dict[str, int] = {}
    if root.is_dir():
        for kind in sorted(p for p in root.iterdir() if p.is_dir()):
            complete = [e for e in kind.iterdir() if e.is_dir() and entry_problem(e) is None]
            if complete:
                entries[kind.name] = len(complete)
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0
    return CacheInfo(root, entries, size)


def clear_cache() -> int:
    """Delete every compiled program and the runner; the next fit of each structure compiles again.

    An entry another process is building is waited for (its lock) and then removed; the
    small lock files stay.

    Returns
    -------
    int
        The bytes freed.
    """
    root = cache_root()
    before = cache_info().size_bytes
    if root.is_dir():
        for kind in (p for p in root.iterdir() if p.is_dir()):
            for entry in list(kind.iterdir()):
                if entry.is_dir() and not entry.name.startswith("."):
                    with _locked(_lock_path(entry)):
                        _remove(entry)
    return before - cache_info().size_bytes
