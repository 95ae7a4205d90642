# Reference for pymitml.pool_emmeans(..., pairwise = TRUE, adjust = "tukey") (and "bonferroni").
#
# 1. Complete data (imputation 1 of r_compat/pool_studentratings_m5.csv taken as a complete data
#    set): emmeans' own Tukey adjustment, pairs(emmeans(fit, specs, ...), adjust = "tukey") with
#    summary(infer = TRUE): estimates, SEs, intervals and p-values, with lmer.df = "asymptotic"
#    (df = Inf; m identical copies pooled in Python give B = 0 and Rubin's df = Inf, so the pooled
#    result must equal this) and with lmer.df = "satterthwaite" (df per contrast: checks the
#    adjustment step at finite df, per row, given R's df).
# 2. Pooled over the 5 imputations: emmeans per imputation (lmer.df = "asymptotic"), pairs with
#    adjust = "none", Rubin's rules by hand, then p = ptukey(sqrt(2) |t|, k, v, lower = FALSE) and
#    interval q_bar -/+ qtukey(level, k, v) / sqrt(2) SE with each contrast's Rubin df v (the
#    quantile by inverting ptukey to 1e-12; note that R's ptukey uses its infinite-df formula
#    for df > 25000).
#
# Run from the repository root:  Rscript r_compat/pool_emmeans_tukey.R
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(emmeans)
  library(jsonlite)
})
source("r_compat/_versions.R")
out_dir <- "r_compat"

sr <- read.csv(file.path(out_dir, "pool_studentratings_m5.csv"))
sr$ID <- factor(sr$ID)
sr$FedState <- factor(sr$FedState)
sr$Sex <- factor(sr$Sex)
frames <- lapply(1:5, function(i) sr[sr$.imp == i, ])

# summary columns: lower.CL / t.ratio with finite df, asymp.LCL / z.ratio with df = Inf
pick <- function(s, a, b) unname(if (!is.null(s[[a]])) s[[a]] else s[[b]])
tab <- function(s) {
  list(contrast = as.character(s$contrast), estimate = unname(s$estimate), SE = unname(s$SE),
       df = unname(s$df), lower = pick(s, "lower.CL", "asymp.LCL"),
       upper = pick(s, "upper.CL", "asymp.UCL"), t = pick(s, "t.ratio", "z.ratio"),
       p = unname(s$p.value))
}

complete <- function(formula, specs, at, d) {
  fit <- lmerTest::lmer(formula, data = d, REML = TRUE)
  out <- list()
  for (ddf in c("asymptotic", "satterthwaite")) {
    e <- emmeans(fit, specs, at = at, data = d, lmer.df = ddf)
    out[[ddf]] <- tab(summary(pairs(e, adjust = "tukey"), infer = TRUE))
    out[[paste0(ddf, "_bonferroni")]] <- tab(summary(pairs(e, adjust = "bonferroni"), infer = TRUE))
    out[[paste0(ddf, "_none")]] <- tab(summary(pairs(e, adjust = "none"), infer = TRUE))
  }
  out$k <- nrow(summary(emmeans(fit, specs, at = at, data = d, lmer.df = "asymptotic")))
  out
}

pooled <- function(formula, specs, at, level = 0.95) {
  per <- lapply(frames, function(d) {
    fit <- lmerTest::lmer(formula, data = d, REML = TRUE)
    e <- emmeans(fit, specs, at = at, data = d, lmer.df = "asymptotic")
    pr <- pairs(e, adjust = "none")
    list(est = unname(summary(pr)$estimate), V = as.matrix(vcov(pr)), k = nrow(summary(e)),
         contrast = as.character(summary(pr)$contrast))
  })
  m <- length(per)
  Q <- do.call(rbind, lapply(per, `[[`, "est"))
  qbar <- colMeans(Q)
  ubar <- Reduce(`+`, lapply(per, `[[`, "V")) / m
  B <- cov(Q)
  se <- sqrt(diag(ubar + (1 + 1 / m) * B))
  r <- (1 + 1 / m) * diag(B) / diag(ubar)
  v <- (m - 1) * (1 + 1 / r)^2
  k <- per[[1]]$k
  tt <- qbar / se
  # qtukey is accurate to about 4 decimals only: invert ptukey to 1e-12 instead
  crit <- sapply(v, function(df) uniroot(function(q) ptukey(q, k, df) - level, c(1, 10),
                                         tol = 1e-13)$root) / sqrt(2)
  list(contrast = per[[1]]$contrast, k = k, estimate = unname(qbar), SE = unname(se),
       df = unname(v), lower = unname(qbar - crit * se), upper = unname(qbar + crit * se),
       t = unname(tt), p = unname(ptukey(sqrt(2) * abs(tt), k, v, lower.tail = FALSE)))
}

specs_cases <- list(
  cells = list(formula = ReadAchiev ~ FedState * Sex + ReadDis + (1 | ID),
               specs = c("FedState", "Sex"), at = list(ReadDis = 2.5)),
  numeric_at = list(formula = ReadAchiev ~ ReadDis + SES + I(SES^2) + Sex + (1 | ID),
                    specs = "ReadDis", at = list(ReadDis = c(1, 2, 3)))
)
cases <- lapply(specs_cases, function(cs) {
  list(formula = paste(deparse(cs$formula, width.cutoff = 500L), collapse = " "),
       specs = cs$specs, at = cs$at,
       complete = complete(cs$formula, cs$specs, cs$at, frames[[1]]),
       pooled = pooled(cs$formula, cs$specs, cs$at))
})

out <- list(cases = cases,
            r_versions = r_versions(c("lme4", "lmerTest", "emmeans", "jsonlite")))
write_json(out, file.path(out_dir, "pool_emmeans_tukey_ref.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
