# jomoImpute with cluster-specific level-1 covariance matrices (random.L1 = "mean") on mitml's
# `justice` data: posterior means and batch-means MCSE (reference for tests/test_jomo.py).
#   Rscript r_compat/jomo_hr_ref.R
suppressPackageStartupMessages({library(mitml); library(jsonlite)})
data(justice)
N <- as.integer(Sys.getenv("JOMO_REF_N", "20000"))
bm <- function(x, nb = 20) { b <- length(x) %/% nb; sd(colMeans(matrix(x[1:(b * nb)], b))) / sqrt(nb) }
t0 <- proc.time()[["elapsed"]]
imp <- jomoImpute(justice, formula = sat + jor ~ 1 + (1|id), random.L1 = "mean", n.burn = 2000,
                  n.iter = N, m = 1, seed = 321, silent = TRUE)
res <- list(seconds = proc.time()[["elapsed"]] - t0, n_iter = N)
for (b in names(imp$par.imputation)) {
  a <- imp$par.imputation[[b]][, , , 1, drop = FALSE]
  res[[b]] <- list(dim = dim(a)[1:2], mean = apply(a, 1:2, mean), mcse = apply(a, 1:2, bm))
}
write_json(list(hr_mean = res), "r_compat/jomo_hr_ref.json", digits = 10, matrix = "rowmajor", auto_unbox = TRUE)
cat("seconds", res$seconds, "\n")
