"""Stage 1: parse an lme4-style formula into a :class:`FormulaSpec`.

The fixed part is left to formulaic; this module only splits it off and parses the
group-level bars ``(expr | group)`` and ``(expr || group)`` with lme4's semantics:
``(e | a/b)`` is ``(e | a) + (e | a:b)``, and ``||`` drops the correlations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import FormulaError

_NAME = re.compile(r"^(?:[^\W\d]|[.])[\w.]*$")  # a column name as R writes it unquoted
_ALL_COLUMNS = re.compile(r"(^|[\s+*:(-])\.($|[\s+*:)-])")
_CBIND = re.compile(r"^cbind\s*\((.*)\)$", re.DOTALL)


@dataclass(frozen=True)
class GroupTerm:
    """One group-level term ``(expr | factors)`` after expanding ``/``.

    ``factors`` holds the column names whose interaction is the grouping factor
    (one name for ``g``, several for ``a:b``).
    """

    expr: str
    factors: tuple[str, ...]
    correlated: bool
    source: str

    @property
    def group(self) -> str:
        """The grouping factor as lme4 writes it, e.g. ``a:b``."""
        return ":".join(self.factors)


@dataclass(frozen=True)
class FormulaSpec:
    """A parsed formula: response, fixed part (formulaic syntax) and group terms."""

    formula: str
    response: tuple[str, ...]  # one expression, or (successes, failures) for cbind
    fixed: str
    group_terms: tuple[GroupTerm, ...]
    offsets: tuple[str, ...] = ()  # the expressions inside offset(...), added to the linear predictor
    trials: str | None = None  # 'y | trials(n)': the number of binomial trials per row
    weights: str | None = None  # 'y | weights(w)': each row's log density times w


def parse_formula(formula: str) -> FormulaSpec:
    """Parse ``formula`` into a :class:`FormulaSpec`, raising FormulaError on bad syntax.

    Names in backticks may hold any character (spaces, '|', '~', parentheses): they are
    set aside while the structure is parsed and come back verbatim.
    """
    if not isinstance(formula, str) or not formula.strip():
        raise FormulaError("formula must be a non-empty string such as 'y ~ x + (x | group)'")
    if formula.count("`") % 2:
        raise FormulaError(f"formula {formula!r} has an unmatched backtick '`'")
    placeholders = Placeholders()
    masked = placeholders.mask(formula)
    restore = placeholders.restore

    try:
        spec = _parse(masked)
    except FormulaError as error:
        raise FormulaError(restore(str(error))) from None
    return FormulaSpec(
        formula=restore(spec.formula),
        response=tuple(restore(part) for part in spec.response),
        trials=None if spec.trials is None else restore(spec.trials),
        weights=None if spec.weights is None else restore(spec.weights),
        fixed=restore(spec.fixed),
        group_terms=tuple(
            GroupTerm(
                expr=restore(term.expr),
                factors=tuple(placeholders.names.get(name, name) for name in term.factors),
                correlated=term.correlated,
                source=restore(term.source),
            )
            for term in spec.group_terms
        ),
        offsets=tuple(restore(offset) for offset in spec.offsets),
    )


class Placeholders:
    """Names set aside as identifiers ``_lmmformula_quoted_<k>_`` while an expression's
    structure is read, so that no character inside them (spaces, '|', '~', parentheses,
    dots) counts; ``restore`` puts them back (in backticks by default)."""

    PATTERN = re.compile(r"_lmmformula_quoted_\d+_")
    _BACKTICKED = re.compile(r"`([^`]*)`")

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def keep(self, name: str) -> str:
        key = f"_lmmformula_quoted_{len(self.names)}_"
        self.names[key] = name
        return key

    def mask(self, text: str) -> str:
        """``text`` with every backticked name replaced by a placeholder."""
        return self._BACKTICKED.sub(lambda match: self.keep(match.group(1)), text)

    def restore(self, text: str, render=lambda name: f"`{name}`") -> str:
        return self.PATTERN.sub(lambda match: render(self.names[match.group(0)]), text)


def _parse(formula: str) -> FormulaSpec:
    text = " ".join(formula.split())
    _check_balanced(text)
    tilde = _top_level_positions(text, "~")
    if len(tilde) != 1:
        raise FormulaError(
            f"formula {text!r} must contain exactly one '~' separating response and predictors"
        )
    lhs, rhs = text[: tilde[0]].strip(), text[tilde[0] + 1 :].strip()
    if not lhs:
        raise FormulaError(f"formula {text!r} has no response on the left of '~'")
    lhs, additions = _split_additions(lhs)
    if not rhs:
        raise FormulaError(f"formula {text!r} has nothing on the right of '~'; use '~ 1'")
    fixed, bars = _split_bars(rhs)
    if _ALL_COLUMNS.search(fixed):
        raise FormulaError(
            f"'.' (all other columns) in {text!r} is not supported: name the predictors, e.g. 'y ~ x + z'"
        )
    terms = tuple(term for bar in bars for term in _expand_bar(bar))
    fixed, offsets = _split_offsets(fixed)
    return FormulaSpec(
        formula=text,
        response=_parse_response(lhs),
        fixed=fixed,
        group_terms=terms,
        offsets=offsets,
        trials=additions.get("trials"),
        weights=additions.get("weights"),
    )


_ADDITION = re.compile(r"^([A-Za-z_.][\w.]*)\s*\((.*)\)$", re.DOTALL)
ADDITION_TERMS = ("trials", "weights")
#: brms's other addition terms, named in the error that says they are not supported
_BRMS_ADDITIONS = (
    "se", "cens", "trunc", "mi", "rate", "subset", "thres", "cat", "dec", "vint", "vreal", "index",
)  # fmt: skip


def _split_additions(lhs: str) -> tuple[str, dict[str, str]]:
    """brms's addition terms: 'y | trials(n) + weights(w)' -> ('y', {'trials': 'n', 'weights': 'w'})."""
    bars = _top_level_positions(lhs, "|")
    if not bars:
        return lhs, {}
    if len(bars) > 1:
        raise FormulaError(f"response {lhs!r}: write the addition terms after one '|', joined by '+'")
    response, right = lhs[: bars[0]].strip(), lhs[bars[0] + 1 :].strip()
    if not response:
        raise FormulaError(f"response {lhs!r} has nothing before '|'; write e.g. 'y | weights(w) ~ x'")
    additions: dict[str, str] = {}
    for part in _split_top_level(right, "+"):
        part = part.strip()
        match = _ADDITION.match(part)
        name = match.group(1) if match else ""
        if name not in ADDITION_TERMS:
            known = "; brms's " + repr(name) + " is not supported yet" if name in _BRMS_ADDITIONS else ""
            raise FormulaError(
                f"response {lhs!r}: {part!r} is not an addition term lmmformula knows{known}; the response "
                "takes 'y | trials(n)' (binomial), 'y | weights(w)' or both: 'y | trials(n) + weights(w)'"
            )
        inside = match.group(2).strip()
        if not inside:
            raise FormulaError(f"response {lhs!r}: {name}() needs a column or expression, e.g. {name}(n)")
        if name in additions:
            raise FormulaError(f"response {lhs!r}: {name}(...) is given twice")
        additions[name] = inside
    return response, additions


