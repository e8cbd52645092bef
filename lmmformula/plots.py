"""After the fit: pictures (brms's ``pp_check``). Numbers come from the other stages (predictions,
criteria); this module only draws them with matplotlib and returns the figure."""

from __future__ import annotations

import numpy as np

from .errors import ArgumentError

#: pp_check's types, as bayesplot names them; the discrete ones need a count, binary or ordinal response.
PP_CHECK_TYPES = ("dens_overlay", "hist", "ecdf", "rootogram", "bars", "loo_pit", "stat")
_DISCRETE_ONLY = ("rootogram", "bars")
_OBSERVED, _REPLICATED = "#08306b", "#9ecae1"


def is_discrete(family) -> bool:
    """Whether the family's responses are whole numbers (counts, 0/1, successes, categories)."""
    return family.response in ("count", "binary", "binomial", "ordinal")


def check_type(kind: str, family, stat="mean") -> None:
    """pp_check's arguments, checked before any draw is made."""
    if kind not in PP_CHECK_TYPES:
        raise ArgumentError(f"pp_check type must be one of {', '.join(PP_CHECK_TYPES)}; got {kind!r}")
    if kind in _DISCRETE_ONLY and not is_discrete(family):
        raise ArgumentError(
            f"pp_check type {kind!r} is for counts, 0/1 and ordinal responses; the {family.name} family's "
            "response is continuous: use 'dens_overlay', 'hist', 'ecdf' or 'stat'"
        )
    if isinstance(stat, str) and stat not in STATISTICS or not (isinstance(stat, str) or callable(stat)):
        raise ArgumentError(
            f"pp_check stat must be one of {', '.join(STATISTICS)} or a function; got {stat!r}"
        )


STATISTICS = {"mean": np.mean, "median": np.median, "sd": lambda v, axis=None: np.std(v, axis=axis, ddof=1),
              "min": np.min, "max": np.max}  # fmt: skip


def pp_check(y: np.ndarray, yrep: np.ndarray, kind: str, pit=None, stat="mean"):
    """The figure of posterior predictive check ``kind`` for observed ``y`` and replicates ``yrep``
    (draws, rows); ``pit`` are the LOO-PIT values for ``loo_pit``."""
    import matplotlib.pyplot as plt

    if kind == "hist":
        count = min(len(yrep), 8)
        figure, axes = plt.subplots(3, 3, figsize=(9, 7), sharex=True)
        bins = np.histogram_bin_edges(np.concatenate([y, yrep[:count].ravel()]), bins=30)
        for ax, (label, values, color) in zip(
            axes.ravel(),
            [("y", y, _OBSERVED)] + [(f"yrep {k + 1}", yrep[k], _REPLICATED) for k in range(count)],
        ):
            ax.hist(values, bins=bins, color=color)
            ax.set_title(label, fontsize=9)
        figure.tight_layout()
        return figure
    figure, ax = plt.subplots(figsize=(7, 4.5))
    if kind == "dens_overlay":
        grid = np.linspace(min(y.min(), yrep.min()), max(y.max(), yrep.max()), 256)
        for k, values in enumerate(yrep):
            ax.plot(
                grid,
                _density(values, grid),
                color=_REPLICATED,
                lw=0.6,
                alpha=0.7,
                label="y_rep" if k == 0 else None,
            )
        ax.plot(grid, _density(y, grid), color=_OBSERVED, lw=2, label="y")
    elif kind == "ecdf":
        for k, values in enumerate(yrep):
            ax.ecdf(values, color=_REPLICATED, lw=0.6, alpha=0.7, label="y_rep" if k == 0 else None)
        ax.ecdf(y, color=_OBSERVED, lw=2, label="y")
    elif kind in ("bars", "rootogram"):
        values = np.arange(int(min(y.min(), yrep.min())), int(max(y.max(), np.quantile(yrep, 0.999))) + 1)
        observed = np.array([(y == v).sum() for v in values], dtype=float)
        replicated = np.stack([(yrep == v).sum(axis=1) for v in values], axis=1).astype(float)
        mean = replicated.mean(axis=0)
        low, high = np.quantile(replicated, [0.05, 0.95], axis=0)
        if kind == "bars":
            ax.bar(values, observed, color=_REPLICATED, label="y")
            ax.errorbar(
                values,
                mean,
                yerr=[np.clip(mean - low, 0, None), np.clip(high - mean, 0, None)],
                fmt="o",
                color=_OBSERVED,
                ms=3,
                label="y_rep (90 %)",
            )
            ax.set_ylabel("count")
        else:  # hanging rootogram: observed bars hang from the expected frequencies (square-root scale)
            root = np.sqrt(mean)
            ax.bar(
                values,
                np.sqrt(observed),
                bottom=root - np.sqrt(observed),
                color=_REPLICATED,
                label="y (hanging)",
            )
            ax.plot(values, root, color=_OBSERVED, marker="o", ms=3, label="expected")
            ax.fill_between(values, np.sqrt(low), np.sqrt(high), color=_OBSERVED, alpha=0.15, step=None)
            ax.axhline(0, color="black", lw=0.6)
            ax.set_ylabel("sqrt(frequency)")
    elif kind == "loo_pit":
        pit = np.sort(np.asarray(pit, dtype=float))
        n = len(pit)
        grid = np.linspace(0, 1, 201)
        band = 1.36 / np.sqrt(n)  # 95 % Kolmogorov-Smirnov band of a uniform sample
        ax.fill_between(
            grid,
            np.clip(grid - band, 0, 1),
            np.clip(grid + band, 0, 1),
            color=_REPLICATED,
            alpha=0.4,
            label="uniform (95 %)",
        )
        ax.ecdf(pit, color=_OBSERVED, lw=2, label="LOO-PIT")
        ax.plot([0, 1], [0, 1], color="black", lw=0.6)
        ax.set_xlabel("LOO-PIT")
    else:  # stat
        name = stat if isinstance(stat, str) else getattr(stat, "__name__", "stat")
        stat = STATISTICS[stat] if isinstance(stat, str) else stat
        values = stat(yrep, axis=1)
        ax.hist(values, bins=30, color=_REPLICATED, label=f"T(y_rep), T = {name}")
        ax.axvline(stat(y), color=_OBSERVED, lw=2, label="T(y)")
    ax.legend(frameon=False)
    figure.tight_layout()
    return figure


