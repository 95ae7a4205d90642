# R's numbers for mitml's three vignettes (Introduction, Level2, Analysis), run as the vignettes
# run them (same formulas, n.burn, n.iter, m), with fixed seeds. Read by vignettes/mitml_*.py,
# which print R's numbers beside pymitml's and check agreement within Monte Carlo error.
# Rscript r_compat/vignette_mitml.R  ->  r_compat/vignette_mitml_ref.json
suppressPackageStartupMessages({library(mitml); library(lme4); library(jsonlite)})
source(file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE))), "_versions.R"))

tab <- function(x) {  # testEstimates -> list of rows with the column names mitml prints
  est <- x$estimates
  list(term = rownames(est), columns = colnames(est), values = unname(split(unname(est), row(est))))
}
extra <- function(x) {
  ep <- x$extra.pars
  if (is.null(ep)) return(NULL)
  setNames(as.list(ep[, 1]), rownames(ep))
}
batch_mcse <- function(x, nb = 20) {
  b <- floor(length(x) / nb)
  m <- sapply(seq_len(nb), function(k) mean(x[((k - 1) * b + 1):(k * b)]))
  sd(m) / sqrt(nb)
}
chain_summary <- function(imp) {  # posterior mean and batch-means MCSE of every parameter
  out <- list()
  for (b in c("beta", "beta2", "psi", "sigma")) {
    a <- imp$par.imputation[[b]]
    if (is.null(a)) next
    d <- dim(a)
    mean_ <- matrix(NA, d[1], d[2]); mcse_ <- matrix(NA, d[1], d[2])
    for (i in seq_len(d[1])) for (j in seq_len(d[2])) {
      v <- a[i, j, , 1]
      mean_[i, j] <- mean(v); mcse_[i, j] <- batch_mcse(v)
    }
    out[[b]] <- list(mean = mean_, mcse = mcse_)
  }
  out
}
test_models <- function(x) list(statistic = unname(x$test[1, ]), columns = colnames(x$test))
out <- list(r_versions = r_versions(c("mitml", "pan", "jomo", "lme4", "jsonlite")))

## Introduction
data(studentratings)
set.seed(123)
fml <- ReadAchiev + ReadDis + SchClimate ~ 1 + (1|ID)
imp <- panImpute(studentratings, formula = fml, n.burn = 5000, n.iter = 100, m = 100, seed = 123,
                 silent = TRUE)
implist <- mitmlComplete(imp, "all")
fit <- with(implist, lmer(ReadAchiev ~ 1 + ReadDis + (1|ID)))
est <- testEstimates(fit, extra.pars = TRUE)
s <- summary(imp)
out$introduction <- list(
  formula = deparse(fml), n_burn = 5000, n_iter = 100, m = 100,
  estimates = tab(est), extra_pars = extra(est), chains = chain_summary(imp),
  rhat_max = max(unlist(lapply(s$conv, function(z) z[, "Rhat"])), na.rm = TRUE)
)

## Level-2
data(leadership)
set.seed(123)
fml2 <- list(JOBSAT + NEGLEAD + WLOAD ~ 1 + (1|GRPID), COHES ~ 1)
imp2 <- jomoImpute(leadership, formula = fml2, n.burn = 5000, n.iter = 250, m = 20, seed = 123,
                   silent = TRUE)
implist2 <- mitmlComplete(imp2, "all")
fit2 <- with(implist2, lmer(JOBSAT ~ 1 + NEGLEAD + WLOAD + COHES + (1|GRPID)))
est2 <- testEstimates(fit2, extra.pars = TRUE)
out$level2 <- list(
  formula = lapply(fml2, function(f) deparse(f)), n_burn = 5000, n_iter = 250, m = 20,
  chains = chain_summary(imp2), estimates = tab(est2), extra_pars = extra(est2),
  cohes_imputed_mean = mean(sapply(implist2, function(d) mean(d$COHES[is.na(leadership$COHES)])))
)
# the latent variance of WLOAD mixes slowly (rare excursions): three more independent chains give
# the Monte Carlo error of the posterior means from the spread between chains
out$level2$more_chains <- lapply(c(1, 2, 3), function(s) {
  chain_summary(jomoImpute(leadership, formula = fml2, n.burn = 5000, n.iter = 250, m = 20,
                           seed = s, silent = TRUE))
})

## Analysis
set.seed(123)
fml3 <- ReadDis + SES ~ 1 + Sex + (1|ID)
imp3 <- panImpute(studentratings, formula = fml3, n.burn = 5000, n.iter = 200, m = 20, seed = 123,
                  silent = TRUE)
implist3 <- mitmlComplete(imp3, "all")
implist3 <- within(implist3, {
  G.SES <- clusterMeans(SES, ID)
  I.SES <- SES - G.SES
})
fit3 <- with(implist3, lmer(MathAchiev ~ 1 + Sex + I.SES + G.SES + (1|ID)))
fit3_null <- with(implist3, lmer(MathAchiev ~ 1 + Sex + (1|ID)))
out$analysis <- list(
  formula = deparse(fml3), n_burn = 5000, n_iter = 200, m = 20,
  estimates = tab(testEstimates(fit3)),
  estimates_dfcom = tab(testEstimates(fit3, extra.pars = TRUE, df.com = 46)),
  extra_pars = extra(testEstimates(fit3, extra.pars = TRUE, df.com = 46)),
  D1 = test_models(testModels(fit3, fit3_null)),
  D1_dfcom = test_models(testModels(fit3, fit3_null, df.com = 46)),
  D3 = test_models(testModels(fit3, fit3_null, method = "D3")),
  constraints_both = test_models(testConstraints(fit3, constraints = c("I.SES", "G.SES"))),
  constraints_diff = test_models(testConstraints(fit3, constraints = c("G.SES - I.SES")))
)
path <- file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE))),
                  "vignette_mitml_ref.json")
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), path)
cat("wrote", path, "\n")
