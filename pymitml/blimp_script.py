"""Blimp scripts (``.imp``) run on pymitml's model-based sampler: ``pymitml run SCRIPT.imp``.

Blimp's command language (Keller & Enders, Blimp user's guide, ch. 2): commands ``NAME:``
followed by specifications ending in ``;``, ``#`` comments, case-insensitive names, variable
ranges ``x1:x3``. Supported here:

========================  ==================================================================
``DATA``                  data file (CSV/.dat/.txt; relative to the script's folder). With
                          ``VARIABLES`` the file has no header row, else its first row names
                          the columns.
``VARIABLES``             column names of a headerless file (ranges allowed).
``CLUSTERID``             the level-2 identifier.
``ORDINAL``, ``NOMINAL``  categorical variables (binary / ordered; unordered categories).
``FIXED``                 complete predictors conditioned on.
``MISSING``               the missing-value code.
``CENTER``                ``groupmean = x ...`` (latent cluster-mean centring, Blimp's
                          default; ``cwc(x)``), ``grandmean = x ...`` (centred at the observed
                          mean: only the intercept's meaning changes).
``MODEL``                 regressions ``y ~ x1 x2 x1*x2 x1^2 | x1`` (``|``: random slopes),
                          optional block labels (``focal:``, ``auxiliary:``, any name), several
                          outcomes ``x1 x2 ~ w`` (factored regressions), selection models
                          ``y.missing ~ y x1``. The focal model is the first regression of the
                          ``focal`` block (or the first regression); the regressions of
                          incomplete predictors become the factored predictor models, those of
                          complete variables auxiliary models (``auxiliary=``).
``SEED``, ``BURN``,       random seed, burn-in, iterations after burn-in (spread over the
``ITERATIONS``,           imputations: ``n_iter = ITERATIONS * CHAINS / NIMPS`` unless ``THIN``
``NIMPS``, ``CHAINS``,    is given), number of imputations (default: one per chain, estimates
``THIN``                  only), chains (default 2).
``SAVE``                  ``stacked = file;`` or ``separate = imp*.dat;`` (Blimp layouts).
``OPTIONS``, ``OUTPUT``   accepted; their keywords change nothing here (said in the report).
========================  ==================================================================

Every other command (TRANSFORM, BYGROUP, LATENT, RANDOMEFFECT, SIMPLE, PARAMETERS, TEST, FCS,
COUNT, ...), covariances ``~~`` and latent variables ``->`` are errors naming the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BlimpScript", "BlimpScriptError", "parse_blimp_script", "run_blimp_script"]

SUPPORTED = {
    "DATA",
    "VARIABLES",
    "CLUSTERID",
    "ORDINAL",
    "NOMINAL",
    "FIXED",
    "MISSING",
    "CENTER",
    "CENTERING",
    "MODEL",
    "SEED",
    "BURN",
    "ITERATIONS",
    "ITERATION",
    "ITER",
    "NIMPS",
    "CHAINS",
    "THIN",
    "SAVE",
    "OPTIONS",
    "OUTPUT",
}
KNOWN_UNSUPPORTED = {
    "TRANSFORM",
    "BYGROUP",
    "LATENT",
    "RANDOMEFFECT",
    "SIMPLE",
    "PARAMETERS",
    "TEST",
    "FCS",
    "COUNT",
    "DROP",
    "KEEP",
    "WEIGHT",
}


class BlimpScriptError(ValueError):
    """A Blimp script pymitml cannot run; the message names the line."""


@dataclass
class Regression:
    """One MODEL line: ``lhs ~ terms | slopes`` in block ``block``."""

    lhs: list[str]
    terms: list[str]
    slopes: list[str]
    block: str
    line: int


@dataclass
class BlimpScript:
    """A parsed script: command -> its ``;``-separated statements with their line numbers,
    and the MODEL's regressions."""

    commands: dict[str, list[tuple[int, str]]]
    regressions: list[Regression] = field(default_factory=list)
    folder: Path = Path(".")

    def statements(self, name: str) -> list[tuple[int, str]]:
        return [st for st in self.commands.get(name, []) if st[1]]

    def text(self, name: str) -> str | None:
        got = self.commands.get(name)
        return None if got is None else "; ".join(st for _, st in got if st)

    def line(self, name: str) -> int:
        return self.commands[name][0][0]