def _density(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    from scipy.stats import gaussian_kde

    values = np.asarray(values, dtype=float)
    if np.ptp(values) == 0:
        return np.zeros_like(grid)
    return gaussian_kde(values)(grid)


def conditional_effects(table, effects: list[str], response: str):
    """The figure of a conditional effect: ``table`` has the grid columns and ``estimate__``,
    ``lower__``, ``upper__``; a numeric first effect is a line with its band, a categorical one points
    with intervals; a second effect gives one line (or set of points) per level; a ``cond__`` column
    one panel per condition."""
    import matplotlib.pyplot as plt

    panels = [(None, table)] if "cond__" not in table else list(table.groupby("cond__", sort=False))
    columns = min(len(panels), 3)
    rows_ = -(-len(panels) // columns)
    figure, axes = plt.subplots(
        rows_,
        columns,
        figsize=(7 if columns == 1 else 4.2 * columns, 4.5 if rows_ == 1 else 3.6 * rows_),
        sharey=True,
        squeeze=False,
    )
    for ax, (title, part) in zip(axes.ravel(), panels):
        _effect_panel(ax, part, effects, response)
        if title is not None:
            ax.set_title(title, fontsize=10)
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    figure.tight_layout()
    return figure


def _effect_panel(ax, table, effects: list[str], response: str) -> None:
    first, second = effects[0], effects[1] if len(effects) > 1 else None
    groups = [(None, table)] if second is None else list(table.groupby(second, sort=False, observed=True))
    numeric = np.issubdtype(np.asarray(table[first]).dtype, np.number)
    for k, (level, rows) in enumerate(groups):
        label = None if second is None else f"{second} = {level}"
        if numeric:
            x = rows[first].to_numpy(dtype=float)
            (line,) = ax.plot(x, rows["estimate__"], label=label)
            ax.fill_between(x, rows["lower__"], rows["upper__"], color=line.get_color(), alpha=0.2)
        else:
            positions = np.arange(len(rows)) + (k - (len(groups) - 1) / 2) * 0.12
            estimate = rows["estimate__"].to_numpy()
            ax.errorbar(
                positions,
                estimate,
                yerr=[estimate - rows["lower__"].to_numpy(), rows["upper__"].to_numpy() - estimate],
                fmt="o",
                capsize=3,
                label=label,
            )
            ax.set_xticks(np.arange(len(rows)), [str(v) for v in rows[first]])
    ax.set_xlabel(first)
    ax.set_ylabel(response)
    if second is not None:
        ax.legend(frameon=False)
