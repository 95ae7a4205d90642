"""The ``pymitml`` command line: impute, analyse, convert and describe data without code.

Built on click. Exit codes: 0 success, 1 a user error (bad argument, unreadable file, a model
that cannot be fitted; one line on stderr), 2 an internal error (a bug: the traceback is printed).

Examples
--------
::

    pymitml describe pupils.csv --cluster school
    pymitml impute pupils.csv --formula "math + ses ~ 1 + size + (1|school)" -m 20 --seed 1 \\
        -o imputed.dta
    pymitml impute pupils.csv --method fcs --cluster school -m 20 -o imputed.sav
    pymitml analyze imputed.dta --formula "math ~ ses + size + (1|school)"
    pymitml convert imputed.dta imputed.sav
    pymitml run mnar.imp
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

import click

__all__ = ["main"]

#: output formats by file extension (writer name of pymitml.io)
WRITE_FORMATS = {
    ".dta": "stata",
    ".sav": "spss",
    ".csv": "long",
    ".parquet": "long",
    ".rds": "rds",
    ".dat": "mplus",
}
EPILOG = (
    "Formats follow the extension: .csv, .parquet, .dta (Stata mi flong), .sav (SPSS "
    "Imputation_), .rds (R mitml.list), .dat (Mplus TYPE=IMPUTATION; the name is the stem)."
)


class UserError(click.ClickException):
    """A one-line error for the user (exit code 1)."""

    exit_code = 1


def _read_data(path: str, missing_code: float | None = None) -> Any:
    """One data set (not imputed) from CSV, parquet, Stata, SPSS or R's .rds."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise UserError(f"data file '{path}' does not exist.")
    ext = p.suffix.lower()
    try:
        if ext == ".csv":
            df = pd.read_csv(p)
        elif ext == ".parquet":
            df = pd.read_parquet(p)
        elif ext == ".dta":
            df = pd.read_stata(p)
        elif ext == ".sav":
            import pyreadstat

            df, _ = pyreadstat.read_sav(str(p))
        elif ext == ".rds":
            from .io import read_rds

            lst = read_rds(p)
            df = lst[0]
        else:
            raise UserError(
                f"cannot tell the format of '{path}' from its extension '{ext}': use .csv, "
                ".parquet, .dta, .sav or .rds."
            )
    except UserError:
        raise
    except Exception as exc:  # the library's message, with the file named
        raise UserError(f"could not read '{path}' as {ext[1:]}: {exc}") from exc
    if missing_code is not None:
        num = df.select_dtypes("number").columns
        df[num] = df[num].mask(df[num] == missing_code)
    return df


def _read_imputed(path: str) -> Any:
    """Imputed data sets (a MitmlList) from any format pymitml writes."""
    from . import io

    p = Path(path)
    if not p.exists():
        raise UserError(f"imputed-data file '{path}' does not exist.")
    ext = p.suffix.lower()
    readers: dict[str, Any] = {
        ".dta": io.read_stata,
        ".sav": io.read_spss,
        ".csv": io.read_long,
        ".parquet": io.read_long,
        ".rds": io.read_rds,
        ".dat": io.read_mplus,
    }
    if ext not in readers:
        raise UserError(
            f"cannot tell the format of '{path}' from its extension '{ext}': use one of "
            f"{sorted(readers)} (Mplus: the list file)."
        )
    try:
        return readers[ext](p)
    except Exception as exc:
        raise UserError(f"could not read '{path}' as imputed data: {exc}") from exc


def _write(implist: Any, out: str, overwrite: bool) -> str:
    p = Path(out)
    ext = p.suffix.lower()
    if ext not in WRITE_FORMATS:
        raise UserError(
            f"cannot tell the output format of '{out}' from its extension '{ext}': use one of "
            f"{sorted(WRITE_FORMATS)}."
        )
    fmt = WRITE_FORMATS[ext]
    method = {
        "stata": implist.to_stata,
        "spss": implist.to_spss,
        "long": implist.to_file,
        "rds": implist.to_rds,
        "mplus": implist.to_mplus,
    }[fmt]
    target: Any = p.with_suffix("") if fmt == "mplus" else p
    try:
        method(target, overwrite=overwrite)
    except FileExistsError as exc:
        raise UserError(f"{exc} (pass --overwrite to replace it)") from exc
    except Exception as exc:
        raise UserError(f"could not write '{out}': {exc}") from exc
    return fmt


