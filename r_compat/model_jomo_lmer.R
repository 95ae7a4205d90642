# Substantive-model-compatible imputation with jomo::jomo.lmer (reference for tests/test_model_r.py).
# Data: r_compat/model_jomo_lmer.csv = pymitml.datasets.random_slope_mar(n_clusters=40,
# cluster_size=25, seed=15, p_missing=0.35, y_mcar=0.1): the randomly-sloped predictor x is
# missing at random (37%, given y), y is missing completely at random (6%).
# Focal model y ~ x + (1 + x | j); jomo's covariate model for x: normal with a random intercept.
# Four independent chains (nburn = 2000) of 100 imputations each, nbetween = 500; every completed
# data set is analysed with lmer (REML) and pooled with mitml::testEstimates (extra.pars = TRUE).
# Monte Carlo standard errors of every pooled quantity: grouped jackknife over 40 batches of 10
# consecutive imputations (a batch never spans two chains), which allows for autocorrelation
# between neighbouring imputations of one chain. Run from the repository root (about 5 minutes):
#   Rscript r_compat/model_jomo_lmer.R
suppressPackageStartupMessages({library(jomo); library(lme4); library(mitml); library(jsonlite)})
d <- read.csv("r_compat/model_jomo_lmer.csv")[, c("y", "x", "j")]
n_chains <- 4; per_chain <- 100; n_batch <- 10
fits <- list()
for (ch in seq_len(n_chains)) {
  set.seed(1000 + ch)
  imp <- jomo.lmer(y ~ x + (1 + x | j), d, nburn = 2000, nbetween = 500, nimp = per_chain,
                   output = 0, out.iter = 1e9)
  for (i in seq_len(per_chain)) {
    di <- imp[imp$Imputation == i, ]
    fits[[length(fits) + 1]] <- lmer(y ~ x + (1 + x | clus), data = di, REML = TRUE)
  }
}
class(fits) <- c("mitml.result", "list")
pooled <- function(idx) {
  f <- fits[idx]; class(f) <- c("mitml.result", "list")
  te <- testEstimates(f, extra.pars = TRUE)
  c(te$estimates[, "Estimate"], te$estimates[, "Std.Error"], te$extra.pars[, 1])
}
full <- pooled(seq_along(fits))
batch <- rep(seq_len(length(fits) / n_batch), each = n_batch)
K <- max(batch)
jack <- sapply(seq_len(K), function(b) pooled(which(batch != b)))
mcse <- sqrt((K - 1) / K * rowSums((jack - rowMeans(jack))^2))
te <- testEstimates(fits, extra.pars = TRUE)
k <- nrow(te$estimates); e <- nrow(te$extra.pars)
out <- list(
  data = "model_jomo_lmer.csv", formula = "y ~ x + (1 + x | j)", m = length(fits),
  n_chains = n_chains, nburn = 2000, nbetween = 500, reml = TRUE,
  terms = rownames(te$estimates),
  estimate = unname(full[1:k]), se = unname(full[k + 1:k]),
  mcse_estimate = unname(mcse[1:k]), mcse_se = unname(mcse[k + 1:k]),
  extra_terms = rownames(te$extra.pars),
  extra = unname(full[2 * k + 1:e]), mcse_extra = unname(mcse[2 * k + 1:e])
)
source(file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)[1])), "_versions.R"))
out$r_versions <- r_versions(c("jomo", "lme4", "mitml", "jsonlite"))
write_json(out, "r_compat/model_jomo_lmer_ref.json", digits = 10, auto_unbox = TRUE)
print(te)
print(cbind(full, mcse))
