# Reference runs of mice's polr and polyreg (used by tests/test_fcs_r.py and test_fcs_steps.py).
# Rscript r_compat/fcs_cat_ref.R  ->  r_compat/fcs_cat_ref.json, r_compat/fcs_cat_sim.csv,
#                                     r_compat/fcs_cat_nhanes2.csv, r_compat/fcs_cat_sep.csv
# 1. Imputation runs (many imputations, so Monte Carlo error is small): per imputation the shares
#    of the imputed cells' categories (overall and among rows with a predictor above 0) and the
#    coefficients of a linear model fitted to the completed data (treatment contrasts).
#    "sim": an ordered factor o (polr) and an unordered factor u (polyreg), MAR on x and z, with
#    an ordered complete predictor f (contr.poly coding in mice's design matrix);
#    "nhanes2": mice's nhanes2 with hyp by polyreg, bmi and chl by pmm.
# 2. Deterministic fits: mice's augmented data (mice:::augment) of one target and the fits of
#    MASS::polr and nnet::multinom on it, run to tight tolerances (mice's defaults stop earlier).
source("r_compat/_versions.R")
suppressPackageStartupMessages({library(mice); library(MASS); library(nnet); library(jsonlite)})
M <- as.integer(Sys.getenv("FCS_CAT_M", "200"))
MAXIT <- as.integer(Sys.getenv("FCS_CAT_MAXIT", "10"))

set.seed(20261204)
N <- 800
x <- rnorm(N); z <- rnorm(N)
f <- cut(z + rnorm(N), c(-Inf, -0.5, 0.5, Inf), labels = c("lo", "mid", "hi"), ordered_result = TRUE)
o <- cut(0.9 * x - 0.4 * z + rlogis(N), c(-Inf, -1, 0, 1.2, Inf), labels = c("a", "b", "c", "d"),
         ordered_result = TRUE)
eta <- cbind(0, 0.3 + 0.8 * x + 0.4 * (as.integer(o) - 2.5), -0.2 - 0.6 * z + 0.5 * (f == "hi"))
pu <- exp(eta) / rowSums(exp(eta))
u <- factor(c("p", "q", "r")[apply(pu, 1, function(p) sample(3, 1, prob = p))])
y <- 1 + 0.5 * x - 0.3 * z + 0.4 * as.integer(o) + c(0, 0.5, -0.5)[as.integer(u)] + rnorm(N)
sim <- data.frame(x = x, z = z, f = f, o = o, u = u, y = y)
sim$o[runif(N) < plogis(-1 + 0.8 * x)] <- NA
sim$u[runif(N) < plogis(-1.3 - 0.8 * z)] <- NA
write.csv(sim, "r_compat/fcs_cat_sim.csv", row.names = FALSE, na = "")
data(nhanes2)
write.csv(nhanes2, "r_compat/fcs_cat_nhanes2.csv", row.names = FALSE, na = "")

shares <- function(v, lev, sel, tag) {
  out <- lapply(lev, function(l) if (any(sel)) mean(v[sel] == l) else NA)
  setNames(out, paste0(tag, ":", lev))
}
coefs <- function(fit, names) setNames(as.list(unname(coef(fit))), paste0("coef:", names))

