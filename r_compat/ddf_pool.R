# Pooled estimates with Satterthwaite / Kenward-Roger complete-data df (tests/test_pool_estimates.py):
# lmerTest fits on the m = 5 imputed studentratings data sets of r_compat/pool_studentratings_m5.csv,
# per-fit df (summary(fit, ddf = ...)), their mean per coefficient as df.com of
# mitml::testEstimates. Writes r_compat/ddf_pool_ref.json.
# Run from the repository root:  Rscript r_compat/ddf_pool.R
suppressPackageStartupMessages({library(lme4); library(lmerTest); library(pbkrtest); library(mitml); library(jsonlite)})
source("r_compat/_versions.R")
long <- read.csv("r_compat/pool_studentratings_m5.csv")
tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15, xtol_rel = 1e-14,
                                    ftol_rel = 1e-15, maxeval = 1e6))
form <- "ReadAchiev ~ ReadDis + SES + (1 | ID)"
fits <- lapply(split(long, long$.imp), function(d)
  lmerTest::lmer(as.formula(form), data = d, REML = TRUE, control = tight))
out <- list(formula = form)
for (ddf in c("Satterthwaite", "Kenward-Roger")) {
  df <- t(sapply(fits, function(f) summary(f, ddf = ddf)$coefficients[, "df"]))
  dfc <- colMeans(df)
  est <- testEstimates(lapply(fits, function(f) as(f, "lmerMod")), df.com = dfc)
  tab <- est$estimates
  out[[ddf]] <- list(df = unname(df), df_com = unname(dfc), names = rownames(tab),
                     table = lapply(setNames(colnames(tab), colnames(tab)), function(cc) unname(tab[, cc])))
}
out$r_versions <- r_versions(c("lme4", "lmerTest", "pbkrtest", "mitml", "jsonlite"))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, matrix = "rowmajor"), "r_compat/ddf_pool_ref.json")
