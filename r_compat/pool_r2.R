# Reference for pymitml.pool_r2_nakagawa: Nakagawa-Schielzeth marginal and conditional R^2 of
# lmer fits by performance::r2_nakagawa, per imputation, and their pooled values (the mean of
# logit(R^2) over the imputations, back-transformed).
#
# Data: sleepstudy (r_compat/ddf_sleepstudy.csv, random slope, and (Days || Subject)),
# Penicillin (crossed) and Pastes (nested) from r_compat/ddf_*.csv, the m = 5 studentratings
# imputations (r_compat/pool_studentratings_m5.csv, random intercept and random slope) and the
# m = 5 random-slope imputations of r_compat/pool_vc_rs_implist.csv (from pool_vc.R).
#
# Run from the repository root:  Rscript r_compat/pool_r2.R
suppressPackageStartupMessages({
  library(lme4)
  library(performance)
  library(jsonlite)
})
source("r_compat/_versions.R")
out_dir <- "r_compat"

r2_one <- function(fit) {
  r <- performance::r2_nakagawa(fit)
  c(marginal = unname(r$R2_marginal), conditional = unname(r$R2_conditional))
}

# lme4's own estimates, so the formula can be checked at R's parameters (the optimisers stop
# at slightly different points in random-slope models)
pars_one <- function(fit) {
  if (length(VarCorr(fit)) > 1) {
    taus <- lapply(VarCorr(fit), function(t) {
      t <- as.matrix(t)
      unname(lapply(1:nrow(t), function(i) unname(t[i, ])))
    })
    return(list(beta = unname(fixef(fit)), taus = unname(taus), sigma = sigma(fit)))
  }
  tau <- as.matrix(VarCorr(fit)[[1]])
  list(beta = unname(fixef(fit)), tau = unname(lapply(1:nrow(tau), function(i) tau[i, ])),
       sigma = sigma(fit))
}

case <- function(formula, frames, reml = TRUE) {
  fits <- lapply(frames, function(d) lmer(formula, data = d, REML = reml))
  per <- t(sapply(fits, r2_one))
  pooled <- plogis(colMeans(qlogis(per)))
  list(formula = deparse(formula), REML = reml,
       marginal = unname(per[, "marginal"]), conditional = unname(per[, "conditional"]),
       pooled_marginal = unname(pooled["marginal"]), pooled_conditional = unname(pooled["conditional"]),
       parameters = lapply(fits, pars_one))
}

ss <- read.csv(file.path(out_dir, "ddf_sleepstudy.csv"))
ss$Subject <- factor(ss$Subject)
sr <- read.csv(file.path(out_dir, "pool_studentratings_m5.csv"))
sr$ID <- factor(sr$ID)
sr_frames <- lapply(1:5, function(i) sr[sr$.imp == i, ])
rs <- read.csv(file.path(out_dir, "pool_vc_rs_implist.csv"))
rs$g <- factor(rs$g)
rs_frames <- lapply(1:5, function(i) rs[rs$.imp == i, ])

pen <- read.csv(file.path(out_dir, "ddf_penicillin.csv"))
pen$plate <- factor(pen$plate); pen$sample <- factor(pen$sample)
pas <- read.csv(file.path(out_dir, "ddf_pastes.csv"))
pas$batch <- factor(pas$batch); pas$cask <- factor(pas$cask)

cases <- list(
  penicillin_crossed = c(case(diameter ~ 1 + (1 | plate) + (1 | sample), list(pen, pen)),
                         data = "ddf_penicillin.csv"),
  pastes_nested = c(case(strength ~ 1 + (1 | batch/cask), list(pas, pas)), data = "ddf_pastes.csv"),
  sleepstudy_uncorrelated = c(case(Reaction ~ Days + (Days || Subject), list(ss, ss)),
                              data = "ddf_sleepstudy.csv"),
  sleepstudy = c(case(Reaction ~ Days + (Days | Subject), list(ss, ss)), data = "ddf_sleepstudy.csv"),
  sleepstudy_ml = c(case(Reaction ~ Days + (1 | Subject), list(ss, ss), FALSE), data = "ddf_sleepstudy.csv"),
  studentratings_ri = c(case(ReadAchiev ~ 1 + ReadDis + SES + (1 | ID), sr_frames),
                        data = "pool_studentratings_m5.csv"),
  studentratings_fac = c(case(ReadAchiev ~ FedState + Sex + ReadDis + (1 | ID), sr_frames),
                         data = "pool_studentratings_m5.csv"),
  sim_rs = c(case(y ~ x + (1 + x | g), rs_frames), data = "pool_vc_rs_implist.csv")
)
out <- list(cases = cases, r_versions = r_versions(c("lme4", "performance", "jsonlite")))
write_json(out, file.path(out_dir, "pool_r2_ref.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
