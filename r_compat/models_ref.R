# Reference values for pooled model tests: mitml's testModels (D1-D4), testConstraints,
# anova.mitml.result and multilevelR2 on the completed data of r_compat/models_data.R.
# Writes r_compat/models_ref.json. Run from the repository root:
#   Rscript r_compat/models_ref.R
suppressPackageStartupMessages({library(mitml); library(lme4); library(jsonlite)})
long <- read.csv("r_compat/models_implist.csv")
implist <- as.mitml.list(lapply(split(long, long$.imp), function(d) { d$.imp <- NULL; rownames(d) <- NULL; d }))

# fits whose call carries its data, so that mitml can refit them (ML refits, D3, D4)
fit_each <- function(fun, fml, ...) {
  out <- lapply(implist, function(d) do.call(fun, list(formula = fml, data = d, ...)))
  class(out) <- c("mitml.result", "list")
  out
}
F_full  <- Achiev ~ ReadDis + SES + Cogn + Girl + (1|ID)
F_null  <- Achiev ~ ReadDis + Cogn + (1|ID)
F_min   <- Achiev ~ Cogn + (1|ID)
L_full  <- Achiev ~ ReadDis + SES + Cogn + Girl
L_null  <- Achiev ~ ReadDis + Cogn
L_min   <- Achiev ~ Cogn

lmer_full  <- fit_each(lmer, F_full, REML = TRUE)
lmer_null  <- fit_each(lmer, F_null, REML = TRUE)
lmer_min   <- fit_each(lmer, F_min, REML = TRUE)
lmer_full_ml <- fit_each(lmer, F_full, REML = FALSE)
lmer_null_ml <- fit_each(lmer, F_null, REML = FALSE)
lm_full <- fit_each(lm, L_full)
lm_null <- fit_each(lm, L_null)
lm_min  <- fit_each(lm, L_min)

tab <- function(x) { t <- x$test; rownames(t) <- NULL; as.list(as.data.frame(t, check.names = FALSE)) }
out <- list(models = list(), constraints = list(), anova = list(), r2 = list(), loglik = list())
tm <- function(name, ...) out$models[[name]] <<- tab(suppressWarnings(testModels(...)))

# --- testModels: lmer ---------------------------------------------------------------
tm("lmer_D1", lmer_full, lmer_null, method = "D1")
tm("lmer_D1_dfcom", lmer_full, lmer_null, method = "D1", df.com = 45)
tm("lmer_D2_wald", lmer_full, lmer_null, method = "D2")
tm("lmer_D2_wald_positive", lmer_full, lmer_null, method = "D2", ariv = "positive")
tm("lmer_D2_likelihood", lmer_full, lmer_null, method = "D2", use = "likelihood")
tm("lmer_D3", lmer_full, lmer_null, method = "D3")
tm("lmer_D3_positive", lmer_full, lmer_null, method = "D3", ariv = "positive")
tm("lmer_D4", lmer_full, lmer_null, method = "D4")
tm("lmer_D4_robust", lmer_full, lmer_null, method = "D4", ariv = "robust")
tm("lmer_D4_positive", lmer_full, lmer_null, method = "D4", ariv = "positive")
tm("lmer_ml_D3", lmer_full_ml, lmer_null_ml, method = "D3")
# random slopes (leadership data): a 2 x 2 random-effects covariance pooled in D3, stacked in D4
long2 <- read.csv("r_compat/models_leadership.csv")
implist2 <- as.mitml.list(lapply(split(long2, long2$.imp), function(d) { d$.imp <- NULL; rownames(d) <- NULL; d }))
fit_each2 <- function(fun, fml, ...) {
  out <- lapply(implist2, function(d) do.call(fun, list(formula = fml, data = d, ...)))
  class(out) <- c("mitml.result", "list")
  out
}
# D3 and R2 depend on the estimates themselves (not only on the maximised likelihood); lme4's
# default tolerances leave random-slope thetas ~1e-5 from the optimum, so these fits run the
# optimiser to convergence (the refits of mitml inherit the control through update()).
tight <- lmerControl(optimizer = "nloptwrap", optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15,
                     xtol_rel = 0, ftol_rel = 1e-15, maxeval = 1e5))
