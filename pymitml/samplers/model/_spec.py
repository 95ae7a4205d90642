"""model_impute's frame boundary: formulas and data -> variables, models and the column table.

Everything the user gives is checked here, once, with messages that name the term and the fix;
after this the kernel trusts its inputs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..._frame import Codebook, ColumnCodec, check_columns, check_scale, check_values
from ...lmm._terms import parse_lmer_formula
from ._terms import CENTRED, Term, _factor_name, parse_rhs, split_top, term_name

__all__ = ["ModelDef", "ModelSpec", "VarInfo", "build_spec"]


@dataclass
class VarInfo:
    """One variable of the model: level, type, categories and missingness."""

    name: str
    level: int  # 1 or 2
    ncat: int  # 0 continuous, >= 2 categorical (codes 0..ncat-1)
    nominal: bool
    levels: np.ndarray  # numeric value of each category (categorical)
    categories: list | None  # the data's categories (None: numeric column)
    n_missing: int


@dataclass
class ModelDef:
    """One regression of the factorisation."""

    label: str  # "y" (focal), "x1" (predictor), "y.missing" (selection)
    role: str  # "focal", "predictor", "selection"
    resp: int
    kind: int  # 0 linear, 1 probit, 2 selection
    level: int
    x_cols: list[tuple[str, list[tuple[int, int]]]]  # (name, factors (var, power))
    z_cols: list[tuple[str, list[tuple[int, int]]]]
    text: str = ""
    offset: int = -1  # variable subtracted from the response (a latent cluster mean)
    dim: int = 0  # nominal sub-model: its category


@dataclass
class ModelSpec:
    """Everything the chains need (rows sorted by cluster: ``perm`` maps them to the data)."""

    names: list[str]
    info: list[VarInfo]
    V: np.ndarray  # (n, K) values (NaN where missing), category codes for categorical
    R: np.ndarray  # (n, K) int64
    perm: np.ndarray  # sorted row -> data row position
    clus: np.ndarray
    start: np.ndarray
    cluster: str | None
    models: list[ModelDef]
    order: list[int]  # imputation order of the incomplete variables
    codebook: Codebook
    positions: list[int]  # data column position of every imputed variable
    imputed: list[int]  # variables with missing cells, in codebook order
    delta: dict[int, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    cen: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    latent: dict[int, int] = field(default_factory=dict)  # latent mean variable -> its variable
    observed_means: dict[int, int] = field(default_factory=dict)  # observed mean of incomplete


def _fail(msg: str) -> None:
    raise ValueError(msg)


def _parse_focal(formula: Any) -> tuple[str, str, list[str], str | None]:
    """(response, fixed part, random-effect terms, cluster) of the focal model."""
    if not isinstance(formula, str):
        raise TypeError(
            "`formula` must be a string such as 'y ~ x + (1 + x | cluster)'; got "
            f"{type(formula).__name__}."
        )
    if "|" not in formula:
        if formula.count("~") != 1:
            _fail(f"`formula` must contain exactly one '~'; got {formula!r}.")
        lhs, rhs = (s.strip() for s in formula.split("~"))
        if not lhs:
            _fail(f"`formula` {formula!r} names no response on the left of '~'.")
        return lhs, rhs or "1", [], None
    f = parse_lmer_formula(formula)
    groups = {t.name for t in f.random}
    if len(groups) > 1 or any(len(t.groups) > 1 for t in f.random):
        _fail(
            f"`formula` {formula!r} has random effects for {sorted(groups)}; model_impute "
            "takes one cluster variable: use one term such as '(1 + x | cluster)'."
        )
    if f.offsets:
        _fail(f"`formula` {formula!r} has an offset; model_impute does not take offsets.")
    if not f.response_is_column:
        _fail(
            f"the response {f.response!r} of `formula` {formula!r} must be a column name; "
            "compute the transformation as a column first."
        )
    return f.response, f.fixed, [t.expr for t in f.random], f.random[0].groups[0]


def _var_info(df: pd.DataFrame, name: str, clus, ordinal: set[str]) -> tuple[VarInfo, np.ndarray]:
    """The variable's description and its values (codes for categorical)."""
    s = df[name]
    miss = s.isna().to_numpy()
    cat_dtype = isinstance(s.dtype, pd.CategoricalDtype)
    if (
        cat_dtype
        or pd.api.types.is_bool_dtype(s)
        or pd.api.types.is_object_dtype(s)
        or (pd.api.types.is_string_dtype(s))
    ):
        if cat_dtype:
            cats = list(s.cat.categories)
            codes = s.cat.codes.to_numpy().astype(np.float64)
            ordered = bool(s.cat.ordered)
        else:
            cats = sorted(pd.unique(s.dropna()).tolist())
            codes = s.map({c: k for k, c in enumerate(cats)}).to_numpy(dtype=np.float64)
            ordered = False
        codes[miss] = np.nan
        K = len(cats)
        if K < 2:
            _fail(f"variable '{name}' has {K} category; a categorical variable needs two or more.")
        nominal = K > 2 and not ordered and name not in ordinal
        levels = np.arange(K, dtype=np.float64)
        info = VarInfo(name, 1, K, nominal, levels, cats, int(miss.sum()))
        vals = codes
    elif pd.api.types.is_numeric_dtype(s):
        x = s.to_numpy(dtype=np.float64, na_value=np.nan).copy()
        if name in ordinal:
            lv = np.unique(x[~miss])
            if len(lv) < 2 or len(lv) > 50:
                _fail(
                    f"`ordinal` variable '{name}' has {len(lv)} distinct values; an ordinal "
                    "variable needs 2 to 50."
                )
            codes = np.searchsorted(lv, x).astype(np.float64)
            codes[miss] = np.nan
            info = VarInfo(name, 1, len(lv), False, lv, None, int(miss.sum()))
            vals = codes
        else:
            info = VarInfo(name, 1, 0, False, np.zeros(0), None, int(miss.sum()))
            vals = x
    else:
        _fail(f"variable '{name}' has dtype {s.dtype}; convert it to float or a category.")
    if clus is not None:
        obs = ~np.isnan(vals)
        g = pd.Series(vals[obs]).groupby(clus[obs])
        if len(g) > 1 and bool((g.nunique() <= 1).all()) and (g.size() > 1).any():
            info.level = 2
    return info, vals


