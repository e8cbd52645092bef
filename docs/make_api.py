"""Write docs/api.md from the docstrings of everything ``lmmformula`` exports.

Run ``python docs/make_api.py`` after changing a public docstring; a test checks that
docs/api.md is current.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import lmmformula as lf

API = Path(__file__).with_name("api.md")
_SKIP = {"__version__"}


_SECTIONS = {"Parameters", "Returns", "Raises", "Attributes", "Examples", "Notes", "Yields", "See Also"}


def _markdown(doc: str) -> str:
    """A numpydoc docstring as Markdown: sections in bold, entries as a list, examples as code."""
    lines = inspect.cleandoc(doc).splitlines()
    out: list[str] = []
    section = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() in _SECTIONS and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}:
            section = line.strip()
            out += ["", f"**{section}**", ""] + (["```python"] if section == "Examples" else [])
            i += 2
            continue
        if section == "Examples":
            out.append(line)
        elif (
            section in ("Parameters", "Returns", "Raises", "Attributes", "Yields")
            and line
            and not line[0].isspace()
        ):
            name, _, kind = line.partition(" : ")
            out.append(f"- `{name.strip()}`" + (f" ({kind.strip()})" if kind else "") + ":")
        elif section in ("Parameters", "Returns", "Raises", "Attributes", "Yields") and line.strip():
            out[-1] += " " + line.strip()
        else:
            out.append(line)
        i += 1
    if section == "Examples":
        out.append("```")
    return "\n".join(out).strip()


def _signature(obj) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""


def _section(name: str, obj, level: str = "##") -> list[str]:
    kind = "class" if inspect.isclass(obj) else "function"
    lines = [f"{level} `lf.{name}{_signature(obj) if kind == 'function' else ''}`", ""]
    if kind == "class" and not issubclass(obj, BaseException):
        lines[0] = f"{level} `lf.{name}{_signature(obj)}`"
    lines += [_markdown(obj.__doc__ or "(undocumented)"), ""]
    if kind == "class" and not issubclass(obj, BaseException):
        for member, value in inspect.getmembers(obj):
            if member.startswith("_"):
                continue
            doc = inspect.getdoc(value) if callable(value) or isinstance(value, property) else None
            if not doc or getattr(value, "__module__", "lmmformula").split(".")[0] != "lmmformula":
                continue
            call = _signature(value) if callable(value) else ""
            lines += [f"### `{name}.{member}{call}`", "", _markdown(doc), ""]
    return lines


def render() -> str:
    lines = [
        "# API reference",
        "",
        "Generated from the docstrings by `python docs/make_api.py`; do not edit by hand.",
        "Everything here is exported by `import lmmformula as lf`.",
        "",
    ]
    errors = [
        n
        for n in lf.__all__
        if n not in _SKIP
        and inspect.isclass(getattr(lf, n))
        and issubclass(getattr(lf, n), (BaseException, Warning))
    ]
    for name in lf.__all__:
        if name in _SKIP or name in errors:
            continue
        lines += _section(name, getattr(lf, name))
    lines += ["## Errors and warnings", ""]
    for name in errors:
        obj = getattr(lf, name)
        bases = ", ".join(b.__name__ for b in obj.__bases__)
        lines += [f"- `lf.{name}` ({bases}): {inspect.cleandoc(obj.__doc__ or '')}"]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    API.write_text(render())
    sys.stdout.write(f"wrote {API}\n")
