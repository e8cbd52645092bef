"""Fit -> ArviZ data (an ``xarray.DataTree`` made by arviz-base) with the user's names as variables,
dims and coords."""

from __future__ import annotations

import numpy as np

from . import results

_SAMPLE_STATS = {
    "lp__": "lp",
    "accept_stat__": "acceptance_rate",
    "stepsize__": "step_size",
    "treedepth__": "tree_depth",
    "n_leapfrog__": "n_steps",
    "divergent__": "diverging",
    "energy__": "energy",
}


def to_inference_data(
    fit, log_likelihood: bool = True, posterior_predictive: bool = True, predictions=None, seed=None
):
    """posterior: each population-level coefficient (the real intercept), the family's own
    parameters (sigma, shape, ...),
    ``sd_<group>`` (dim ``<group>__term``), ``cor_<group>`` (dim ``<group>__pair``) and
    ``r_<group>`` (dims ``<group>``, ``<group>__term``); sample_stats; observed_data and
    constant_data (the population-level design, dim ``obs``); log_likelihood and
    posterior_predictive of the response ``y`` when asked; ``predictions`` ((draws, rows) and the rows'
    labels) as the predictions group; prior (as posterior) for a fit with ``sample_prior="yes"``."""
    import arviz_base

    spec = fit.model.design
    posterior, coords, dims = _named(spec, fit.posterior)
    sample_stats = {
        new: (fit.sampler[old].astype(bool) if new == "diverging" else fit.sampler[old])
        for old, new in _SAMPLE_STATS.items()
        if old in fit.sampler
    }
    design = fit.model.data_design
    observed = design.response.y
    n = len(observed)
    shape = (fit.num_chains, fit.num_draws)
    groups = {
        "posterior": posterior,
        "prior": _named(spec, fit.prior_draws_.parameters)[0] if fit.prior_draws_ is not None else {},
        "sample_stats": sample_stats,
        "observed_data": {"y": observed},
        "constant_data": {"X": design.X} if spec.fixed_columns else {},
    }
    dims |= {"y": ["obs"], "X": ["obs", "coefficient"]}
    coords |= {"obs": np.arange(n), "coefficient": list(spec.fixed_columns)}
    if log_likelihood:
        groups["log_likelihood"] = {"y": fit.log_lik().reshape(shape + (n,))}
    if posterior_predictive:
        groups["posterior_predictive"] = {"y": fit.posterior_predict(seed=seed).reshape(shape + (n,))}
    pred_dims, pred_coords = None, None
    if predictions is not None:
        draws, labels = predictions
        groups["predictions"] = {"y": draws.reshape(shape + (draws.shape[1],))}
        pred_dims = {"y": ["new_obs"]}
        pred_coords = {"new_obs": list(labels)}
    tree = arviz_base.from_dict(
        {name: values for name, values in groups.items() if values},
        coords=coords,
        dims=dims,
        pred_dims=pred_dims,
        pred_coords=pred_coords,
    )
    tree.attrs.update(
        {"formula": fit.model.formula, "family": str(fit.model.family), "inference_library": "lmmformula"}
    )
    return tree


def _named(spec, draws: dict) -> tuple[dict, dict, dict]:
    """Stan draws as the posterior (or prior) group's variables, with their coords and dims."""
    named: dict[str, np.ndarray] = dict(results.fixef_draws(spec, draws))
    coords: dict[str, list] = {}
    dims: dict[str, list[str]] = {}
    varcorr = results.varcorr_draws(spec, draws)
    for dpar in spec.family.dpars:  # sigma, shape, nu, phi: under brms's names
        named[dpar.name] = draws[dpar.name]
    for group in results.ranef_draws(spec, draws).values():
        name = group.factor
        term_dim, pair_dim = f"{name}__term", f"{name}__pair"
        sds = [(label[3:-1], v) for (g, label), v in varcorr.items() if g == name and label.startswith("sd(")]
        cors = [
            (label[4:-1], v) for (g, label), v in varcorr.items() if g == name and label.startswith("cor(")
        ]
        named[f"sd_{name}"] = np.stack([v for _, v in sds], axis=-1)
        coords[term_dim] = [t for t, _ in sds]
        dims[f"sd_{name}"] = [term_dim]
        if cors:
            named[f"cor_{name}"] = np.stack([v for _, v in cors], axis=-1)
            coords[pair_dim] = [p for p, _ in cors]
            dims[f"cor_{name}"] = [pair_dim]
        named[f"r_{name}"] = group.draws
        coords[name] = list(group.levels)
        dims[f"r_{name}"] = [name, term_dim]
    return (
        {_variable(k): v for k, v in named.items()},
        {_variable(k): v for k, v in coords.items()},
        {_variable(k): [_variable(d) for d in v] for k, v in dims.items()},
    )


def _variable(name: str) -> str:
    """A DataTree variable or dim name: no '/' (a path separator there), e.g. for a column
    ``Q('dose/kg')``, which becomes ``Q('dose_kg')``."""
    return name.replace("/", "_")
