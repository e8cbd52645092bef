"""The user-facing Model: formula + data -> design -> Stan program and Stan data."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from .codegen import build_data, render_code
from .design import Design, DesignSpec, build_design
from .families import Family, get_family
from .formula import parse_formula
from .parameterization import choose_parameterizations
from .priors import resolve_priors


class Model:
    """A Bayesian mixed model from an lme4-style formula.

    >>> model = Model("y ~ x + (x | group)", data)
    >>> print(model.stan_code)
    """

    def __init__(
        self,
        formula: str,
        data: pd.DataFrame,
        family: str | Family = "gaussian",
        priors: Mapping[str, str] | None = None,
        parameterization: str = "auto",
    ) -> None:
        self.formula = formula
        self.family = get_family(family)
        self._design: Design = build_design(parse_formula(formula), self.family, data)
        self.parameterizations = choose_parameterizations(self._design, parameterization)
        self.priors = resolve_priors(self.family, self._design.response.y, priors)
        self.stan_code: str = render_code(self._design, self.parameterizations, self.priors)
        self.stan_data: dict = build_data(self._design, self.parameterizations, self.priors)

    @property
    def design(self) -> DesignSpec:
        """The design spec: rebuilds X and Z for new data."""
        return self._design.spec

    @property
    def nobs(self) -> int:
        return self._design.n

    def __repr__(self) -> str:
        blocks = ", ".join(
            f"{b.factor.name}: {', '.join(b.columns)} ({p})"
            for b, p in zip(self.design.blocks, self.parameterizations)
        )
        return (
            f"<lmmformula.Model {self.design.formula.formula!r}, family {self.family}, "
            f"{self.nobs} observations; group-level: {blocks or 'none'}>"
        )


def make_stancode(
    formula: str,
    data: pd.DataFrame,
    family: str | Family = "gaussian",
    priors: Mapping[str, str] | None = None,
    parameterization: str = "auto",
) -> str:
    """The Stan program for ``formula`` on ``data`` (see :class:`Model`)."""
    return Model(formula, data, family, priors, parameterization).stan_code


def make_standata(
    formula: str,
    data: pd.DataFrame,
    family: str | Family = "gaussian",
    priors: Mapping[str, str] | None = None,
    parameterization: str = "auto",
) -> dict:
    """The Stan data for ``formula`` on ``data`` (see :class:`Model`)."""
    return Model(formula, data, family, priors, parameterization).stan_data