def _split(text: str) -> list[tuple[int, str]]:
    """Statements ending in ``;`` (comments removed), each with the line it starts on; text
    after the last ``;`` is an error."""
    out: list[tuple[int, str]] = []
    buf, start = "", 1
    for no, ln in enumerate(text.splitlines(), 1):
        for ch in ln.split("#", 1)[0]:
            if ch == ";":
                out.append((start, buf.strip()))
                buf = ""
                continue
            if not buf.strip() and not ch.isspace():
                start = no
            buf += ch
        buf += "\n"
    if buf.strip():
        raise BlimpScriptError(f"line {start}: statement without a closing ';': {buf.strip()!r}.")
    return out


_HEAD = re.compile(r"^([A-Za-z][A-Za-z_]*)\s*:(?!:)\s*(.*)$", re.S)


def parse_blimp_script(text: str, folder: str | Path = ".") -> BlimpScript:
    """Parse a Blimp script (see the module docstring); syntax errors name the line."""
    commands: dict[str, list[tuple[int, str]]] = {}
    current: str | None = None
    for no, st in _split(text):
        mt = _HEAD.match(st)
        name = mt.group(1).upper() if mt else ""
        if mt and (name in SUPPORTED or name in KNOWN_UNSUPPORTED):
            if name in KNOWN_UNSUPPORTED:
                raise BlimpScriptError(
                    f"line {no}: Blimp's {name} command is not supported by pymitml run."
                )
            if name in commands:
                raise BlimpScriptError(
                    f"line {no}: {name} is given twice (first on line {commands[name][0][0]})."
                )
            current = name
            commands[name] = [(no + st[: mt.start(2)].count("\n"), mt.group(2).strip())]
        elif mt and (current != "MODEL" or "~" not in mt.group(2)):  # a label precedes a model
            raise BlimpScriptError(
                f"line {no}: unknown command {mt.group(1)!r}; commands are "
                + ", ".join(sorted(SUPPORTED))
                + "."
            )
        elif current is None:
            if st:
                raise BlimpScriptError(f"line {no}: text before the first command: {st!r}.")
        else:
            commands[current].append((no, st))
    if "DATA" not in commands:
        raise BlimpScriptError("the script has no DATA command (DATA: file.csv;).")
    if "MODEL" not in commands:
        raise BlimpScriptError("the script has no MODEL command.")
    script = BlimpScript(commands, folder=Path(folder))
    script.regressions = _parse_model(script.line("MODEL"), script.statements("MODEL"))
    return script


def _parse_model(first_line: int, statements: list[tuple[int, str]]) -> list[Regression]:
    regs: list[Regression] = []
    block = ""
    for no, st in statements:
        while True:  # block labels "focal:" before a statement
            mt = re.match(r"^([A-Za-z_][\w.]*)\s*:(?!:)\s*(.*)$", st, re.S)
            if not mt:
                break
            block, no, st = mt.group(1).lower(), no + st[: mt.start(2)].count("\n"), mt.group(2)
        if not st:
            continue
        if "~~" in st or "<->" in st:
            raise BlimpScriptError(
                f"line {no}: covariances ('~~') are not supported by pymitml run: {st!r}."
            )
        if "->" in st or "=~" in st:
            raise BlimpScriptError(
                f"line {no}: latent variables ('->') are not supported by pymitml run: {st!r}."
            )
        if "<-" in st:
            st = st.replace("<-", "~")
        if st.count("~") != 1:
            raise BlimpScriptError(
                f"line {no}: a model line needs one '~' (outcome ~ predictors): {st!r}."
            )
        lhs, rhs = (s.strip() for s in st.split("~"))
        rhs, _, slopes = rhs.partition("|")
        lhs_v, terms, sl = _names(lhs), _names(rhs), _names(slopes)
        if not lhs_v:
            raise BlimpScriptError(f"line {no}: no outcome on the left of '~': {st!r}.")
        regs.append(Regression(lhs_v, terms, sl, block, no))
    if not regs:
        raise BlimpScriptError(f"line {first_line}: MODEL has no regression.")
    return regs


