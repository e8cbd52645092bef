"""Response families as data: one registry entry (and one template) per family.

An entry says everything the rest of the package asks of a family: its links (the
first is the default), its distributional parameters besides ``mu`` (Stan bounds,
brms's default prior), the kind of response it takes, brms's default intercept prior,
and numpy functions of the response scale mean ``mu`` for post-processing and for the
``auto`` parameterization rule (log density, random draws, mean, variance). The Stan
likelihood is ``templates/families/<name>.stan.j2``. Nothing outside this module and
that template branches on a family's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import special, stats

from .errors import ArgumentError, DataError


@dataclass(frozen=True)
class Link:
    """A link function: ``stan_inverse`` maps the linear predictor to the mean in Stan."""

    name: str
    stan_inverse: str  # a Stan expression with {} for the linear predictor
    inverse: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray], np.ndarray]  # d mean / d linear predictor
    function: Callable[[np.ndarray], np.ndarray]  # the link itself: mean -> linear predictor

    def stan(self, eta: str) -> str:
        """The Stan expression of the mean for the linear predictor ``eta``."""
        return self.stan_inverse.format(eta)


def _cloglog_inverse(eta: np.ndarray) -> np.ndarray:
    return -np.expm1(-np.exp(np.clip(eta, -30, 30)))


LINKS = {
    link.name: link
    for link in (
        Link("identity", "{}", lambda eta: eta, np.ones_like, lambda mu: mu),
        Link("log", "exp({})", lambda eta: np.exp(np.clip(eta, -30, 30)),
             lambda eta: np.exp(np.clip(eta, -30, 30)), np.log),
        Link("logit", "inv_logit({})", special.expit, lambda eta: special.expit(eta) * special.expit(-eta),
             special.logit),
        Link("probit", "Phi({})", special.ndtr, lambda eta: stats.norm.pdf(eta), special.ndtri),
        Link("cloglog", "inv_cloglog({})", _cloglog_inverse,
             lambda eta: np.exp(np.clip(eta, -30, 30) - np.exp(np.clip(eta, -30, 30))),
             lambda mu: np.log(-np.log1p(-mu))),
        # as in brms, square(eta) cannot tell eta from -eta: near zero the posterior can be bimodal
        Link("sqrt", "square({})", np.square, lambda eta: 2 * eta, np.sqrt),
        Link("inverse", "inv({})", lambda eta: 1 / eta, lambda eta: -1 / eta**2, lambda mu: 1 / mu),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Dpar:
    """A distributional parameter besides ``mu`` (brms's name), a prior class of its own."""

    name: str
    description: str
    lower: float | None = None
    upper: float | None = None
    default_prior: str | Callable[[np.ndarray], str] = "student_t(3, 0, 2.5)"
    link: str = "log"  # for a later ``dpar ~ formula``
    typical: float = 1.0  # a plausible value, for the auto rule's working weights

    def bounds(self) -> str:
        parts = [f"lower={self.lower:g}" if self.lower is not None else "",
                 f"upper={self.upper:g}" if self.upper is not None else ""]  # fmt: skip
        inside = ", ".join(p for p in parts if p)
        return f"<{inside}>" if inside else ""

    @property
    def supports(self) -> tuple[str, ...]:
        """Which prior supports suit it (see :class:`lmmformula.priors.Distribution`)."""
        if self.lower == 0 and self.upper == 1:
            return ("unit",)
        return ("real", "positive")

    def prior_for(self, y: np.ndarray) -> str:
        return self.default_prior(y) if callable(self.default_prior) else self.default_prior


#: Response kinds: how the response is checked and declared in Stan.
RESPONSE_DECLARATIONS = {
    "real": "vector[N] Y;  // response",
    "binary": "array[N] int<lower=0, upper=1> Y;  // response",
    "count": "array[N] int<lower=0> Y;  // response",
    "binomial": "array[N] int<lower=0> Y;  // successes\n"
    "  array[N] int<lower=0> trials;  // number of trials",
    "positive": "vector<lower=0>[N] Y;  // response (positive)",
    "unit": "vector<lower=0, upper=1>[N] Y;  // response (between 0 and 1)",
    "ordinal": "int<lower=1> nthres;  // number of thresholds (categories - 1)\n"
    "  array[N] int<lower=1, upper=nthres + 1> Y;  // response category",
}


@dataclass(frozen=True)
class Family:
    """A response distribution with its link; get one with :func:`get_family`.

    Attributes
    ----------
    name : str
        The family (``"gaussian"``, ``"bernoulli"``, ``"negbinomial"``, ...; see ``FAMILIES``).
    link : str
        The link in use; ``links`` lists those allowed, the first being the default.
    dpars : tuple of Dpar
        Distributional parameters besides ``mu`` (``sigma`` for gaussian).
    response : str
        The kind of response, a key of ``RESPONSE_DECLARATIONS``: ``"real"``, ``"binary"``,
        ``"count"``, ``"binomial"``, ``"positive"``, ``"unit"`` or ``"ordinal"``.

    Notes
    -----
    ``glm_links`` are the links whose likelihood the template writes with Stan's ``*_glm``
    function (the population part enters it as ``Xc * b``); for any other link the program
    adds ``Xc * b`` to ``mu`` itself. ``intercept_location`` and ``intercept_scale`` give
    brms's default intercept prior (link scale) and the scale of the half-t priors on sd.
    ``log_density``, ``random``, ``mean`` and ``variance`` take ``mu`` (see :meth:`mu`: the
    response-scale mean, or an ordinal family's latent predictor), the dpars by name and
    :attr:`options` (an ordinal family's ``thresholds`` too, shape (..., K - 1)); ``mean``
    must be linear in that mean (the auto rule's working weights take its derivative by the
    chain rule), unless ``working_scale`` is set: then the ``auto``
    rule reads the response through it as a gaussian one (lognormal: log y) instead, or
    ``working_family`` names the family whose mean and variance it uses on the non-zero
    responses (zero-inflated and hurdle counts: their count family; a hurdle model's zeros say
    nothing about mu, a zero-inflated model's little).
    """

    name: str
    links: tuple[str, ...]
    response: str
    intercept_location: Callable[[np.ndarray, Link], float]
    intercept_scale: Callable[[np.ndarray, Link], float]
    log_density: Callable[..., np.ndarray]
    random: Callable[..., np.ndarray]
    mean: Callable[..., np.ndarray]
    variance: Callable[..., np.ndarray]
    dpars: tuple[Dpar, ...] = ()
    glm_links: tuple[str, ...] = ()
    working_scale: Callable[[np.ndarray], np.ndarray] | None = None  # auto rule: gaussian on this scale
    working_family: str | None = None  # auto rule: read the non-zero responses as this family
    ordinal: bool = False  # ordered categories: thresholds (a vector Intercept) instead of an intercept
    link: str = ""
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.link:
            object.__setattr__(self, "link", self.links[0])

    def __reduce__(self):
        """Pickled by name and link: a registry entry, found again by :func:`get_family`."""
        return (get_family, (self.name, self.link))

    def __call__(self, link: str | None = None) -> Family:
        """This family with ``link`` (its default when None): ``lf.families.Bernoulli("probit")``."""
        if link is None:
            return replace(self, link=self.links[0])
        if link not in self.links:
            raise ArgumentError(
                f"family {self.name!r} has no link {link!r}; its links are {', '.join(self.links)}"
            )
        return replace(self, link=link)

    @property
    def template(self) -> str:
        """The family's Jinja template, under ``templates/``."""
        return f"families/{self.name}.stan.j2"

    @property
    def link_function(self) -> Link:
        """The :class:`Link` in use."""
        return LINKS[self.link]

    @property
    def uses_glm(self) -> bool:
        """Whether the template adds the population part itself (Stan's ``*_glm`` functions)."""
        return self.link in self.glm_links

    @property
    def has_sigma(self) -> bool:
        """Whether the family has a residual sd (``sigma``)."""
        return any(dpar.name == "sigma" for dpar in self.dpars)

    def mu(self, eta: np.ndarray) -> np.ndarray:
        """What the numpy functions take as ``mu`` for the linear predictor ``eta``: the mean
        (the inverse link of eta), or for an ordinal family eta itself (the latent predictor).

        Parameters
        ----------
        eta : numpy.ndarray
            The linear predictor.
        """
        return np.asarray(eta, dtype=float) if self.ordinal else self.link_function.inverse(eta)

    @property
    def options(self) -> dict:
        """Keyword arguments the numpy functions need besides mu and the dpars: an ordinal
        family's link (its latent distribution) and nothing for the others."""
        return {"link": self.link} if self.ordinal else {}

    def response_declaration(self) -> str:
        """The Stan data declaration(s) of the response."""
        return RESPONSE_DECLARATIONS[self.response]

    def prior_location(self, y: np.ndarray) -> float:
        """brms's default location of the intercept prior for the response ``y`` (link scale).

        Parameters
        ----------
        y : numpy.ndarray
            The response.
        """
        return self.intercept_location(y, self.link_function)

    def prior_scale(self, y: np.ndarray) -> float:
        """brms's default scale of the intercept prior and of the half-t priors on sd, for ``y``.

        Parameters
        ----------
        y : numpy.ndarray
            The response.
        """
        return self.intercept_scale(y, self.link_function)

    def __str__(self) -> str:
        return f"{self.name} ({self.link} link)"


def r_mad(values: np.ndarray) -> float:
    """R's ``mad``: 1.4826 times the median absolute deviation from the median."""
    values = np.asarray(values, dtype=float)
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


def _median_on_link(y: np.ndarray, link: Link) -> float:
    """brms: the intercept prior sits at the link of the response's median (0 when undefined)."""
    median = float(np.median(y))
    if link.name == "identity":
        return round(median, 1)
    if link.name == "log":
        return round(float(np.log(median)), 1) if median > 0 else 0.0
    if link.name == "sqrt":
        return round(float(np.sqrt(median)), 1) if median >= 0 else 0.0
    return 0.0


def _mad_on_link(y: np.ndarray, link: Link) -> float:
    """brms: 2.5, or the response's mad when larger (identity link)."""
    if link.name != "identity":
        return 2.5
    return max(2.5, round(r_mad(y), 1))


def _zero(y: np.ndarray, link: Link) -> float:
    return 0.0


def _two_and_a_half(y: np.ndarray, link: Link) -> float:
    return 2.5


def _sigma_prior(y: np.ndarray) -> str:
    return f"student_t(3, 0, {max(2.5, round(r_mad(y), 1)):g})"


SIGMA = Dpar("sigma", "residual standard deviation", lower=0, default_prior=_sigma_prior)


def _size(trials):
    return 1 if trials is None else trials


GAUSSIAN = Family(
    "gaussian", ("identity", "log"), "real", _median_on_link, _mad_on_link,
    log_density=lambda y, mu, sigma, trials=None: stats.norm.logpdf(y, mu, sigma),
    random=lambda rng, mu, sigma, trials=None: rng.normal(mu, sigma),
    mean=lambda mu, sigma=None, trials=None: mu,
    variance=lambda mu, sigma, trials=None: np.broadcast_to(np.square(sigma), np.shape(mu)),
    dpars=(SIGMA,), glm_links=("identity",), description="normal response",
)  # fmt: skip
BERNOULLI = Family(
    "bernoulli", ("logit", "probit", "cloglog"), "binary", _zero, _two_and_a_half,
    log_density=lambda y, mu, trials=None: stats.bernoulli.logpmf(y, mu),
    random=lambda rng, mu, trials=None: rng.binomial(1, mu),
    mean=lambda mu, trials=None: mu,
    variance=lambda mu, trials=None: mu * (1 - mu),
    glm_links=("logit",), description="0/1 response",
)  # fmt: skip
POISSON = Family(
    "poisson", ("log", "identity", "sqrt"), "count", _median_on_link, _two_and_a_half,
    log_density=lambda y, mu, trials=None: stats.poisson.logpmf(y, mu),
    random=lambda rng, mu, trials=None: rng.poisson(mu),
    mean=lambda mu, trials=None: mu,
    variance=lambda mu, trials=None: mu,
    glm_links=("log",), description="counts",
)  # fmt: skip
BINOMIAL = Family(
    "binomial", ("logit", "probit", "cloglog"), "binomial", _zero, _two_and_a_half,
    log_density=lambda y, mu, trials=None: stats.binom.logpmf(y, _size(trials), mu),
    random=lambda rng, mu, trials=None: rng.binomial(_size(trials), mu),
    mean=lambda mu, trials=None: _size(trials) * mu,
    variance=lambda mu, trials=None: _size(trials) * mu * (1 - mu),
    glm_links=("logit",), description="successes out of trials",
)  # fmt: skip

NU = Dpar("nu", "degrees of freedom", lower=1, default_prior="gamma(2, 0.1)", typical=10.0)
SHAPE = Dpar("shape", "shape parameter", lower=0, default_prior="gamma(0.01, 0.01)")
PHI = Dpar("phi", "precision parameter", lower=0, default_prior="gamma(0.01, 0.01)", typical=10.0)
LOG_SIGMA = Dpar("sigma", "sd of log(response)", lower=0, default_prior="student_t(3, 0, 2.5)")


def _student_variance(mu, sigma, nu, trials=None):
    factor = np.where(nu > 2, nu / np.maximum(nu - 2, 1e-9), np.inf)
    return np.broadcast_to(np.square(sigma) * factor, np.shape(mu))


def _weibull_scale(mu, shape):
    return mu / special.gamma(1 + 1 / shape)


STUDENT = Family(
    "student", ("identity", "log", "inverse"), "real", _median_on_link, _mad_on_link,
    log_density=lambda y, mu, sigma, nu, trials=None: stats.t.logpdf(y, nu, mu, sigma),
    random=lambda rng, mu, sigma, nu, trials=None: mu + sigma * rng.standard_t(nu, size=np.shape(mu)),
    mean=lambda mu, sigma=None, nu=None, trials=None: mu,
    variance=_student_variance,
    dpars=(SIGMA, NU), description="heavy-tailed real response (Student-t)",
)  # fmt: skip
NEGBINOMIAL = Family(
    "negbinomial", ("log", "identity", "sqrt"), "count", _median_on_link, _two_and_a_half,
    log_density=lambda y, mu, shape, trials=None: stats.nbinom.logpmf(y, shape, shape / (shape + mu)),
    random=lambda rng, mu, shape, trials=None: rng.negative_binomial(shape, shape / (shape + mu)),
    mean=lambda mu, shape=None, trials=None: mu,
    variance=lambda mu, shape, trials=None: mu + np.square(mu) / shape,
    dpars=(SHAPE,), glm_links=("log",), description="overdispersed counts (variance mu + mu^2 / shape)",
)  # fmt: skip
GAMMA = Family(
    "gamma", ("log", "inverse", "identity"), "positive", _median_on_link, _two_and_a_half,
    log_density=lambda y, mu, shape, trials=None: stats.gamma.logpdf(y, shape, scale=mu / shape),
    random=lambda rng, mu, shape, trials=None: rng.gamma(shape, mu / shape),
    mean=lambda mu, shape=None, trials=None: mu,
    variance=lambda mu, shape, trials=None: np.square(mu) / shape,
    dpars=(SHAPE,), description="positive response, mean mu and shape",
)  # fmt: skip
LOGNORMAL = Family(
    "lognormal", ("identity",), "positive", lambda y, link: round(float(np.median(np.log(y))), 1),
    lambda y, link: max(2.5, round(r_mad(np.log(y)), 1)),
    log_density=lambda y, mu, sigma, trials=None: stats.lognorm.logpdf(y, sigma, scale=np.exp(mu)),
    random=lambda rng, mu, sigma, trials=None: rng.lognormal(mu, sigma),
    mean=lambda mu, sigma=1.0, trials=None: np.exp(mu + np.square(sigma) / 2),
    variance=lambda mu, sigma, trials=None: np.expm1(np.square(sigma)) * np.exp(2 * mu + np.square(sigma)),
    dpars=(LOG_SIGMA,), working_scale=np.log,
    description="positive response whose log is normal (mu and sigma on the log scale)",
)  # fmt: skip
BETA = Family(
    "beta", ("logit", "probit", "cloglog"), "unit", _zero, _two_and_a_half,
    log_density=lambda y, mu, phi, trials=None: stats.beta.logpdf(y, mu * phi, (1 - mu) * phi),
    random=lambda rng, mu, phi, trials=None: rng.beta(mu * phi, (1 - mu) * phi),
    mean=lambda mu, phi=None, trials=None: mu,
    variance=lambda mu, phi, trials=None: mu * (1 - mu) / (1 + phi),
    dpars=(PHI,), description="proportions strictly between 0 and 1 (mean mu, precision phi)",
)  # fmt: skip
EXPONENTIAL = Family(
    "exponential", ("log", "identity", "inverse"), "positive", _median_on_link, _two_and_a_half,
    log_density=lambda y, mu, trials=None: stats.expon.logpdf(y, scale=mu),
    random=lambda rng, mu, trials=None: rng.exponential(mu),
    mean=lambda mu, trials=None: mu,
    variance=lambda mu, trials=None: np.square(mu),
    description="positive response with mean mu",
)  # fmt: skip
WEIBULL = Family(
    "weibull", ("log", "identity", "inverse"), "positive", _median_on_link, _two_and_a_half,
    log_density=lambda y, mu, shape, trials=None: stats.weibull_min.logpdf(
        y, shape, scale=_weibull_scale(mu, shape)),
    random=lambda rng, mu, shape, trials=None: _weibull_scale(mu, shape)
    * rng.weibull(shape, size=np.shape(mu)),
    mean=lambda mu, shape=None, trials=None: mu,
    variance=lambda mu, shape, trials=None: np.square(_weibull_scale(mu, shape))
    * (special.gamma(1 + 2 / shape) - special.gamma(1 + 1 / shape) ** 2),
    dpars=(SHAPE,), description="positive response (Weibull, mean mu)",
)  # fmt: skip

ZI = Dpar("zi", "zero-inflation probability", lower=0, upper=1, default_prior="beta(1, 1)", link="logit",
          typical=0.1)  # fmt: skip
HU = Dpar("hu", "hurdle probability (of a zero)", lower=0, upper=1, default_prior="beta(1, 1)", link="logit",
          typical=0.3)  # fmt: skip


def _poisson_zero(mu):
    """log P(0) of a poisson count with mean mu."""
    return -np.asarray(mu, dtype=float)


def _negbinomial_zero(mu, shape):
    """log P(0) of an NB2 count with mean mu and shape."""
    return -shape * np.log1p(np.asarray(mu, dtype=float) / shape)


def _poisson_quantile(u, mu):
    return stats.poisson.ppf(u, mu)


def _negbinomial_quantile(u, mu, shape):
    return stats.nbinom.ppf(u, shape, shape / (shape + mu))


def _zero_inflated(name: str, base: Family, log_zero: Callable, description: str) -> Family:
    """``base``'s counts, replaced by a zero with probability ``zi``.

    Mean (1 - zi) mu; variance (1 - zi) (var + mu^2) - ((1 - zi) mu)^2, var the base count's.
    """

    def log_density(y, mu, zi, trials=None, **dpars):
        y = np.asarray(y)
        with np.errstate(divide="ignore"):
            zero = np.logaddexp(np.log(zi), np.log1p(-zi) + log_zero(mu, **dpars))
            positive = np.log1p(-zi) + base.log_density(y, mu, **dpars)
        return np.where(y == 0, zero, positive)

    def random(rng, mu, zi, trials=None, **dpars):
        return np.where(rng.uniform(size=np.shape(mu)) < zi, 0, base.random(rng, mu, **dpars))

    def mean(mu, zi=0.0, trials=None, **dpars):
        return (1 - zi) * mu

    def variance(mu, zi, trials=None, **dpars):
        return (1 - zi) * (base.variance(mu, **dpars) + np.square(mu)) - np.square((1 - zi) * mu)

    return Family(
        name, ("log",), "count", _median_on_link, _two_and_a_half,
        log_density=log_density, random=random, mean=mean, variance=variance,
        dpars=(*base.dpars, ZI), working_family=base.name, description=description,
    )  # fmt: skip


def _hurdle(name: str, base: Family, log_zero: Callable, quantile: Callable, description: str) -> Family:
    """A zero with probability ``hu``, else ``base``'s count conditioned on being > 0.

    With p0 = P(0) of the base count: mean (1 - hu) mu / (1 - p0), and E[Y^2] =
    (1 - hu) (var + mu^2) / (1 - p0), var the base count's.
    """

    def log_density(y, mu, hu, trials=None, **dpars):
        y = np.asarray(y)
        with np.errstate(divide="ignore"):
            truncation = np.log(-np.expm1(log_zero(mu, **dpars)))
            positive = np.log1p(-hu) + base.log_density(y, mu, **dpars) - truncation
            return np.where(y == 0, np.log(hu), positive)

    def random(rng, mu, hu, trials=None, **dpars):
        mu = np.asarray(mu, dtype=float)
        p0 = np.exp(log_zero(mu, **dpars))  # invert the cdf above P(0): a count > 0
        u = np.minimum(p0 + (1 - p0) * rng.uniform(size=mu.shape), 1 - 1e-15)
        positive = np.maximum(quantile(u, mu, **dpars), 1).astype(np.int64)
        return np.where(rng.uniform(size=mu.shape) < hu, 0, positive)

    def share(mu, hu, dpars):
        return (1 - hu) / -np.expm1(log_zero(mu, **dpars))

    def mean(mu, hu, trials=None, **dpars):
        return share(mu, hu, dpars) * mu

    def variance(mu, hu, trials=None, **dpars):
        second = share(mu, hu, dpars) * (base.variance(mu, **dpars) + np.square(mu))
        return second - np.square(mean(mu, hu, **dpars))

    return Family(
        name, ("log",), "count", _median_on_link, _two_and_a_half,
        log_density=log_density, random=random, mean=mean, variance=variance,
        dpars=(*base.dpars, HU), working_family=base.name, description=description,
    )  # fmt: skip


ZERO_INFLATED_POISSON = _zero_inflated(
    "zero_inflated_poisson", POISSON, _poisson_zero,
    "counts with extra zeros (a zero with probability zi, else poisson)",
)  # fmt: skip
ZERO_INFLATED_NEGBINOMIAL = _zero_inflated(
    "zero_inflated_negbinomial", NEGBINOMIAL, _negbinomial_zero,
    "overdispersed counts with extra zeros (a zero with probability zi, else negbinomial)",
)  # fmt: skip
HURDLE_POISSON = _hurdle(
    "hurdle_poisson", POISSON, _poisson_zero, _poisson_quantile,
    "counts whose zeros have their own probability hu (else a zero-truncated poisson)",
)  # fmt: skip
HURDLE_NEGBINOMIAL = _hurdle(
    "hurdle_negbinomial", NEGBINOMIAL, _negbinomial_zero, _negbinomial_quantile,
    "overdispersed counts whose zeros have their own probability hu (else zero-truncated)",
)  # fmt: skip


def _latent_cdf(link: str):
    return special.expit if link == "logit" else special.ndtr


def _category_probabilities(mu, thresholds, link="logit"):
    """P(Y = k), k = 1..len(thresholds) + 1, of an ordinal response with latent linear predictor
    ``mu`` (any shape) and ``thresholds`` (shape (..., K - 1), broadcasting against ``mu``)."""
    mu = np.asarray(mu, dtype=float)[..., None]
    cdf = _latent_cdf(link)(np.asarray(thresholds, dtype=float) - mu)
    shape = np.broadcast_shapes(cdf.shape[:-1], mu.shape[:-1]) + (1,)
    cumulative = np.concatenate([np.zeros(shape), np.broadcast_to(cdf, shape[:-1] + cdf.shape[-1:]),
                                 np.ones(shape)], axis=-1)  # fmt: skip
    return np.diff(cumulative, axis=-1)


def _cumulative_log_density(y, mu, thresholds, link="logit", trials=None):
    probabilities = _category_probabilities(mu, thresholds, link)
    y = np.broadcast_to(np.asarray(y, dtype=np.int64), probabilities.shape[:-1])
    with np.errstate(divide="ignore"):
        return np.log(np.take_along_axis(probabilities, (y - 1)[..., None], axis=-1)[..., 0])


def _cumulative_random(rng, mu, thresholds, link="logit", trials=None):
    probabilities = _category_probabilities(mu, thresholds, link)
    u = rng.uniform(size=probabilities.shape[:-1])[..., None]
    return 1 + (np.cumsum(probabilities, axis=-1)[..., :-1] < u).sum(axis=-1)


def _cumulative_mean(mu, thresholds, link="logit", trials=None):
    probabilities = _category_probabilities(mu, thresholds, link)
    return probabilities @ np.arange(1, probabilities.shape[-1] + 1)


def _cumulative_variance(mu, thresholds, link="logit", trials=None):
    probabilities = _category_probabilities(mu, thresholds, link)
    k = np.arange(1, probabilities.shape[-1] + 1)
    return probabilities @ np.square(k) - np.square(probabilities @ k)


CUMULATIVE = Family(
    "cumulative", ("logit", "probit"), "ordinal", _zero, _two_and_a_half,
    log_density=_cumulative_log_density, random=_cumulative_random, mean=_cumulative_mean,
    variance=_cumulative_variance, working_scale=lambda y: np.asarray(y, dtype=float), ordinal=True,
    description="ordered categories 1..K: P(Y <= k) = F(threshold_k - mu), thresholds b_Intercept[k]",
)  # fmt: skip

#: Every family, by name.
FAMILIES = {
    family.name: family
    for family in (GAUSSIAN, STUDENT, BERNOULLI, BINOMIAL, POISSON, NEGBINOMIAL, GAMMA, LOGNORMAL, BETA,
                   EXPONENTIAL, WEIBULL, ZERO_INFLATED_POISSON, ZERO_INFLATED_NEGBINOMIAL, HURDLE_POISSON,
                   HURDLE_NEGBINOMIAL, CUMULATIVE)
}  # fmt: skip
# lf.families.Gaussian(), lf.families.Bernoulli("probit"), ...: the registry entries are callable
Gaussian, Student, Bernoulli, Binomial, Poisson = GAUSSIAN, STUDENT, BERNOULLI, BINOMIAL, POISSON
NegBinomial, Gamma, Lognormal, Beta = NEGBINOMIAL, GAMMA, LOGNORMAL, BETA
Exponential, Weibull = EXPONENTIAL, WEIBULL
ZeroInflatedPoisson, ZeroInflatedNegBinomial = ZERO_INFLATED_POISSON, ZERO_INFLATED_NEGBINOMIAL
HurdlePoisson, HurdleNegBinomial = HURDLE_POISSON, HURDLE_NEGBINOMIAL
Cumulative = CUMULATIVE


def get_family(family: str | Family, link: str | None = None) -> Family:
    """The :class:`Family` called ``family`` (case-insensitive), with ``link``.

    Parameters
    ----------
    family : str or Family
        A name in ``FAMILIES`` (gaussian, student, bernoulli, binomial, poisson, negbinomial,
        gamma, lognormal, beta, exponential, weibull, zero_inflated_poisson,
        zero_inflated_negbinomial, hurdle_poisson, hurdle_negbinomial, cumulative), or a Family (e.g.
        ``lf.families.Bernoulli("probit")``).
    link : str, optional
        One of the family's links (default: its first, canonical one).

    Raises
    ------
    ArgumentError
        For any other name or link, or a Family lmmformula does not know.
    """
    names = ", ".join(f"{name} ({', '.join(f.links)})" for name, f in FAMILIES.items())
    if isinstance(family, Family):
        known = FAMILIES.get(family.name)
        if known is None or replace(known, link=family.link) != family:
            raise ArgumentError(
                f"family={family.name!r}: custom families are not supported yet; choose one of "
                f"{names} (by name or as lf.families.<Name>(link))"
            )
        return family if link is None else family(link)
    if isinstance(family, str) and family.lower() in FAMILIES:
        return FAMILIES[family.lower()](link)
    raise ArgumentError(f"family={family!r} is not supported; the families (and their links) are {names}")


@dataclass(frozen=True)
class Response:
    """The response as Stan needs it: ``y``, for binomial the number of trials, and the
    likelihood weights of ``y | weights(w)``."""

    y: np.ndarray
    trials: np.ndarray | None = None
    weights: np.ndarray | None = None


def make_response(
    family: Family,
    columns: dict[str, np.ndarray],
    trials: tuple[str, np.ndarray] | None = None,
    weights: tuple[str, np.ndarray] | None = None,
) -> Response:
    """Check the evaluated response expressions against the family and build the response.

    ``columns`` maps each response expression (one, or two for ``cbind``) to its values;
    ``trials`` and ``weights`` are the (expression, values) of ``y | trials(n)`` and
    ``y | weights(w)``.
    """
    response = _response(family, columns, trials)
    if weights is not None:
        response = replace(response, weights=_weights(*weights))
    return response


def _response(family: Family, columns: dict[str, np.ndarray], trials) -> Response:
    names = list(columns)
    if trials is not None:
        return _binomial_from_trials(family, names, columns, *trials)
    if len(names) == 2:
        return _binomial_from_cbind(family, names, columns)
    name, values = names[0], columns[names[0]]
    if family.response == "binomial":
        if not _is_binary(values):
            raise DataError(
                f"response {name!r}: the binomial family needs 'cbind(successes, failures) ~ ...' "
                "or a 0/1 response"
            )
        binary = values.astype(np.int64)
        return Response(y=binary, trials=np.ones_like(binary))
    if family.response == "binary":
        if not _is_binary(values):
            found = np.unique(values)[:5]
            raise DataError(
                f"response {name!r}: the bernoulli family needs values 0 and 1 (or a column with "
                f"two levels); found {found.tolist()}"
            )
        return Response(y=values.astype(np.int64))
    if family.response == "count":
        return Response(y=_counts(name, values, family.name))
    if family.response == "ordinal":
        return Response(y=_categories(name, values, family.name))
    if family.response == "positive" and (values <= 0).any():
        bad = values[values <= 0]
        raise DataError(
            f"response {name!r} has {len(bad)} value(s) <= 0 (e.g. {bad[:3].tolist()}); the {family.name} "
            "family needs a positive response: remove or shift those rows, or choose another family"
        )
    if family.response == "unit" and ((values <= 0) | (values >= 1)).any():
        rows = np.flatnonzero((values <= 0) | (values >= 1))
        raise DataError(
            f"response {name!r} has {len(rows)} value(s) outside the open interval (0, 1) (rows "
            f"{rows[:5].tolist()}, e.g. {values[rows[:3]].tolist()}); the {family.name} family excludes "
            "0 and 1 "
            "(a zero/one-inflated beta family is not available yet): squeeze the values, e.g. "
            "(y * (n - 1) + 0.5) / n"
        )
    if len(values) and np.ptp(values) == 0:
        raise DataError(
            f"response {name!r} is constant (every value is {values[0]:g}); a {family.name} model needs a "
            "response that varies"
        )
    return Response(y=values.astype(float))


def _binomial_from_cbind(family: Family, names: list[str], columns: dict) -> Response:
    if family.response != "binomial":
        raise DataError(f"cbind({', '.join(names)}) is a binomial response; pass family='binomial'")
    successes = _counts(names[0], columns[names[0]], "binomial")
    failures = _counts(names[1], columns[names[1]], "binomial")
    trials = successes + failures
    if (trials > LARGEST_COUNT).any():
        raise DataError(f"cbind({', '.join(names)}): trials above {LARGEST_COUNT} (Stan's largest integer)")
    return Response(y=successes, trials=trials)


def _binomial_from_trials(family: Family, names: list[str], columns: dict, name: str, values) -> Response:
    if family.response != "binomial":
        raise DataError(
            f"'| trials({name})' gives the number of trials of a binomial response; pass family='binomial' "
            f"or drop trials() for the {family.name} family"
        )
    if len(names) == 2:
        raise DataError(
            f"cbind({', '.join(names)}) already gives the trials (successes + failures); "
            f"drop '| trials({name})'"
        )
    successes = _counts(names[0], columns[names[0]], "binomial")
    trials = _counts(f"trials({name})", np.asarray(values, dtype=float), "binomial")
    over = np.flatnonzero(successes > trials)
    if len(over):
        raise DataError(
            f"response {names[0]!r} exceeds trials({name}) in {len(over)} row(s) (rows {over[:5].tolist()}, "
            f"e.g. {int(successes[over[0]])} successes of {int(trials[over[0]])}); successes must be at most "
            "the number of trials"
        )
    return Response(y=successes, trials=trials)


def _weights(name: str, values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if len(bad):
        raise DataError(
            f"weights({name}) has {len(bad)} negative or infinite value(s) (rows {bad[:5].tolist()}, e.g. "
            f"{values[bad[0]]:g}); likelihood weights must be finite and >= 0"
        )
    if not (values > 0).any():
        raise DataError(f"weights({name}) is zero in every row; at least one row must have a positive weight")
    return values


def _categories(name: str, values: np.ndarray, family: str) -> np.ndarray:
    """Ordinal categories 1..K, from integers >= 1 (an ordered categorical arrives as its codes + 1)."""
    whole = np.isfinite(values) & (np.round(values) == values)
    if not (whole & (values >= 1)).all():
        bad = np.unique(values[~whole | (values < 1)])[:3].tolist()
        hint = f" (add 1: 'I({name} + 1) ~ ...')" if (whole & (values >= 0)).all() else ""
        raise DataError(
            f"response {name!r} has values {bad}; the {family} family needs categories coded 1, 2, ..., K"
            f"{hint} or an ordered categorical column, e.g. pd.Categorical(y, categories=[...], ordered=True)"
        )
    if values.max() < 2:
        raise DataError(f"response {name!r} has one category only; the {family} family needs at least two")
    return values.astype(np.int64)


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
