# Substantive-model-compatible FCS with smcfcs (single level; reference for tests/test_model_r.py).
# Data: r_compat/model_smcfcs.csv = pymitml.datasets.interaction_mar(n_clusters=1,
# cluster_size=600, seed=15, multilevel=False): y ~ x1 + x2 + x1:x2 with x1 missing at random
# given y (33%) and x2 completely at random (15%). smcfcs draws each incomplete covariate by
# rejection sampling from the product of its covariate model (linear regression on the other
# covariate) and the substantive linear model, so the interaction is respected.
# m = 300 imputations (each an independent chain of numit = 20 iterations), lm on each, pooled
# with mitml::testEstimates (extra.pars: residual variance). Monte Carlo standard errors by a
# grouped jackknife over 30 batches of 10 imputations. Run from the repository root (minutes):
#   Rscript r_compat/model_smcfcs.R
suppressPackageStartupMessages({library(smcfcs); library(mitml); library(jsonlite)})
d <- read.csv("r_compat/model_smcfcs.csv")
m <- 300; n_batch <- 10
set.seed(2015)
imp <- smcfcs(d, smtype = "lm", smformula = "y ~ x1 + x2 + x1:x2",
              method = c("", "norm", "norm"), m = m, numit = 20, noisy = FALSE)
fits <- lapply(imp$impDatasets, function(di) lm(y ~ x1 + x2 + x1:x2, data = di))
pooled <- function(idx) {
  f <- fits[idx]
  qhat <- sapply(f, coef); uhat <- simplify2array(lapply(f, vcov))
  te <- testEstimates(qhat = qhat, uhat = uhat)
  s2 <- mean(sapply(f, function(g) summary(g)$sigma^2))
  c(te$estimates[, "Estimate"], te$estimates[, "Std.Error"], s2)
}
full <- pooled(seq_len(m))
batch <- rep(seq_len(m / n_batch), each = n_batch)
K <- max(batch)
jack <- sapply(seq_len(K), function(b) pooled(which(batch != b)))
mcse <- sqrt((K - 1) / K * rowSums((jack - rowMeans(jack))^2))
terms <- names(coef(fits[[1]])); k <- length(terms)
out <- list(
  data = "model_smcfcs.csv", formula = "y ~ x1 + x2 + x1:x2", m = m, numit = 20,
  terms = terms,
  estimate = unname(full[1:k]), se = unname(full[k + 1:k]),
  mcse_estimate = unname(mcse[1:k]), mcse_se = unname(mcse[k + 1:k]),
  extra_terms = "Residual~~Residual", extra = unname(full[2 * k + 1]),
  mcse_extra = unname(mcse[2 * k + 1])
)
source(file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)[1])), "_versions.R"))
out$r_versions <- r_versions(c("smcfcs", "mitml", "jsonlite"))
write_json(out, "r_compat/model_smcfcs_ref.json", digits = 10, auto_unbox = TRUE)
print(cbind(full, mcse))
