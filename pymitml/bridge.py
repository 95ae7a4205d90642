"""The R bridge (rpy2): move data to and from R, and run the same analysis in R side by side.

Only this module (and :mod:`pymitml.io.rds`, through it) knows about rpy2. Importing pymitml never
needs R: rpy2 is imported inside the functions, and a missing R or rpy2 is an ImportError that says
how to install them.

- :func:`to_r`: pandas/polars DataFrame -> R ``data.frame`` (categoricals -> factors with their
  levels and order, missing values -> ``NA``); :class:`~pymitml.MitmlList` -> R ``mitml.list``.
- :func:`from_r`: R ``data.frame`` -> pandas (factors -> categoricals); ``mitml.list``, a list of
  data frames, ``mids`` (mice) or ``mitml`` (panImpute/jomoImpute) -> MitmlList.
- :func:`r_pool_estimates`: ``lme4::lmer`` or ``lm`` + ``mitml::testEstimates`` in R on the same data.
- :func:`compare_tables`, :func:`side_by_side`: how far two pooled tables are apart.
- :func:`r_run`: evaluate R code with Python objects bound to R names.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import pandas as pd

from ._frame import as_pandas, library_of
from ._validation import check_library
from .mitml_list import MitmlList
from .pool.estimates import PooledEstimates

__all__ = ["compare_tables", "from_r", "r_pool_estimates", "r_run", "side_by_side", "to_r"]

_INSTALL = (
    "pymitml's R bridge needs R and rpy2. Install rpy2 with `pip install pymitml[r]` "
    "(rpy2>=3.5,<3.6; 3.6 does not load with Debian's R 4.2), and R with the packages pymitml "
    "compares against from Debian: `apt-get install r-base-core r-cran-mitml r-cran-lme4 "
    "r-cran-mice r-cran-jomo r-cran-pan`."
)

_R_NA_INT = np.iinfo(np.int32).min  # R's NA_integer_ (and NA for logicals)


def _robjects():
    """rpy2.robjects, imported on first use; an ImportError with install instructions otherwise.

    Starting R through rpy2 puts R's library folders (including the system's
    /usr/lib/x86_64-linux-gnu) into LD_LIBRARY_PATH; a Python subprocess started afterwards (a
    spawned worker of parallel chains, a test) could then load the system's libpython instead of
    this interpreter's and fail to find numpy. R is already loaded by then, so the variable is put
    back as it was.
    """
    first = "rpy2.robjects" not in sys.modules
    saved = os.environ.get("LD_LIBRARY_PATH")
    try:
        import rpy2.robjects as ro
    except Exception as exc:  # ImportError, or R failing to start inside rpy2
        raise ImportError(f"{_INSTALL} (import failed: {exc})") from exc
    finally:
        if first and os.environ.get("LD_LIBRARY_PATH") != saved:
            if saved is None:
                os.environ.pop("LD_LIBRARY_PATH", None)
            else:
                os.environ["LD_LIBRARY_PATH"] = saved
    return ro


_HELPERS: dict[str, Any] = {}

_R_HELPERS = {
    "make_df": """function(cols, rn) {
        for (i in seq_along(cols)) if (is.double(cols[[i]])) cols[[i]][is.nan(cols[[i]])] <- NA_real_
        n <- if (length(cols)) length(cols[[1]]) else length(rn)
        attr(cols, "row.names") <- if (is.null(rn)) .set_row_names(n) else rn
        class(cols) <- "data.frame"
        cols
    }""",
    "factor": """function(codes, levels, ordered)
        structure(codes, levels = levels, class = if (ordered) c("ordered", "factor") else "factor")""",
    "posixct": """function(secs, tz) { x <- secs; x[is.nan(x)] <- NA_real_
        structure(x, class = c("POSIXct", "POSIXt"), tzone = tz) }""",
    "df_parts": """function(x) list(names = names(x), cols = unclass(x),
        rn = attr(x, "row.names"), auto = .row_names_info(x) < 0)""",
    "col_info": """function(v) list(class = class(v), levels = levels(v), na = is.na(v),
        tz = attr(v, "tzone"))""",
    "eval_in": """function(code, env) eval(parse(text = code), envir = env)""",
    "complete_mids": """function(x) { if (!requireNamespace("mice", quietly = TRUE))
        stop("reading a mids object needs the R package mice")
        list(imps = lapply(seq_len(x$m), function(i) mice::complete(x, action = i)), original = x$data) }""",
    "complete_mitml": """function(x) list(imps = mitml::mitmlComplete(x, print = "all", force.list = TRUE),
        original = mitml::mitmlComplete(x, print = 0))""",
    "pool": """function(implist, formula, fitter, REML, extra, dfcom) {
        f <- stats::as.formula(formula)
        fits <- lapply(implist, function(d)
            if (fitter == "lmer") lme4::lmer(f, data = d, REML = REML) else stats::lm(f, data = d))
        est <- mitml::testEstimates(fits, extra.pars = extra, df.com = dfcom)
        list(est = est$estimates, extra = est$extra.pars, m = est$m, T = attr(est$estimates, "T"))
    }""",
}


def _helper(name: str):
    ro = _robjects()
    if name not in _HELPERS:
        _HELPERS[name] = ro.r(_R_HELPERS[name])
    return _HELPERS[name]


# --------------------------------------------------------------------------------------------
# Python -> R
# --------------------------------------------------------------------------------------------
def _float_vec(arr: np.ndarray):
    from rpy2.rinterface import FloatSexpVector

    return FloatSexpVector.from_memoryview(np.ascontiguousarray(arr, dtype=np.float64).data)


def _int_vec(arr: np.ndarray):
    from rpy2.rinterface import IntSexpVector

    return IntSexpVector.from_memoryview(np.ascontiguousarray(arr, dtype=np.int32).data)


def _column_to_r(name: str, s: pd.Series):
    """One pandas column as an R vector; missing values become NA."""
    from rpy2.rinterface import BoolSexpVector, NA_Character, StrSexpVector

    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy().astype(np.int64) + 1
        codes = np.where(codes == 0, _R_NA_INT, codes)
        levels = StrSexpVector([str(c) for c in dtype.categories])
        return _helper("factor")(_int_vec(codes), levels, bool(dtype.ordered))
    if pd.api.types.is_bool_dtype(dtype):
        na = s.isna().to_numpy()
        vals = s.to_numpy(dtype=object)
        return (
            BoolSexpVector([None if m else bool(v) for v, m in zip(vals, na)])
            if na.any()
            else BoolSexpVector(s.to_numpy(dtype=bool).tolist())
        )
    if pd.api.types.is_integer_dtype(dtype):
        na = s.isna().to_numpy()
        vals = s.to_numpy(dtype=np.float64, na_value=np.nan)
        fits32 = np.all(np.abs(vals[~na]) < 2**31 - 1) if (~na).any() else True
        if fits32:
            ints = np.where(na, _R_NA_INT, np.nan_to_num(vals)).astype(np.int64)
            return _int_vec(ints)
        return _float_vec(vals)
    if pd.api.types.is_float_dtype(dtype):
        return _float_vec(s.to_numpy(dtype=np.float64, na_value=np.nan))
    if pd.api.types.is_datetime64_any_dtype(dtype):
        tz = str(dtype.tz) if getattr(dtype, "tz", None) is not None else "UTC"
        ns = s.dt.tz_convert("UTC") if getattr(dtype, "tz", None) is not None else s
        secs = ns.astype("datetime64[ns]").to_numpy().astype(np.int64) / 1e9
        secs = np.where(s.isna().to_numpy(), np.nan, secs)
        return _helper("posixct")(_float_vec(secs), tz)
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        na = s.isna().to_numpy()
        vals = s.to_numpy(dtype=object)
        bad = [v for v, m in zip(vals, na) if not m and not isinstance(v, str)]
        if bad:
            raise TypeError(
                f"column '{name}' holds non-string objects (e.g. {type(bad[0]).__name__}); R can take "
                "numbers, strings, booleans, categoricals and datetimes: convert it first."
            )
        return StrSexpVector([NA_Character if m else v for v, m in zip(vals, na)])
    raise TypeError(
        f"column '{name}' has dtype {dtype}, which has no R counterpart here; convert it to a "
        "number, string, boolean, categorical or datetime column first."
    )


def _row_names(index: pd.Index):
    """None (R's automatic row names) for a default RangeIndex, else integer or string names."""
    from rpy2.rinterface import StrSexpVector

    n = len(index)
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return None
    if not index.is_unique:
        return None
    if pd.api.types.is_integer_dtype(index.dtype) and n and np.abs(index).max() < 2**31 - 1:
        return _int_vec(index.to_numpy().astype(np.int64))
    return StrSexpVector([str(i) for i in index])


def _frame_to_r(df: Any):
    from rpy2.rinterface import ListSexpVector, StrSexpVector

    pdf = as_pandas(df)
    names = [str(c) for c in pdf.columns]
    if len(set(names)) != len(names):
        raise ValueError(f"the data have duplicated column names {names}; R needs unique names.")
    cols = ListSexpVector([_column_to_r(n, pdf.iloc[:, i]) for i, n in enumerate(names)])
    cols.do_slot_assign("names", StrSexpVector(names))
    rn = _row_names(pdf.index)
    from rpy2.rinterface import NULL

    return _helper("make_df")(cols, NULL if rn is None else rn)


def to_r(obj: Any):
    """A pandas/polars DataFrame as an R ``data.frame``, or a MitmlList as an R ``mitml.list``.

    Parameters
    ----------
    obj : pandas or polars DataFrame, :class:`~pymitml.MitmlList`, or a list of DataFrames.

    Returns
    -------
    rpy2 R object. Categorical columns become factors (levels as strings, in the categories' order;
    ordered categoricals become ordered factors), NaN/None/NA become ``NA``, integers become R
    integers when they fit, datetimes become ``POSIXct``. A default RangeIndex gives R's automatic
    row names; another unique index is kept as row names.

    Examples
    --------
    >>> r_df = to_r(
    ...     pd.DataFrame({"x": [1.0, None], "g": pd.Categorical(["b", "a"])})
    ... )  # doctest: +SKIP
    """
    _robjects()
    if isinstance(obj, MitmlList) or (
        isinstance(obj, (list, tuple)) and obj and all(_is_frame(d) for d in obj)
    ):
        from rpy2.rinterface import ListSexpVector, StrSexpVector

        out = ListSexpVector([_frame_to_r(d) for d in obj])
        out.do_slot_assign("class", StrSexpVector(["mitml.list", "list"]))
        return out
    if _is_frame(obj):
        return _frame_to_r(obj)
    raise TypeError(
        "`obj` must be a pandas or polars DataFrame, a MitmlList or a list of DataFrames; "
        f"got {type(obj).__name__}."
    )


def _is_frame(x: Any) -> bool:
    try:
        library_of(x)
    except TypeError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# R -> Python
# --------------------------------------------------------------------------------------------
def _rclass(x) -> list[str]:
    cls = getattr(x, "rclass", None)
    return [] if cls is None else list(cls)


def _rtype(x) -> str:
    """R's SEXP type name: "REALSXP", "INTSXP", "STRSXP", "LGLSXP", "VECSXP", "NILSXP", ..."""
    return x.typeof.name


def _column_from_r(v) -> Any:
    info = _helper("col_info")(v)
    cls = list(info[0])
    na = np.asarray(info[2], dtype=bool) if len(info[2]) else np.zeros(0, dtype=bool)
    if "factor" in cls:
        codes = np.asarray(v, dtype=np.int64) - 1
        codes[na] = -1
        levels = [str(x) for x in info[1]]
        return pd.Categorical.from_codes(codes, categories=levels, ordered="ordered" in cls)
    if "POSIXct" in cls:
        ns = np.round(np.where(na, 0.0, np.asarray(v, dtype=np.float64)) * 1e9).astype(np.int64)
        out = pd.to_datetime(ns, unit="ns", utc=True).where(~na, pd.NaT)
        tz = str(info[3][0]) if len(info[3]) and str(info[3][0]) else None
        return out.tz_convert(tz) if tz and tz != "UTC" else out.tz_localize(None)
    if "Date" in cls:
        days = np.where(na, 0.0, np.asarray(v, dtype=np.float64)).astype(np.int64)
        return pd.to_datetime(days, unit="D").where(~na, pd.NaT)
    rtype = _rtype(v)
    if rtype == "REALSXP":
        return np.asarray(v, dtype=np.float64).copy()
    if rtype == "INTSXP":
        arr = np.asarray(v, dtype=np.int64)
        return np.where(na, np.nan, arr) if na.any() else arr.copy()
    if rtype == "LGLSXP":
        arr = np.asarray(v, dtype=np.int32)
        return (
            pd.array([None if m else bool(x) for x, m in zip(arr, na)], dtype="boolean")
            if na.any()
            else arr.astype(bool)
        )
    if rtype == "STRSXP":
        return np.array([None if m else str(x) for x, m in zip(v, na)], dtype=object)
    raise TypeError(f"an R column of class {cls} cannot be converted; convert it in R first.")


def _frame_from_r(x) -> pd.DataFrame:
    parts = _helper("df_parts")(x)
    names = [str(n) for n in parts[0]]
    cols = parts[1]
    data = {n: _column_from_r(cols[i]) for i, n in enumerate(names)}
    n = len(parts[2]) if not bool(parts[3][0]) else None
    df = pd.DataFrame(data, columns=names)
    if n is not None:
        rn = parts[2]
        vals = np.asarray(rn, dtype=np.int64) if _rtype(rn) == "INTSXP" else [str(s) for s in rn]
        if not (isinstance(vals, np.ndarray) and np.array_equal(vals, np.arange(1, len(vals) + 1))):
            df.index = pd.Index(vals)
    return df


def _to_library(df: pd.DataFrame, library: str):
    if library == "polars":
        import polars as pl

        return pl.from_pandas(df)
    return df


def _list_of_frames(x) -> bool:
    return _rtype(x) == "VECSXP" and len(x) > 0 and all("data.frame" in _rclass(e) for e in x)


def from_r(obj: Any, library: str = "pandas") -> Any:
    """An R object back in Python.

    Parameters
    ----------
    obj : rpy2 R object: a ``data.frame``; a ``mitml.list`` or plain list of data frames; a mice
        ``mids``; a mitml ``mitml`` imputation result. Other R vectors go through rpy2's default
        conversion (numbers -> numpy arrays).
    library : ``"pandas"`` (default) or ``"polars"`` for the returned data frames.

    Returns
    -------
    DataFrame for a data.frame (factors -> categoricals with their levels and order; NA -> NaN for
    numbers, None for strings; integers with NA become float); :class:`~pymitml.MitmlList` for
    the lists (``.original`` is the incomplete data for ``mids`` and ``mitml`` objects).
    """
    check_library(library)
    _robjects()
    cls = _rclass(obj)
    if "data.frame" in cls:
        return _to_library(_frame_from_r(obj), library)
    if "mids" in cls or "mitml" in cls:
        parts = _helper("complete_mids" if "mids" in cls else "complete_mitml")(obj)
        imps = [_to_library(_frame_from_r(d), library) for d in parts[0]]
        return MitmlList(imps, _to_library(_frame_from_r(parts[1]), library))
    if "mitml.list" in cls or _list_of_frames(obj):
        return MitmlList([_to_library(_frame_from_r(d), library) for d in obj])
    return _other_from_r(obj, library)


def _attr_names(x) -> list[str]:
    """Names of x's attributes (rpy2's list_attrs() does not work with every R build)."""
    a = _robjects().baseenv["attributes"](x)
    return [] if _rtype(a) == "NILSXP" else (_names(a) or [])


def _names(x) -> list[str] | None:
    names = _robjects().baseenv["names"](x)
    return None if _rtype(names) == "NILSXP" else [str(n) for n in names]


def _other_from_r(obj, library: str) -> Any:
    """Lists -> dict (all elements named) or list; vectors -> numpy arrays (Series when named);
    anything else through rpy2's numpy converter."""
    rtype = _rtype(obj)
    if rtype == "VECSXP":
        items = [from_r(e, library) for e in obj]
        names = _names(obj)
        if names and all(names) and len(set(names)) == len(names):
            return dict(zip(names, items))
        return items
    attrs = set(_attr_names(obj))
    if rtype in ("REALSXP", "INTSXP", "LGLSXP", "STRSXP") and attrs <= {"names", "class", "levels"}:
        values = _column_from_r(obj)
        names = _names(obj)
        if names:
            return pd.Series(values, index=names)
        return values if isinstance(values, pd.Categorical) else np.asarray(values)
    if rtype == "NILSXP":
        return None
    from rpy2.robjects import default_converter, numpy2ri
    from rpy2.robjects.conversion import localconverter

    with localconverter(default_converter + numpy2ri.converter) as cv:
        return cv.rpy2py(obj)


# --------------------------------------------------------------------------------------------
# running R
# --------------------------------------------------------------------------------------------
def _value_to_r(v: Any):
    ro = _robjects()
    from rpy2.rinterface import Sexp

    if isinstance(v, Sexp):
        return v
    if isinstance(v, MitmlList) or _is_frame(v):
        return to_r(v)
    if v is None:
        return ro.NULL
    from rpy2.robjects import default_converter, numpy2ri
    from rpy2.robjects.conversion import localconverter

    if (
        isinstance(v, (list, tuple))
        and all(isinstance(e, (int, float, str, bool)) for e in v)
        and v
    ):
        v = np.asarray(v)
    with localconverter(default_converter + numpy2ri.converter) as cv:
        return cv.py2rpy(v)


def r_run(code: str, convert: bool = True, **objects: Any) -> Any:
    """Evaluate R code with Python objects bound to R names; return the last value.

    Parameters
    ----------
    code : R code (several expressions allowed; the value of the last one is returned).
    convert : pass the result through :func:`from_r` (False returns the rpy2 object).
    **objects : name=value pairs made visible to the code (DataFrames and MitmlLists through
        :func:`to_r`, numbers/strings/arrays through rpy2's converters).

    Examples
    --------
    >>> r_run("coef(lm(y ~ x, data = d))", d=df)  # doctest: +SKIP
    """
    ro = _robjects()
    env = ro.r("new.env(parent = globalenv())")
    for name, value in objects.items():
        env[name] = _value_to_r(value)
    out = _helper("eval_in")(code, env)
    return from_r(out) if convert else out


def _r_matrix(mat, columns=None) -> pd.DataFrame:
    dims = list(mat.do_slot("dim"))
    vals = np.asarray(mat, dtype=np.float64).reshape(dims, order="F")
    rows, cols = None, columns
    dn = _robjects().baseenv["dimnames"](mat)
    if _rtype(dn) != "NILSXP":
        rows = [str(s) for s in dn[0]] if _rtype(dn[0]) == "STRSXP" else None
        cols = [str(s) for s in dn[1]] if _rtype(dn[1]) == "STRSXP" else columns
    return pd.DataFrame(vals, index=rows, columns=cols)


def r_pool_estimates(
    mitml_list: Any,
    formula: str,
    REML: bool = True,
    extra_pars: bool = False,
    df_com: float | list[float] | None = None,
    fitter: str = "auto",
):
    """Fit the model in R on every data set and pool with ``mitml::testEstimates``.

    Parameters
    ----------
    mitml_list : :class:`~pymitml.MitmlList` (or list of DataFrames), or an R ``mitml.list``.
    formula : an R formula; with a ``|`` term the fit is ``lme4::lmer``, else ``stats::lm``.
    REML : lmer's REML switch.
    extra_pars, df_com : as in :func:`pymitml.pool_estimates`.
    fitter : ``"auto"``, ``"lmer"`` or ``"lm"``.

    Returns
    -------
    PooledEstimates whose ``.table`` (columns Estimate, Std.Error, t.value, df, P(>|t|), RIV, FMI)
    and ``.extra`` are R's numbers, so it compares directly with :func:`pymitml.pool_estimates`
    (see :func:`compare_tables`).
    """
    ro = _robjects()
    if not isinstance(formula, str) or "~" not in formula:
        raise ValueError(
            f"`formula` must be an R formula string such as 'y ~ x + (1|g)'; got {formula!r}."
        )
    if fitter == "auto":
        fitter = "lmer" if "|" in formula else "lm"
    if fitter not in ("lm", "lmer"):
        raise ValueError(f"`fitter` must be 'auto', 'lm' or 'lmer'; got {fitter!r}.")
    from rpy2.rinterface import Sexp

    rlist = mitml_list if isinstance(mitml_list, Sexp) else to_r(mitml_list)
    dfc = ro.NULL if df_com is None else _float_vec(np.atleast_1d(np.asarray(df_com, dtype=float)))
    res = _helper("pool")(rlist, formula, fitter, bool(REML), bool(extra_pars), dfc)
    table = _r_matrix(res[0])
    extra = None if _rtype(res[1]) == "NILSXP" else _r_matrix(res[1])
    total = None if _rtype(res[3]) == "NILSXP" else _r_matrix(res[3])
    if total is not None:
        total.index = total.columns = table.index
    m = int(np.asarray(res[2])[0])
    df_store = None
    if df_com is not None:
        d = np.atleast_1d(np.asarray(df_com, dtype=float))
        df_store = float(d[0]) if d.size == 1 else d
    args = (
        [f"{fitter}({formula})"]
        + (["extra.pars = TRUE"] if extra_pars else [])
        + ([f"df.com = {df_com}"] if df_com is not None else [])
    )
    return PooledEstimates(
        table, extra, m, df_store, total, "testEstimates(" + ", ".join(args) + ")"
    )


# --------------------------------------------------------------------------------------------
# comparing tables
# --------------------------------------------------------------------------------------------
def _as_table(x: Any) -> pd.DataFrame:
    if hasattr(x, "table") and isinstance(x.table, pd.DataFrame):
        return x.table
    if isinstance(x, pd.DataFrame):
        return x
    raise TypeError(
        f"expected a DataFrame or a pooled result with `.table`; got {type(x).__name__}."
    )


def _align(a: pd.DataFrame, b: pd.DataFrame, by: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    if by not in ("auto", "name", "position"):
        raise ValueError(f"`by` must be 'auto', 'name' or 'position'; got {by!r}.")
    same = set(map(str, a.index)) == set(map(str, b.index))
    if by == "name" or (by == "auto" and same):
        if not same:
            raise ValueError(
                f"the tables have different row names: {list(a.index)} vs {list(b.index)}; "
                "use by='position' to compare row by row."
            )
        b = b.copy()
        b.index = b.index.map(str)
        return a, b.loc[[str(i) for i in a.index]].set_axis(a.index)
    if len(a) != len(b):
        raise ValueError(f"the tables have {len(a)} and {len(b)} rows; they cannot be compared.")
    return a, b.set_axis(a.index)


def compare_tables(a: Any, b: Any, by: str = "auto") -> pd.DataFrame:
    """Largest absolute and relative differences per column between two tables (b is the reference).

    Parameters
    ----------
    a, b : DataFrames or pooled results (their ``.table``; when both have ``.extra`` it is compared
        too, as the row ``"extra:Estimate"``).
    by : match rows by ``"name"``, by ``"position"``, or ``"auto"`` (names when both tables have
        the same row names, else positions, e.g. statsmodels' ``Intercept`` vs R's ``(Intercept)``).

    Returns
    -------
    DataFrame indexed by column name with ``max_abs_diff`` and ``max_rel_diff`` (|a - b| / |b|;
    cells equal in both, including both NaN or both 0, count as 0).
    """
    ta, tb = _align(_as_table(a), _as_table(b), by)
    cols = [c for c in ta.columns if c in tb.columns]
    rows = {}
    pairs = [(c, ta[c], tb[c]) for c in cols]
    ea, eb = getattr(a, "extra", None), getattr(b, "extra", None)
    if isinstance(ea, pd.DataFrame) and isinstance(eb, pd.DataFrame):
        xa, xb = _align(ea, eb, by)
        pairs.append(("extra:Estimate", xa["Estimate"], xb["Estimate"]))
    for c, sa, sb in pairs:
        va, vb = sa.to_numpy(dtype=np.float64), sb.to_numpy(dtype=np.float64)
        equal = (va == vb) | (np.isnan(va) & np.isnan(vb))
        with np.errstate(invalid="ignore", divide="ignore"):
            ad = np.where(equal, 0.0, np.abs(va - vb))
            rd = np.where(equal, 0.0, ad / np.abs(vb))
        ad = np.where(np.isnan(ad), np.inf, ad)
        rd = np.where(np.isnan(rd), np.inf, rd)
        rows[c] = (float(ad.max(initial=0.0)), float(rd.max(initial=0.0)))
    return pd.DataFrame.from_dict(rows, orient="index", columns=["max_abs_diff", "max_rel_diff"])


def side_by_side(
    a: Any, b: Any, labels: tuple[str, str] = ("pymitml", "R"), by: str = "auto"
) -> pd.DataFrame:
    """The two tables interleaved column by column (MultiIndex columns: column, label)."""
    ta, tb = _align(_as_table(a), _as_table(b), by)
    cols = [c for c in ta.columns if c in tb.columns]
    out = pd.concat({labels[0]: ta[cols], labels[1]: tb[cols]}, axis=1)
    out = out.swaplevel(axis=1)
    return out[[(c, lab) for c in cols for lab in labels]]
