"""Shared by the vignettes: agreement checks and side-by-side tables (not a vignette itself).

Every vignette records its agreement figures with :func:`check`; each prints one line

    AGREE <label>: <value> <= <tolerance>  ok|FAIL

and :func:`finish` raises when any figure is outside its tolerance, so a vignette that stops
agreeing fails in CI (tests/test_vignettes.py runs every vignette and reads these lines).
"""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import pandas as pd

ROOT = pathlib.Path(__file__).resolve().parent.parent
# figures go to vignettes/img (the docs show them); tests redirect them to a temporary folder
IMG = pathlib.Path(os.environ.get("PYMITML_VIGNETTE_IMG", ROOT / "vignettes" / "img"))
_RESULTS: list[tuple[str, float, float]] = []


def check(label: str, value: float, tol: float) -> None:
    """Record and print one agreement figure (|value| must be <= tol)."""
    value = float(value)
    ok = bool(np.isfinite(value) and abs(value) <= tol)
    _RESULTS.append((label, value, tol))
    print(f"AGREE {label}: {abs(value):.3g} <= {tol:g}  {'ok' if ok else 'FAIL'}")


def finish() -> None:
    """Raise AssertionError naming every figure outside its tolerance."""
    bad = [r for r in _RESULTS if not (np.isfinite(r[1]) and abs(r[1]) <= r[2])]
    print(f"\n{len(_RESULTS) - len(bad)} of {len(_RESULTS)} agreement checks within tolerance")
    assert not bad, "outside tolerance: " + "; ".join(f"{a} = {b:.4g} > {c:g}" for a, b, c in bad)


def r_json(name: str) -> dict:
    """A committed R reference output from r_compat/."""
    return json.loads((ROOT / "r_compat" / name).read_text())


def r_table(ref: dict) -> pd.DataFrame:
    """A testEstimates table stored by r_compat/vignette_*.R as a DataFrame."""
    return pd.DataFrame(ref["values"], index=ref["term"], columns=ref["columns"])


def between_var(se: pd.Series, riv: pd.Series, m: int) -> pd.Series:
    """Between-imputation variance B from a pooled table: T = se^2, Ubar = T/(1+r), B = r Ubar m/(m+1)."""
    t = se**2
    return riv * t / (1.0 + riv) * m / (m + 1.0)


def mc_z(a: pd.DataFrame, m_a: int, b: pd.DataFrame, m_b: int) -> pd.Series:
    """z of the difference of two independent multiple-imputation estimates of the same quantity.

    Given the data, each pooled estimate differs from its infinite-m value by Monte Carlo error of
    variance B/m (B the between-imputation variance); two independent runs therefore differ by
    N(0, B_a/m_a + B_b/m_b). Columns: Estimate, Std.Error, RIV (mitml's names).
    """
    va = between_var(a["Std.Error"], a["RIV"], m_a) / m_a
    vb = between_var(b["Std.Error"], b["RIV"], m_b) / m_b
    return (a["Estimate"] - b["Estimate"]) / np.sqrt(va + vb)


