"""Worked example: multilevel chained equations on brandsma (mice's 2l methods, in Python).

    python vignettes/fcs_brandsma.py [output-folder]

The brandsma data (4,106 pupils in 216 schools; shipped with R's mice, copied to
r_compat/fcs_brandsma.csv) have missing language scores (lpo), verbal IQ (iqv), SES (ses) and
school size (ssi, a school-level variable). The R script it ports::

    pred <- make.predictorMatrix(d); pred[, "sch"] <- -2; pred["sch", ] <- 0
    pred["lpo", "iqv"] <- 3      # iqv and its school mean predict lpo
    imp <- mice(d, method = c("", "2l.pan", "2l.pan", "2l.norm", "2lonly.norm"),
                predictorMatrix = pred, m = 20, maxit = 10, seed = 1)
    plot(imp)
    fit <- with(imp, lmer(lpo ~ iqv + ses + ssi + (1 | sch)))
    testEstimates(as.mitml.result(fit), extra.pars = TRUE)

Trace plots of the imputed cells' means and variances (mice's chainMean / chainVar) are written
to the output folder.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

import pandas as pd

import pymitml as pm

DATA = pathlib.Path(__file__).resolve().parents[1] / "r_compat" / "fcs_brandsma.csv"


def main(out: str | None = None) -> None:
    folder = pathlib.Path(out or tempfile.mkdtemp(prefix="pymitml_fcs_"))
    d = pd.read_csv(DATA)
    pred = pm.make_predictor_matrix(d, cluster="sch")
    pred.loc["lpo", "iqv"] = 3  # iqv as a fixed effect and its school mean as another
    imp = pm.fcs_impute(
        d,
        cluster="sch",
        method={"lpo": "2l.pan", "iqv": "2l.pan", "ses": "2l.norm", "ssi": "2lonly.norm"},
        predictor_matrix=pred,
        m=20,
        maxit=10,
        seed=1,
        progress=False,
    )
    print(imp)  # the methods that ran
    print(imp.summary())  # Rhat of chain means / variances across the 20 chains
    imp.plot(folder)  # chains_mean.png, chains_var.png
    fits = imp.complete().with_(lambda x: pm.lmer("lpo ~ iqv + ses + ssi + (1|sch)", x))
    print(pm.pool_estimates(fits, extra_pars=True))
    print(f"trace plots in {folder}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
