"""Priors: defaults scaled to the data, as brms sets them, and user overrides.

A prior's distribution is part of the Stan program; its numbers are Stan data
(``prior_<class>_<argument>``), so new data or new numbers never change the program.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .errors import FormulaError
from .families import Family

# Names for the arguments of common distributions, so the data reads like the prior.
_ARGUMENT_NAMES = {
    "normal": ("location", "scale"),
    "student_t": ("df", "location", "scale"),
    "cauchy": ("location", "scale"),
    "double_exponential": ("location", "scale"),
    "logistic": ("location", "scale"),
    "lognormal": ("location", "scale"),
    "exponential": ("rate",),
    "gamma": ("shape", "rate"),
    "inv_gamma": ("shape", "scale"),
    "weibull": ("shape", "scale"),
    "uniform": ("lower", "upper"),
    "lkj_corr_cholesky": ("eta",),
}
_POSITIVE_ARGUMENTS = {"scale", "df", "rate", "shape", "eta"}
_PRIOR_TEXT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$")
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

#: Parameter classes a user can set a prior on, with what each covers.
PRIOR_CLASSES = {
    "Intercept": "the intercept (on the link scale, for centered predictors)",
    "b": "every population-level slope",
    "sd": "every group-level standard deviation",
    "sigma": "the residual standard deviation (gaussian)",
    "cor": "every group-level correlation matrix (lkj)",
}


@dataclass(frozen=True)
class Prior:
    """A distribution with numeric arguments, e.g. ``student_t(3, 0, 2.5)``.

    ``distribution`` is ``"flat"`` for an improper uniform prior (no statement).
    """

    distribution: str
    args: tuple[float, ...] = ()

    def argument_names(self) -> tuple[str, ...]:
        known = _ARGUMENT_NAMES.get(self.distribution)
        if known and len(known) == len(self.args):
            return known
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
        return [
            f"real{'<lower=0>' if arg in _POSITIVE_ARGUMENTS else ''} {name};"
            for arg, name in zip(self.prior.argument_names(), self.data_names())
        ]

    def call(self) -> str:
        """The distribution call, e.g. ``normal(prior_b_location, prior_b_scale)``."""
        return f"{self.prior.distribution}({', '.join(self.data_names())})"

    def stan_data(self) -> dict[str, float]:
        return dict(zip(self.data_names(), map(float, self.prior.args)))


def parse_prior(text: str, parameter_class: str) -> Prior:
    """Parse ``"normal(0, 5)"`` (numbers only as arguments) into a Prior."""
    if not isinstance(text, str):
        raise FormulaError(
            f"prior for {parameter_class!r} must be a string such as 'normal(0, 5)', got {text!r}"
        )
    if text.strip() == "flat":
        return Prior("flat")
    match = _PRIOR_TEXT.match(text)
    if not match:
        raise FormulaError(
            f"prior {text!r} for {parameter_class!r} is not a distribution call such as 'normal(0, 5)'"
        )
    name, inner = match.groups()
    pieces = [piece.strip() for piece in inner.split(",")] if inner.strip() else []
    bad = [piece for piece in pieces if not _NUMBER.match(piece)]
    if bad:
        raise FormulaError(
            f"prior {text!r} for {parameter_class!r}: arguments must be numbers, not {bad[0]!r}"
        )
    if name == "lkj":
        name = "lkj_corr_cholesky"
    return Prior(name, tuple(float(piece) for piece in pieces))


def default_priors(family: Family, y: np.ndarray) -> dict[str, Prior]:
    """brms's defaults: a Student-t intercept at the response's median, half-t scales."""
    location, scale = family.prior_location(y), family.prior_scale(y)
    priors = {
        "Intercept": Prior("student_t", (3.0, location, scale)),
        "b": Prior("flat"),
        "sd": Prior("student_t", (3.0, 0.0, scale)),
        "cor": Prior("lkj_corr_cholesky", (1.0,)),
    }
    if family.has_sigma:
        priors["sigma"] = Prior("student_t", (3.0, 0.0, scale))
    return priors


def resolve_priors(family: Family, y: np.ndarray, user: Mapping[str, str] | None) -> dict[str, PriorData]:
    """Defaults overridden by the user's ``{class: "dist(args)"}`` mapping."""
    priors = default_priors(family, y)
    for parameter_class, text in (user or {}).items():
        if parameter_class not in priors:
            known = ", ".join(p for p in PRIOR_CLASSES if p in priors)
            raise FormulaError(
                f"priors: unknown parameter class {parameter_class!r} for the {family.name} "
                f"family; use one of {known}"
            )
        prior = parse_prior(text, parameter_class)
        if prior.distribution == "flat" and parameter_class not in ("Intercept", "b"):
            raise FormulaError(
                f"priors: {parameter_class!r} needs a proper prior; 'flat' is only for 'Intercept' and 'b'"
            )
        if parameter_class == "cor" and prior.distribution != "lkj_corr_cholesky":
            raise FormulaError(f"priors: 'cor' takes 'lkj(eta)', got {text!r}")
        priors[parameter_class] = prior
    return {name: PriorData(name, prior) for name, prior in priors.items()}


def _format_number(value: float) -> str:
    return f"{value:g}"
