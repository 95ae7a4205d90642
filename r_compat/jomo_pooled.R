# Pooled lmer estimates after jomoImpute on mitml's `justice` data (reference for
# tests/test_jomo.py): m = 50 imputations, level-2 target jcl, binary sex. Run from the repository root:
#   Rscript r_compat/jomo_pooled.R
suppressPackageStartupMessages({library(mitml); library(lme4); library(jsonlite)})
data(justice)
fml <- list(sat + jor + sex ~ 1 + (1|id), jcl ~ 1)
imp <- jomoImpute(justice, formula = fml, n.burn = 2000, n.iter = 100, m = 50, seed = 42, silent = TRUE)
implist <- mitmlComplete(imp, "all")
fits <- with(implist, lmer(sat ~ jor + sex + jcl + (1|id), REML = TRUE))
est <- testEstimates(fits)$estimates
out <- list(terms = rownames(est), estimate = unname(est[, "Estimate"]), se = unname(est[, "Std.Error"]))
source(file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)[1])), "_versions.R"))
out$r_versions <- r_versions(c("jomo", "jsonlite", "lme4", "mitml"))
write_json(out, "r_compat/jomo_pooled_ref.json", digits = 10, auto_unbox = TRUE)
print(est)
