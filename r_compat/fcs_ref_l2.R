# Reference runs of mice's level-2 methods 2lonly.pmm and 2lonly.mean (tests/test_fcs_r.py).
# Rscript r_compat/fcs_ref_l2.R  ->  r_compat/fcs_ref_l2.json, r_compat/fcs_sim_l2.csv
# Data: r_compat/fcs_sim.csv (made by fcs_ref.R) plus w2, another level-2 variable with single
# rows missing in clusters that keep observed rows (what 2lonly.mean fills).
source("r_compat/_versions.R")
suppressPackageStartupMessages({library(mice); library(lme4); library(jsonlite)})
M <- as.integer(Sys.getenv("FCS_REF_M", "50"))
MAXIT <- as.integer(Sys.getenv("FCS_REF_MAXIT", "10"))
sim <- read.csv("r_compat/fcs_sim.csv")
set.seed(20261203)
J <- max(sim$g)
sim$w2 <- (rnorm(J) + 0.5 * tapply(sim$x, sim$g, mean))[sim$g]
sim$w2[runif(nrow(sim)) < 0.3] <- NA
write.csv(sim, "r_compat/fcs_sim_l2.csv", row.names = FALSE, na = "")

pred <- make.predictorMatrix(sim); pred[, "g"] <- -2; pred["g", ] <- 0
meth <- c(g = "", y = "2l.pan", x = "", b = "pmm", w = "2lonly.pmm", w2 = "2lonly.mean")
t0 <- proc.time()[["elapsed"]]
imp <- mice(sim, method = meth, predictorMatrix = pred, m = M, maxit = MAXIT, seed = 6, printFlag = FALSE)
secs <- proc.time()[["elapsed"]] - t0
vars <- names(meth)[meth != ""]
per <- lapply(seq_len(M), function(i) {
  d <- complete(imp, i)
  fit <- lmer(y ~ x + b + w + w2 + (1 | g), data = d, REML = TRUE)
  vc <- as.data.frame(VarCorr(fit))
  cells <- lapply(vars, function(v) d[[v]][is.na(sim[[v]])])
  list(fixef = as.list(fixef(fit)), sd_int = vc$sdcor[1], sigma = sigma(fit),
       imp_mean = setNames(lapply(cells, mean), vars), imp_var = setNames(lapply(cells, var), vars))
})
run <- list(method = as.list(meth), m = M, maxit = MAXIT, per = per, seconds = secs, pred = pred)
out <- list(r_versions = r_versions(c("mice", "lme4", "pan", "jsonlite")), M = M, maxit = MAXIT,
            runs = list(sim_2lonly = run))
writeLines(toJSON(out, auto_unbox = TRUE, digits = 15, pretty = FALSE), "r_compat/fcs_ref_l2.json")
