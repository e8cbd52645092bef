"""Stage 7: draws in the user's names: fixef, ranef, coef, varcorr, readable draws.

Pure functions of a Fit's Stan draws and its design spec. Every function that returns
draws gives arrays of shape (chain, draw, ...) so the summaries and the identity
coef = fixef + ranef hold draw by draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import diagnostics, names
from .design import INTERCEPT, DesignSpec


@dataclass(frozen=True, eq=False)
class GroupDraws:
    """Group-level effects of one grouping factor, all its blocks side by side."""

    factor: str
    levels: tuple  # the grouping column's own values (labels for interactions)
    terms: tuple[str, ...]
    draws: np.ndarray  # (chain, draw, level, term)


def fixef_draws(spec: DesignSpec, posterior: dict) -> dict[str, np.ndarray]:
    """Population-level coefficients by name (the intercept at zero predictors)."""
    out = {}
    if spec.has_intercept and spec.family.ordinal:  # thresholds, brms's Intercept[1], Intercept[2], ...
        thresholds = posterior[names.INTERCEPT_AT_ZERO]
        out.update({f"{INTERCEPT}[{k + 1}]": thresholds[..., k] for k in range(thresholds.shape[-1])})
    elif spec.has_intercept:
        out[INTERCEPT] = posterior[names.INTERCEPT_AT_ZERO]
    for k, name in enumerate(spec.fixed_columns):
        out[name] = posterior[names.SLOPES][..., k]
    return out


def ranef_draws(spec: DesignSpec, posterior: dict) -> dict[str, GroupDraws]:
    """Group-level effects per grouping factor (blocks on one factor are joined)."""
    joined: dict[str, GroupDraws] = {}
    for i, block in enumerate(spec.blocks, start=1):
        name = block.factor.name
        draws = posterior[names.block(i).effects]
        if name in joined:
            old = joined[name]
            draws = np.concatenate([old.draws, draws], axis=3)
            joined[name] = GroupDraws(name, old.levels, old.terms + block.columns, draws)
        else:
            joined[name] = GroupDraws(name, tuple(block.factor.index()), block.columns, draws)
    return joined


def coef_draws(spec: DesignSpec, posterior: dict) -> dict[str, GroupDraws]:
    """fixef + ranef, draw by draw, per grouping factor.

    Columns: the population-level coefficients, then terms that vary by the factor but
    are not in the fixed part (their population value is 0). A coefficient in the fixed
    part only is the same for every level. For an ordinal family the group's intercept
    moves every threshold the other way (P(Y <= k) = F(threshold_k - mu)): the level's
    thresholds are ``Intercept[k] - r[level, Intercept]``.
    """
    fixed = fixef_draws(spec, posterior)
    thresholds = [name for name in fixed if name.startswith(f"{INTERCEPT}[")] if spec.family.ordinal else []
    out = {}
    for name, group in ranef_draws(spec, posterior).items():
        shifted = thresholds if INTERCEPT in group.terms else []
        terms = tuple(fixed) + tuple(
            t for t in group.terms if t not in fixed and not (shifted and t == INTERCEPT)
        )
        chains, draws, levels, _ = group.draws.shape
        values = np.zeros((chains, draws, levels, len(terms)))
        for j, term in enumerate(terms):
            if term in fixed:
                values[..., j] = fixed[term][..., None]
            if term in group.terms:
                values[..., j] += group.draws[..., group.terms.index(term)]
            if term in shifted:
                values[..., j] -= group.draws[..., group.terms.index(INTERCEPT)]
        out[name] = GroupDraws(name, group.levels, terms, values)
    return out


@dataclass(frozen=True, eq=False)
class ScaleDraws:
    """One sd (one term) or correlation (two terms) of a grouping factor, or a family's own
    parameter (kind "dpar", its name the one term: sigma, shape, nu, phi)."""

    group: str  # grouping factor; "Residual" for sigma, "Family" for the other dpars
    kind: str  # "sd", "cor" or "dpar"
    terms: tuple[str, ...]
    draws: np.ndarray  # (chain, draw)

    @property
    def label(self) -> str:
        """lme4/brms's label: sd(x), cor(Intercept,x), sigma, shape."""
        return self.terms[0] if self.kind == "dpar" else f"{self.kind}({','.join(self.terms)})"

    @property
    def brms_name(self) -> str:
        """brms's variable name: sd_group__x, cor_group__Intercept__x, sigma, shape."""
        return self.terms[0] if self.kind == "dpar" else "__".join((f"{self.kind}_{self.group}", *self.terms))


