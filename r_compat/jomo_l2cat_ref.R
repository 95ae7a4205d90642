# jomoImpute with categorical level-2 targets on mitml's `justice` data: posterior means and
# batch-means MCSE (reference for tests/test_jomo.py). Level-2 targets derived deterministically
# from the cluster-level `jcl` (missing where jcl is missing):
#   jclhi: binary   ("low" if jcl <= 0, else "high"; levels low, high)
#   jcl3:  nominal  ("lo" if jcl <= -0.25, "mid" if <= 0.25, else "hi"; levels lo, mid, hi)
# Run from the repository root:  Rscript r_compat/jomo_l2cat_ref.R
suppressPackageStartupMessages({library(mitml); library(jsonlite)})
data(justice)
d <- justice
d$jclhi <- factor(ifelse(d$jcl <= 0, "low", "high"), levels = c("low", "high"))
d$jcl3 <- factor(ifelse(d$jcl <= -0.25, "lo", ifelse(d$jcl <= 0.25, "mid", "hi")), levels = c("lo", "mid", "hi"))
write.csv(d[, c("id", "sex", "sat", "jor", "jcl", "jclhi", "jcl3")], "r_compat/jomo_justice_l2cat.csv",
          row.names = FALSE)
N <- as.integer(Sys.getenv("JOMO_REF_N", "30000"))
models <- list(
  bin = list(sat + jor ~ 1 + (1|id), jclhi ~ 1),
  nom = list(sat + jor ~ 1 + (1|id), jcl3 ~ 1)
)
bm <- function(x, nb = 20) { b <- length(x) %/% nb; sd(colMeans(matrix(x[1:(b * nb)], b))) / sqrt(nb) }
out <- list(n_iter = N)
for (nm in names(models)) {
  t0 <- proc.time()[["elapsed"]]
  imp <- jomoImpute(d[, c("id", "sat", "jor", "jclhi", "jcl3")], formula = models[[nm]], n.burn = 2000,
                    n.iter = N, m = 1, seed = 77, silent = TRUE)
  res <- list(seconds = proc.time()[["elapsed"]] - t0)
  for (b in names(imp$par.imputation)) {
    a <- imp$par.imputation[[b]][, , , 1, drop = FALSE]
    res[[b]] <- list(dim = dim(a)[1:2], rows = dimnames(a)[[1]], cols = dimnames(a)[[2]],
                     mean = apply(a, 1:2, mean), mcse = apply(a, 1:2, bm))
  }
  out[[nm]] <- res
  cat(nm, res$seconds, "\n")
}
source(file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)[1])), "_versions.R"))
out$r_versions <- r_versions(c("jomo", "jsonlite", "mitml"))
write_json(out, "r_compat/jomo_l2cat_ref.json", digits = 10, matrix = "rowmajor", auto_unbox = TRUE)