def _expand(
    term: Term, index: dict[str, int], info: list[VarInfo], where: str
) -> list[tuple[str, list[tuple[int, int]]]]:
    """Design columns of one term (nominal variables as K - 1 indicators)."""
    options = []
    for name, pw in term:
        v = index[name]
        vi = info[v]
        if vi.nominal:
            if pw != 1:
                _fail(
                    f"the term {term_name(term)!r} of {where} raises nominal '{name}' to a power."
                )
            cats = vi.categories or []
            options.append([(f"{name}{cats[k]}", (v, -k)) for k in range(1, vi.ncat)])
        else:
            label = _factor_name(name, pw) if pw > CENTRED else name
            options.append([(label if pw == 1 or pw > CENTRED else f"I({name}^{pw})", (v, pw))])
    out = []
    for combo in itertools.product(*options):
        out.append((":".join(c[0] for c in combo), [c[1] for c in combo]))
    return out


def _design(rhs: str, where: str, index, info, intercept_default=True):
    intercept, terms = parse_rhs(rhs, where)
    cols: list[tuple[str, list[tuple[int, int]]]] = []
    if intercept and intercept_default:
        cols.append(("Intercept", []))
    for t in terms:
        cols += _expand(t, index, info, where)
    return cols, terms


def _term_vars(terms: Sequence[Term]) -> list[str]:
    return list(dict.fromkeys(n for t in terms for n, _ in t))


