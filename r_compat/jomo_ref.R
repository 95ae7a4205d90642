# Posterior means and batch-means MCSE of jomoImpute's chains on mitml's `justice` data
# (reference for tests/test_jomo.py). Run from the repository root:
#   Rscript r_compat/jomo_ref.R
# Each model: n.burn = 2000, one imputation after N iterations; MCSE from 20 batch means.
suppressPackageStartupMessages(library(mitml))
suppressPackageStartupMessages(library(jsonlite))
data(justice)
write.csv(justice, "r_compat/jomo_justice.csv", row.names = FALSE)
N <- as.integer(Sys.getenv("JOMO_REF_N", "30000"))
models <- list(
  con2 = list(f = sat + jor ~ 1 + (1|id)),
  cat2 = list(f = sat + jor + sex ~ 1 + (1|id)),
  con1 = list(f = sat + jor ~ 1),
  cat1 = list(f = sat + jor + sex ~ 1),
  l2 = list(f = list(sat + jor + sex ~ 1 + (1|id), jcl ~ 1))
)
bm <- function(x, nb = 20) { b <- length(x) %/% nb; sd(colMeans(matrix(x[1:(b * nb)], b))) / sqrt(nb) }
out <- list(n_iter = N)
for (nm in names(models)) {
  t0 <- proc.time()[["elapsed"]]
  imp <- jomoImpute(justice, formula = models[[nm]]$f, n.burn = 2000, n.iter = N, m = 1,
                    seed = 123, silent = TRUE)
  res <- list(seconds = proc.time()[["elapsed"]] - t0)
  for (b in names(imp$par.imputation)) {
    a <- imp$par.imputation[[b]][, , , 1, drop = FALSE]
    d <- dim(a)
    res[[b]] <- list(dim = d[1:2], mean = apply(a, 1:2, mean), mcse = apply(a, 1:2, bm))
  }
  out[[nm]] <- res
  cat(nm, res$seconds, "\n")
}
source(file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)[1])), "_versions.R"))
out$r_versions <- r_versions(c("jomo", "jsonlite", "mitml"))
write_json(out, "r_compat/jomo_ref.json", digits = 10, matrix = "rowmajor", auto_unbox = TRUE)