quant_sim <- function(d, data) {
  mo <- is.na(data$o); mu <- is.na(data$u)
  d$o2 <- factor(d$o, ordered = FALSE)
  fit <- lm(y ~ x + z + o2 + u, data = d)
  c(shares(d$o, levels(d$o), mo, "o"), shares(d$o, levels(d$o), mo & d$x > 0, "o|x>0"),
    shares(d$u, levels(d$u), mu, "u"), shares(d$u, levels(d$u), mu & d$z > 0, "u|z>0"),
    shares(d$u, levels(d$u), mu & d$o %in% c("c", "d"), "u|o>b"),
    coefs(fit, c("(Intercept)", "x", "z", "o:b", "o:c", "o:d", "u:q", "u:r")))
}
quant_nh <- function(d, data) {
  mh <- is.na(data$hyp)
  fit <- lm(chl ~ age + hyp + bmi, data = d)
  c(shares(d$hyp, levels(d$hyp), mh, "hyp"),
    list("mean:bmi" = mean(d$bmi[is.na(data$bmi)]), "mean:chl" = mean(d$chl[is.na(data$chl)])),
    coefs(fit, c("(Intercept)", "age:40-59", "age:60-99", "hyp:yes", "bmi")))
}
run <- function(data, method, quant, seed) {
  t0 <- proc.time()[["elapsed"]]
  imp <- mice(data, method = method, m = M, maxit = MAXIT, seed = seed, printFlag = FALSE)
  secs <- proc.time()[["elapsed"]] - t0
  list(method = as.list(imp$method), pred = imp$predictorMatrix, m = M, maxit = MAXIT,
       seconds = secs, per = lapply(seq_len(M), function(i) quant(complete(imp, i), data)))
}
runs <- list(
  sim = run(sim, c(x = "", z = "", f = "", o = "polr", u = "polyreg", y = ""), quant_sim, 11),
  nhanes2 = run(nhanes2, c(age = "", bmi = "pmm", hyp = "polyreg", chl = "pmm"), quant_nh, 12)
)

# ------------------------------------------------------------------ deterministic fits
sep <- data.frame(x = round(seq(-2, 2, length.out = 30), 3), w = rep(c(0, 1, 1), 10))
sep$o <- cut(sep$x, c(-Inf, -0.7, 0.7, Inf), labels = c("a", "b", "c"), ordered_result = TRUE)
sep$o[c(4, 15, 26)] <- NA                     # perfectly separated by x where observed
write.csv(sep, "r_compat/fcs_cat_sep.csv", row.names = FALSE, na = "")

tight_polr <- list(reltol = 1e-15, maxit = 10000)
fit_case <- function(data, target, rhs) {
  y <- data[[target]]; ry <- !is.na(y)
  x <- model.matrix(as.formula(paste("~", rhs)), data)[, -1, drop = FALSE]
  aug <- mice:::augment(y, ry, x, !ry)
  xa <- as.matrix(aug$x); ya <- aug$y; wa <- aug$w; rya <- aug$ry; wya <- aug$wy
  xy <- cbind.data.frame(y = ya, x = xa)
  fit_rows <- xy[rya, , drop = FALSE]
  new <- xy[wya, , drop = FALSE]
  res <- list(target = target, rhs = rhs, x_names = colnames(x),
              x_aug = unname(xa[-seq_along(y), , drop = FALSE]),
              y_aug = as.integer(ya[-seq_along(y)]) - 1L, w_aug = wa[-seq_along(y)])
  if (is.ordered(y)) {
    yo <- factor(ya, levels = levels(y), ordered = TRUE)
    fit_rows$y <- yo[rya]
    p <- polr(formula(xy), data = fit_rows, weights = wa[rya], control = tight_polr)
    p0 <- polr(formula(xy), data = fit_rows, weights = wa[rya])  # mice's (default) control
    res$polr <- list(beta = unname(coef(p)), zeta = unname(p$zeta), loglik = as.numeric(logLik(p)),
                     beta_default = unname(coef(p0)), zeta_default = unname(p0$zeta),
                     probs = unname(predict(p, new, type = "probs")))
  }
  mn <- multinom(formula(xy), data = fit_rows, weights = wa[rya], maxit = 100000, trace = FALSE,
                 reltol = 1e-15, abstol = 1e-300)
  mn0 <- multinom(formula(xy), data = fit_rows, weights = wa[rya], maxit = 100, trace = FALSE)
  res$multinom <- list(coef = unname(coef(mn)), coef_default = unname(coef(mn0)),
                       loglik = as.numeric(logLik(mn)),
                       probs = unname(predict(mn, new, type = "probs")))
  res
}
fits <- list(
  sim_o = fit_case(sim, "o", "x + z + f + y"),
  sim_u = fit_case(sim, "u", "x + z + f + y"),
  sep_o = fit_case(sep, "o", "x + w")
)
out <- list(r_versions = r_versions(c("mice", "MASS", "nnet", "jsonlite")), M = M, maxit = MAXIT,
            runs = runs, fits = fits)
writeLines(toJSON(out, auto_unbox = TRUE, digits = 15, pretty = FALSE, na = "null"),
           "r_compat/fcs_cat_ref.json")
