# Reference for pymitml.pool_variance_components with glmer fits: per-fit standard errors of the
# transformed covariance parameters and their pooled values.
#
# Per fit: phi = (log sd per random-effect column, atanh(cor) per pair); no residual SD (binomial
# and Poisson). beta is not profiled out of a GLMM deviance, so the Hessian is taken jointly in
# (phi, beta): lme4's stage-2 deviance function (glmer(..., devFunOnly = TRUE), which takes
# c(theta, beta); Laplace for nAGQ = 1, adaptive Gauss-Hermite for nAGQ > 1) at theta(phi),
# differentiated twice by numDeriv::hessian; Var(phi) = the phi block of 2 H^-1.
# Pooled rows: Rubin's rules with Rubin's (1987) df on the transformed scale, back-transformed;
# the ICC is the latent-scale one, tau0 / (tau0 + pi^2/3) for the logit link.
#
# Data: lme4's cbpp (r_compat/glmer_cbpp.csv), the simulated r_compat/glmer_sim.csv (binary with
# a random slope, probit, Poisson), lme4's grouseticks (r_compat/glmer_grouseticks.csv; Poisson,
# two grouping factors) and the 5 data sets of r_compat/glmer_implist.csv.
# Every fit uses tight control (as r_compat/glmer_ref.R) so that the optimum is accurate.
#
# Run from the repository root:  Rscript r_compat/pool_vc_glmer.R
suppressPackageStartupMessages({
  library(lme4)
  library(numDeriv)
  library(jsonlite)
})
source("r_compat/_versions.R")
out_dir <- "r_compat"

tight <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                      optCtrl = list(maxfun = 1e5, rhoend = 1e-12))

phi_of <- function(fit) {
  out <- c()
  for (S in VarCorr(fit)) {
    S <- as.matrix(S)
    sd <- sqrt(diag(S))
    R <- cov2cor(S)
    q <- nrow(S)
    z <- c()
    if (q > 1) for (a in 1:(q - 1)) for (b in (a + 1):q) z <- c(z, atanh(R[a, b]))
    out <- c(out, log(sd), z)
  }
  out
}

theta_of <- function(phi, qs) {
  theta <- c()
  k <- 0
  for (q in qs) {
    sd <- exp(phi[k + 1:q])
    k <- k + q
    R <- diag(q)
    if (q > 1) for (a in 1:(q - 1)) for (b in (a + 1):q) {
      k <- k + 1
      R[a, b] <- R[b, a] <- tanh(phi[k])
    }
    L <- t(chol(R * outer(sd, sd)))
    theta <- c(theta, L[lower.tri(L, diag = TRUE)])
  }
  theta
}

one_fit <- function(formula, data, family, nAGQ = 1) {
  fit <- glmer(formula, data = data, family = family, nAGQ = nAGQ, control = tight)
  devfun <- glmer(formula, data = data, family = family, nAGQ = nAGQ, control = tight,
                  devFunOnly = TRUE)
  qs <- sapply(VarCorr(fit), nrow)
  phi <- phi_of(fit)
  beta <- unname(fixef(fit))
  k <- length(phi)
  stopifnot(max(abs(theta_of(phi, qs) - getME(fit, "theta"))) < 1e-8)
  f <- function(x) devfun(c(theta_of(x[1:k], qs), x[-(1:k)]))
  H <- numDeriv::hessian(f, c(phi, beta))
  V <- (2 * solve(H))[1:k, 1:k, drop = FALSE]
  list(phi = unname(phi), se = unname(sqrt(diag(V))), V = unname(lapply(1:k, function(i) V[i, ])),
       theta = unname(getME(fit, "theta")), beta = beta, q = unname(qs[1]))
}

# transformed quantities of one fit (one random term) and their variances (delta method)
quantities <- function(r, latent = pi^2 / 3) {
  q <- r$q
  phi <- r$phi
  V <- do.call(rbind, r$V)
  d <- length(phi)
  unit <- diag(d)
  val <- c(); jac <- list(); scale <- c(); nm <- c()
  for (a in 1:q) {
    nm <- c(nm, paste0("sd", a)); val <- c(val, phi[a]); jac[[length(jac) + 1]] <- unit[a, ]
    scale <- c(scale, "log")
  }
  if (q > 1) {
    k <- q
    for (a in 1:(q - 1)) for (b in (a + 1):q) {
      k <- k + 1
      rho <- tanh(phi[k]); s <- exp(phi[a] + phi[b])
      g <- rep(0, d); g[a] <- s * rho; g[b] <- g[b] + s * rho; g[k] <- s * (1 - rho^2)
      nm <- c(nm, paste0("cov", a, b), paste0("cor", a, b))
      val <- c(val, s * rho, phi[k]); jac[[length(jac) + 1]] <- g; jac[[length(jac) + 1]] <- unit[k, ]
      scale <- c(scale, "identity", "z")
    }
  }
  # latent-scale ICC on the logit scale: log tau0 - log(pi^2/3)
  g <- rep(0, d); g[1] <- 2
  nm <- c(nm, "icc"); val <- c(val, 2 * phi[1] - log(latent)); jac[[length(jac) + 1]] <- g
  scale <- c(scale, "logit")
  J <- do.call(rbind, jac)
  list(names = nm, value = val, var = rowSums((J %*% V) * J), scale = scale)
}

