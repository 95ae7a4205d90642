# Reference outputs for pymitml.pool_estimates (mitml::testEstimates).
#
# Makes m = 5 completed data sets of mitml's studentratings with panImpute (fixed seed), writes
# them in long form to r_compat/pool_studentratings_m5.csv, fits lm and lmer models in R on each
# data set, pools them with testEstimates and writes everything the Python tests compare against to
# r_compat/pool_estimates_ref.json: the pooled tables, the extra parameters, confint(), the
# printout, and the per-imputation estimates (qhat) and covariance matrices (uhat) of every fit.
#
# Run from the repository root:  Rscript r_compat/pool_estimates.R
suppressPackageStartupMessages({
  library(mitml)
  library(lme4)
  library(jsonlite)
})

out_dir <- "r_compat"
data(studentratings)
studentratings$Cogn10 <- studentratings$CognAbility / 10   # rescaled: random slopes fit better

imp <- panImpute(studentratings,
                 formula = ReadDis + SES + MathAchiev ~ 1 + ReadAchiev + CognAbility + (1 | ID),
                 n.burn = 1000, n.iter = 100, m = 5, seed = 4711, silent = TRUE)
implist <- mitmlComplete(imp, "all")

long <- do.call(rbind, lapply(seq_along(implist), function(i) {
  cbind(.imp = i, implist[[i]])
}))
write.csv(long, file.path(out_dir, "pool_studentratings_m5.csv"), row.names = FALSE)

table_json <- function(tab) {
  out <- list(names = rownames(tab))
  for (cc in colnames(tab)) out[[cc]] <- unname(tab[, cc])
  out
}

case <- function(fits, fitter, formula, REML = NA, df.com = NULL, extra.pars = FALSE) {
  est <- testEstimates(fits, extra.pars = extra.pars, df.com = df.com)
  qhat <- lapply(fits, function(f) if (inherits(f, "merMod")) unname(fixef(f)) else unname(coef(f)))
  uhat <- lapply(fits, function(f) unname(lapply(seq_len(nrow(vcov(f))),
                                                 function(i) as.matrix(vcov(f))[i, ])))
  ci <- confint(est, level = 0.9)
  varcorr <- if (inherits(fits[[1]], "merMod")) lapply(fits, function(f) {
    vc <- as.data.frame(VarCorr(f))
    list(grp = vc$grp, var1 = vc$var1, var2 = vc$var2, vcov = vc$vcov, sdcor = vc$sdcor)
  }) else NULL
  list(
    fitter = fitter, formula = formula, REML = REML,
    df_com = if (is.null(df.com)) NULL else as.list(df.com),
    extra_pars = extra.pars,
    table = table_json(est$estimates),
    extra = if (is.null(est$extra.pars)) NULL else table_json(est$extra.pars),
    confint90 = list(names = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2])),
    print = paste(capture.output(print(est)), collapse = "\n"),
    loglik = sapply(fits, function(f) as.numeric(logLik(f))),
    names = names(if (inherits(fits[[1]], "merMod")) fixef(fits[[1]]) else coef(fits[[1]])),
    qhat = qhat, uhat = uhat, varcorr = varcorr,
    sigma = sapply(fits, sigma)
  )
}

f_lm <- "ReadAchiev ~ ReadDis + SES + CognAbility"
f_ri <- "ReadAchiev ~ 1 + ReadDis + SES + (1 | ID)"
f_rs <- "MathAchiev ~ 1 + ReadDis + Cogn10 + (1 + Cogn10 | ID)"
f_fac <- "ReadAchiev ~ FedState + Sex + ReadDis + (1 | ID)"

# with(): mitml evaluates the expression inside each data set
fit_lm <- with(implist, lm(ReadAchiev ~ ReadDis + SES + CognAbility))
fit_ri <- with(implist, lmer(ReadAchiev ~ 1 + ReadDis + SES + (1 | ID), REML = TRUE))
fit_ri_ml <- with(implist, lmer(ReadAchiev ~ 1 + ReadDis + SES + (1 | ID), REML = FALSE))
fit_rs <- with(implist, lmer(MathAchiev ~ 1 + ReadDis + Cogn10 + (1 + Cogn10 | ID), REML = TRUE))
fit_fac <- with(implist, lmer(ReadAchiev ~ FedState + Sex + ReadDis + (1 | ID), REML = TRUE))

cases <- list(
  lm = case(fit_lm, "lm", f_lm, extra.pars = TRUE),
  lm_dfcom = case(fit_lm, "lm", f_lm, df.com = 746),
  lm_dfcom_vec = case(fit_lm, "lm", f_lm, df.com = c(746, 600, 300, 50)),
  lmer_ri = case(fit_ri, "lmer", f_ri, REML = TRUE, extra.pars = TRUE),
  lmer_ri_ml_dfcom = case(fit_ri_ml, "lmer", f_ri, REML = FALSE, df.com = 47, extra.pars = TRUE),
  lmer_rs = case(fit_rs, "lmer", f_rs, REML = TRUE, extra.pars = TRUE),
  lmer_factors = case(fit_fac, "lmer", f_fac, REML = TRUE, extra.pars = TRUE)
)

# pooling from qhat/uhat directly: only estimates, and diagonal variances
q <- sapply(fit_lm, coef)                      # k x m
u_diag <- sapply(fit_lm, function(f) diag(vcov(f)))
e_q <- testEstimates(qhat = q)
e_qd <- testEstimates(qhat = q, uhat = u_diag, df.com = 746)
cases$qhat_only <- list(table = table_json(e_q$estimates),
                        print = paste(capture.output(print(e_q)), collapse = "\n"))
cases$uhat_diag <- list(table = table_json(e_qd$estimates),
                        print = paste(capture.output(print(e_qd)), collapse = "\n"))

ref <- list(
  meta = list(R = R.version.string, mitml = as.character(packageVersion("mitml")),
              lme4 = as.character(packageVersion("lme4")),
              data = paste("studentratings with Cogn10 = CognAbility/10; panImpute(ReadDis + SES + MathAchiev ~",
                           "1 + ReadAchiev + CognAbility + (1|ID), n.burn=1000, n.iter=100, m=5, seed=4711)"),
              m = length(implist), n = nrow(implist[[1]])),
  cases = cases
)
source(file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)[1])), "_versions.R"))
ref$r_versions <- r_versions(c("jsonlite", "lme4", "mitml", "pan"))
writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, null = "null", pretty = FALSE),
           file.path(out_dir, "pool_estimates_ref.json"))
cat("wrote", file.path(out_dir, "pool_estimates_ref.json"), "\n")
