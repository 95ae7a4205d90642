# R's side of vignettes/seed003_statjr.py: Stat-JR's 2LevelImpute example (tutmiss design) with
# jomoImpute on the same incomplete data, the same model, m = 20, and the model of interest pooled.
# Rscript r_compat/vignette_statjr.R  ->  r_compat/vignette_statjr_ref.json
suppressPackageStartupMessages({library(mitml); library(lme4); library(jsonlite)})
here <- dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)))
source(file.path(here, "_versions.R"))
raw <- read.csv(file.path(here, "vignette_statjr_data.csv"))
d <- data.frame(
  school = raw$school, normexam = raw$normexam, standlrt = raw$standlrtmiss,
  girl = factor(raw$girlmiss, levels = c(0, 1), labels = c("0", "1")),
  schgend = factor(raw$schgendmiss, levels = 0:2, labels = c("mixed", "boys", "girls")),
  vrband = factor(raw$vrband, levels = 1:3)
)
fml <- list(normexam + standlrt + girl ~ 1 + vrband + (1|school), schgend ~ 1)
imp <- jomoImpute(d, formula = fml, n.burn = 1000, n.iter = 50, m = 20, seed = 4, silent = TRUE)
implist <- mitmlComplete(imp, "all")
fit <- with(implist, lmer(normexam ~ 1 + standlrt + girl + schgend + (1|school), REML = FALSE))
est <- testEstimates(fit, extra.pars = TRUE)
print(est)
truth_sch <- factor(raw$schgend, levels = 0:2, labels = c("mixed", "boys", "girls"))
single <- is.na(d$girl) & truth_sch != "mixed"
wrong <- mean(sapply(implist, function(x) {
  s <- single & x$schgend != "mixed"
  mean((x$girl[s] == "1") != (x$schgend[s] == "girls"))
}))
# the latent normal of girl: its random-intercept variance and intercept (jomo's psi / beta),
# beside the ML fit of the probit random-intercept model of girl alone (glmer, 10-point AGQ)
batch_mcse <- function(x, nb = 20) {
  b <- floor(length(x) / nb)
  m <- sapply(seq_len(nb), function(k) mean(x[((k - 1) * b + 1):(k * b)]))
  sd(m) / sqrt(nb)
}
girl_psi <- imp$par.imputation$psi[3, 3, , 1]
girl_beta <- imp$par.imputation$beta[1, 3, , 1]
g <- glmer(girl ~ 1 + vrband + (1|school), data = d, family = binomial(link = "probit"), nAGQ = 10)
e <- est$estimates
out <- list(
  r_versions = r_versions(c("mitml", "jomo", "lme4", "jsonlite")),
  m = 20, n_burn = 1000, n_iter = 50,
  estimates = list(term = rownames(e), columns = colnames(e), values = unname(split(unname(e), row(e)))),
  extra_pars = setNames(as.list(est$extra.pars[, 1]), rownames(est$extra.pars)),
  wrong_sex = wrong,
  girl_latent = list(psi = mean(girl_psi), beta = mean(girl_beta),
                     psi_mcse = batch_mcse(girl_psi), beta_mcse = batch_mcse(girl_beta),
                     glmer_var = as.numeric(VarCorr(g)$school), glmer_intercept = unname(fixef(g)[1]))
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           file.path(here, "vignette_statjr_ref.json"))
