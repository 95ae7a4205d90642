# Reference fits of lme4::lmer with several random-effect terms, weights, offsets, transformed
# responses and rank-deficient designs, for pymitml's general lmer path (tests/test_lmer_multi.py).
#
# Reads ddf_penicillin.csv, ddf_pastes.csv, ddf_sleepstudy.csv (written by ddf_ref.R: lme4's
# Penicillin, Pastes and sleepstudy) and writes, next to this script:
#   lmer_multi_sim.csv   simulated crossed data (g: 40 levels crossed with h: 15; x, a 3-level
#                        factor f, prior weights w)
#   lmer_multi_ref.json  per case: theta, fixed effects, SEs, sigma, logLik, ML deviance, REML
#                        criterion, conditional modes b (getME "b"), VarCorr; each model fitted
#                        with tight BOBYQA tolerances (rhoend 1e-12) and, for the likelihood
#                        comparison, with lme4's default control ("default_loglik").
#   InstEval (crossed: s 2972 x d 1128 x dept 14, 73,421 rows) is fitted by ML with tolerances
#   1e-10 and with the default control, whose time is stored under "instEval_seconds".
# Run from the repository root:  Rscript r_compat/lmer_multi_ref.R   (about two minutes)
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "_versions.R"))

pen <- read.csv(file.path(here, "ddf_penicillin.csv"))
pas <- read.csv(file.path(here, "ddf_pastes.csv"))
sleep <- read.csv(file.path(here, "ddf_sleepstudy.csv"))
set.seed(20261203)
g <- sprintf("g%02d", sample(1:40, 900, replace = TRUE))
h <- sprintf("h%02d", sample(1:15, 900, replace = TRUE))
x <- rnorm(900)
f <- factor(sample(c("a", "b", "c"), 900, replace = TRUE))
ug <- rnorm(40); sg <- rnorm(40, sd = 0.5); uh <- rnorm(15, sd = 0.7)
uf <- matrix(rnorm(45, sd = 0.6), 15, 3)
gi <- as.integer(factor(g)); hi <- as.integer(factor(h))
w <- runif(900, 0.5, 2)
y <- 1 + 0.5 * x + 0.3 * (f == "b") + ug[gi] + sg[gi] * x + uh[hi] + uf[cbind(hi, as.integer(f))] +
  rnorm(900) / sqrt(w)
sim <- data.frame(y = y, x = x, x2 = 2 * x + 1, f = f, g = g, h = h, w = w, pos = exp(y / 4))
write.csv(sim, file.path(here, "lmer_multi_sim.csv"), row.names = FALSE)
sim <- read.csv(file.path(here, "lmer_multi_sim.csv"), stringsAsFactors = TRUE)
sleep$w <- 1 + (seq_len(nrow(sleep)) %% 3) / 2

tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
cases <- list(
  penicillin = list(f = diameter ~ 1 + (1 | plate) + (1 | sample), d = pen),
  pastes = list(f = strength ~ 1 + (1 | batch/cask), d = pas),
  pastes_interaction = list(f = strength ~ 1 + (1 | batch) + (1 | cask:batch), d = pas),
  sleep_uncorrelated = list(f = Reaction ~ Days + (Days || Subject), d = sleep),
  sleep_weights = list(f = Reaction ~ Days + (Days | Subject), d = sleep, w = "w"),
  sleep_log_offset = list(f = log(Reaction) ~ Days + offset(Days / 100) + (1 | Subject), d = sleep),
  crossed_slope = list(f = y ~ x + f + (1 + x | g) + (1 | h), d = sim),
  crossed_factor = list(f = y ~ x + (1 | g) + (0 + f | h), d = sim),
  crossed_weights = list(f = y ~ x + f + (1 | g) + (1 | h), d = sim, w = "w"),
  interaction_group = list(f = y ~ x + (1 | g:h), d = sim),
  rank_deficient = list(f = y ~ x + x2 + (1 | g) + (1 | h), d = sim),
  log_response = list(f = log(pos) ~ x + (1 | g) + (1 | h), d = sim)
)
one <- function(fit) {
  vc <- as.data.frame(VarCorr(fit))
  list(theta = unname(getME(fit, "theta")), beta = unname(fixef(fit)), beta_names = names(fixef(fit)),
       se = unname(sqrt(diag(as.matrix(vcov(fit))))), sigma = sigma(fit),
       loglik = as.numeric(logLik(fit)), deviance_ml = unname(deviance(refitML(fit))),
       reml = if (isREML(fit)) unname(REMLcrit(fit)) else NULL,
       b = as.numeric(getME(fit, "b")), vc_grp = vc$grp, vc_vcov = vc$vcov,
       fitted = unname(fitted(fit))[1:10], resid = unname(residuals(fit))[1:10])
}
out <- list()
for (nm in names(cases)) for (reml in c(TRUE, FALSE)) {
  cs <- cases[[nm]]
  wts <- if (is.null(cs$w)) NULL else cs$d[[cs$w]]
  environment(cs$f) <- environment()
  fit <- suppressMessages(lmer(cs$f, cs$d, REML = reml, weights = wts, control = tight))
  dflt <- suppressMessages(lmer(cs$f, cs$d, REML = reml, weights = wts))
  res <- one(fit)
  res$default_loglik <- as.numeric(logLik(dflt))
  res$formula <- paste(deparse(cs$f), collapse = "")
  out[[paste0(nm, if (reml) "_reml" else "_ml")]] <- res
}
fi <- y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)
t0 <- proc.time()[["elapsed"]]
dflt <- lmer(fi, InstEval, REML = FALSE)
out$instEval_seconds <- proc.time()[["elapsed"]] - t0
fit <- lmer(fi, InstEval, REML = FALSE,
            control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5)))
res <- one(fit)
res$b <- NULL
res$default_loglik <- as.numeric(logLik(dflt))
out$instEval_ml <- res
out$r_versions <- r_versions(c("lme4", "Matrix", "jsonlite"))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null"), file.path(here, "lmer_multi_ref.json"))