def build_spec(
    data: Any,
    formula: Any,
    *,
    predictors: Any = None,
    selection: Any = None,
    fixed: Any = None,
    ordinal: Any = None,
    delta: Any = None,
    cluster_means: str = "latent",
    auxiliary: Any = None,
) -> ModelSpec:
    """Check the arguments and build the :class:`ModelSpec` (see :func:`model_impute`)."""
    # the model's columns are checked once they are known (below): others pass through as they are
    codebook, df = Codebook.from_data(data, check=False)
    response, fixed_rhs, random_exprs, cluster = _parse_focal(formula)
    if response not in df.columns:
        _fail(
            f"the response '{response}' of the focal model {formula!r} is not a column of the "
            f"data; available columns: {list(df.columns)[:30]}."
        )
    ordinal_set = set(_names_list(ordinal, "ordinal"))
    fixed_list = _names_list(fixed, "fixed")
    pred_list = _pred_list(predictors)
    sel = _selection_dict(selection)
    delta_d = _delta_dict(delta)
    # every variable named anywhere
    where_f = f"the focal model {formula!r}"
    _, f_terms = parse_rhs(fixed_rhs, where_f)
    r_terms: list[Term] = []
    for e in random_exprs:
        r_terms += parse_rhs(e, where_f)[1]
    names = [response] + _term_vars(f_terms) + _term_vars(r_terms)
    # auxiliary variables: "v" (regressed on every focal variable) or "v ~ rhs"
    focal_vars = [n for n in names if not n.endswith(".mean")]
    aux_texts = []
    for text in _pred_list(auxiliary, "auxiliary"):
        if "~" not in text:
            text = f"{text} ~ {' + '.join(dict.fromkeys(focal_vars))}"
        aux_texts.append(text)
    pred_parsed = []
    aux_names: set[str] = set()
    for text in pred_list + aux_texts:
        if text.count("~") != 1:
            _fail(f"predictor model {text!r} must have the form 'x1 + x2 ~ w1 + w2'.")
        lhs, rhs = (p.strip() for p in text.split("~"))
        lhs_names = [p.strip() for p in split_top(lhs, "+") if p.strip()]
        if not lhs_names:
            _fail(f"predictor model {text!r} names no variable on the left of '~'.")
        for n in lhs_names:
            if not n.replace(".", "_").replace("_", "a").isalnum():
                _fail(f"the left side of predictor model {text!r} must be column names; got {n!r}.")
        _, terms = parse_rhs(rhs, f"predictor model {text!r}")
        pred_parsed.append((text, lhs_names, rhs, terms))
        names += lhs_names + _term_vars(terms)
        if len(pred_parsed) > len(pred_list):  # an auxiliary model
            for n in lhs_names:
                if n in focal_vars:
                    _fail(
                        f"auxiliary model {text!r}: '{n}' is in the focal model; auxiliary "
                        "variables are the ones the analysis does not use."
                    )
                if n not in df.columns:
                    _fail(f"auxiliary variable '{n}' is not a column of the data.")
            aux_names.update(lhs_names)
    for v, rhs in sel.items():
        _, terms = parse_rhs(rhs.lstrip().lstrip("~"), f"selection model {v!r}: {rhs!r}")
        names += [v] + _term_vars(terms)
    names += fixed_list + list(delta_d)
    names = list(dict.fromkeys(names))
    model_cols = [n for n in names if n in df.columns and n != cluster]
    check_values(df, model_cols)
    check_scale(df, [c for c in model_cols if df[c].isna().any()], "model_impute", stacklevel=4)
    # cluster means: cmean(x) is the variable 'x.mean'; cwc(x) needs it too
    all_terms = list(f_terms) + r_terms + [t for *_, ts in pred_parsed for t in ts]
    for rhs in sel.values():
        all_terms += parse_rhs(rhs.lstrip().lstrip("~"), "selection")[1]
    centred = [n for t in all_terms for n, p in t if p > CENTRED]
    synthetic = {n: n[:-5] for n in names if n.endswith(".mean") and n not in df.columns} | {
        f"{n}.mean": n for n in centred
    }
    if synthetic and cluster is None:
        _fail(
            f"cmean()/cwc() of {sorted(set(synthetic.values()))} need clusters; add a random "
            "effect term such as '(1 | cluster)' to the focal model."
        )
    if cluster_means not in ("latent", "observed"):
        _fail(f"`cluster_means` must be 'latent' or 'observed'; got {cluster_means!r}.")
    names = [n for n in names if n not in synthetic]
    names = list(dict.fromkeys(names + list(synthetic.values())))
    check_columns(df, names + ([cluster] if cluster else []), "variable(s)")
    if cluster in names:
        _fail(
            f"the cluster variable '{cluster}' is also used as a variable; use it only after '|'."
        )
    # rows sorted by cluster
    n_rows = len(df)
    if cluster is not None:
        cl = df[cluster]
        if cl.isna().any():
            _fail(
                f"cluster id '{cluster}' is missing in {int(cl.isna().sum())} row(s); every row needs a cluster."
            )
        codes, _ = pd.factorize(cl, sort=False)
        perm = np.argsort(codes, kind="stable")
        clus = codes[perm].astype(np.int64)
        J = int(codes.max()) + 1
    else:
        perm = np.arange(n_rows)
        clus = np.zeros(n_rows, np.int64)
        J = 1
    start = np.searchsorted(clus, np.arange(J + 1)).astype(np.int64)
    dfs = df.iloc[perm].reset_index(drop=True)
    info: list[VarInfo] = []
    cols: list[np.ndarray] = []
    for name in names:
        vi, vals = _var_info(dfs, name, clus if cluster is not None else None, ordinal_set)
        info.append(vi)
        cols.append(vals)
    latent: dict[int, int] = {}
    observed_means: dict[int, int] = {}
    base_index = {nm: k for k, nm in enumerate(names)}
    for sname, base in synthetic.items():
        b = base_index[base]
        bi = info[b]
        if bi.level == 2 or bi.ncat:
            _fail(
                f"cmean({base}) / cwc({base}): '{base}' must be a continuous level-1 variable; "
                f"it is {'constant within clusters' if bi.level == 2 else 'categorical'}."
            )
        if cluster_means == "observed":
            # the mean of the current values (observed and imputed), kept up to date by the
            # kernel whenever an imputed value of the variable changes
            vals = pd.Series(cols[b]).groupby(clus).transform("mean").to_numpy()
            info.append(VarInfo(sname, 2, 0, False, np.zeros(0), None, 0))
            if bi.n_missing:
                observed_means[len(names)] = b
        else:
            vals = np.full(n_rows, np.nan)
            info.append(VarInfo(sname, 2, 0, False, np.zeros(0), None, J))
            latent[len(names)] = b
        names.append(sname)
        cols.append(vals)
    V = np.column_stack(cols) if cols else np.zeros((n_rows, 0))
    R = np.isnan(V).astype(np.int64)
    index = {nm: k for k, nm in enumerate(names)}
    cen = np.full(len(names), -1, np.int64)
    for sname, base in synthetic.items():
        cen[index[base]] = index[sname]
    # level-2 variables: fill rows of clusters where the value is observed elsewhere
    for k, vi in enumerate(info):
        if vi.level == 2:
            for j in range(J):
                seg = V[start[j] : start[j + 1], k]
                ok = seg[~np.isnan(seg)]
                if len(ok):
                    seg[np.isnan(seg)] = ok[0]
    incomplete = {nm for nm, vi in zip(names, info) if vi.n_missing > 0}
    # checks on the focal model
    for e, t in zip(random_exprs, [parse_rhs(e, where_f)[1] for e in random_exprs]):
        for nm in _term_vars(t):
            if info[index[nm]].level == 2:
                _fail(
                    f"random slope of '{nm}' in ({e} | {cluster}) of {where_f}: '{nm}' is constant "
                    f"within clusters of '{cluster}' (a level-2 variable) and cannot have a random "
                    "slope; keep it in the fixed part only."
                )
    for nm in fixed_list:
        if nm in incomplete:
            _fail(
                f"`fixed` variable '{nm}' has {info[index[nm]].n_missing} missing value(s); fixed "
                "predictors are conditioned on and must be complete: remove it from `fixed` "
                "(it then gets a predictor model)."
            )
    models: list[ModelDef] = []
    y = index[response]
    yi = info[y]
    if yi.level == 2 and cluster is not None:
        _fail(
            f"the focal response '{response}' is constant within clusters; model_impute's focal model is a level-1 model."
        )
    if yi.nominal:
        _fail(
            f"the focal response '{response}' is nominal; use a continuous, binary or ordinal outcome."
        )
    xcols, _ = _design(fixed_rhs, where_f, index, info)
    zcols: list = []
    for e in random_exprs:
        zcols += _design(e, where_f, index, info)[0]
    models.append(
        ModelDef(response, "focal", y, 1 if yi.ncat else 0, 1, xcols, zcols, str(formula))
    )
    # predictor models: given, then defaults for incomplete variables without one
    modelled = {response}
    order_named: list[tuple[str, str, str]] = []  # (variable, rhs text, source)
    for text, lhs_names, rhs, _terms in pred_parsed:
        for k, nm in enumerate(lhs_names):
            if nm not in incomplete and nm not in aux_names:
                _fail(
                    f"predictor model {text!r}: '{nm}' on its left has no missing values; "
                    "complete predictors are conditioned on: list it in `fixed=` (or on the right "
                    "of another model) instead of modelling it; a complete variable the analysis "
                    "does not use goes in `auxiliary=`."
                )
            if nm in modelled:
                _fail(
                    f"predictor model {text!r}: '{nm}' already has a model; give one model per variable."
                )
            later = lhs_names[k + 1 :]
            full = " + ".join([*later, rhs]) if rhs else " + ".join(later) or "1"
            order_named.append((nm, full, text))
            modelled.add(nm)
    for v, rhs in sel.items():
        if v not in incomplete:
            _fail(
                f"selection model for '{v}': '{v}' has no missing values, so there is no "
                f"missingness to model; remove '{v}' from `selection`."
            )
    complete_focal = [
        nm for nm in _term_vars(f_terms) + _term_vars(r_terms) if nm not in incomplete
    ]
    # cluster means are functions of their variables, never conditioned on by default
    fixed_default = [a for a in dict.fromkeys(fixed_list + complete_focal) if a not in synthetic]
    latent_names = {names[k] for k in latent}
    latent_bases = {names[b] for b in latent.values()}
    needing = [
        nm
        for nm in names
        if (nm in incomplete or nm in latent_bases) and nm not in modelled | latent_names
    ]
    lev1 = sorted(
        (nm for nm in needing if info[index[nm]].level == 1),
        key=lambda a: -info[index[a]].n_missing,
    )
    lev2 = sorted(
        (nm for nm in needing if info[index[nm]].level == 2),
        key=lambda a: -info[index[a]].n_missing,
    )
    auto = lev1 + lev2
    messages = []
    for k, nm in enumerate(auto):
        lvl = info[index[nm]].level
        later = [a for a in auto[k + 1 :] if lvl == 1 or info[index[a]].level == 2]
        fx = [
            a for a in fixed_default if (lvl == 1 or info[index[a]].level == 2) and a not in later
        ]
        rhs = " + ".join(a for a in later + fx if a != nm) or "1"
        order_named.append((nm, rhs, "default"))
    if auto:
        messages.append(
            "model_impute: predictor models (factored regressions, in this order): "
            + "; ".join(f"{a} ~ {r}" for a, r, _src in order_named)
        )
    deps: dict[str, list[str]] = {}
    for nm, rhs, src in order_named:
        vv = index[nm]
        vi = info[vv]
        where = f"the predictor model of '{nm}' ({src if src != 'default' else nm + ' ~ ' + rhs})"
        xc, terms = _design(rhs, where, index, info)
        for tv in _term_vars(terms):
            base = tv[:-5] if tv.endswith(".mean") and tv in latent_names else tv
            if base in aux_names:
                _fail(
                    f"{where}: '{tv}' is an auxiliary variable; auxiliary variables are "
                    "regressed on the analysis variables and used by no other model."
                )
            if base == response and nm not in aux_names:
                _fail(
                    f"{where}: '{tv}' is the focal model's response; the factorisation "
                    f"f({response} | {nm}, ...) f({nm} | ...) cannot also condition '{nm}' on "
                    f"it: remove '{tv}' from the predictor model."
                )
            deps.setdefault(nm, []).append(base)
            if vi.level == 2 and info[index[tv]].level == 1:
                _fail(
                    f"{where}: '{nm}' is a level-2 variable and cannot be regressed on the "
                    f"level-1 variable '{tv}'; use level-2 predictors only."
                )
            if tv == nm:
                _fail(f"{where}: '{nm}' appears on both sides.")
        if cen[vv] >= 0 and cen[vv] in latent:
            models += _latent_models(nm, vv, int(cen[vv]), rhs, where, index, info)
            continue
        if vi.nominal:  # multinomial probit: one sub-model per category 1..K-1
            cats = vi.categories or []
            for k in range(1, vi.ncat):
                xk = [(f"{c} [{nm}{cats[k]}]", f) for c, f in xc]
                lvl1 = vi.level == 1 and cluster is not None
                zk: list = [(f"Intercept [{nm}{cats[k]}]", [])] if lvl1 else []
                text = f"{nm} ~ {rhs} (multinomial probit)" if k == 1 else ""
                md = ModelDef(nm, "predictor", vv, 4, vi.level, xk, zk, text)
                md.dim = k
                models.append(md)
            continue
        zc: list = [("Intercept", [])] if (vi.level == 1 and cluster is not None) else []
        models.append(
            ModelDef(nm, "predictor", vv, 1 if vi.ncat else 0, vi.level, xc, zc, f"{nm} ~ {rhs}")
        )
    _check_acyclic(deps)
    for nm, rhs in sel.items():
        vv = index[nm]
        where = f"the selection model of '{nm}' ({rhs!r})"
        xc, terms = _design(rhs.lstrip().lstrip("~"), where, index, info)
        lvl = info[vv].level
        for tv in _term_vars(terms):
            if lvl == 2 and info[index[tv]].level == 1:
                _fail(
                    f"{where}: '{nm}' is a level-2 variable; its selection model takes level-2 predictors only."
                )
        models.append(
            ModelDef(
                f"{nm}.missing",
                "selection",
                vv,
                2,
                lvl,
                xc,
                [],
                f"{nm}.missing ~ {rhs.lstrip().lstrip('~').strip()}",
            )
        )
    # every incomplete variable used anywhere has a model
    own = {md.resp for md in models if md.kind != 2}
    for nm in incomplete:
        if index[nm] not in own:
            _fail(f"'{nm}' is incomplete but has no model; add it to `predictors`.")
    for v in delta_d:
        if v not in incomplete:
            _fail(f"`delta` for '{v}': '{v}' has no missing values; remove it from `delta`.")
    order = list(dict.fromkeys(index[md.label] for md in models if md.role == "predictor"))
    if response in incomplete:
        order = [y] + order
    imputed = [index[nm] for nm in names if nm in incomplete and nm not in latent_names]
    codebook.targets = [
        ColumnCodec(
            names[v],
            "categorical" if info[v].categories is not None else "continuous",
            info[v].categories,
        )
        for v in imputed
    ]
    positions = [list(df.columns).index(names[v]) for v in imputed]
    return ModelSpec(
        names=names,
        info=info,
        V=V,
        R=R,
        perm=perm.astype(np.int64),
        clus=clus,
        start=start,
        cluster=cluster,
        models=models,
        order=order,
        codebook=codebook,
        positions=positions,
        imputed=imputed,
        delta={index[k]: v for k, v in delta_d.items()},
        messages=messages,
        cen=cen,
        latent=latent,
        observed_means=observed_means,
    )