back <- function(x, scale) {
  switch(scale, log = exp(x), identity = x, z = tanh(x), logit = plogis(x))
}

pool <- function(results, level = 0.95) {
  Q <- lapply(results, quantities)
  qhat <- do.call(rbind, lapply(Q, `[[`, "value"))
  uhat <- do.call(rbind, lapply(Q, `[[`, "var"))
  m <- nrow(qhat)
  qbar <- colMeans(qhat); ubar <- colMeans(uhat); b <- apply(qhat, 2, var)
  tt <- ubar + (1 + 1 / m) * b
  r <- (1 + 1 / m) * b / ubar
  v <- (m - 1) * (1 + 1 / r)^2
  fac <- qt(1 - (1 - level) / 2, v)
  sc <- Q[[1]]$scale
  list(names = Q[[1]]$names, scale = sc, qbar = unname(qbar), se = unname(sqrt(tt)), df = unname(v),
       estimate = unname(mapply(back, qbar, sc)),
       lower = unname(mapply(back, qbar - fac * sqrt(tt), sc)),
       upper = unname(mapply(back, qbar + fac * sqrt(tt), sc)))
}

cb <- read.csv(file.path(out_dir, "glmer_cbpp.csv"))
cb$herd <- factor(cb$herd, levels = sort(unique(cb$herd)))
cb$period <- factor(cb$period)
sim <- read.csv(file.path(out_dir, "glmer_sim.csv"))

cases <- list()
cases$cbpp_laplace <- list(
  formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)", data = "glmer_cbpp.csv",
  family = "binomial", link = "logit", nAGQ = 1,
  fits = list(one_fit(cbind(incidence, size - incidence) ~ period + (1 | herd), cb, binomial)))
cases$cbpp_agq25 <- list(
  formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)", data = "glmer_cbpp.csv",
  family = "binomial", link = "logit", nAGQ = 25,
  fits = list(one_fit(cbind(incidence, size - incidence) ~ period + (1 | herd), cb, binomial, 25)))
cases$bin_slope <- list(
  formula = "yb ~ x + (1 + x | g)", data = "glmer_sim.csv", family = "binomial", link = "logit",
  nAGQ = 1, fits = list(one_fit(yb ~ x + (1 + x | g), sim, binomial)))
cases$probit <- list(
  formula = "yp ~ x + (1 | g)", data = "glmer_sim.csv", family = "binomial", link = "probit",
  nAGQ = 1, fits = list(one_fit(yp ~ x + (1 | g), sim, binomial(link = "probit"))))
cases$poisson <- list(
  formula = "yc ~ x + f + (1 | g)", data = "glmer_sim.csv", family = "poisson", link = "log",
  nAGQ = 1, fits = list(one_fit(yc ~ x + f + (1 | g), sim, poisson)))

gt <- read.csv(file.path(out_dir, "glmer_grouseticks.csv"))
for (v in c("INDEX", "BROOD", "LOCATION", "YEAR")) gt[[v]] <- factor(gt[[v]])
cases$grouseticks_two_terms <- list(
  formula = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)",
  data = "glmer_grouseticks.csv", family = "poisson", link = "log", nAGQ = 1,
  fits = list(one_fit(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION), gt, poisson)))

long <- read.csv(file.path(out_dir, "glmer_implist.csv"))
sets <- split(long[, -1], long$.imp)
ri <- unname(lapply(sets, function(d) one_fit(yb ~ x + f + (1 | g), d, binomial)))
cases$implist_ri <- list(formula = "yb ~ x + f + (1 | g)", data = "glmer_implist.csv",
                         family = "binomial", link = "logit", nAGQ = 1, fits = ri, pooled = pool(ri))

out <- list(cases = cases, r_versions = r_versions(c("lme4", "numDeriv", "jsonlite")))
write_json(out, file.path(out_dir, "pool_vc_glmer_ref.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
