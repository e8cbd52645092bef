"""lmmformula: Bayesian mixed models from lme4-style formulas, sampled with Stan."""

__version__ = "0.1.0"

from .cache import cache_info, clear_cache  # noqa: E402
from .criteria import loo_compare  # noqa: E402
from .datasets import load_dataset  # noqa: E402
from .errors import (  # noqa: E402
    ArgumentError,
    ComparisonWarning,
    DataError,
    DesignWarning,
    EngineError,
    FormulaError,
    LmmformulaError,
    PriorError,
    SamplingWarning,
)
from .families import Family, get_family  # noqa: E402
from .fit import Fit, load  # noqa: E402
from .many import fit_many, sbc  # noqa: E402
from .model import Model, get_prior, make_stancode, make_standata  # noqa: E402
from .parameterization import BlockParameterization  # noqa: E402
from .priors import PriorSpec, prior  # noqa: E402

__all__ = [
    "ArgumentError",
    "BlockParameterization",
    "ComparisonWarning",
    "DataError",
    "DesignWarning",
    "EngineError",
    "Family",
    "Fit",
    "FormulaError",
    "LmmformulaError",
    "Model",
    "cache_info",
    "clear_cache",
    "PriorError",
    "PriorSpec",
    "SamplingWarning",
    "get_family",
    "fit_many",
    "get_prior",
    "load",
    "load_dataset",
    "loo_compare",
    "make_stancode",
    "make_standata",
    "prior",
    "sbc",
    "__version__",
]