lead_slope <- fit_each2(lmer, JOBSAT ~ NEGLEAD + WLOAD + COHES + (1 + NEGLEAD|GRPID), REML = TRUE, control = tight)
lead_ri    <- fit_each2(lmer, JOBSAT ~ NEGLEAD + WLOAD + COHES + (1|GRPID), REML = TRUE, control = tight)
lead_null  <- fit_each2(lmer, JOBSAT ~ NEGLEAD + (1|GRPID), REML = TRUE, control = tight)
tm("lead_slope_D3", lead_slope, lead_ri, method = "D3")
tm("lead_slope_D4", lead_slope, lead_ri, method = "D4")
tm("lead_slope_D2_likelihood", lead_slope, lead_ri, method = "D2", use = "likelihood")
tm("lead_slope_null_D3", lead_slope, lead_null, method = "D3")
tm("lead_slope_null_D4_robust", lead_slope, lead_null, method = "D4", ariv = "robust")
tm("lead_slope_null_D1", lead_slope, lead_null, method = "D1")
# --- testModels: lm -----------------------------------------------------------------
tm("lm_D1", lm_full, lm_null, method = "D1")
tm("lm_D1_dfcom", lm_full, lm_null, method = "D1", df.com = 745)
tm("lm_D1_dfcom_small", lm_full, lm_null, method = "D1", df.com = 12)
tm("lm_D2_wald", lm_full, lm_null, method = "D2")
tm("lm_D2_likelihood", lm_full, lm_null, method = "D2", use = "likelihood")
tm("lm_D3", lm_full, lm_null, method = "D3")
tm("lm_D4", lm_full, lm_null, method = "D4")
tm("lm_D4_robust", lm_full, lm_null, method = "D4", ariv = "robust")
tm("lm_D4_positive", lm_full, lm_null, method = "D4", ariv = "positive")
tm("lm_D3_min", lm_full, lm_min, method = "D3")
# --- testModels: logistic regression (glm) ------------------------------------------
glm_full <- fit_each(glm, Girl ~ Achiev + ReadDis + SES, family = binomial, control = list(epsilon = 1e-14, maxit = 100))
glm_null <- fit_each(glm, Girl ~ ReadDis, family = binomial, control = list(epsilon = 1e-14, maxit = 100))
tm("glm_D1", glm_full, glm_null, method = "D1")
tm("glm_D2_likelihood", glm_full, glm_null, method = "D2", use = "likelihood")
tm("glm_D4", glm_full, glm_null, method = "D4")

# --- testConstraints ----------------------------------------------------------------
tc <- function(name, ...) {
  x <- suppressWarnings(testConstraints(...))
  out$constraints[[name]] <<- c(tab(x), list(Qbar = unname(x$Qbar), T = unname(x$T)))
}
con_lin <- c("ReadDis - SES", "Girl")
# nonlinear constraints chosen well conditioned for R's forward-difference numericDeriv
con_nl  <- c("ReadDis * SES", "Cogn^2 - 0.2", "exp(10 * Girl) - 0.5", "(Intercept)/100 - SES/2")
tc("lmer_lin_D1", lmer_full, constraints = con_lin, method = "D1")
tc("lmer_nl_D1", lmer_full, constraints = con_nl, method = "D1")
tc("lmer_nl_D1_dfcom", lmer_full, constraints = con_nl, method = "D1", df.com = 45)
tc("lmer_nl_D2", lmer_full, constraints = con_nl, method = "D2")
tc("lmer_nl_D2_positive", lmer_full, constraints = con_nl, method = "D2", ariv = "positive")
tc("lm_lin_D1", lm_full, constraints = con_lin, method = "D1")
tc("lm_nl_D2", lm_full, constraints = con_nl, method = "D2")
qhat <- sapply(lm_full, coef)
uhat <- simplify2array(lapply(lm_full, vcov))
tc("lm_qhat_D1", qhat = qhat, uhat = uhat, constraints = con_nl, method = "D1")
tc("lm_qhat_D2", qhat = qhat, uhat = uhat, constraints = con_nl, method = "D2")
# exact inputs (17 significant digits as strings; jsonlite writes 15): qhat (m, p), uhat (m, p, p)
s17 <- function(x) sprintf("%.17g", x)
out$constraints$qhat <- lapply(seq_len(ncol(qhat)), function(i) s17(qhat[, i]))
out$constraints$uhat <- lapply(seq_len(dim(uhat)[3]), function(i) s17(c(t(uhat[, , i]))))
out$constraints$names <- rownames(qhat)

