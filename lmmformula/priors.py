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

    def argument_names(self) -> tuple[str, ...]:
        known = DISTRIBUTIONS.get(self.distribution)
        if known and len(known.arguments) == len(self.args):
            return known.arguments
        return tuple(f"arg{i}" for i in range(1, len(self.args) + 1))

    def __str__(self) -> str:
        if self.distribution == "flat":
            return "flat"
        return f"{self.distribution}({', '.join(_format_number(a) for a in self.args)})"


@dataclass(frozen=True)
class PriorData:
    """One prior as the templates use it: the Stan statement parts and its data."""

    parameter_class: str
    prior: Prior

    @property
    def is_flat(self) -> bool:
        return self.prior.distribution == "flat"

    def data_names(self) -> tuple[str, ...]:
        return tuple(f"prior_{self.parameter_class}_{n}" for n in self.prior.argument_names())

    def declarations(self) -> list[str]:
        """Data-block declarations of the prior's numbers."""
        positive = DISTRIBUTIONS[self.prior.distribution].positive
        return [
            f"real{'<lower=0>' if arg in positive else ''} {name};"
            for arg, name in zip(self.prior.argument_names(), self.data_names())
        ]

    def call(self) -> str:
        """The distribution call, e.g. ``normal(prior_b_location, prior_b_scale)``."""
        return f"{self.prior.distribution}({', '.join(self.data_names())})"

    def stan_data(self) -> dict[str, float]:
        return dict(zip(self.data_names(), map(float, self.prior.args)))


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


def default_priors(family: Family, y: np.ndarray) -> dict[str, Prior]:
    """brms's defaults: a Student-t intercept at the response's median, half-t scales."""
    location, scale = family.prior_location(y), family.prior_scale(y)
    priors = {
        "Intercept": Prior("student_t", (3.0, location, scale)),
        "b": Prior("flat"),
        "sd": Prior("student_t", (3.0, 0.0, scale)),
        "cor": Prior("lkj_corr_cholesky", (1.0,)),
    }
    for dpar in family.dpars:  # the family's own parameters, with brms's defaults from the registry
        priors[dpar.name] = parse_prior(dpar.prior_for(y), dpar.name, dpar.supports)
    return priors


def resolve_priors(
    family: Family, y: np.ndarray, user: Mapping[str, str] | None, present: Mapping[str, bool]
) -> dict[str, PriorData]:
    """Defaults overridden by the user's ``{class: "dist(args)"}`` mapping.

    ``present`` says which classes the model has (e.g. ``cor`` only with correlated
    group-level terms); a prior for a class it lacks is an error, as in brms.
    """
    if user is not None and not isinstance(user, Mapping):
        raise ArgumentError(
            f"priors must be a dict of parameter class to prior, e.g. {{'b': 'normal(0, 5)'}}; "
            f"got {type(user).__name__}"
        )
    priors = default_priors(family, y)
    for parameter_class, text in (user or {}).items():
        if parameter_class not in priors:
            known = ", ".join(repr(p) for p in priors)
            raise PriorError(
                f"priors: unknown parameter class {parameter_class!r} for the {family.name} "
                f"family; use one of {known}"
            )
        if not present.get(parameter_class, False):
            raise PriorError(
                f"priors: this model has no {parameter_class!r} ({PRIOR_CLASSES[parameter_class]}): "
                f"{_ABSENT[parameter_class]}; remove the prior for {parameter_class!r}"
            )
        dpar = next((d for d in family.dpars if d.name == parameter_class), None)
        priors[parameter_class] = parse_prior(text, parameter_class, dpar.supports if dpar else None)
    return {name: PriorData(name, prior) for name, prior in priors.items()}


_ABSENT = {
    "Intercept": "the formula removes the intercept ('0 +' or '- 1')",
    "b": "the formula has no population-level predictors",
    "sd": "the formula has no group-level terms",
    "sigma": "only the gaussian family has it",
    "cor": "no group-level term has correlated coefficients",
}


def _format_number(value: float) -> str:
    return f"{value:g}"
