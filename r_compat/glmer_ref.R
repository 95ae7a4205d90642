# Reference fits of lme4::glmer for pymitml's native glmer (tests/test_glmer.py).
#
# Writes, next to this script:
#   glmer_cbpp.csv   lme4's cbpp (herd, incidence, size, period)
#   glmer_grouseticks.csv  lme4's grouseticks (three grouping factors; reference kept for later)
#   glmer_sim.csv    simulated two-level data (seeded): a 0/1 response with a random slope,
#                    Poisson counts with a 3-level factor
#   glmer_ref.json   per case: fixed effects, vcov (lme4's default: from the finite-difference
#                    Hessian of the deviance over (theta, beta)) and the RX-based vcov, theta,
#                    VarCorr, devcomp (dev, drsum, ussq, ldL2), the optimised objective,
#                    logLik, deviance(), AIC, BIC, conditional modes, fitted values, residuals,
#                    and the same model with lme4's default control ("default").
#   glmer_implist.csv  5 data sets (.imp, g, x, f, yb) with x perturbed per set, and under
#                    "pooling" mitml's testEstimates and testModels (D1, D2, D4) of glmer fits
# Every model is fitted with tight control (bobyqa, maxfun 1e5, rhoend 1e-12, tolPwrss 1e-12)
# because lme4's default stop leaves the parameters accurate to ~1e-4 only.
# Run from the repository root:  Rscript r_compat/glmer_ref.R
suppressPackageStartupMessages({library(lme4); library(mitml); library(jsonlite)})

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "_versions.R"))

data(cbpp, package = "lme4")
write.csv(cbpp, file.path(here, "glmer_cbpp.csv"), row.names = FALSE)
cb <- read.csv(file.path(here, "glmer_cbpp.csv"))
cb$herd <- factor(cb$herd, levels = sort(unique(cb$herd)))
cb$period <- factor(cb$period)
cb$prop <- cb$incidence / cb$size
data(grouseticks, package = "lme4")
write.csv(grouseticks, file.path(here, "glmer_grouseticks.csv"), row.names = FALSE)
gt <- read.csv(file.path(here, "glmer_grouseticks.csv"))
for (v in c("INDEX", "BROOD", "LOCATION", "YEAR")) gt[[v]] <- factor(gt[[v]])

set.seed(20261202)
J <- 50
nj <- sample(8:30, J, replace = TRUE)
g <- rep(sprintf("g%02d", seq_len(J)), nj)
n <- length(g)
x <- rnorm(n)
f <- sample(c("a", "b", "c"), n, replace = TRUE)
b0 <- rep(rnorm(J, sd = 1), nj)
b1 <- rep(rnorm(J, sd = 0.5), nj)
yb <- rbinom(n, 1, plogis(-0.5 + 0.8 * x + b0 + b1 * x))
yp <- rbinom(n, 1, pnorm(0.3 - 0.6 * x + 0.7 * b0))
yc <- rpois(n, exp(0.4 + 0.3 * x + 0.5 * (f == "b") - 0.4 * (f == "c") + 0.6 * b0))
set.seed(1)
y0 <- rbinom(n, 1, plogis(0.2 + 0.5 * x))                  # no cluster effect: singular fit
sim <- data.frame(g = g, x = x, f = f, yb = yb, yp = yp, yc = yc, y0 = y0)
write.csv(sim, file.path(here, "glmer_sim.csv"), row.names = FALSE)
sim <- read.csv(file.path(here, "glmer_sim.csv"))