def scale_draws(spec: DesignSpec, posterior: dict) -> list[ScaleDraws]:
    """Group-level sds and correlations, block by block, then the residual sigma."""
    out = []
    for i, block in enumerate(spec.blocks, start=1):
        group, columns = block.factor.name, block.columns
        sds = posterior[names.block(i).sd]
        out += [ScaleDraws(group, "sd", (t,), sds[..., m]) for m, t in enumerate(columns)]
        if block.correlated:
            out += [
                ScaleDraws(
                    group, "cor", (columns[a], columns[b]), posterior[names.block(i).correlation][..., a, b]
                )
                for a in range(len(columns))
                for b in range(a + 1, len(columns))
            ]
    for dpar in spec.family.dpars:
        group = "Residual" if dpar.name == "sigma" else "Family"
        out.append(ScaleDraws(group, "dpar", (dpar.name,), posterior[dpar.name]))
    return out


def varcorr_draws(spec: DesignSpec, posterior: dict) -> dict[tuple[str, str], np.ndarray]:
    """Standard deviations and correlations, keyed (group, "sd(term)" / "cor(a,b)" / "sigma")."""
    return {
        (scale.group, scale.label): scale.draws
        for scale in scale_draws(spec, posterior)
        if scale.group != "Family"  # lme4's VarCorr: sds, correlations and the residual sd only
    }


def readable_draws(spec: DesignSpec, posterior: dict) -> dict[str, np.ndarray]:
    """Every draw under brms's names: b_x, sd_group__x, cor_group__a__b, sigma, r_group[level,x]."""
    out = {f"b_{name}": values for name, values in fixef_draws(spec, posterior).items()}
    out.update({scale.brms_name: scale.draws for scale in scale_draws(spec, posterior)})
    for group in ranef_draws(spec, posterior).values():
        for li, level in enumerate(group.levels):
            for ti, term in enumerate(group.terms):
                out[f"r_{group.factor}[{level},{term}]"] = group.draws[:, :, li, ti]
    return out


def quantile_label(prob: float) -> str:
    """brms's column name for a quantile: 0.025 -> "Q2.5", 0.975 -> "Q97.5"."""
    return f"Q{100 * prob:g}"


def summary_columns(flat: np.ndarray, probs: tuple[float, ...]) -> dict[str, np.ndarray]:
    """brms's summary of each column of (draws, k): Estimate (mean), Est.Error (sd), one per quantile."""
    for prob in probs:
        if not 0 < prob < 1:
            raise ValueError(f"probs: {prob!r} is not between 0 and 1")
    if len(flat) < 2:  # one point (optimize): an estimate, no error or interval
        table = {"Estimate": flat.mean(axis=0), "Est.Error": np.full(flat.shape[1], np.nan)}
        for prob in probs:
            table[quantile_label(prob)] = np.full(flat.shape[1], np.nan)
        return table
    table = {"Estimate": flat.mean(axis=0), "Est.Error": flat.std(axis=0, ddof=1)}
    for prob, values in zip(probs, np.quantile(flat, probs, axis=0)):
        table[quantile_label(prob)] = values
    return table


def summarize(
    draws: dict, probs: tuple[float, ...] = (0.025, 0.975), convergence: bool = False, chains: bool = True
) -> pd.DataFrame:
    """Estimate (mean), Est.Error (sd) and quantiles of each (chain, draw) array; with ``convergence``,
    Rhat, Bulk_ESS and Tail_ESS (NA when the draws are not Markov ``chains``)."""
    names = list(draws)
    stacked = np.stack([np.asarray(draws[name]) for name in names], axis=-1)  # (chain, draw, k)
    flat = stacked.reshape(-1, len(names))
    table = summary_columns(flat, probs)
    if convergence:
        varying = flat.std(axis=0) > 0
        for label, function in (
            ("Rhat", diagnostics.rhat),
            ("Bulk_ESS", diagnostics.ess_bulk),
            ("Tail_ESS", diagnostics.ess_tail),
        ):
            column = np.full(len(names), np.nan)
            if varying.any() and chains:
                column[varying] = function(stacked[:, :, varying])
            table[label] = column
    index = pd.MultiIndex.from_tuples(names) if names and isinstance(names[0], tuple) else pd.Index(names)
    return pd.DataFrame(table, index=index)
