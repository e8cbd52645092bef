"""lmmformula on the command line: ``lmmformula fit | code | priors | summary``.

Exit codes: 0 done, 2 bad input (a message saying what to change, no traceback), 1 any other
failure (compiling or sampling; ``--traceback`` shows Python's for a report), 130 interrupted.
Built on the standard library's argparse: the four commands and their options need nothing
more, and the console script then costs no dependency.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .datasets import DATASETS, load_dataset
from .errors import EngineError, LmmformulaError
from .formula import parse_formula

BAD_INPUT, FAILED, INTERRUPTED = 2, 1, 130
_CSV = {".csv", ".txt", ".tsv", ".gz", ".bz2", ".zip", ".xz"}
_PARQUET = {".parquet", ".pq"}


class InputError(Exception):
    """Bad input found by the command line itself (a file it cannot read, an unknown column)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it). argparse's own
    usage errors and ``--help`` exit (SystemExit, code 2 and 0) before a command runs."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return BAD_INPUT
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        # ours too (Python hides DeprecationWarnings outside __main__): e.g. a pickled fit file
        warnings.filterwarnings("default", category=DeprecationWarning, module=r"lmmformula(\.|$)")
        try:
            args.run(args)
        except (InputError, ValueError) as error:
            if not isinstance(error, InputError | LmmformulaError):
                return _failed(error, args)
            print(f"lmmformula: error: {error}", file=sys.stderr)
            return BAD_INPUT
        except EngineError as error:
            if args.traceback:
                traceback.print_exception(error)
            print(f"lmmformula: {error}", file=sys.stderr)
            return FAILED
        except KeyboardInterrupt:
            print("lmmformula: interrupted", file=sys.stderr)
            return INTERRUPTED
        except Exception as error:  # noqa: BLE001 (the last resort: say so, exit 1)
            return _failed(error, args)
    return 0


def _failed(error: BaseException, args) -> int:
    if args.traceback:
        traceback.print_exception(error)
    print(
        f"lmmformula: failed: {type(error).__name__}: {error} (run again with --traceback for the details "
        "to report)",
        file=sys.stderr,
    )
    return FAILED


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"lmmformula: {category.__name__}: {message}", file=sys.stderr)


# ---------------------------------------------------------------- the commands


def _fit(args) -> None:
    if args.out is not None:
        folder = args.out.resolve().parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise InputError(
                f"--out {args.out}: cannot write into {folder} (no such folder, or not writable)"
            )
    model = _model(args)
    fit = model.fit(
        chains=args.chains,
        iter_warmup=args.iter_warmup,
        iter_sampling=args.iter_sampling,
        seed=args.seed,
        cores=args.cores,
        adapt_delta=args.adapt_delta,
        max_treedepth=args.max_treedepth,
        backend=args.backend,
        method=args.method,
        progress=not args.quiet,
    )
    if args.out is not None:
        fit.save(args.out)
        print(f"lmmformula: wrote {args.out} (read it with `lmmformula summary {args.out}`)", file=sys.stderr)
    print(fit.summary(prob=args.prob))


def _code(args) -> None:
    print(_model(args).stan_code, end="")


def _priors(args) -> None:
    table = _model(args).get_prior()
    print(table.to_string(index=False))


def _summary(args) -> None:
    from .fit import load

    print(load(args.fit).summary(prob=args.prob))


# ---------------------------------------------------------------- data and model


def _model(args):
    from .model import Model

    data = read_data(args.data, args.categorical)
    priors = _priors_argument(args.prior)
    _hint_numeric_groups(args.formula, data, args.categorical)
    family = args.family if args.link is None else _family(args.family, args.link)
    return Model(args.formula, data, family=family, priors=priors, parameterization=args.parameterization)


def _family(name: str, link: str):
    from .families import get_family

    return get_family(name, link)