def _echo(quiet: bool, text: str) -> None:
    if not quiet:
        click.echo(text)


@click.group(epilog=EPILOG)
@click.version_option(package_name="pymitml")
def cli() -> None:
    """pymitml: multilevel multiple imputation, mixed models and pooling (mitml/mice/lme4 in
    Python)."""


@cli.command()
@click.argument("data")
@click.option(
    "--formula",
    "formulas",
    multiple=True,
    help="mitml model formula (pan, jomo; give it twice for jomo's level-1 and level-2 models).",
)
@click.option(
    "--method",
    type=click.Choice(["pan", "jomo", "fcs", "model"]),
    default="pan",
    show_default=True,
    help="imputation family.",
)
@click.option("--cluster", help="cluster id column (needed by fcs).")
@click.option("-m", "m", type=int, default=5, show_default=True, help="number of imputations.")
@click.option("--n-burn", type=int, default=None, help="burn-in iterations (pan/jomo).")
@click.option("--n-iter", type=int, default=None, help="iterations between imputations.")
@click.option("--maxit", type=int, default=10, show_default=True, help="fcs iterations.")
@click.option("--seed", type=int, default=None, help="random seed (same seed: same result).")
@click.option("--missing-code", type=float, default=None, help="value that codes a missing cell.")
@click.option("-o", "--output", required=True, help="output file (format from the extension).")
@click.option("--overwrite", is_flag=True, help="replace an existing output file.")
@click.option("--quiet", is_flag=True, help="no progress or summary.")
def impute(
    data: str,
    formulas: tuple[str, ...],
    method: str,
    cluster: str | None,
    output: str,
    **opts: Any,
) -> None:
    """Impute DATA and write the m completed data sets to OUTPUT.

    \b
    Examples:
      pymitml impute pupils.csv --formula "math + ses ~ 1 + size + (1|school)" -m 20 -o out.dta
      pymitml impute pupils.csv --method jomo --formula "math ~ 1 + (1|school)" -o out.sav
      pymitml impute pupils.csv --method fcs --cluster school -m 20 -o out.parquet
      pymitml impute pupils.csv --method model --formula "math ~ ses + (1 + ses|school)" -o out.csv
    """
    quiet = bool(opts["quiet"])
    df = _read_data(data, opts["missing_code"])
    imp = _run_imputation(df, method, formulas, cluster, opts)
    fmt = _write(imp.complete(), output, bool(opts["overwrite"]))
    if not quiet:
        click.echo(repr(imp))
        summary = getattr(imp, "summary", None)
        if summary is not None:
            click.echo(str(summary()))
    _echo(quiet, f"wrote {opts['m']} imputed data sets to '{output}' ({fmt})")


def _run_imputation(
    df: Any, method: str, formulas: tuple[str, ...], cluster: str | None, opts: dict[str, Any]
) -> Any:
    """The imputation the ``impute`` options ask for (user errors as :class:`UserError`)."""
    import pymitml as pm

    kw: dict[str, Any] = {"m": opts["m"], "seed": opts["seed"], "progress": not opts["quiet"]}
    if method in ("pan", "jomo"):
        if not formulas:
            raise UserError(f'--method {method} needs --formula, e.g. "y + x ~ 1 + (1|id)".')
        if method == "pan" and len(formulas) > 1:
            raise UserError("pan takes one --formula; give two only with --method jomo.")
        kw.update({k: opts[k] for k in ("n_burn", "n_iter") if opts[k] is not None})
        formula: Any = formulas[0] if len(formulas) == 1 else list(formulas)
        fn = pm.pan_impute if method == "pan" else pm.jomo_impute
        call = lambda: fn(df, formula, **kw)  # noqa: E731
    elif method == "model":
        if len(formulas) != 1:
            raise UserError(
                "--method model needs one --formula, the focal model in lme4 grammar, e.g. "
                '"y ~ x + w + x:w + (1 + x|id)".'
            )
        kw.update({k: opts[k] for k in ("n_burn", "n_iter") if opts[k] is not None})
        if kw["m"] % 2:
            kw["chains"] = 1
        call = lambda: pm.model_impute(df, formulas[0], verbose=False, **kw)  # noqa: E731
    else:
        if cluster is None:
            raise UserError("--method fcs needs --cluster, the cluster id column.")
        call = lambda: pm.fcs_impute(df, cluster=cluster, maxit=opts["maxit"], **kw)  # noqa: E731
    try:
        return call()
    except (ValueError, TypeError, KeyError) as exc:
        raise UserError(str(exc)) from exc


