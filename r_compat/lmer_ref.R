# Reference fits of lme4::lmer for pymitml's native lmer (tests/test_lmm.py).
#
# Writes, next to this script:
#   lmer_studentratings.csv  mitml's studentratings (with its missing values; the tests drop
#                            incomplete rows of the analysed columns, as lme4 does by default)
#   lmer_sim.csv             simulated two-level data with unbalanced clusters (seeded)
#   lmer_ref.json            per case: fixed effects, SEs, vcov, VarCorr, sigma, theta, logLik,
#                            ML deviance, REML criterion, conditional modes, singularity, and the
#                            ML log-likelihood at perturbed parameters (dense computation).
# Each model is fitted twice: with lme4's default control (logLik, theta and messages kept under
# "default") and with tight optimiser tolerances (all other fields), because lme4's default
# BOBYQA stop leaves parameters accurate to ~1e-4 only (and one case does not converge).
# Run from the repository root:  Rscript r_compat/lmer_ref.R
suppressPackageStartupMessages({library(lme4); library(mitml); library(jsonlite)})

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))

data(studentratings, package = "mitml")
write.csv(studentratings, file.path(here, "lmer_studentratings.csv"), row.names = FALSE, na = "")
sr <- read.csv(file.path(here, "lmer_studentratings.csv"))  # exactly what the tests read

# simulated data: 60 clusters of 2..40 rows, level-1 x and z, level-2 w, a 3-level factor
set.seed(20240611)
J <- 60
nj <- sample(2:40, J, replace = TRUE)
g <- rep(sprintf("c%02d", seq_len(J)), nj)
n <- length(g)
w <- rep(rnorm(J), nj)
x <- rnorm(n, mean = 1)
z <- rnorm(n)
grp <- sample(c("a", "b", "c"), n, replace = TRUE)
b0 <- rep(rnorm(J, sd = 0.8), nj)
b1 <- rep(rnorm(J, sd = 0.4), nj)
b2 <- rep(rnorm(J, sd = 0.3), nj)
y <- 1 + 0.5 * x - 0.3 * w + 0.2 * x * w + 0.1 * x^2 + 0.4 * (grp == "b") +
  b0 + b1 * x + b2 * z + rnorm(n)
y0 <- 2 + 0.5 * x + rnorm(n)                              # no cluster effect at all
y1 <- 2 + 0.5 * x + b0 + rnorm(n)                         # random intercept, no slope variance
sim <- data.frame(g = g, x = x, z = z, w = w, grp = grp, y = y, y0 = y0, y1 = y1)
write.csv(sim, file.path(here, "lmer_sim.csv"), row.names = FALSE)
sim <- read.csv(file.path(here, "lmer_sim.csv"))

cases <- list(
  list(name = "sr_ri_reml", data = "studentratings",
       formula = "ReadAchiev ~ 1 + ReadDis + (1|ID)", REML = TRUE),
  list(name = "sr_rs_ml", data = "studentratings",
       formula = "MathAchiev ~ 1 + CognAbility + Sex + (1 + CognAbility|ID)", REML = FALSE),
  list(name = "sr_factor_reml", data = "studentratings",
       formula = "ReadAchiev ~ FedState * Sex + SES + (1|ID)", REML = TRUE),
  list(name = "sim_rs_reml", data = "sim",
       formula = "y ~ x * w + I(x^2) + grp + (1 + x | g)", REML = TRUE),
  list(name = "sim_rs_ml", data = "sim",
       formula = "y ~ x + w + (x | g)", REML = FALSE),
  list(name = "sim_slope_only_ml", data = "sim",
       formula = "y ~ x + (0 + x | g)", REML = FALSE),
  list(name = "sim_q3_reml", data = "sim",
       formula = "y ~ x + z + (1 + x + z | g)", REML = TRUE),
  list(name = "sim_singular_ri", data = "sim",
       formula = "y0 ~ x + (1 | g)", REML = TRUE),
  list(name = "sim_singular_rs", data = "sim",
       formula = "y1 ~ x + (1 + x | g)", REML = FALSE)
)

# ML log-likelihood of an lmer model at (beta, theta, sigma), by dense per-cluster algebra
dense_loglik <- function(fit, beta, theta, sigma) {
  X <- getME(fit, "X"); y <- getME(fit, "y")
  fl <- getME(fit, "flist")[[1]]
  cn <- getME(fit, "cnms")[[1]]
  q <- length(cn)
  Tm <- matrix(0, q, q); Tm[lower.tri(Tm, diag = TRUE)] <- theta
  Zfull <- as.matrix(t(getME(fit, "Zt")))
  ll <- 0
  for (lev in levels(fl)) {
    rows <- which(fl == lev)
    cols <- which(colnames(Zfull) == lev)
    Zj <- Zfull[rows, cols, drop = FALSE]
    V <- sigma^2 * (Zj %*% Tm %*% t(Tm) %*% t(Zj) + diag(length(rows)))
    e <- y[rows] - X[rows, , drop = FALSE] %*% beta
    ll <- ll - 0.5 * (length(rows) * log(2 * pi) + as.numeric(determinant(V)$modulus) +
                        sum(e * solve(V, e)))
  }
  ll
}

tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15, xtol_rel = 1e-14,
                                    ftol_rel = 1e-15, maxeval = 1e6))
out <- list()
for (cs in cases) {
  d <- if (cs$data == "sim") sim else sr
  fit0 <- lmer(as.formula(cs$formula), data = d, REML = cs$REML)
  fit <- suppressWarnings(lmer(as.formula(cs$formula), data = d, REML = cs$REML, control = tight))
  vc <- as.data.frame(VarCorr(fit))
  re <- ranef(fit)[[1]]
  beta <- fixef(fit); th <- getME(fit, "theta"); s <- sigma(fit)
  pert <- list(beta = unname(beta * 1.01 + 0.01), theta = unname(th * 0.9 + 0.05), sigma = s * 1.05)
  pert$loglik <- dense_loglik(fit, pert$beta, pert$theta, pert$sigma)
  out[[cs$name]] <- list(
    formula = cs$formula, data = cs$data, REML = cs$REML,
    nobs = nobs(fit), ngroups = unname(ngrps(fit)),
    fixef_names = names(beta), fixef = unname(beta),
    se = unname(sqrt(diag(as.matrix(vcov(fit))))),
    vcov = unname(as.matrix(vcov(fit))),
    varcorr = list(grp = vc$grp, var1 = ifelse(is.na(vc$var1), "", vc$var1),
                   var2 = ifelse(is.na(vc$var2), "", vc$var2), vcov = vc$vcov, sdcor = vc$sdcor),
    sigma = s, theta = unname(th),
    loglik = as.numeric(logLik(fit)),
    deviance_ml = unname(deviance(fit, REML = FALSE)),
    reml_crit = if (cs$REML) unname(REMLcrit(fit)) else NULL,
    singular = isSingular(fit),
    default = list(loglik = as.numeric(logLik(fit0)), theta = unname(getME(fit0, "theta")),
                   singular = isSingular(fit0),
                   messages = as.character(unlist(fit0@optinfo$conv$lme4$messages))),
    ranef_names = colnames(re), ranef_labels = rownames(re), ranef = unname(as.matrix(re)),
    dense_loglik_at_fit = dense_loglik(fit, beta, th, s),
    loglik_at = pert
  )
}
source(file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)[1])), "_versions.R"))
out$r_versions <- r_versions(c("jsonlite", "lme4", "mitml"))
write_json(out, file.path(here, "lmer_ref.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote", length(out), "cases\n")
