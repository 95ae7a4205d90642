# Reference for pymitml.pool_emmeans and pool_predictions: emmeans (and predict(re.form = NA))
# per imputation, pooled by Rubin's rules by hand.
#
# Data: the m = 5 studentratings imputations of r_compat/pool_studentratings_m5.csv. Per
# imputation: emmeans(fit, specs, at = ..., lmer.df = "asymptotic") (standard errors from
# vcov(fit)), vcov() of the grid, pairs(..., adjust = "none"), and the Satterthwaite df of each
# mean (lmer.df = "satterthwaite"). Pooled: q_bar, T = U_bar + (1 + 1/m) B, Rubin's df
# v_m = (m - 1)(1 + 1/r)^2, 95% intervals, p-values.
#
# Run from the repository root:  Rscript r_compat/pool_emmeans.R
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

rubin <- function(qhat, uhat, level = 0.95) {
  m <- length(qhat)
  Q <- do.call(rbind, qhat)
  qbar <- colMeans(Q)
  ubar <- Reduce(`+`, uhat) / m
  B <- cov(Q)
  Tm <- ubar + (1 + 1 / m) * B
  se <- sqrt(diag(Tm))
  r <- (1 + 1 / m) * diag(B) / diag(ubar)
  v <- (m - 1) * (1 + 1 / r)^2
  fac <- qt(1 - (1 - level) / 2, v)
  list(estimate = unname(qbar), se = unname(se), df = unname(v), lower = unname(qbar - fac * se),
       upper = unname(qbar + fac * se), p = unname(2 * pt(-abs(qbar / se), v)))
}

mat_rows <- function(M) unname(lapply(seq_len(nrow(M)), function(i) unname(M[i, ])))

case <- function(formula, specs, at = list()) {
  per <- lapply(frames, function(d) {
    fit <- lmerTest::lmer(formula, data = d, REML = TRUE)
    e <- emmeans(fit, specs, at = at, data = d, lmer.df = "asymptotic")
    s <- summary(e)
    es <- summary(emmeans(fit, specs, at = at, data = d, lmer.df = "satterthwaite"))
    pr <- pairs(e, adjust = "none")
    list(emmean = unname(s$emmean), SE = unname(s$SE), V = mat_rows(vcov(e)),
         beta = unname(fixef(fit)), vcov_beta = mat_rows(as.matrix(vcov(fit))),
         df_satterthwaite = unname(es$df),
         contrast = as.character(summary(pr)$contrast), estimate = unname(summary(pr)$estimate),
         Vc = mat_rows(vcov(pr)))
  })
  d1 <- frames[[1]]
  s1 <- summary(emmeans(lmerTest::lmer(formula, data = d1), specs, at = at, data = d1,
                        lmer.df = "asymptotic"))
  list(formula = paste(deparse(formula, width.cutoff = 500L), collapse = " "), specs = specs, at = at,
       labels = lapply(specs, function(v) as.character(s1[[v]])),
       per_imputation = per,
       pooled = rubin(lapply(per, `[[`, "emmean"), lapply(per, function(p) do.call(rbind, p$V))),
       pooled_contrasts = rubin(lapply(per, `[[`, "estimate"),
                                lapply(per, function(p) do.call(rbind, p$Vc))),
       contrast = per[[1]]$contrast)
}

cases <- list(
  fedstate = case(ReadAchiev ~ FedState * Sex + ReadDis + (1 | ID), "FedState"),
  cells_at = case(ReadAchiev ~ FedState * Sex + ReadDis + (1 | ID), c("FedState", "Sex"),
                  list(ReadDis = 2.5)),
  several_terms = case(ReadAchiev ~ FedState + Sex + ReadDis + (1 | ID) + (0 + Cogn10 | ID),
                       "FedState"),
  numeric_at = case(ReadAchiev ~ ReadDis + SES + I(SES^2) + Sex + (1 | ID), "ReadDis",
                    list(ReadDis = c(1, 2, 3)))
)
# population-level predictions for new data, predict(fit, newdata, re.form = NA), SE from
# X_new vcov(fit) X_new'
newdata <- data.frame(FedState = c("B", "SH", "SH"), Sex = c("Girl", "Boy", "Girl"),
                      ReadDis = c(1.5, 2.5, 3.5))
pred_formula <- ReadAchiev ~ FedState * Sex + ReadDis + (1 | ID)
pred_per <- lapply(frames, function(d) {
  fit <- lme4::lmer(pred_formula, data = d, REML = TRUE)
  nd <- newdata
  nd$FedState <- factor(nd$FedState, levels = levels(d$FedState))
  nd$Sex <- factor(nd$Sex, levels = levels(d$Sex))
  X <- model.matrix(delete.response(terms(lme4::nobars(pred_formula))), nd)
  list(fit = unname(predict(fit, newdata = nd, re.form = NA)),
       V = mat_rows(X %*% as.matrix(vcov(fit)) %*% t(X)))
})
predictions <- list(formula = deparse(pred_formula), newdata = newdata, per_imputation = pred_per,
                    pooled = rubin(lapply(pred_per, `[[`, "fit"),
                                   lapply(pred_per, function(p) do.call(rbind, p$V))))

out <- list(cases = cases, predictions = predictions, r_versions = r_versions(c("lme4", "lmerTest", "emmeans", "jsonlite")))
write_json(out, file.path(out_dir, "pool_emmeans_ref.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