@cli.command()
@click.argument("imputed")
@click.option("--formula", required=True, help="lme4 formula of the analysis model.")
@click.option("--ml", is_flag=True, help="maximum likelihood instead of REML.")
@click.option(
    "--ddf",
    type=click.Choice(["Satterthwaite", "Kenward-Roger"]),
    default=None,
    help="complete-data df of each fit for Barnard-Rubin (default: large-sample).",
)
@click.option("--extra-pars", is_flag=True, help="also pool the variance components.")
def analyze(imputed: str, formula: str, ml: bool, ddf: str | None, extra_pars: bool) -> None:
    """Fit lmer to each imputed data set in IMPUTED and print the pooled estimates.

    \b
    Example:
      pymitml analyze imputed.dta --formula "math ~ ses + size + (1|school)" --ddf Satterthwaite
    """
    import pymitml as pm

    implist = _read_imputed(imputed)
    try:
        fits = implist.with_(lambda d: pm.lmer(formula, d, REML=not ml))
        kw: dict[str, Any] = {"extra_pars": extra_pars}
        if ddf is not None:
            kw["df_com"] = ddf
        click.echo(str(pm.pool_estimates(fits, **kw)))
    except (ValueError, TypeError, KeyError) as exc:
        raise UserError(str(exc)) from exc


@cli.command()
@click.argument("source")
@click.argument("target")
@click.option("--overwrite", is_flag=True, help="replace an existing TARGET.")
def convert(source: str, target: str, overwrite: bool) -> None:
    """Convert imputed data from SOURCE to TARGET (formats from the extensions).

    \b
    Example:
      pymitml convert imputed.dta imputed.sav
    """
    implist = _read_imputed(source)
    fmt = _write(implist, target, overwrite)
    click.echo(f"wrote {len(implist)} imputed data sets to '{target}' ({fmt})")


@cli.command()
@click.argument("data")
@click.option("--cluster", default=None, help="cluster id column (rates by level).")
@click.option("--missing-code", type=float, default=None, help="value that codes a missing cell.")
def describe(data: str, cluster: str | None, missing_code: float | None) -> None:
    """Print the missing-data overview of DATA (pattern table, rates by level)."""
    import pymitml as pm

    df = _read_data(data, missing_code)
    try:
        click.echo(str(pm.missing_pattern(df, cluster=cluster)))
    except (ValueError, TypeError, KeyError) as exc:
        raise UserError(str(exc)) from exc


@cli.command()
@click.argument("script")
@click.option("--overwrite", is_flag=True, help="replace the files SAVE names if they exist.")
@click.option("--quiet", is_flag=True, help="no progress bar or report.")
def run(script: str, overwrite: bool, quiet: bool) -> None:
    """Run a Blimp script (SCRIPT.imp) on pymitml's model-based sampler; print Blimp's report.

    \b
    Supported: DATA, VARIABLES, CLUSTERID, ORDINAL, NOMINAL, FIXED, MISSING, CENTER, MODEL
    (focal/auxiliary blocks, '| slopes', 'y.missing ~' selection models), SEED, BURN,
    ITERATIONS, NIMPS, CHAINS, THIN, SAVE (stacked = file; separate = imp*.dat).
    \b
    Example:
      pymitml run mnar.imp
    """
    from .blimp_script import BlimpScriptError, run_blimp_script

    try:
        text, _ = run_blimp_script(script, overwrite=overwrite, progress=not quiet)
    except (BlimpScriptError, ValueError, TypeError, KeyError, FileExistsError) as exc:
        raise UserError(f"{script}: {exc}") from exc
    _echo(quiet, text)


@cli.command()
def demo() -> None:
    """Run the embedded example (pan, lmer, pooling), as ``make demo``."""
    from .demo import main as run_demo

    run_demo()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pymitml`` console script; returns the exit code."""
    try:
        cli.main(args=argv, prog_name="pymitml", standalone_mode=False)
    except click.UsageError as exc:  # bad arguments: a user error
        exc.show()
        return 1
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except Exception:  # a bug: show it
        traceback.print_exc()
        click.echo(
            "pymitml: internal error (exit code 2); please report it with the traceback.", err=True
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