def read_data(source: str, categorical: Sequence[str] = ()) -> pd.DataFrame:
    """The data at ``source``: a CSV or Parquet file, or the name of a shipped data set; the
    ``categorical`` columns as labels (strings), whatever they look like."""
    path = Path(source)
    if not path.exists():
        if source in DATASETS:
            return _as_categorical(load_dataset(source), categorical, source)
        raise InputError(
            f"data {source!r}: no such file (give a .csv or .parquet file, or one of the shipped data "
            f"sets: {', '.join(DATASETS)})"
        )
    suffix = path.suffix.lower()
    try:
        if suffix in _PARQUET:
            frame = pd.read_parquet(path)
        elif suffix in _CSV:
            frame = pd.read_csv(
                path,
                sep=None if suffix in (".txt", ".tsv") else ",",
                engine="python" if suffix in (".txt", ".tsv") else "c",
                dtype={c: str for c in categorical},
            )
        else:
            raise InputError(f"data {source!r}: not a .csv or .parquet file (by its name); convert it first")
    except ImportError as error:
        raise InputError(
            f"reading {source!r} needs a Parquet engine ({error}): pip install pyarrow, or save the data "
            "as CSV"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as error:
        raise InputError(
            f"cannot read {source!r} as {'Parquet' if suffix in _PARQUET else 'CSV'}: {error}"
        ) from None
    if frame.columns.empty or frame.empty:
        raise InputError(f"data {source!r} holds no rows")
    return _as_categorical(frame, categorical, source)


def _as_categorical(frame: pd.DataFrame, columns: Sequence[str], source: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"--categorical {missing[0]}: no such column in {source!r}; its columns are "
            f"{', '.join(map(str, frame.columns))}"
        )
    out = frame.copy()
    for column in columns:
        values = out[column]
        if pd.api.types.is_float_dtype(values):
            whole = values.dropna()
            if (whole == whole.round()).all():
                values = values.astype("Int64")
        out[column] = values.map(lambda v: v if pd.isna(v) else str(v)).astype(object)
    return out


def _hint_numeric_groups(formula: str, data: pd.DataFrame, categorical: Sequence[str]) -> None:
    """Say which numeric columns are read as levels (grouping factors), and which numeric
    population-level columns look like categories (few distinct whole numbers)."""
    try:
        spec = parse_formula(formula)
    except LmmformulaError:
        return  # the model says what is wrong with the formula
    groups = {f for term in spec.group_terms for f in term.factors}
    fixed = re.sub(r"\bC\([^()]*\)", " ", spec.fixed)  # C(period): a factor already
    named = set(re.findall(r"[A-Za-z_.][A-Za-z0-9_.]*", fixed)) | {
        name for term in spec.group_terms for name in re.findall(r"[A-Za-z_.][A-Za-z0-9_.]*", term.expr)
    }

    def numeric(column) -> bool:
        return (
            column in data.columns
            and column not in categorical
            and pd.api.types.is_numeric_dtype(data[column])
        )

    def looks_like_codes(column) -> bool:
        """3 to 6 distinct values that are consecutive whole numbers from 0 or 1 (cbpp's period 1-4;
        not sleepstudy's Days 0-9 or Orthodont's ages 8-14)."""
        distinct = np.unique(data[column].dropna().to_numpy(dtype=float))
        return (
            3 <= len(distinct) <= 6
            and distinct[0] in (0.0, 1.0)
            and np.array_equal(distinct, np.arange(distinct[0], distinct[0] + len(distinct)))
        )

    grouping = [c for c in sorted(groups) if numeric(c)]
    coded = [c for c in sorted(named - groups) if numeric(c) and looks_like_codes(c)]
    if grouping:
        print(
            f"lmmformula: hint: grouping column(s) {', '.join(map(repr, grouping))} hold numbers: each "
            "distinct value is a level, as in lme4 (no --categorical needed there)",
            file=sys.stderr,
        )
    if coded:
        print(
            f"lmmformula: hint: column(s) {', '.join(map(repr, coded))} hold a few consecutive whole numbers "
            f"and enter as numeric slopes; if they are codes of categories, pass --categorical {coded[0]}",
            file=sys.stderr,
        )


def _priors_argument(entries: Sequence[str]) -> list | None:
    """``--prior`` entries: ``CLASS=DIST``, ``CLASS:COEF=DIST``, ``CLASS:COEF:GROUP=DIST`` or
    ``weakly_informative``."""
    from .priors import WEAKLY_INFORMATIVE, prior

    out: list = []
    for entry in entries:
        if entry == WEAKLY_INFORMATIVE:
            out.append(entry)
            continue
        target, equals, distribution = entry.partition("=")
        class_, _, rest = target.partition(":")
        class_ = class_.strip()
        if not equals or not distribution.strip() or not class_:
            raise InputError(
                f"--prior {entry!r}: write CLASS=DIST, CLASS:COEF=DIST or CLASS:COEF:GROUP=DIST, e.g. "
                "--prior 'b=normal(0, 1)' --prior 'sd::Subject=exponential(1)', or --prior weakly_informative"
            )
        if class_ == "b":  # a coefficient may hold ':' (an interaction, age:Sex[T.Male])
            coef, group = rest, ""
        elif class_ == "cor":  # cor::GROUP (or cor:GROUP); the group may be an interaction (a:b)
            coef, group = "", rest[1:] if rest.startswith(":") else rest
        else:  # sd:COEF:GROUP; the group may be an interaction
            coef, _, group = rest.partition(":")
        out.append(prior(distribution.strip(), class_=class_, coef=coef.strip(), group=group.strip()))
    return out or None


# ---------------------------------------------------------------- the parser


def _probability(text: str) -> float:
    """--prob: a width strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a width strictly between 0 and 1, e.g. 0.9")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lmmformula",
        description="Bayesian mixed models from lme4-style formulas, sampled with Stan.",
        epilog="Exit codes: 0 done, 2 bad input, 1 other failures. "
        "`lmmformula COMMAND --help` for each command.",
    )
    parser.add_argument("--version", action="version", version=f"lmmformula {__version__}")
    parser.set_defaults(command=None, traceback=False)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    fit = commands.add_parser(
        "fit",
        help="fit a model, print its summary and optionally save it",
        description="Fit FORMULA to DATA, print the brms-style summary, and write the fit with --out.",
    )
    _model_arguments(fit)
    sampling = fit.add_argument_group("sampling")
    sampling.add_argument("--chains", type=int, default=4, help="chains (default 4)")
    sampling.add_argument(
        "--iter-warmup", type=int, default=1000, help="warm-up iterations per chain (default 1000)"
    )
    sampling.add_argument(
        "--iter-sampling", type=int, default=1000, help="kept draws per chain (default 1000)"
    )
    sampling.add_argument(
        "--seed", type=int, default=None, help="random seed: the same seed gives the same draws"
    )
    sampling.add_argument(
        "--cores", type=int, default=None, help="chains run at once (default: the machine's cores)"
    )
    sampling.add_argument(
        "--adapt-delta", type=float, default=None, help="target acceptance rate (default: chosen per model)"
    )
    sampling.add_argument(
        "--max-treedepth", type=int, default=10, help="NUTS's maximum tree depth (default 10)"
    )
    sampling.add_argument(
        "--method",
        default="nuts",
        help="nuts (default), pathfinder, laplace, optimize, meanfield or fullrank",
    )
    sampling.add_argument("--backend", default="auto", help="embedded, cmdstanpy, or auto (default)")
    fit.add_argument(
        "--prob", type=_probability, default=0.95, help="width of the summary's intervals (default 0.95)"
    )
    fit.add_argument(
        "--out", type=Path, default=None, help="write the fit here (a netCDF file; e.g. fit.lmm)"
    )
    fit.add_argument("--quiet", action="store_true", help="no progress bars or compile messages")
    fit.set_defaults(run=_fit, command="fit")

    code = commands.add_parser(
        "code",
        help="print the Stan program",
        description="Print the Stan program lmmformula writes for the model.",
    )
    _model_arguments(code)
    code.set_defaults(run=_code, command="code")

    priors = commands.add_parser(
        "priors",
        help="print the priors (brms's get_prior table)",
        description="Print every prior of the model, defaults and --prior's, as brms's get_prior.",
    )
    _model_arguments(priors)
    priors.set_defaults(run=_priors, command="priors")

    summary = commands.add_parser(
        "summary",
        help="print the summary of a saved fit",
        description="Print the summary of a fit saved with --out.",
    )
    summary.add_argument("fit", type=Path, help="a file written by `lmmformula fit --out` or Fit.save")
    summary.add_argument(
        "--prob", type=_probability, default=0.95, help="width of the intervals (default 0.95)"
    )
    summary.set_defaults(run=_summary, command="summary")
    for command in (fit, code, priors, summary):
        command.add_argument("--traceback", action="store_true", help="show Python's traceback of a failure")
    return parser


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "data", help=f"a .csv or .parquet file, or a shipped data set ({', '.join(DATASETS)})"
    )
    parser.add_argument("formula", help="an lme4-style formula, e.g. 'y ~ x + (x | group)' (quote it)")
    model = parser.add_argument_group("model")
    model.add_argument(
        "--family", default="gaussian", help="response family (default gaussian), e.g. poisson, bernoulli"
    )
    model.add_argument("--link", default=None, help="the family's link (default: its canonical link)")
    model.add_argument(
        "--prior",
        action="append",
        default=[],
        metavar="CLASS[:COEF[:GROUP]]=DIST",
        help="a prior, e.g. 'b=normal(0, 1)', 'b:x=normal(0, 0.5)', 'sd::Subject=exponential(1)', "
        "or weakly_informative; repeat for more",
    )
    model.add_argument(
        "--categorical",
        action="append",
        default=[],
        metavar="COL",
        help="read column COL as labels (a category), however numeric it looks; repeat for more",
    )
    model.add_argument("--parameterization", default="auto", help="auto (default), centered or noncentered")


def main_exit() -> None:
    """The console script: run :func:`main` and exit with its code."""
    sys.exit(main())
