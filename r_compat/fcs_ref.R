# Reference runs of mice's multilevel chained equations (used by tests/test_fcs_r.py).
# Rscript r_compat/fcs_ref.R  ->  r_compat/fcs_ref.json, r_compat/fcs_brandsma.csv, r_compat/fcs_sim.csv
# Every run stores, per imputation, the pooled analysis' inputs (lmer fixed effects, random
# intercept SD, residual SD) and the mean / variance of each variable's imputed cells, so the
# test can form Monte Carlo standard errors on both sides.
source("r_compat/_versions.R")
suppressPackageStartupMessages({library(mice); library(lme4); library(jsonlite)})
M <- as.integer(Sys.getenv("FCS_REF_M", "30"))
MAXIT <- as.integer(Sys.getenv("FCS_REF_MAXIT", "10"))

data(brandsma)
br <- brandsma[, c("sch", "lpo", "iqv", "ses", "ssi")]
write.csv(br, "r_compat/fcs_brandsma.csv", row.names = FALSE, na = "")

set.seed(20261202)
J <- 100; n <- 20
g <- rep(seq_len(J), each = n)
w <- rnorm(J)[g]                             # level-2 covariate
x <- rnorm(J * n) + 0.5 * rnorm(J)[g]
u <- rnorm(J, sd = 0.7)[g]
y <- 1 + 0.5 * x + 0.4 * w + u + rnorm(J * n)
b <- as.integer(-0.3 + 0.8 * x + rnorm(J, sd = 0.6)[g] + rnorm(J * n) > 0)
sim <- data.frame(g = g, y = y, x = x, b = b, w = w)
sim$y[runif(J * n) < 0.2 + 0.2 * (x > 0)] <- NA
sim$b[runif(J * n) < 0.15] <- NA
sim$w[g %in% sample(J, 20)] <- NA
write.csv(sim, "r_compat/fcs_sim.csv", row.names = FALSE, na = "")

summarise <- function(imp, data, analysis) {
  vars <- names(imp$method)[imp$method != ""]
  per <- lapply(seq_len(imp$m), function(i) {
    d <- complete(imp, i)
    fit <- analysis(d)
    vc <- as.data.frame(VarCorr(fit))
    cells <- lapply(vars, function(v) d[[v]][is.na(data[[v]])])
    list(fixef = as.list(fixef(fit)),
         sd_int = vc$sdcor[vc$grp != "Residual" & vc$var1 == "(Intercept)"][1],
         sigma = sigma(fit),
         imp_mean = setNames(lapply(cells, mean), vars),
         imp_var = setNames(lapply(cells, var), vars))
  })
  list(method = as.list(imp$method), m = imp$m, maxit = imp$iteration, per = per)
}

runs <- list()
time_run <- function(expr) { t0 <- proc.time()[["elapsed"]]; r <- expr; list(r, proc.time()[["elapsed"]] - t0) }

# brandsma, 2l.pan for the level-1 variables, 2lonly.norm for school size
pred <- make.predictorMatrix(br); pred[, "sch"] <- -2; pred["sch", ] <- 0
meth <- c(sch = "", lpo = "2l.pan", iqv = "2l.pan", ses = "2l.pan", ssi = "2lonly.norm")
tr <- time_run(mice(br, method = meth, predictorMatrix = pred, m = M, maxit = MAXIT, seed = 1, printFlag = FALSE))
an_br <- function(d) lmer(lpo ~ iqv + ses + ssi + (1 | sch), data = d, REML = TRUE)
runs$brandsma_pan <- c(summarise(tr[[1]], br, an_br), list(seconds = tr[[2]]), list(pred = pred))

# brandsma, 2l.norm for lpo (mice's 2l.norm uses the code-2 predictors only: random slopes)
pred2 <- pred; pred2["lpo", c("iqv", "ses")] <- 2; pred2["lpo", "ssi"] <- 0
meth2 <- c(sch = "", lpo = "2l.norm", iqv = "2l.pan", ses = "2l.pan", ssi = "2lonly.norm")
tr <- time_run(mice(br, method = meth2, predictorMatrix = pred2, m = M, maxit = MAXIT, seed = 2, printFlag = FALSE))
runs$brandsma_norm <- c(summarise(tr[[1]], br, an_br), list(seconds = tr[[2]]), list(pred = pred2))

# simulated: 2l.pan, 2l.bin (glmer), 2lonly.norm
ps <- make.predictorMatrix(sim); ps[, "g"] <- -2; ps["g", ] <- 0
ms <- c(g = "", y = "2l.pan", x = "", b = "2l.bin", w = "2lonly.norm")
an_sim <- function(d) lmer(y ~ x + b + w + (1 | g), data = d, REML = TRUE)
tr <- time_run(mice(sim, method = ms, predictorMatrix = ps, m = M, maxit = MAXIT, seed = 3, printFlag = FALSE))
runs$sim_2l <- c(summarise(tr[[1]], sim, an_sim), list(seconds = tr[[2]]), list(pred = ps))

# simulated, single level: norm, logreg, 2lonly.mean is not defined there; pmm for w
ps1 <- ps; ps1[, "g"] <- 0
ms1 <- c(g = "", y = "norm", x = "", b = "logreg", w = "pmm")
tr <- time_run(mice(sim, method = ms1, predictorMatrix = ps1, m = M, maxit = MAXIT, seed = 4, printFlag = FALSE))
runs$sim_1l <- c(summarise(tr[[1]], sim, an_sim), list(seconds = tr[[2]]), list(pred = ps1))

ms2 <- c(g = "", y = "pmm", x = "", b = "pmm", w = "norm.nob")
tr <- time_run(mice(sim, method = ms2, predictorMatrix = ps1, m = M, maxit = MAXIT, seed = 5, printFlag = FALSE))
runs$sim_1l_pmm <- c(summarise(tr[[1]], sim, an_sim), list(seconds = tr[[2]]), list(pred = ps1))

out <- list(r_versions = r_versions(c("mice", "lme4", "pan", "jsonlite")), M = M, maxit = MAXIT, runs = runs)
writeLines(toJSON(out, auto_unbox = TRUE, digits = 15, pretty = FALSE), "r_compat/fcs_ref.json")