_OFFSET = re.compile(r"^offset\s*\((.*)\)$", re.DOTALL)


def _split_offsets(fixed: str) -> tuple[str, tuple[str, ...]]:
    """``x + offset(log(t))`` -> ``("x", ("log(t)",))``: offsets are added terms of their own."""
    parts = _split_top_level(fixed, "+")
    offsets = []
    kept = []
    for part in parts:
        match = _OFFSET.match(part.strip())
        if match and match.group(1).strip():
            offsets.append(match.group(1).strip())
        else:
            kept.append(part.strip())
    if not offsets:
        return fixed, ()
    rest = " + ".join(p for p in kept if p)
    if not rest or rest in ("-1", "- 1"):
        rest = "1" if not rest else "0"
    return rest, tuple(offsets)


def _split_top_level(text: str, separator: str) -> list[str]:
    cuts = _top_level_positions(text, separator)
    bounds = [-1, *cuts, len(text)]
    return [text[a + 1 : b] for a, b in zip(bounds, bounds[1:])]


def _check_balanced(text: str) -> None:
    depth = 0
    for pos, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise FormulaError(
                    f"unbalanced parentheses in {text!r}: ')' at position {pos} has no matching '('"
                )
    if depth:
        raise FormulaError(f"unbalanced parentheses in {text!r}: {depth} '(' never closed")


def _top_level_positions(text: str, char: str) -> list[int]:
    depth, found = 0, []
    for pos, c in enumerate(text):
        depth += (c == "(") - (c == ")")
        if c == char and depth == 0:
            found.append(pos)
    return found


def _closing_paren(text: str, start: int) -> int:
    depth = 0
    for pos in range(start, len(text)):
        depth += (text[pos] == "(") - (text[pos] == ")")
        if depth == 0:
            return pos
    raise FormulaError(f"unbalanced parentheses in {text!r}")  # pragma: no cover - checked before


