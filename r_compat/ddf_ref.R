# Reference degrees of freedom for pymitml.lmm.ddf (tests/test_ddf.py): lmerTest's Satterthwaite
# and pbkrtest's Kenward-Roger (through lmerTest's summary and contest) on lme4 fits made with
# tight optimiser tolerances. Writes r_compat/ddf_sleepstudy.csv, ddf_penicillin.csv,
# ddf_pastes.csv and ddf_ref.json (per case: theta, sigma, coefficient tables, contrast tests,
# and for multi-term models X, y and Z's triplets in lme4's column order with the term layout).
# Run from the repository root:  Rscript r_compat/ddf_ref.R
suppressPackageStartupMessages({library(lme4); library(lmerTest); library(pbkrtest); library(jsonlite)})
source("r_compat/_versions.R")
here <- "r_compat"
data(sleepstudy, Penicillin, Pastes, package = "lme4")
write.csv(sleepstudy, file.path(here, "ddf_sleepstudy.csv"), row.names = FALSE)
write.csv(Penicillin, file.path(here, "ddf_penicillin.csv"), row.names = FALSE)
write.csv(Pastes, file.path(here, "ddf_pastes.csv"), row.names = FALSE)
sleep <- read.csv(file.path(here, "ddf_sleepstudy.csv"))
sr <- read.csv(file.path(here, "lmer_studentratings.csv"))
sim <- read.csv(file.path(here, "lmer_sim.csv"))
pen <- read.csv(file.path(here, "ddf_penicillin.csv"))
pas <- read.csv(file.path(here, "ddf_pastes.csv"))
tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15, xtol_rel = 1e-14,
                                    ftol_rel = 1e-15, maxeval = 1e6))
cases <- list(
  list(name = "sleep_rs", data = "sleep", formula = "Reaction ~ Days + (Days | Subject)", REML = TRUE,
       L = list(diag(2), rbind(c(1, 5)), rbind(c(1, 0), c(1, 1), c(2, 1)))),
  list(name = "sr_ri", data = "sr", formula = "ReadAchiev ~ 1 + ReadDis + (1 | ID)", REML = TRUE,
       L = list(diag(2))),
  list(name = "sr_factor", data = "sr", formula = "ReadAchiev ~ FedState * Sex + SES + (1 | ID)",
       REML = TRUE, L = list(cbind(0, diag(4)), rbind(c(0, 0, 1, 0, 1)))),
  list(name = "sim_rs_factor", data = "sim", formula = "y ~ x + w + grp + (1 + x | g)", REML = TRUE,
       L = list(cbind(0, 0, 0, diag(2)))),
  list(name = "sim_rs_ml", data = "sim", formula = "y ~ x + w + (1 + x | g)", REML = FALSE,
       L = list(cbind(0, diag(2)))),
  list(name = "sleep_uncorr", data = "sleep", formula = "Reaction ~ Days + (Days || Subject)",
       REML = TRUE, L = list(diag(2)), multi = TRUE),
  list(name = "penicillin", data = "pen", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)",
       REML = TRUE, L = list(matrix(1, 1, 1)), multi = TRUE),
  list(name = "pastes", data = "pas", formula = "strength ~ 1 + (1 | batch/cask)", REML = TRUE,
       L = list(matrix(1, 1, 1)), multi = TRUE)
)
tab_json <- function(tab) {
  out <- list(names = rownames(tab))
  for (cc in colnames(tab)) out[[cc]] <- unname(tab[, cc])
  out
}
out <- list()
for (cs in cases) {
  d <- switch(cs$data, sleep = sleep, sr = sr, sim = sim, pen = pen, pas = pas)
  fit <- lmerTest::lmer(as.formula(cs$formula), data = d, REML = cs$REML, control = tight)
  res <- list(formula = cs$formula, data = cs$data, REML = cs$REML,
              theta = unname(getME(fit, "theta")), sigma = sigma(fit),
              fixef = unname(fixef(fit)), fixef_names = names(fixef(fit)),
              satterthwaite = tab_json(summary(fit, ddf = "Satterthwaite")$coefficients),
              vcov_varpar = fit@vcov_varpar,
              contrasts = lapply(cs$L, function(L) {
                r <- list(L = L, satterthwaite = as.list(contest(fit, L, ddf = "Satterthwaite")))
                if (cs$REML) r$kenward_roger <- as.list(contest(fit, L, ddf = "Kenward-Roger"))
                r
              }))
  if (cs$REML) {
    res$kenward_roger <- tab_json(summary(fit, ddf = "Kenward-Roger")$coefficients)
    res$vcov_adj <- as.matrix(vcovAdj(fit))
  }
  if (isTRUE(cs$multi)) {
    Z <- as(getME(fit, "Z"), "TsparseMatrix")
    res$X <- unname(getME(fit, "X")); res$y <- unname(getME(fit, "y"))
    res$Z <- list(i = Z@i, j = Z@j, x = Z@x, dim = dim(Z))
    res$terms <- list(nc = unname(sapply(getME(fit, "cnms"), length)),
                      n_cols = unname(diff(getME(fit, "Gp"))))
  }
  out[[cs$name]] <- res
}
out$r_versions <- r_versions(c("lme4", "lmerTest", "pbkrtest", "numDeriv", "jsonlite"))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, matrix = "rowmajor"), file.path(here, "ddf_ref.json"))