cases <- list(
  list(name = "cbpp_laplace", data = "cbpp", family = "binomial", link = "logit", nAGQ = 1,
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  list(name = "cbpp_agq25", data = "cbpp", family = "binomial", link = "logit", nAGQ = 25,
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  list(name = "cbpp_agq0", data = "cbpp", family = "binomial", link = "logit", nAGQ = 0,
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  list(name = "cbpp_prop", data = "cbpp", family = "binomial", link = "logit", nAGQ = 1,
       formula = "prop ~ period + (1 | herd)", weights = "size"),
  list(name = "bin_slope", data = "sim", family = "binomial", link = "logit", nAGQ = 1,
       formula = "yb ~ x + (1 + x | g)"),
  list(name = "probit", data = "sim", family = "binomial", link = "probit", nAGQ = 1,
       formula = "yp ~ x + (1 | g)"),
  list(name = "cloglog_agq7", data = "sim", family = "binomial", link = "cloglog", nAGQ = 7,
       formula = "yp ~ x + (1 | g)"),
  list(name = "poisson", data = "sim", family = "poisson", link = "log", nAGQ = 1,
       formula = "yc ~ x + f + (1 | g)"),
  list(name = "singular", data = "sim", family = "binomial", link = "logit", nAGQ = 1,
       formula = "y0 ~ x + (1 | g)"),
  # several grouping factors: kept for glmer on the multi-term design (tests skip "pending")
  list(name = "grouseticks", data = "grouseticks", family = "poisson", link = "log", nAGQ = 1,
       formula = "TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
       pending = TRUE)
)

tight <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                      optCtrl = list(maxfun = 1e5, rhoend = 1e-12))
fam <- function(cs) get(cs$family)(link = cs$link)

out <- list()
for (cs in cases) {
  d <- switch(cs$data, sim = sim, cbpp = cb, grouseticks = gt)
  fit_one <- function(control) {
    if (is.null(cs$weights)) {
      glmer(as.formula(cs$formula), data = d, family = fam(cs), nAGQ = cs$nAGQ,
            control = control)
    } else {
      d$.w <- d[[cs$weights]]
      glmer(as.formula(cs$formula), data = d, family = fam(cs), nAGQ = cs$nAGQ,
            weights = .w, control = control)
    }
  }
  fit0 <- suppressWarnings(suppressMessages(fit_one(glmerControl())))
  fit <- suppressWarnings(suppressMessages(fit_one(tight)))
  vc <- as.data.frame(VarCorr(fit))
  re <- ranef(fit)[[1]]
  conv <- as.character(unlist(fit@optinfo$conv$lme4$messages))
  cmp <- fit@devcomp$cmp
  out[[cs$name]] <- list(
    formula = cs$formula, data = cs$data, pending = isTRUE(cs$pending), messages = conv, family = cs$family, link = cs$link, nAGQ = cs$nAGQ,
    weights = if (is.null(cs$weights)) "" else cs$weights,
    nobs = nobs(fit), ngroups = unname(ngrps(fit)),
    fixef_names = names(fixef(fit)), fixef = unname(fixef(fit)),
    vcov = unname(as.matrix(vcov(fit))),
    vcov_rx = unname(as.matrix(suppressWarnings(vcov(fit, use.hessian = FALSE)))),
    hessian = if (is.null(fit@optinfo$derivs)) list() else unname(fit@optinfo$derivs$Hessian),
    theta = unname(getME(fit, "theta")),
    varcorr = list(grp = vc$grp, var1 = ifelse(is.na(vc$var1), "", vc$var1),
                   var2 = ifelse(is.na(vc$var2), "", vc$var2), vcov = vc$vcov, sdcor = vc$sdcor),
    objective = fit@optinfo$val, objective_value = unname(fit@devcomp$cmp[["dev"]]),
    fval = unname(attr(fit@optinfo, "fval")),
    dev = unname(cmp[["dev"]]), drsum = unname(cmp[["drsum"]]), ussq = unname(cmp[["ussq"]]),
    ldL2 = unname(cmp[["ldL2"]]),
    loglik = as.numeric(logLik(fit)), df = attr(logLik(fit), "df"),
    deviance = deviance(fit), aic = AIC(fit), bic = BIC(fit),
    singular = isSingular(fit),
    ranef_names = colnames(re), ranef_labels = rownames(re), ranef = unname(as.matrix(re)),
    fitted = unname(fitted(fit)),
    eta = unname(predict(fit, type = "link")),
    resid_deviance = unname(residuals(fit, type = "deviance")),
    resid_pearson = unname(residuals(fit, type = "pearson")),
    resid_response = unname(residuals(fit, type = "response")),
    default = list(fixef = unname(fixef(fit0)), theta = unname(getME(fit0, "theta")),
                   dev = unname(fit0@devcomp$cmp[["dev"]]),
                   loglik = as.numeric(logLik(fit0)),
                   vcov = unname(as.matrix(vcov(fit0))),
                   messages = as.character(unlist(fit0@optinfo$conv$lme4$messages)))
  )
}
# pooling over 5 "imputations" (x perturbed per data set) as mitml pools glmer fits
set.seed(20261203)
implist <- lapply(1:5, function(i) {
  d <- sim[sim$g <= "g30", c("g", "x", "f", "yb")]
  d$x <- d$x + rnorm(nrow(d), sd = 0.3)
  d
})
long <- do.call(rbind, lapply(1:5, function(i) cbind(.imp = i, implist[[i]])))
write.csv(long, file.path(here, "glmer_implist.csv"), row.names = FALSE)
long <- read.csv(file.path(here, "glmer_implist.csv"))
implist <- as.mitml.list(split(long[, -1], long$.imp))
full <- with(implist, glmer(yb ~ x + f + (1 | g), family = binomial, control = tight))
null <- with(implist, glmer(yb ~ x + (1 | g), family = binomial, control = tight))
tab <- function(x) {
  m <- x$estimates
  list(rows = rownames(m), cols = colnames(m), values = unname(m))
}
te <- testEstimates(full, extra.pars = TRUE)
mt <- function(...) {
  r <- testModels(full, null, ...)
  list(cols = colnames(r$test), values = unname(r$test[1, ]))
}
out$pooling <- list(
  estimates = tab(te),
  extra = list(rows = rownames(te$extra.pars), values = unname(te$extra.pars)),
  D1 = mt(method = "D1"), D2_wald = mt(method = "D2", use = "wald"),
  D2_likelihood = mt(method = "D2", use = "likelihood"), D4 = mt(method = "D4"),
  loglik_full = sapply(full, function(f) as.numeric(logLik(f)))
)
out$r_versions <- r_versions(c("jsonlite", "lme4", "mitml"))
write_json(out, file.path(here, "glmer_ref.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote", length(out) - 2, "cases and the pooling results\n")
