"""Every error and warning lmmformula raises on purpose; all are exported as ``lf.<Name>``.

Catch :class:`LmmformulaError` to catch them all. Input errors are also ``ValueError``s,
the engine's are ``RuntimeError``s, so code written against the builtin types keeps working.
"""


class LmmformulaError(Exception):
    """Base class of every lmmformula error."""


class FormulaError(LmmformulaError, ValueError):
    """The formula cannot be parsed or refers to something that does not exist."""


class DataError(LmmformulaError, ValueError):
    """The data do not fit the formula or the family."""


class ArgumentError(DataError):
    """An argument (``family``, ``parameterization``, ``priors``, a sampler setting) is invalid."""


class PriorError(FormulaError):
    """A prior names an unknown distribution or class, or has invalid arguments."""


class EngineError(LmmformulaError, RuntimeError):
    """Compiling or sampling failed; the message says where and why."""


class SamplingWarning(UserWarning):
    """The sampler reported problems: the draws may not describe the posterior."""


class DesignWarning(UserWarning):
    """The data were usable but something about them deserves a look (e.g. dropped rows)."""


class ComparisonWarning(UserWarning):
    """An approximate leave-one-out estimate may be unreliable (Pareto k too large for some rows)."""
