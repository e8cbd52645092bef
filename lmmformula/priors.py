"""Priors: defaults scaled to the data, as brms sets them, and user overrides.

A prior's distribution is part of the Stan program; its numbers are Stan data
(``prior_<class>_<argument>``), so new data or new numbers never change the program.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import ArgumentError, PriorError
from .families import Family


@dataclass(frozen=True)
class Distribution:
    """A prior distribution lmmformula accepts: its Stan name, arguments and support.

    ``positive``: the arguments that must be > 0. ``support``: ``"real"`` (any value; on
    ``sd`` and ``sigma``, which are >= 0, it becomes its half-distribution), ``"positive"``
    (only for ``sd``, ``sigma`` and positive family parameters), ``"unit"`` (only for family
    parameters between 0 and 1, such as ``zi``) or ``"correlation"`` (only for ``cor``).
    """

    name: str
    arguments: tuple[str, ...]
    positive: frozenset[str]
    support: str


def _distribution(name: str, arguments: str, positive: str, support: str = "real") -> Distribution:
    return Distribution(name, tuple(arguments.split()), frozenset(positive.split()), support)


#: Every distribution a prior may use (brms's names; ``lkj`` is Stan's ``lkj_corr_cholesky``).
DISTRIBUTIONS = {
    d.name: d
    for d in (
        _distribution("normal", "location scale", "scale"),
        _distribution("student_t", "df location scale", "df scale"),
        _distribution("cauchy", "location scale", "scale"),
        _distribution("double_exponential", "location scale", "scale"),
        _distribution("logistic", "location scale", "scale"),
        _distribution("exponential", "rate", "rate", "positive"),
        _distribution("gamma", "shape rate", "shape rate", "positive"),
        _distribution("inv_gamma", "shape scale", "shape scale", "positive"),
        _distribution("lognormal", "location scale", "scale", "positive"),
        _distribution("weibull", "shape scale", "shape scale", "positive"),
        _distribution("chi_square", "df", "df", "positive"),
        _distribution("beta", "a b", "a b", "unit"),
        _distribution("lkj_corr_cholesky", "eta", "eta", "correlation"),
    )
}
_ALIASES = {"lkj": "lkj_corr_cholesky", "lkj_corr": "lkj_corr_cholesky"}
_PRIOR_TEXT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$", re.DOTALL)
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

#: Parameter classes a user can set a prior on, with what each covers.
PRIOR_CLASSES = {
    "Intercept": "the intercept (on the link scale, for centered predictors)",
    "b": "every population-level slope",
    "sd": "every group-level standard deviation",
    "sigma": "the residual standard deviation (gaussian)",
    "cor": "every group-level correlation matrix (lkj)",
}
#: Which supports suit each class (see :class:`Distribution`).
_SUPPORTS = {
    "Intercept": ("real",),
    "b": ("real",),
    "sd": ("real", "positive"),
    "sigma": ("real", "positive"),
    "cor": ("correlation",),
}


@dataclass(frozen=True)
class Prior:
    """A distribution with numeric arguments, e.g. ``student_t(3, 0, 2.5)``.

    ``distribution`` is ``"flat"`` for an improper uniform prior (no statement).
    """

    distribution: str
    args: tuple[float, ...] = ()

    def __str__(self) -> str:
        if self.distribution == "flat":
            return "flat"
        return f"{self.distribution}({', '.join(_format_number(a) for a in self.args)})"


def parse_prior(text: str, parameter_class: str, supports: tuple[str, ...] | None = None) -> Prior:
    """Parse and check ``"normal(0, 5)"`` (numbers only as arguments) for ``parameter_class``.

    The distribution must be in :data:`DISTRIBUTIONS` and suit the class; the number of
    arguments, their finiteness and positivity are checked here, before any program exists.
    ``supports`` overrides the class's suitable supports (a family parameter's, from its Dpar).
    """
    where = f"prior for {parameter_class!r}"
    if not isinstance(text, str):
        raise PriorError(f"{where} must be a string such as 'normal(0, 5)', got {text!r}")
    if text.strip() == "flat":
        if parameter_class not in ("Intercept", "b"):
            raise PriorError(
                f"{where}: 'flat' is only for 'Intercept' and 'b'; {parameter_class!r} needs a proper "
                "prior such as 'student_t(3, 0, 2.5)'"
            )
        return Prior("flat")
    match = _PRIOR_TEXT.match(text)
    if not match:
        raise PriorError(f"{where}: {text!r} is not a distribution call such as 'normal(0, 5)'")
    name, inner = match.groups()
    distribution = DISTRIBUTIONS.get(_ALIASES.get(name, name))
    suits = supports or _SUPPORTS[parameter_class]
    if distribution is None:
        known = [d.name for d in DISTRIBUTIONS.values() if d.support in suits]
        close = difflib.get_close_matches(name.lower(), [*DISTRIBUTIONS, *_ALIASES], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise PriorError(
            f"{where}: unknown distribution {name!r} in {text!r}{hint}; use one of {', '.join(known)}"
        )
    if distribution.support not in suits:
        hint = _SUIT_HINT.get("unit" if suits == ("unit",) else parameter_class, _SUIT_HINT["sigma"])
        raise PriorError(f"{where}: {text!r} does not suit {parameter_class!r}: {hint}")
    pieces = [piece.strip() for piece in inner.split(",")] if inner.strip() else []
    signature = f"{name}({', '.join(distribution.arguments)})"
    if len(pieces) != len(distribution.arguments):
        raise PriorError(
            f"{where}: {text!r} has {len(pieces)} argument(s); {name} takes {len(distribution.arguments)}: "
            f"{signature}"
        )
    bad = [piece for piece in pieces if not _NUMBER.match(piece)]
    if bad:
        raise PriorError(f"{where}: {text!r}: arguments must be numbers, not {bad[0]!r}")
    args = tuple(float(piece) for piece in pieces)
    for argument, value in zip(distribution.arguments, args):
        if not np.isfinite(value):
            raise PriorError(f"{where}: {text!r}: the {argument} {value} is not a finite number")
        if argument in distribution.positive and value <= 0:
            raise PriorError(f"{where}: {text!r}: the {argument} must be > 0 in {signature}")
    return Prior(distribution.name, args)


_SUIT_HINT = {
    "Intercept": "it is unbounded; use a distribution on all reals such as 'student_t(3, 0, 2.5)'",
    "b": "it is unbounded; use a distribution on all reals such as 'normal(0, 5)'",
    "sd": "use a scale prior such as 'student_t(3, 0, 2.5)' (half-t), 'normal(0, 1)' or 'exponential(1)'",
    "sigma": "use a scale prior such as 'student_t(3, 0, 2.5)' (half-t), 'normal(0, 1)' or 'exponential(1)'",
    "cor": "correlations take 'lkj(eta)', e.g. 'lkj(2)'",
    "unit": "it lies between 0 and 1; use 'beta(a, b)', e.g. 'beta(1, 1)'",
}


# ------------------------------------------------------------------------------ the user's priors

#: ``priors="weakly_informative"``: normal(0, 2.5 * s_y / sd(x_k)) on each slope (rstanarm's autoscale)
WEAKLY_INFORMATIVE = "weakly_informative"


@dataclass(frozen=True)
class PriorSpec:
    """One prior as the user sets it with :func:`prior` (brms's ``set_prior`` / ``prior_string``).

    Attributes
    ----------
    prior : str
        The distribution with its numbers, e.g. ``"normal(0, 1)"``.
    class_, coef, group, dpar : str
        What it is on (see :func:`prior`); empty strings where not given.
    lb, ub : float or None
        Bounds of ``b`` coefficients.
    """

    prior: str
    class_: str = "b"
    coef: str = ""
    group: str = ""
    dpar: str = ""
    lb: float | None = None
    ub: float | None = None

    def __str__(self) -> str:
        parts = [self.prior, f"class = {self.class_}"]
        parts += [f"{k} = {v}" for k, v in (("coef", self.coef), ("group", self.group)) if v]
        parts += [f"{k} = {v:g}" for k, v in (("lb", self.lb), ("ub", self.ub)) if v is not None]
        return f"prior({', '.join(parts)})"

    @property
    def where(self) -> str:
        """How messages name it: ``prior for 'b' coef 'x'``."""
        text = f"prior for {self.class_!r}"
        if self.group:
            text += f" group {self.group!r}"
        if self.coef:
            text += f" coef {self.coef!r}"
        return text


def prior(
    prior: str,
    class_: str | None = None,
    coef: str = "",
    group: str = "",
    dpar: str = "",
    lb: float | None = None,
    ub: float | None = None,
) -> PriorSpec:
    """A prior on one class of parameters, or on one coefficient or grouping factor, as brms's
    ``prior_string``; pass a list of them as ``priors=``.

    Parameters
    ----------
    prior : str
        The distribution with numbers, e.g. ``"normal(0, 1)"``, ``"exponential(2)"``, ``"lkj(2)"``,
        ``"flat"`` (``b`` and ``Intercept`` only).
    class_ : str, default "b"
        ``"b"`` (population-level slopes), ``"Intercept"`` (an ordinal model's thresholds),
        ``"sd"``, ``"cor"``, or a family parameter (``"sigma"``, ``"shape"``, ``"phi"``, ``"nu"``,
        ``"zi"``, ``"hu"``).
    coef : str, optional
        One coefficient: a population-level column (``"x"``, ``"f[T.b]"``, or brms's ``"fb"``) for
        ``b``; a group-level term (``"Intercept"``, ``"Days"``) for ``sd`` (with ``group``).
    group : str, optional
        One grouping factor (``"Subject"``, ``"dept:service"``) for ``sd`` and ``cor``.
    dpar : str, optional
        A family parameter, the same as ``class_=`` its name (``"thresholds"``: the ordinal
        thresholds, class ``Intercept``).
    lb, ub : float, optional
        Bounds of ``b`` coefficients (the prior is truncated there), as brms.

    Returns
    -------
    PriorSpec

    Notes
    -----
    A more specific prior beats a less specific one: ``coef`` over ``group`` over the class.
    """
    if not isinstance(prior, str):
        raise PriorError(f"prior must be a string such as 'normal(0, 1)', got {prior!r}")
    for name, value in (("class_", class_), ("coef", coef), ("group", group), ("dpar", dpar)):
        if value is not None and not isinstance(value, str):
            raise ArgumentError(f"prior's {name} must be a string, got {value!r}")
    for name, value in (("lb", lb), ("ub", ub)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float | np.number) or np.isnan(value)
        ):
            raise ArgumentError(f"prior's {name} must be a number, got {value!r}")
    if dpar:
        target = "Intercept" if dpar == "thresholds" else dpar
        if class_ not in (None, target):
            raise ArgumentError(
                f"prior: dpar={dpar!r} sets the prior of the family parameter {dpar!r}; leave class_ out "
                f"(got class_={class_!r})"
            )
        class_ = target
    return PriorSpec(
        prior=prior,
        class_="b" if class_ is None else class_,
        coef=coef,
        group=group,
        dpar=dpar,
        lb=None if lb is None else float(lb),
        ub=None if ub is None else float(ub),
    )


def normalize_priors(priors) -> tuple[tuple[PriorSpec, ...], bool]:
    """The user's ``priors=`` as PriorSpecs, and whether the weakly-informative defaults were asked for.

    Takes None, ``"weakly_informative"``, one :func:`prior`, a dict of class -> prior text (the
    shorthand), or a list of :func:`prior` results (and ``"weakly_informative"``)."""
    if priors is None:
        return (), False
    if isinstance(priors, PriorSpec):
        return (priors,), False
    if isinstance(priors, str):
        if priors == WEAKLY_INFORMATIVE:
            return (), True
        raise ArgumentError(
            f"priors as a string can only be {WEAKLY_INFORMATIVE!r}; got {priors!r}. Set priors with a list "
            "of lf.prior(...), e.g. priors=[lf.prior('normal(0, 1)', class_='b')], or a dict such as "
            "{'b': 'normal(0, 1)'}"
        )
    if isinstance(priors, Mapping):
        specs = []
        for key, text in priors.items():
            if not isinstance(key, str):
                raise ArgumentError(
                    f"priors: the keys are parameter classes such as 'b' or 'sd'; got {key!r}"
                )
            specs.append(PriorSpec(text, key))
        return tuple(specs), False
    if isinstance(priors, list | tuple):
        specs, weakly = [], False
        for item in priors:
            if isinstance(item, PriorSpec):
                specs.append(item)
            elif item == WEAKLY_INFORMATIVE:
                weakly = True
            else:
                raise ArgumentError(
                    f"priors: a list takes lf.prior(...) entries (and {WEAKLY_INFORMATIVE!r}); got {item!r}. "
                    "E.g. priors=[lf.prior('normal(0, 1)', class_='b', coef='x')]"
                )
        return tuple(specs), weakly
    raise ArgumentError(
        "priors must be a list of lf.prior(...), a dict of parameter class to prior "
        f"(e.g. {{'b': 'normal(0, 5)'}}) or {WEAKLY_INFORMATIVE!r}; got {type(priors).__name__}"
    )


# ------------------------------------------------------------------------------- what has priors


@dataclass(frozen=True)
class PriorTargets:
    """What a model puts priors on (brms's ``get_prior`` rows): the intercept, the slopes' names,
    per group-level block its grouping factor, columns and whether it is correlated, the family's
    parameters, and for the weakly-informative slopes each slope's sd and the response's scale."""

    family: Family
    intercept: bool
    coefficients: tuple[str, ...]
    blocks: tuple[tuple[str, tuple[str, ...], bool], ...]
    slope_sds: tuple[float, ...]
    response_scale: float
    y: np.ndarray

    @property
    def groups(self) -> list[str]:
        return sorted({group for group, _, _ in self.blocks})

    def group_terms(self, group: str) -> list[str]:
        return sorted({c for g, columns, _ in self.blocks if g == group for c in columns})

    @property
    def correlated_groups(self) -> list[str]:
        return sorted({group for group, _, correlated in self.blocks if correlated})


def prior_targets(spec, X: np.ndarray, y: np.ndarray) -> PriorTargets:
    """The :class:`PriorTargets` of a design spec and its fitting data's X and response."""
    family: Family = spec.family
    X = np.asarray(X, dtype=float).reshape(len(y), -1)
    sds = (
        tuple(float(v) for v in X.std(axis=0, ddof=1))
        if len(y) > 1
        else tuple(1.0 for _ in range(X.shape[1]))
    )
    scale = 1.0
    if family.link == "identity" and not family.ordinal:
        working = family.working_scale(np.asarray(y, dtype=float)) if family.working_scale else y
        scale = float(np.std(np.asarray(working, dtype=float), ddof=1)) if len(y) > 1 else 1.0
    return PriorTargets(
        family=family,
        intercept=spec.has_intercept,
        coefficients=tuple(spec.fixed_columns),
        blocks=tuple((b.factor.name, tuple(b.columns), b.correlated) for b in spec.blocks),
        slope_sds=sds,
        response_scale=scale if np.isfinite(scale) and scale > 0 else 1.0,
        y=np.asarray(y),
    )


# -------------------------------------------------------------------------------------- resolved


@dataclass(frozen=True)
class PriorRow:
    """One row of :func:`get_prior`'s table."""

    prior: str
    class_: str
    coef: str = ""
    group: str = ""
    lb: str = ""
    ub: str = ""
    source: str = "default"


@dataclass(frozen=True)
class Priors:
    """Every prior of a model, resolved: per slope, per group-level sd and block, and per class;
    with the rows of :func:`get_prior`. Numbers go to the Stan data; the program depends only on
    which distributions appear (see :meth:`scalars` and :meth:`vectors`)."""

    intercept: Prior | None
    b: tuple[Prior, ...]
    b_bounds: tuple[tuple[float, float], ...]
    sd: tuple[tuple[Prior, ...], ...]  # per block, per column
    cor: tuple[Prior | None, ...]  # per block (None: uncorrelated)
    dpars: tuple[tuple[str, Prior], ...]
    rows: tuple[PriorRow, ...]
    user: tuple[PriorSpec, ...] = ()  # the user's priors, as given (normalized)
    weakly_informative: bool = False  # the weakly-informative slopes were asked for
    defaults: tuple[tuple[str, Prior], ...] = ()  # per class present, its default (data-scaled numbers)
    coefficients: tuple[str, ...] = ()  # the population-level slopes, as b lists them

    def pinned(self) -> list[PriorSpec]:
        """The user's priors plus every default written out at its exact numbers: the same priors
        for the same model on other data (whose data-scaled defaults would differ), as simulation-
        based calibration needs."""
        given = {(spec.class_, spec.group, spec.coef) for spec in self.user}  # dpar specs carry their class
        out = list(self.user)
        for name, prior in self.defaults:
            if name != "b" and (name, "", "") not in given:
                out.append(PriorSpec(_exact(prior), class_=name))
        if self.weakly_informative and ("b", "", "") not in given:
            out += [PriorSpec(_exact(p), "b", coef) for coef, p in zip(self.coefficients, self.b)
                    if ("b", "", coef) not in given]  # fmt: skip
        return out

    @property
    def bounded(self) -> bool:
        """Whether some slope has a bound (the program then declares b with bound vectors)."""
        return any(np.isfinite(lb) or np.isfinite(ub) for lb, ub in self.b_bounds)

    @property
    def flat_slopes(self) -> bool:
        return any(p.distribution == "flat" for p in self.b)

    def improper(self) -> list[str]:
        """What makes the prior improper (a prior-only fit impossible): flat priors without two
        finite bounds."""
        out = []
        if self.intercept is not None and self.intercept.distribution == "flat":
            out.append("'Intercept' has a flat prior")
        flat = [k for k, (p, (lb, ub)) in enumerate(zip(self.b, self.b_bounds))
                if p.distribution == "flat" and not (np.isfinite(lb) and np.isfinite(ub))]  # fmt: skip
        if flat:
            out.append(f"{len(flat)} slope(s) in 'b' have a flat prior")
        return out

    def table(self) -> pd.DataFrame:
        """brms's ``get_prior`` table: prior, class, coef, group, resp, dpar, nlpar, lb, ub, source."""
        return pd.DataFrame(
            [
                {"prior": r.prior, "class": r.class_, "coef": r.coef, "group": r.group, "resp": "",
                 "dpar": "", "nlpar": "", "lb": r.lb, "ub": r.ub, "source": r.source}
                for r in self.rows
            ],
            columns=["prior", "class", "coef", "group", "resp", "dpar", "nlpar", "lb", "ub", "source"],
        )  # fmt: skip


# ---------------------------------------------------------------------------- priors in the program


@dataclass(frozen=True)
class PriorCode:
    """One prior statement of the program and the data it reads. The statement depends only on the
    distribution and the parameter; which elements it covers and its numbers are data, so changing
    them, or moving a prior to another coefficient, reuses the compiled program."""

    statement: str
    declarations: tuple[str, ...]
    data: tuple[tuple[str, object], ...]

    def stan_data(self) -> dict:
        return dict(self.data)


def scalar_prior(target: str, stem: str, prior: Prior) -> PriorCode:
    """``target ~ dist(<stem>_<argument>, ...)`` with one number per argument (every element of a
    vector ``target`` alike)."""
    known = DISTRIBUTIONS[prior.distribution]
    data_names = [f"{stem}_{argument}" for argument in known.arguments]
    return PriorCode(
        statement=f"{target} ~ {prior.distribution}({', '.join(data_names)});",
        declarations=tuple(
            f"real{'<lower=0>' if argument in known.positive else ''} {name};"
            for argument, name in zip(known.arguments, data_names)
        ),
        data=tuple(zip(data_names, map(float, prior.args))),
    )


def vector_priors(target: str, size: str, stem_of, priors: tuple[Prior, ...]) -> list[PriorCode]:
    """Per distribution used by the elements of the vector ``target`` (of length ``size``):
    ``target[<stem>_index] ~ dist(<stem>_<argument>, ...)`` with a number per element covered. Flat
    elements get no statement. ``stem_of(distribution)`` names the data."""
    out = []
    for distribution in sorted({p.distribution for p in priors} - {"flat"}):
        known = DISTRIBUTIONS[distribution]
        stem = stem_of(distribution)
        covered = [k for k, p in enumerate(priors) if p.distribution == distribution]
        data_names = [f"{stem}_{argument}" for argument in known.arguments]
        declarations = [
            f"int<lower=1, upper={size}> {stem}_n;  // elements of {target} with a {distribution} prior",
            f"array[{stem}_n] int<lower=1, upper={size}> {stem}_index;  // which",
        ]
        declarations += [
            f"vector{'<lower=0>' if argument in known.positive else ''}[{stem}_n] {name};"
            for argument, name in zip(known.arguments, data_names)
        ]
        data = [(f"{stem}_n", len(covered)), (f"{stem}_index", [k + 1 for k in covered])]
        data += [
            (name, np.array([priors[k].args[a] for k in covered], dtype=float))
            for a, name in enumerate(data_names)
        ]
        out.append(
            PriorCode(
                statement=f"{target}[{stem}_index] ~ {distribution}({', '.join(data_names)});",
                declarations=tuple(declarations),
                data=tuple(data),
            )
        )
    return out


def _display(prior: Prior) -> str:
    """As brms shows a prior: ``(flat)``, ``lkj(1)``, ``student_t(3, 0, 2.5)``."""
    if prior.distribution == "flat":
        return "(flat)"
    return str(prior).replace("lkj_corr_cholesky(", "lkj(")


def _brms_style(name: str) -> str:
    """``f[T.b]`` as brms names it, ``fb``."""
    return re.sub(r"[^A-Za-z0-9_.]", "", name.replace("[T.", ""))


def _find(name: str, options, what: str, spec: PriorSpec) -> str:
    if name in options:
        return name
    matches = [o for o in options if _brms_style(o) == name]
    if len(matches) == 1:
        return matches[0]
    listed = ", ".join(repr(o) for o in options) or "none"
    raise PriorError(f"{spec.where}: this model has no {what} {name!r}; its {what}s are {listed}")


def resolve_priors(targets: PriorTargets, user=None) -> Priors:
    """The defaults (brms's, or the weakly-informative slopes), overridden by the user's priors
    (see :func:`normalize_priors`); a more specific prior beats a less specific one, as in brms.

    Every prior is checked here, before any program exists: the class, coefficient and group must
    exist (the message lists those that do), the distribution must suit the class, the numbers their
    arguments; bounds are for ``b`` only.
    """
    specs, weakly = normalize_priors(user)
    family = targets.family
    location, scale = family.prior_location(targets.y), family.prior_scale(targets.y)
    defaults: dict[str, Prior] = {
        "Intercept": Prior("student_t", (3.0, location, scale)),
        "b": Prior("flat"),
        "sd": Prior("student_t", (3.0, 0.0, scale)),
        "cor": Prior("lkj_corr_cholesky", (1.0,)),
    }
    for dpar in family.dpars:  # the family's own parameters, with brms's defaults from the registry
        defaults[dpar.name] = parse_prior(dpar.prior_for(targets.y), dpar.name, dpar.supports)
    present = {
        "Intercept": targets.intercept,
        "b": bool(targets.coefficients),
        **{dpar.name: True for dpar in family.dpars},
        "sd": bool(targets.blocks),
        "cor": bool(targets.correlated_groups),
    }
    chosen: dict[tuple[str, str, str], tuple[Prior, PriorSpec]] = {}
    for spec in specs:
        key = _check(spec, targets, defaults, present)
        if key in chosen:
            raise PriorError(f"{spec.where}: set twice ({chosen[key][1]} and {spec}); keep one")
        dpar = next((d for d in family.dpars if d.name == spec.class_), None)
        parsed = parse_prior(spec.prior, spec.class_, dpar.supports if dpar else None)
        chosen[key] = (parsed, spec)

    def user(parameter_class: str, group: str = "", coef: str = "") -> Prior | None:
        """The user's prior on exactly this target, if any."""
        found = chosen.get((parameter_class, group, coef))
        return None if found is None else found[0]

    rows: list[PriorRow] = []
    # b: per coefficient
    b, bounds = [], []
    class_b = user("b", "", "")
    for k, coef in enumerate(targets.coefficients):
        own = user("b", "", coef)
        if own is not None:
            b.append(own)
        elif class_b is not None:
            b.append(class_b)
        elif weakly:
            width = 2.5 * targets.response_scale / targets.slope_sds[k] if targets.slope_sds[k] > 0 else 2.5
            b.append(Prior("normal", (0.0, float(f"{width:.3g}"))))
        else:
            b.append(defaults["b"])
        spec = chosen.get(("b", "", coef), chosen.get(("b", "", ""), (None, None)))[1]
        bounds.append((
            -np.inf if spec is None or spec.lb is None else spec.lb,
            np.inf if spec is None or spec.ub is None else spec.ub,
        ))  # fmt: skip
    if targets.coefficients:
        if class_b is not None:
            class_text, source = _display(class_b), "user"
        elif weakly:
            class_text, source = (
                "normal(0, 2.5 * sd(y) / sd(x))"
                if targets.response_scale != 1.0
                else "normal(0, 2.5 / sd(x))",
                "default",
            )
        else:
            class_text, source = "(flat)", "default"
        cspec = chosen.get(("b", "", ""), (None, None))[1]
        rows.append(
            PriorRow(
                class_text, "b", lb=_bound(cspec and cspec.lb), ub=_bound(cspec and cspec.ub), source=source
            )
        )
        for coef, p, (lb, ub) in zip(targets.coefficients, b, bounds):
            own = ("b", "", coef) in chosen
            rows.append(PriorRow(_display(p), "b", coef, lb=_bound(lb), ub=_bound(ub),
                                 source="user" if own else "(vectorized)"))  # fmt: skip
    # cor: per block
    class_cor = user("cor", "", "")
    cor = []
    for group, _, correlated in targets.blocks:
        own = user("cor", group, "")
        cor.append((own or class_cor or defaults["cor"]) if correlated else None)
    if targets.correlated_groups:
        rows.append(PriorRow(_display(class_cor or defaults["cor"]), "cor", source=_source(class_cor)))
        for group in targets.correlated_groups:
            own = user("cor", group, "")
            rows.append(PriorRow(_display(own or class_cor or defaults["cor"]), "cor", group=group,
                                 source="user" if own else "(vectorized)"))  # fmt: skip
    # Intercept
    intercept = None
    if targets.intercept:
        own = user("Intercept", "", "")
        intercept = own or defaults["Intercept"]
        rows.append(PriorRow(_display(intercept), "Intercept", source=_source(own)))
    # sd: per block and column
    class_sd = user("sd", "", "")
    sd = []
    for group, columns, _ in targets.blocks:
        group_sd = user("sd", group, "")
        sd.append(tuple(user("sd", group, c) or group_sd or class_sd or defaults["sd"] for c in columns))
    if targets.blocks:
        rows.append(PriorRow(_display(class_sd or defaults["sd"]), "sd", lb="0", source=_source(class_sd)))
        for group in targets.groups:
            group_sd = user("sd", group, "")
            shown = group_sd or class_sd or defaults["sd"]
            rows.append(PriorRow(_display(shown), "sd", group=group, lb="0",
                                 source="user" if group_sd else "(vectorized)"))  # fmt: skip
            for term in targets.group_terms(group):
                own = user("sd", group, term)
                rows.append(PriorRow(_display(own or shown), "sd", term, group, lb="0",
                                     source="user" if own else "(vectorized)"))  # fmt: skip
    # the family's parameters
    dpars = []
    for dpar in family.dpars:
        own = user(dpar.name, "", "")
        value = own or defaults[dpar.name]
        dpars.append((dpar.name, value))
        rows.append(PriorRow(_display(value), dpar.name, lb=_bound(dpar.lower), ub=_bound(dpar.upper),
                             source=_source(own)))  # fmt: skip
    rows.sort(key=lambda r: r.class_.lower())  # brms's order: classes alphabetically, rows within as made
    pinned = tuple((name, prior) for name, prior in defaults.items() if present.get(name))
    return Priors(
        intercept, tuple(b), tuple(bounds), tuple(sd), tuple(cor), tuple(dpars), tuple(rows), specs, weakly,
        pinned, tuple(targets.coefficients),
    )  # fmt: skip


def _source(own) -> str:
    return "default" if own is None else "user"


def _bound(value) -> str:
    if value is None or not np.isfinite(value):
        return ""
    return f"{value:g}"


def _check(spec: PriorSpec, targets: PriorTargets, defaults: dict, present: dict) -> tuple[str, str, str]:
    """The (class, group, coef) a user's prior sets, after checking that the model has it."""
    family = targets.family
    if not isinstance(spec.class_, str) or spec.class_ not in defaults:
        known = ", ".join(repr(p) for p in defaults)
        raise PriorError(
            f"priors: unknown parameter class {spec.class_!r} for the {family.name} family; "
            f"use one of {known}"
        )
    if not present.get(spec.class_, False):
        raise PriorError(
            f"priors: this model has no {spec.class_!r} "
            f"({PRIOR_CLASSES.get(spec.class_, 'a family parameter')}): "
            f"{_ABSENT.get(spec.class_, f'the {family.name} family does not have it')}; "
            f"remove the prior for {spec.class_!r}"
        )
    if spec.dpar == "thresholds" and not family.ordinal:
        raise PriorError(
            f"{spec.where}: only an ordinal family has thresholds; the {family.name} family's intercept is "
            "class_='Intercept'"
        )
    if (spec.lb is not None or spec.ub is not None) and spec.class_ != "b":
        raise PriorError(f"{spec.where}: bounds (lb, ub) are only for class 'b', as in brms")
    if spec.lb is not None and spec.ub is not None and not spec.lb < spec.ub:
        raise PriorError(f"{spec.where}: lb ({spec.lb:g}) must be below ub ({spec.ub:g})")
    if spec.class_ == "b":
        if spec.group:
            raise PriorError(f"{spec.where}: 'b' has no group (population-level slopes); drop group=")
        coef = (
            _find(spec.coef, targets.coefficients, "population-level coefficient", spec) if spec.coef else ""
        )
        return ("b", "", coef)
    if spec.class_ == "sd":
        group = _find(spec.group, targets.groups, "grouping factor", spec) if spec.group else ""
        if spec.coef and not group:
            raise PriorError(
                f"{spec.where}: an sd prior on one term needs its group too, e.g. "
                f"lf.prior(..., class_='sd', group={targets.groups[0]!r}, coef={spec.coef!r})"
            )
        coef = (
            _find(spec.coef, targets.group_terms(group), f"group-level term of {group!r}", spec)
            if spec.coef
            else ""
        )
        return ("sd", group, coef)
    if spec.class_ == "cor":
        if spec.coef:
            raise PriorError(f"{spec.where}: correlations take one prior per group; drop coef=")
        group = (
            _find(spec.group, targets.correlated_groups, "correlated grouping factor", spec)
            if spec.group
            else ""
        )
        return ("cor", group, "")
    if spec.coef or spec.group:
        raise PriorError(f"{spec.where}: {spec.class_!r} is one parameter; drop coef= and group=")
    return (spec.class_, "", "")


_ABSENT = {
    "Intercept": "the formula removes the intercept ('0 +' or '- 1')",
    "b": "the formula has no population-level predictors",
    "sd": "the formula has no group-level terms",
    "cor": "no group-level term has correlated coefficients",
}


def _exact(prior: Prior) -> str:
    """A prior as :func:`prior` reads it, its numbers at full precision."""
    name = "lkj" if prior.distribution == "lkj_corr_cholesky" else prior.distribution
    return f"{name}({', '.join(repr(float(a)) for a in prior.args)})"


def _format_number(value: float) -> str:
    return f"{value:g}"