def rel_diff(a, b) -> float:
    """Largest relative difference max |a - b| / max(|b|, 1e-8)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-8)))


def show(title: str, frame: pd.DataFrame, digits: int = 3) -> None:
    print(f"\n{title}")
    print(frame.round(digits).to_string())


def r_available() -> bool:
    """True when R and rpy2 work here (the live side-by-side parts need them)."""
    try:
        from pymitml import bridge

        bridge.r_run("1")
        return True
    except Exception:  # noqa: BLE001 -- any failure means: no live R here
        return False


def se_z(a: pd.DataFrame, m_a: int, b: pd.DataFrame, m_b: int) -> pd.Series:
    """z of the difference of two independent runs' pooled standard errors.

    T = Ubar + (1 + 1/m) B; Ubar hardly varies between runs, B is a variance estimate on m - 1
    degrees of freedom (relative SD sqrt(2/(m-1))). With f = RIV/(1+RIV) the share of T due to B,
    SE = sqrt(T) has relative SD about f sqrt(2/(m-1)) / 2.
    """

    def sd(t: pd.DataFrame, m: int) -> pd.Series:
        f = t["RIV"] / (1.0 + t["RIV"])
        return t["Std.Error"] * f * np.sqrt(2.0 / (m - 1.0)) / 2.0

    return (a["Std.Error"] - b["Std.Error"]) / np.sqrt(sd(a, m_a) ** 2 + sd(b, m_b) ** 2)


def extra_z(fits, r_values: dict, m_r: int) -> pd.DataFrame:
    """Averaged variance components (testEstimates' extra.pars) beside R's, with a z-score.

    Each run's average over m fits has Monte Carlo SD s/sqrt(m), s the SD of the per-imputation
    values; R's spread is taken to be ours (the same posterior), so Var(diff) = s^2 (1/m + 1/m_r).
    """
    per = pd.DataFrame([f.extra_pars for f in fits])
    names = list(r_values)
    ours = per[names].mean()
    s = per[names].std(ddof=1)
    r = pd.Series(r_values, dtype=float)
    z = (ours - r) / (s * np.sqrt(1.0 / len(per) + 1.0 / m_r))
    return pd.DataFrame({"pymitml": ours, "R mitml": r, "z": z})


def _chain_means(imps, blocks) -> dict:
    """Posterior mean and MCSE per block from one or more independent chains.

    One chain: batch means over 20 batches (as r_compat/*.R). Several: the mean of the chain means,
    with the larger of the batch-means MCSE and the between-chain spread sd(means)/sqrt(k).
    """
    from pymitml import mcse

    out = {}
    for block in blocks:
        means, ses = [], []
        for imp in imps:
            if isinstance(imp, dict):
                if block not in imp:
                    break
                means.append(np.atleast_2d(np.asarray(imp[block]["mean"], dtype=float)))
                ses.append(np.atleast_2d(np.asarray(imp[block]["mcse"], dtype=float)))
            else:
                if block not in imp.par_imputation:
                    break
                a = np.asarray(imp.par_imputation[block], dtype=float)[..., 0]
                means.append(a.mean(axis=-1))
                ses.append(np.asarray(mcse(a, batch_size=a.shape[-1] // 20)))
        else:
            k = len(means)
            mu = np.mean(means, axis=0)
            var = np.mean(np.square(ses), axis=0) / k
            if k > 1:
                var = np.maximum(var, np.var(means, axis=0, ddof=1) / k)
            out[block] = (mu, np.sqrt(var))
    return out


def chain_z(imp, ref_chains, blocks=("beta", "beta2", "psi", "sigma")) -> pd.DataFrame:
    """Posterior means of the imputation model beside R's, z by both sides' Monte Carlo error.

    ``imp`` an ImputationResult or a list of independent ones; ``ref_chains`` R's chain summary
    (dict block -> mean, mcse) or a list of them. Symmetric blocks list their upper triangle.
    """
    ours_all = _chain_means(imp if isinstance(imp, list) else [imp], blocks)
    r_all = _chain_means(ref_chains if isinstance(ref_chains, list) else [ref_chains], blocks)
    rows = []
    for block in blocks:
        if block not in ours_all or block not in r_all:
            continue
        (ours, ours_se), (r_mean, r_se) = ours_all[block], r_all[block]
        z = (ours - r_mean) / np.sqrt(ours_se**2 + r_se**2)
        sym = block in ("psi", "sigma") and ours.shape[0] == ours.shape[1]
        for i in range(ours.shape[0]):
            for j in range(ours.shape[1]):
                if sym and j < i:
                    continue
                rows.append((f"{block}[{i},{j}]", ours[i, j], r_mean[i, j], z[i, j]))
    return pd.DataFrame(rows, columns=["parameter", "pymitml", "R mitml", "z"]).set_index(
        "parameter"
    )