def _check_acyclic(deps: dict[str, list[str]]) -> None:
    """The predictor models must not condition in a circle (x ~ z and z ~ x)."""
    state: dict[str, int] = {}

    def visit(v: str, path: list[str]) -> None:
        state[v] = 1
        for u in deps.get(v, []):
            if u not in deps:
                continue
            if state.get(u) == 1:
                cyc = path[path.index(u) :] + [u] if u in path else [v, u]
                _fail(
                    "the predictor models condition in a circle ("
                    + " -> ".join(cyc)
                    + "): the factorisation needs an order; list the variables of one model on "
                    f"the left together ('{' + '.join(dict.fromkeys(cyc))} ~ ...') or drop one "
                    "of the predictors."
                )
            if state.get(u) is None:
                visit(u, path + [u])
        state[v] = 2

    for v in deps:
        if state.get(v) is None:
            visit(v, [v])


def _latent_models(nm, v, km, rhs, where, index, info) -> list[ModelDef]:
    """Blimp's latent cluster mean: x_ij = mu_j + (level-1 terms) + e_ij and
    mu_j = (intercept + level-2 terms) + u_j, mu_j the variable ``x.mean``."""
    _, terms = parse_rhs(rhs, where)
    l1 = [t for t in terms if any(info[index[n]].level == 1 for n, _ in t)]
    l2 = [t for t in terms if t not in l1]
    xc1 = [c for t in l1 for c in _expand(t, index, info, where)]
    xc2: list = [("Intercept", [])] + [c for t in l2 for c in _expand(t, index, info, where)]
    t1 = " + ".join([f"{nm}.mean"] + [term_name(t) for t in l1])
    t2 = " + ".join(["1"] + [term_name(t) for t in l2])
    return [
        ModelDef(nm, "predictor", v, 0, 1, xc1, [], f"{nm} ~ {t1}", offset=km),
        ModelDef(f"{nm}.mean", "predictor", km, 0, 2, xc2, [], f"{nm}.mean ~ {t2}"),
    ]


def _names_list(value: Any, arg: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise TypeError(f"`{arg}` must be a list of column names; got {value!r}.")


def _pred_list(value: Any, arg: str = "predictors") -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    example = "['x1 + x2 ~ w']" if arg == "predictors" else "['v'] or ['v ~ y + x']"
    raise TypeError(f"`{arg}` must be a list of formulas such as {example}; got {value!r}.")


def _selection_dict(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise TypeError(
            "`selection` must be a dict {variable: '~ predictors'} such as {'y': '~ y + x'}; "
            f"got {value!r}."
        )
    for k, v in value.items():
        if "~" in v and v.split("~")[0].strip() not in ("", k, f"{k}.missing"):
            _fail(
                f"selection model {v!r} for '{k}' has {v.split('~')[0].strip()!r} on its left; "
                f"write only the right side: {{'{k}': '~ {v.split('~')[1].strip()}'}}."
            )
    return {k: v.split("~")[-1] for k, v in value.items()}


def _delta_dict(value: Any) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, (int, float)) and np.isfinite(v)
        for k, v in value.items()
    ):
        raise TypeError(
            f"`delta` must be a dict {{variable: shift}} of finite numbers; got {value!r}."
        )
    return {k: float(v) for k, v in value.items()}
