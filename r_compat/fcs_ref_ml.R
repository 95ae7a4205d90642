# Reference run for fcs_impute's ml.pmm with one cluster variable (tests/test_fcs_3level.py).
# Rscript r_compat/fcs_ref_ml.R  ->  r_compat/fcs_ref_ml.json
# Data: r_compat/fcs_sim.csv (made by fcs_ref.R). mice: 2l.pan for y, 2l.bin for b and
# 2lonly.pmm for the level-2 w: ml.pmm of w at its level (one value per cluster, predictive
# mean matching on the cluster means) is mice's 2lonly.pmm; ml.pmm of y (matching on the
# multilevel linear predictor) is compared with 2l.pan's pooled estimates (y is normal given
# its predictors, so both give the same estimates up to Monte Carlo error).
source("r_compat/_versions.R")
suppressPackageStartupMessages({library(mice); library(lme4); library(jsonlite)})
M <- as.integer(Sys.getenv("FCS_REF_M", "50"))
MAXIT <- as.integer(Sys.getenv("FCS_REF_MAXIT", "10"))
sim <- read.csv("r_compat/fcs_sim.csv")
pred <- make.predictorMatrix(sim); pred[, "g"] <- -2; pred["g", ] <- 0
meth <- c(g = "", y = "2l.pan", x = "", b = "2l.bin", w = "2lonly.pmm")
t0 <- proc.time()[["elapsed"]]
imp <- mice(sim, method = meth, predictorMatrix = pred, m = M, maxit = MAXIT, seed = 7, printFlag = FALSE)
secs <- proc.time()[["elapsed"]] - t0
vars <- names(meth)[meth != ""]
per <- lapply(seq_len(M), function(i) {
  d <- complete(imp, i)
  fit <- lmer(y ~ x + b + w + (1 | g), data = d, REML = TRUE)
  vc <- as.data.frame(VarCorr(fit))
  cells <- lapply(vars, function(v) d[[v]][is.na(sim[[v]])])
  list(fixef = as.list(fixef(fit)), sd_int = vc$sdcor[1], sigma = sigma(fit),
       imp_mean = setNames(lapply(cells, mean), vars), imp_var = setNames(lapply(cells, var), vars))
})
run <- list(method = as.list(meth), m = M, maxit = MAXIT, per = per, seconds = secs, pred = pred)
out <- list(r_versions = r_versions(c("mice", "lme4", "pan", "jsonlite")), M = M, maxit = MAXIT,
            runs = list(sim_2lonly_pmm = run))
writeLines(toJSON(out, auto_unbox = TRUE, digits = 15, pretty = FALSE), "r_compat/fcs_ref_ml.json")