# --- anova --------------------------------------------------------------------------
an <- function(name, ...) {
  x <- suppressWarnings(anova(...))
  t <- do.call(rbind, lapply(x$test, "[[", "test"))
  out$anova[[name]] <<- c(as.list(as.data.frame(t, check.names = FALSE)),
                          list(method = x$method, formula = x$formula))
}
an("lmer_D3", lmer_full, lmer_null, lmer_min)
an("lmer_D4", lmer_min, lmer_full, lmer_null, method = "D4")
an("lmer_D2", lmer_full, lmer_null, lmer_min, method = "D2")
an("lm_D3", lm_full, lm_null, lm_min)
an("lm_D4_robust", lm_full, lm_min, method = "D4", ariv = "robust")
an("lead_D3", lead_null, lead_slope, lead_ri)
an("glm_fallback", glm_null, glm_full)   # D3 is not available for glm: mitml switches to D4

# --- multilevelR2 -------------------------------------------------------------------
out$r2$slope <- as.list(multilevelR2(lead_slope))
out$r2$ri <- as.list(multilevelR2(lead_ri))
out$r2$full <- as.list(multilevelR2(lmer_full))
out$r2$full_ml <- as.list(multilevelR2(lmer_full_ml))
out$r2$slope_mvp <- as.list(multilevelR2(lead_slope, print = "MVP"))
out$r2$slope_rb <- as.list(multilevelR2(lead_slope, print = c("RB1", "RB2")))
out$r2$single <- as.list(multilevelR2(lead_slope[[1]]))

# printouts (without the call) for layout checks
printed <- function(x) { x$call <- quote(f()); y <- capture.output(print(x)); y[-(1:4)] }
out$print$lm_D1_dfcom <- printed(testModels(lm_full, lm_null, method = "D1", df.com = 12))
out$print$lmer_D3 <- printed(testModels(lmer_full, lmer_null, method = "D3"))
out$print$lm_D4_robust <- printed(testModels(lm_full, lm_null, method = "D4", ariv = "robust"))
out$print$lm_con <- printed(testConstraints(lm_full, constraints = c("ReadDis - SES", "(Intercept)*1e6")))
out$print$lm_anova <- printed(anova(lm_full, lm_null, lm_min))

# R's own estimates (17 significant digits) to check pymitml's D3 and R2 arithmetic separately
# from the optimiser: ML refits' beta, Tau, sigma^2 and mitml's pooled log-likelihoods; REML
# fits' parameters and the null models' variances behind multilevelR2.
s17 <- function(x) sprintf("%.17g", x)
lmm_pars <- function(f) {
  a <- mitml:::.getArgsLL.lmerMod(f)$parameters
  list(beta = s17(a$beta), Tau = s17(c(a$Tau1)), sigma2 = s17(a$sigma2))
}
for (nm in c("lead_slope", "lead_ri")) {
  ml <- lapply(get(nm), mitml:::.updateML)
  out$params[[nm]] <- list(ml = lapply(ml, lmm_pars),
                           LL.pooled = s17(mitml:::.evaluateUserLogLik(ml)$LL.pooled))
}
out$params$lead_slope$reml <- lapply(lead_slope, function(f) {
  vc <- VarCorr(f); f0 <- update(f, JOBSAT ~ 1 + (1|GRPID)); vc0 <- VarCorr(f0)
  list(beta = s17(fixef(f)), Tau = s17(c(vc$GRPID)), sigma2 = s17(sigma(f)^2),
       s0 = s17(sigma(f0)^2), t00 = s17(vc0$GRPID[1, 1]))
})

# per-imputation ML log-likelihoods (diagnostics for lmer agreement)
out$loglik$full_ml <- sapply(lmer_full_ml, function(f) as.numeric(logLik(f)))
out$loglik$null_ml <- sapply(lmer_null_ml, function(f) as.numeric(logLik(f)))
out$loglik$lead_slope_reml <- sapply(lead_slope, function(f) as.numeric(logLik(f)))

source(file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)[1])), "_versions.R"))
out$r_versions <- r_versions(c("jsonlite", "lme4", "mitml"))
write_json(out, "r_compat/models_ref.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
