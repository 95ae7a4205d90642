"""``python -m pymitml.demo`` (``make demo``): the whole workflow on an embedded example.

Students in 60 schools with missing maths scores and SES: impute with the two-level joint model
(pan), fit a mixed model to each completed data set with the native lmer, pool with Rubin's rules
(mitml's testEstimates), and print everything an R user of mitml would look at.
"""

from __future__ import annotations

import time

import pymitml as pm


def main() -> None:
    df = pm.datasets.schools(n_schools=60, seed=2024)
    print("Example data: students in schools (pm.datasets.schools)")
    print(df.head(), "\n")
    print(pm.missing_pattern(df, cluster="school"))

    t = time.perf_counter()
    imp = pm.pan_impute(
        df,
        "math + ses ~ 1 + sector + size + (1|school)",
        m=20,
        n_burn=2000,
        n_iter=100,
        chains=2,
        seed=1,
        progress=False,
    )
    print(f"\nImputation: {imp!r} ({time.perf_counter() - t:.1f} s)\n")
    print(imp.summary())

    implist = imp.complete()
    fits = implist.with_(lambda d: pm.lmer("math ~ ses + sector + size + (1|school)", d, REML=True))
    print("\nThe analysis model fitted to imputation 1:\n")
    print(fits[0])
    print()
    print(pm.pool_estimates(fits, extra_pars=True))


if __name__ == "__main__":
    main()