def _split_bars(rhs: str) -> tuple[str, list[str]]:
    """Remove the ``( ... | ... )`` terms from the right-hand side.

    A bar term is a parenthesis at the top level that is not a function call and holds
    a ``|`` at its own top level. Returns the remaining fixed part and the bar contents.
    """
    fixed_parts: list[str] = []
    bars: list[str] = []
    pos = 0
    last = 0
    while pos < len(rhs):
        char = rhs[pos]
        if char == "(":
            end = _closing_paren(rhs, pos)
            before = rhs[:pos].rstrip()
            is_call = bool(before) and (before[-1].isalnum() or before[-1] in "_.)")
            inner = _unwrap(rhs[pos + 1 : end])
            if not is_call and _top_level_positions(inner, "|"):
                after = rhs[end + 1 :].lstrip()[:1]
                if after and after not in "+-)":
                    raise FormulaError(
                        f"group-level term '({inner.strip()})' must be added with '+', "
                        f"not combined with {after!r}"
                    )
                operator = before[-1:] if before else ""
                if operator == "-":
                    raise FormulaError(
                        f"group-level term '({inner.strip()})' cannot be removed with '-'; "
                        "leave it out of the formula instead"
                    )
                if operator not in ("", "+"):
                    raise FormulaError(
                        f"group-level term '({inner.strip()})' must be added with '+', "
                        f"not combined with {operator!r}"
                    )
                fixed_parts.append(before[last:].rstrip("+ ") if operator else rhs[last:pos])
                bars.append(inner.strip())
                last = end + 1
            pos = end + 1
            continue
        if char == "|":
            raise FormulaError(
                f"'|' outside parentheses in {rhs!r}: write group-level terms as '(x | group)'"
            )
        pos += 1
    fixed_parts.append(rhs[last:])
    fixed = " ".join(part.strip() for part in fixed_parts if part.strip())
    fixed = re.sub(r"^\+\s*", "", fixed).strip()
    return (fixed or "1"), bars


def _unwrap(text: str) -> str:
    """``(1 | g)`` from ``((1 | g))``: redundant parentheses around a whole bar term go."""
    inner = text.strip()
    while inner.startswith("(") and _closing_paren(inner, 0) == len(inner) - 1:
        inner = inner[1:-1].strip()
    return inner


def _expand_bar(bar: str) -> list[GroupTerm]:
    bar_positions = _top_level_positions(bar, "|")
    double = len(bar_positions) == 2 and bar_positions[1] == bar_positions[0] + 1
    if len(bar_positions) > 2 or (len(bar_positions) == 2 and not double):
        raise FormulaError(f"group-level term '({bar})' has more than one bar; use '|' or '||' once")
    cut = bar_positions[0]
    expr = bar[:cut].strip()
    group_spec = bar[cut + (2 if double else 1) :].strip()
    if not expr:
        raise FormulaError(
            f"group-level term '({bar})' has nothing left of the bar; use '(1 | group)' "
            "for a group-level intercept"
        )
    if not group_spec:
        raise FormulaError(
            f"group-level term '({bar})' has no grouping factor right of the bar, e.g. '({expr} | group)'"
        )
    return [
        GroupTerm(expr=expr, factors=factors, correlated=not double, source=f"({bar})")
        for factors in _expand_nesting(group_spec, bar)
    ]


def _expand_nesting(group_spec: str, bar: str) -> list[tuple[str, ...]]:
    """``a/b/c`` -> [(a,), (a, b), (a, b, c)]; ``a:b`` -> [(a, b)]."""
    expanded: list[tuple[str, ...]] = []
    prefix: tuple[str, ...] = ()
    for level in group_spec.split("/"):  # backticked names are placeholders here
        names = tuple(_column_name(name.strip(), bar) for name in level.split(":"))
        prefix = prefix + names
        expanded.append(prefix)
    return expanded


def _column_name(name: str, bar: str) -> str:
    """A grouping column's name as R allows it unquoted (a backticked one is a placeholder here)."""
    wrapped = re.match(r"^(?:as\.)?factor\s*\((.*)\)$", name)  # R's (1 | factor(g)): g is a factor anyway
    if wrapped:
        name = wrapped.group(1).strip()
    if _NAME.match(name):
        return name
    raise FormulaError(
        f"grouping factor {name!r} in '({bar})' is not a column name; the right of a bar takes column "
        "names joined by ':' (interaction) or '/' (nesting); put a name with spaces or symbols in "
        "backticks, e.g. '(1 | `my group`)'"
    )


def _parse_response(lhs: str) -> tuple[str, ...]:
    match = _CBIND.match(lhs)
    if not match:
        return (lhs,)
    parts = [part.strip() for part in _split_top_level(match.group(1), ",")]
    if len(parts) != 2 or not all(parts):
        raise FormulaError(f"response {lhs!r}: cbind takes two arguments, cbind(successes, failures)")
    return tuple(parts)
