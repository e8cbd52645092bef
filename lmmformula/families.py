"""Response families: link, Stan likelihood template, response checks and default priors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import ArgumentError, DataError


@dataclass(frozen=True)
class Family:
    """A response distribution with its (canonical) link; get one with :func:`get_family`.

    Attributes
    ----------
    name : str
        ``"gaussian"``, ``"bernoulli"``, ``"poisson"`` or ``"binomial"``.
    link : str
        The link function (``"identity"``, ``"logit"``, ``"log"``).
    has_sigma : bool
        Whether the family has a residual sd (``sigma``).

    Notes
    -----
    ``template`` names the Jinja template under ``templates/families/`` that declares the
    response, the family's own parameters and the likelihood. ``prior_location`` and
    ``prior_scale`` give brms's default intercept location and scale (link scale) for a
    response; the scale also serves the half-Student-t priors on sd and sigma.
    """

    name: str
    link: str
    has_sigma: bool
    prior_location: Callable[[np.ndarray], float]
    prior_scale: Callable[[np.ndarray], float]

    @property
    def template(self) -> str:
        """The family's Jinja template, under ``templates/``."""
        return f"families/{self.name}.stan.j2"

    def __str__(self) -> str:
        return f"{self.name} ({self.link} link)"


def r_mad(values: np.ndarray) -> float:
    """R's ``mad``: 1.4826 times the median absolute deviation from the median."""
    values = np.asarray(values, dtype=float)
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


def _median(y: np.ndarray) -> float:
    return round(float(np.median(y)), 1)


def _log_median(y: np.ndarray) -> float:
    median = float(np.median(y))
    return round(float(np.log(median)), 1) if median > 0 else 0.0


def _mad_at_least_2_5(y: np.ndarray) -> float:
    return max(2.5, round(r_mad(y), 1))


def _zero(y: np.ndarray) -> float:
    return 0.0


def _two_and_a_half(y: np.ndarray) -> float:
    return 2.5


GAUSSIAN = Family("gaussian", "identity", True, _median, _mad_at_least_2_5)
BERNOULLI = Family("bernoulli", "logit", False, _zero, _two_and_a_half)
POISSON = Family("poisson", "log", False, _log_median, _two_and_a_half)
BINOMIAL = Family("binomial", "logit", False, _zero, _two_and_a_half)

FAMILIES = {family.name: family for family in (GAUSSIAN, BERNOULLI, POISSON, BINOMIAL)}


def get_family(family: str | Family) -> Family:
    """The :class:`Family` called ``family`` (case-insensitive), or a Family passed through.

    Parameters
    ----------
    family : str or Family
        ``"gaussian"``, ``"bernoulli"``, ``"poisson"`` or ``"binomial"``.

    Raises
    ------
    ArgumentError
        For any other name, or a Family lmmformula does not know.
    """
    if isinstance(family, Family):
        if FAMILIES.get(family.name) != family:
            raise ArgumentError(
                f"family={family.name!r}: custom families are not supported yet; choose one of "
                f"{', '.join(sorted(FAMILIES))} (by name or as lf.get_family(name))"
            )
        return family
    if isinstance(family, str) and family.lower() in FAMILIES:
        return FAMILIES[family.lower()]
    raise ArgumentError(f"family={family!r} is not supported; choose one of {', '.join(sorted(FAMILIES))}")


@dataclass(frozen=True)
class Response:
    """The response as Stan needs it: ``y`` and, for binomial, the number of trials."""

    y: np.ndarray
    trials: np.ndarray | None = None


def make_response(family: Family, columns: dict[str, np.ndarray]) -> Response:
    """Check the evaluated response expressions against the family and build the response.

    ``columns`` maps each response expression (one, or two for ``cbind``) to its values.
    """
    names = list(columns)
    if len(names) == 2:
        return _binomial_from_cbind(family, names, columns)
    name, values = names[0], columns[names[0]]
    if family == BINOMIAL:
        if not _is_binary(values):
            raise DataError(
                f"response {name!r}: the binomial family needs 'cbind(successes, failures) ~ ...' "
                "or a 0/1 response"
            )
        binary = values.astype(np.int64)
        return Response(y=binary, trials=np.ones_like(binary))
    if family == BERNOULLI:
        if not _is_binary(values):
            found = np.unique(values)[:5]
            raise DataError(
                f"response {name!r}: the bernoulli family needs values 0 and 1 (or a column with "
                f"two levels); found {found.tolist()}"
            )
        return Response(y=values.astype(np.int64))
    if family == POISSON:
        return Response(y=_counts(name, values, "poisson"))
    if len(values) and np.ptp(values) == 0:
        raise DataError(
            f"response {name!r} is constant (every value is {values[0]:g}); a {family.name} model needs a "
            "response that varies"
        )
    return Response(y=values.astype(float))


def _binomial_from_cbind(family: Family, names: list[str], columns: dict) -> Response:
    if family != BINOMIAL:
        raise DataError(f"cbind({', '.join(names)}) is a binomial response; pass family='binomial'")
    successes = _counts(names[0], columns[names[0]], "binomial")
    failures = _counts(names[1], columns[names[1]], "binomial")
    trials = successes + failures
    if (trials > LARGEST_COUNT).any():
        raise DataError(f"cbind({', '.join(names)}): trials above {LARGEST_COUNT} (Stan's largest integer)")
    return Response(y=successes, trials=trials)


def _is_binary(values: np.ndarray) -> bool:
    return bool(np.isin(values, (0, 1)).all())


#: Stan's int is 32-bit.
LARGEST_COUNT = 2**31 - 1


def _counts(name: str, values: np.ndarray, family: str) -> np.ndarray:
    if not np.isfinite(values).all():
        raise DataError(f"response {name!r} has infinite values; the {family} family needs counts")
    if (values < 0).any():
        raise DataError(
            f"response {name!r} has negative values ({values[values < 0][:3].tolist()}); "
            f"the {family} family needs counts >= 0"
        )
    if (np.round(values) != values).any():
        bad = values[np.round(values) != values][:3].tolist()
        raise DataError(f"response {name!r} has non-integer values ({bad}); the {family} family needs counts")
    if (values > LARGEST_COUNT).any():
        raise DataError(
            f"response {name!r} has counts above {LARGEST_COUNT} (Stan's largest integer), e.g. "
            f"{values[values > LARGEST_COUNT][0]:.0f}; model a rescaled or gaussian response instead"
        )
    return values.astype(np.int64)
