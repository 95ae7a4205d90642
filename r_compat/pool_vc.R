# Reference for pymitml.pool_variance_components: per-fit standard errors of the covariance
# parameters on the log-SD / Fisher-z scale, and their pooled values.
#
# Per fit: phi = (log sd per random-effect column, atanh(cor) per pair, log sigma); the deviance
# as a function of phi is lme4's deviance function (lmer(..., devFunOnly = TRUE)) evaluated at
# theta(phi) with sigma not profiled (the ML deviance with beta profiled, plus log|RX|^2 terms for
# REML), differentiated twice by numDeriv::hessian; Var(phi) = 2 H^-1. The pooled rows apply
# Rubin's rules with Rubin's (1987) df on the transformed scale and back-transform.
#
# Data: sleepstudy (r_compat/ddf_sleepstudy.csv, REML and ML; (Days || Subject)), Penicillin
# (crossed, r_compat/ddf_penicillin.csv), the m = 5 studentratings
# imputations of r_compat/pool_studentratings_m5.csv (random intercept), and m = 5 panImpute
# imputations of a simulated random-slope design written to r_compat/pool_vc_rs_implist.csv.
#
# Run from the repository root:  Rscript r_compat/pool_vc.R
suppressPackageStartupMessages({
  library(lme4)
  library(numDeriv)
  library(mitml)
  library(jsonlite)
})
source("r_compat/_versions.R")
out_dir <- "r_compat"

# deviance at (theta, sigma) from the state lme4's deviance function leaves behind
dev_at <- function(devfun, theta, sigma, reml) {
  devfun(theta)
  e <- environment(devfun)
  s2 <- sigma^2
  n <- length(e$resp$y)
  pwrss <- e$resp$wrss() + e$pp$sqrL(1)
  out <- e$pp$ldL2() + pwrss / s2 + n * log(2 * pi * s2)
  if (reml) {
    p <- ncol(e$pp$X)
    out <- out + e$pp$ldRX2() - p * log(2 * pi * s2)
  }
  out
}

# phi <-> (covariance of each random-effects term, sigma), terms in VarCorr's (theta's) order
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
  c(out, log(sigma(fit)))
}

theta_of <- function(phi, qs) {
  sigma <- exp(phi[length(phi)])
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
    L <- t(chol(R * outer(sd, sd))) / sigma
    theta <- c(theta, L[lower.tri(L, diag = TRUE)])
  }
  list(theta = theta, sigma = sigma)
}

one_fit <- function(formula, data, reml) {
  fit <- lmer(formula, data = data, REML = reml)
  devfun <- lmer(formula, data = data, REML = reml, devFunOnly = TRUE)
  qs <- sapply(VarCorr(fit), nrow)
  phi <- phi_of(fit)
  f <- function(x) {
    ts <- theta_of(x, qs)
    dev_at(devfun, ts$theta, ts$sigma, reml)
  }
  stopifnot(max(abs(theta_of(phi, qs)$theta - getME(fit, "theta"))) < 1e-8)
  H <- numDeriv::hessian(f, phi)
  V <- 2 * solve(H)
  list(phi = unname(phi), se = unname(sqrt(diag(V))), V = unname(lapply(1:nrow(V), function(i) V[i, ])),
       theta = unname(getME(fit, "theta")), sigma = sigma(fit), q = unname(qs[1]))
}

# transformed quantities of one fit and their variances (delta method), one random term
quantities <- function(r) {
  q <- r$q
  phi <- r$phi
  V <- do.call(rbind, r$V)
  d <- length(phi)
  ks <- d
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
  nm <- c(nm, "sigma"); val <- c(val, phi[ks]); jac[[length(jac) + 1]] <- unit[ks, ]
  scale <- c(scale, "log")
  g <- rep(0, d); g[1] <- 2; g[ks] <- -2
  nm <- c(nm, "icc"); val <- c(val, 2 * phi[1] - 2 * phi[ks]); jac[[length(jac) + 1]] <- g
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

cases <- list()

ss <- read.csv(file.path(out_dir, "ddf_sleepstudy.csv"))
ss$Subject <- factor(ss$Subject)
for (reml in c(TRUE, FALSE)) {
  cases[[paste0("sleepstudy_", if (reml) "reml" else "ml")]] <- list(
    formula = "Reaction ~ Days + (Days | Subject)", data = "ddf_sleepstudy.csv", REML = reml,
    fits = list(one_fit(Reaction ~ Days + (Days | Subject), ss, reml)))
}

pen <- read.csv(file.path(out_dir, "ddf_penicillin.csv"))
pen$plate <- factor(pen$plate); pen$sample <- factor(pen$sample)
cases$penicillin_crossed <- list(formula = "diameter ~ 1 + (1 | plate) + (1 | sample)",
                                 data = "ddf_penicillin.csv", REML = TRUE,
                                 fits = list(one_fit(diameter ~ 1 + (1 | plate) + (1 | sample), pen, TRUE)))
cases$sleepstudy_uncorrelated <- list(formula = "Reaction ~ Days + (Days || Subject)",
                                      data = "ddf_sleepstudy.csv", REML = TRUE,
                                      fits = list(one_fit(Reaction ~ Days + (Days || Subject), ss, TRUE)))

sr <- read.csv(file.path(out_dir, "pool_studentratings_m5.csv"))
sr$ID <- factor(sr$ID)
ri <- lapply(1:5, function(i) one_fit(ReadAchiev ~ 1 + ReadDis + SES + (1 | ID), sr[sr$.imp == i, ], TRUE))
cases$studentratings_ri <- list(formula = "ReadAchiev ~ 1 + ReadDis + SES + (1 | ID)",
                                data = "pool_studentratings_m5.csv", REML = TRUE, fits = ri, pooled = pool(ri))

# a random-slope design with missing predictor values, imputed by panImpute
set.seed(2024)
J <- 60; nj <- 12
g <- rep(1:J, each = nj)
u0 <- rnorm(J, 0, 1); u1 <- rnorm(J, 0, 0.5)
x <- rnorm(J * nj)
y <- 1 + 0.5 * x + u0[g] + u1[g] * x + rnorm(J * nj)
x[runif(J * nj) < 0.25] <- NA
sim <- data.frame(y = y, x = x, g = g)
imp <- panImpute(sim, formula = x ~ 1 + y + (1 | g), n.burn = 2000, n.iter = 100, m = 5, seed = 17,
                 silent = TRUE)
il <- mitmlComplete(imp, "all")
long <- do.call(rbind, lapply(seq_along(il), function(i) cbind(.imp = i, il[[i]])))
write.csv(long, file.path(out_dir, "pool_vc_rs_implist.csv"), row.names = FALSE)
rs <- lapply(il, function(d) { d$g <- factor(d$g); one_fit(y ~ x + (1 + x | g), d, TRUE) })
cases$sim_rs <- list(formula = "y ~ x + (1 + x | g)", data = "pool_vc_rs_implist.csv", REML = TRUE,
                     fits = unname(rs), pooled = pool(unname(rs)))

out <- list(cases = cases, r_versions = r_versions(c("lme4", "numDeriv", "mitml", "jsonlite")))
write_json(out, file.path(out_dir, "pool_vc_ref.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