def _names(text: str) -> list[str]:
    """Variable lists: spaces or commas, ranges ``x1:x3``."""
    out: list[str] = []
    for tok in re.split(r"[\s,;]+", text.strip()):
        if not tok:
            continue
        mt = re.match(r"^([A-Za-z_.]*?)(\d+)([A-Za-z_.]*):\1(\d+)\3$", tok)
        if mt:
            a, b = int(mt.group(2)), int(mt.group(4))
            out += [f"{mt.group(1)}{k}{mt.group(3)}" for k in range(a, b + 1)]
        else:
            out.append(tok)
    return out


def _number(script: BlimpScript, name: str, default: int | None) -> int | None:
    t = script.text(name)
    if t is None:
        return default
    t = t.strip().rstrip(";").strip()
    try:
        v = int(float(t))
    except ValueError:
        raise BlimpScriptError(
            f"line {script.line(name)}: {name} needs a whole number; got {t!r}."
        ) from None
    if v < 0 or (name != "SEED" and v < 1 and name != "BURN"):
        raise BlimpScriptError(f"line {script.line(name)}: {name} must be positive; got {v}.")
    return v


@dataclass
class Plan:
    """What a script asks of :func:`pymitml.model_impute` (and the files to write)."""

    data: Any
    formula: str
    kwargs: dict[str, Any]
    save: tuple[str, Path] | None
    notes: list[str]
    cluster: str | None
    models: list[str]


def _read(script: BlimpScript) -> Any:
    import pandas as pd

    t = (script.text("DATA") or "").strip().rstrip(";").strip()
    path = Path(t) if Path(t).is_absolute() else script.folder / t
    if not path.is_file():
        raise BlimpScriptError(f"line {script.line('DATA')}: data file '{path}' does not exist.")
    names = _names(script.text("VARIABLES") or "")
    miss = script.text("MISSING")
    na = None
    if miss is not None:
        try:
            na = float(miss.strip().rstrip(";"))
        except ValueError:
            raise BlimpScriptError(
                f"line {script.line('MISSING')}: MISSING needs a number; got {miss.strip()!r}."
            ) from None
    sep = r"\s+|," if path.suffix.lower() != ".csv" else ","
    kw: dict[str, Any] = {"sep": sep, "engine": "python"}
    try:
        df = pd.read_csv(path, header=None, names=names, **kw) if names else pd.read_csv(path, **kw)
    except (ValueError, pd.errors.ParserError) as exc:
        raise BlimpScriptError(f"line {script.line('DATA')}: cannot read '{path}': {exc}") from exc
    if na is not None:
        num = df.select_dtypes("number").columns
        df[num] = df[num].mask(df[num] == na)
    return df


def _term(tok: str, cols: dict[str, str], no: int, center: dict[str, str]) -> str:
    def var(name: str) -> str:
        key = name.lower()
        if key not in cols:
            raise BlimpScriptError(
                f"line {no}: variable {name!r} is not in the data (columns: {', '.join(cols.values())})."
            )
        v = cols[key]
        return center.get(v, v)

    if tok in ("1", "intercept", "Intercept"):
        return "1"
    if "*" in tok:
        return ":".join(var(p) for p in tok.split("*"))
    mt = re.match(r"^(.+?)(?:\^|\*\*)(\d+)$", tok)
    if mt:
        return f"I({var(mt.group(1))}^{mt.group(2)})"
    return var(tok)


def plan(script: BlimpScript) -> Plan:
    """Translate a parsed script into a model_impute call (errors name the line)."""
    df = _read(script)
    cols = {c.lower(): c for c in df.columns}
    notes: list[str] = []

    def var_list(name: str) -> list[str]:
        out = []
        for v in _names(script.text(name) or ""):
            if v.lower() not in cols:
                raise BlimpScriptError(
                    f"line {script.line(name)}: {name} names {v!r}, which is not in the data."
                )
            out.append(cols[v.lower()])
        return out

    cluster = None
    if script.text("CLUSTERID") is not None:
        cl = var_list("CLUSTERID")
        if len(cl) != 1:
            raise BlimpScriptError(
                f"line {script.line('CLUSTERID')}: CLUSTERID takes one variable (two- level models)."
            )
        cluster = cl[0]
    import pandas as pd

    for v in var_list("ORDINAL"):
        lev = sorted(df[v].dropna().unique())
        df[v] = pd.Categorical(df[v], categories=lev, ordered=True)
    for v in var_list("NOMINAL"):
        df[v] = pd.Categorical(df[v], categories=sorted(df[v].dropna().unique()))
    center: dict[str, str] = {}
    if script.text("CENTER") is not None or script.text("CENTERING") is not None:
        key = "CENTER" if script.text("CENTER") is not None else "CENTERING"
        for no, st in script.statements(key):
            kind, _, names = st.partition("=")
            kind = kind.strip().lower()
            vs = [cols.get(v.lower()) for v in _names(names)]
            if None in vs or kind not in ("groupmean", "grandmean"):
                raise BlimpScriptError(
                    f"line {no}: CENTER takes 'groupmean = x ...' or 'grandmean = x ...' with variables of the data; got {st!r}."
                )
            for cv in vs:
                assert cv is not None
                v = cv
                if kind == "groupmean":
                    if cluster is None:
                        raise BlimpScriptError(f"line {no}: groupmean centring needs CLUSTERID.")
                    center[v] = f"cwc({v})"
                else:
                    df[v] = df[v] - df[v].mean()
                    notes.append(f"{v} grand-mean centred at its observed mean ({v} - mean).")
    regs = script.regressions
    sel = {r.lhs[0][: -len(".missing")]: r for r in regs if r.lhs[0].lower().endswith(".missing")}
    outcome = [r for r in regs if not r.lhs[0].lower().endswith(".missing")]
    if not outcome:
        raise BlimpScriptError(
            f"line {regs[0].line}: MODEL has no outcome model, only selection models."
        )
    focal = next((r for r in outcome if r.block == "focal"), outcome[0])
    if len(focal.lhs) != 1:
        raise BlimpScriptError(
            f"line {focal.line}: the focal model has one outcome; got {' '.join(focal.lhs)}."
        )
    y = _term(focal.lhs[0], cols, focal.line, {})
    fixed_terms = [_term(t, cols, focal.line, center) for t in focal.terms] or ["1"]
    rhs = " + ".join(fixed_terms)
    if focal.slopes and cluster is None:
        raise BlimpScriptError(
            f"line {focal.line}: random slopes ('| {' '.join(focal.slopes)}') need CLUSTERID."
        )
    if cluster is not None:
        sl = [
            _term(t, cols, focal.line, center)
            for t in focal.slopes
            if t not in ("1", "intercept", "Intercept")
        ]
        rhs += f" + ({' + '.join(['1', *sl])} | {cluster})"
    formula = f"{y} ~ {rhs}"
    predictors: list[str] = []
    auxiliary: list[str] = []
    for r in outcome:
        if r is focal:
            continue
        if r.slopes:
            raise BlimpScriptError(
                f"line {r.line}: random slopes are supported in the focal model only."
            )
        lhs = [_term(v, cols, r.line, {}) for v in r.lhs]
        rt = [_term(t, cols, r.line, {}) for t in r.terms] or ["1"]
        complete = [v for v in lhs if not df[v].isna().any()]
        if complete and len(complete) < len(lhs):
            raise BlimpScriptError(
                f"line {r.line}: {', '.join(complete)} complete and "
                f"{', '.join(v for v in lhs if v not in complete)} incomplete on one line; give "
                "the complete (auxiliary) variables a line of their own."
            )
        if complete:  # auxiliary variables: regressed on the analysis variables
            auxiliary += [f"{v} ~ {' + '.join(rt)}" for v in lhs]
        else:
            predictors.append(f"{' + '.join(lhs)} ~ {' + '.join(rt)}")
    selection = {}
    for name, r in sel.items():
        v = _term(name, cols, r.line, {})
        selection[v] = "~ " + " + ".join(_term(t, cols, r.line, {}) for t in r.terms)
    chains = _number(script, "CHAINS", 2) or 2
    nimps = _number(script, "NIMPS", None)
    burn = _number(script, "BURN", 1000)
    iters = (
        _number(script, "ITERATIONS", None)
        or _number(script, "ITERATION", None)
        or _number(script, "ITER", 1000)
    )
    m = nimps if nimps is not None else chains
    if m % chains:
        raise BlimpScriptError(
            f"NIMPS ({m}) must be a multiple of CHAINS ({chains}) here (each chain draws NIMPS / CHAINS)."
        )
    thin = _number(script, "THIN", None)
    n_iter = thin if thin is not None else max(1, (iters or 1000) * chains // m)
    kwargs: dict[str, Any] = {
        "m": m,
        "n_burn": burn,
        "n_iter": n_iter,
        "chains": chains,
        "seed": _number(script, "SEED", None),
    }
    if predictors:
        kwargs["predictors"] = predictors
    if auxiliary:
        kwargs["auxiliary"] = auxiliary
    if selection:
        kwargs["selection"] = selection
    fixed = var_list("FIXED")
    if fixed:
        kwargs["fixed"] = fixed
    save = None
    if script.text("SAVE") is not None:
        for no, st in script.statements("SAVE"):
            kind, _, fname = (s.strip() for s in st.partition("="))
            if kind.lower() not in ("stacked", "separate") or not fname:
                raise BlimpScriptError(
                    f"line {no}: SAVE supports 'stacked = file;' and 'separate = imp*.dat;'; got {st!r}."
                )
            save = (kind.lower(), script.folder / fname)
    for opt in ("OPTIONS", "OUTPUT"):
        given = (script.text(opt) or "").strip().rstrip(";").strip()
        if given:
            notes.append(f"{opt} ({given}) changes nothing in pymitml run.")
    if nimps is None:
        notes.append(
            "no NIMPS: posterior summaries only (one imputation per chain is drawn, not saved)."
        )
    models = [formula, *predictors, *auxiliary, *(f"{v}.missing {f}" for v, f in selection.items())]
    return Plan(df, formula, kwargs, save, notes, cluster, models)


def python_call(p: Plan) -> str:
    """The equivalent Python call (printed in the report)."""
    args = ", ".join(f"{k}={v!r}" for k, v in p.kwargs.items())
    return f"pm.model_impute(data, {p.formula!r}, {args})"


def report(p: Plan, imp: Any, written: list[Path]) -> str:
    """A Blimp-style report of a run."""
    df = p.data
    lines = [
        "pymitml run: a Blimp script on pymitml's model-based sampler",
        "",
        "ALGORITHMIC OPTIONS SPECIFIED:",
        "",
        "  Imputation method:                 Fully Bayesian model-based (pm.model_impute)",
        "  MCMC algorithm:                    Gibbs steps and adaptive random-walk Metropolis",
        "  Between-cluster imputation model:  Latent cluster means (LATENT)",
        f"  Chains, burn-in, thinning:         {p.kwargs['chains']}, {p.kwargs['n_burn']}, {p.kwargs['n_iter']}",
        "",
        "DATA INFORMATION:",
        "",
    ]
    if p.cluster is not None:
        lines += [f"  Level-2 identifier:       {p.cluster}"]
    lines += [f"  Sample Size:              {len(df)}"]
    if p.cluster is not None:
        lines += [f"  Level-2 Clusters:         {df[p.cluster].nunique()}"]
    rates = df.isna().mean() * 100
    lines += ["  Missing Data Rates:", ""]
    lines += [f"  {c:>20} = {r:05.2f}" for c, r in rates.items() if r > 0]
    lines += ["", "MODEL INFORMATION:", ""]
    lines += [f"    [{k}]  {t}" for k, t in enumerate(p.models, 1)]
    if p.notes:
        lines += ["", "NOTES:", ""] + [f"  {n}" for n in p.notes]
    lines += ["", str(imp.summary()), ""]
    if written:
        lines += [
            f"SAVED: {len(written)} file(s): "
            + ", ".join(str(w) for w in written[:3])
            + (" ..." if len(written) > 3 else "")
        ]
    lines += ["", "Python equivalent:", f"  {python_call(p)}"]
    return "\n".join(lines) + "\n"


def run_blimp_script(
    path: str | Path, *, overwrite: bool = False, progress: bool = False
) -> tuple[str, Any]:
    """Run a Blimp script: parse, impute with :func:`pymitml.model_impute`, write ``SAVE``.

    Returns the report and the imputation result.
    """
    import pymitml as pm

    p = Path(path)
    if not p.is_file():
        raise BlimpScriptError(f"script '{path}' does not exist.")
    script = parse_blimp_script(p.read_text(), folder=p.parent)
    pl = plan(script)
    imp = pm.model_impute(pl.data, pl.formula, progress=progress, verbose=False, **pl.kwargs)
    written: list[Path] = []
    if pl.save is not None:
        layout, target = pl.save
        written = list(imp.complete().to_blimp(target, layout=layout, overwrite=overwrite))
    return report(pl, imp, written), imp
