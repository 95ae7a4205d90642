# Reference numbers for pymitml.diagnostics / pymitml.missing (tests/test_diagnostics.py,
# tests/test_missing.py).  Run from the repository root:  Rscript r_compat/diag_summary.R
# Writes r_compat/diag_summary_ref.json: the chains of small panImpute / jomoImpute runs on
# mitml's studentratings and
# leadership, mitml's summary() numbers on those chains (Rhat, goodness of
# approximation, autocorrelations), the text statistics of plot.mitml for one parameter,
# a Gelman-Rubin statistic across three chains, and mice::md.pattern of studentratings and
# leadership; and the two data sets as CSV (diag_studentratings.csv, diag_leadership.csv).
suppressPackageStartupMessages({library(mitml); library(jsonlite); library(mice)})
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
data(studentratings)

arr <- function(a) list(dim = dim(a), values = as.vector(a))   # column-major values
chains <- function(p) lapply(p, arr)
conv <- function(s) lapply(s$conv, function(m) as.data.frame(m))

run_case <- function(imp, n.Rhat = 3, burnin = TRUE) {
  s <- summary(imp, n.Rhat = n.Rhat, autocorrelation = TRUE, goodness.of.appr = TRUE)
  list(n_iter = imp$iter$iter, n_burn = imp$iter$burn, m = imp$iter$m, n_Rhat = n.Rhat,
       groups = as.character(unique(attr(imp$data, "group"))),
       par_imputation = chains(imp$par.imputation),
       par_burnin = if (burnin) chains(imp$par.burnin) else NULL,
       conv = conv(s),
       missing_rates = as.list(s$missing.rates),
       printout = capture.output(print(s)))
}

f1 <- ReadDis + SES ~ 1 + CognAbility + (1|ID)
imp1 <- panImpute(studentratings, formula = f1, n.burn = 200, n.iter = 10, m = 5, seed = 123,
                  silent = TRUE)
imp2 <- panImpute(studentratings, formula = ReadDis + SES ~ 1 + CognAbility + (1 + CognAbility|ID),
                  group = "FedState", n.burn = 200, n.iter = 7, m = 4, seed = 42, silent = TRUE)
data(leadership)
imp3 <- jomoImpute(leadership,
                   formula = list(JOBSAT + NEGLEAD + WLOAD ~ 1 + (1|GRPID), COHES ~ 1),
                   random.L1 = "full", n.burn = 100, n.iter = 5, m = 4, seed = 7, silent = TRUE)

out <- list(
  pan = run_case(imp1),
  pan_group = run_case(imp2, n.Rhat = 4),
  jomo_full = run_case(imp3, burnin = FALSE)
)

# Gelman-Rubin across three chains (three seeds): mitml's formula with the chains as segments
imps <- list(imp1,
             panImpute(studentratings, formula = f1, n.burn = 200, n.iter = 10, m = 5, seed = 456, silent = TRUE),
             panImpute(studentratings, formula = f1, n.burn = 200, n.iter = 10, m = 5, seed = 789, silent = TRUE))
across <- list()
for (pp in c("beta", "psi", "sigma")) {
  d <- dim(imp1$par.imputation[[pp]])
  r <- array(NA_real_, d[c(1, 2, 4)])
  for (i in 1:d[1]) for (j in 1:d[2]) for (g in 1:d[4]) {
    x <- unlist(lapply(imps, function(o) o$par.imputation[[pp]][i, j, , g]))
    r[i, j, g] <- mitml:::.GelmanRubin(x, 3)
  }
  across[[pp]] <- arr(r)
}
out$three_chains <- list(chains = lapply(imps, function(o) chains(o$par.imputation)), rhat = across)

# plot.mitml's text panel for Beta[1,1] (trace = "imputation", thin = 1, smooth = 3)
drw <- imp1$par.imputation$beta[1, 1, , 1]
lag <- 10
ac <- acf(drw, lag.max = lag + 2, plot = FALSE)
dd <- density(drw)
out$plot_stats <- list(
  draws = drw, EAP = mean(drw), MAP = dd$x[which.max(dd$y)], SD = sd(drw),
  q025 = unname(quantile(drw, 0.025)), q975 = unname(quantile(drw, 0.975)),
  Rhat = mitml:::.GelmanRubin(t(drw), 3), ACFk = mitml:::.smoothedACF(ac, k = lag, sd = 0.5),
  acf = as.vector(ac$acf), bw = dd$bw,
  moving_average = mitml:::.movingAverage(drw, floor(10 / 3), fill = TRUE),
  moving_average_all = mitml:::.movingAverage(
    c(imp1$par.burnin$beta[1, 1, , 1], drw), floor(10 / 3), fill = TRUE),
  ar_order = ar(drw, aic = TRUE)$order, ar_var_pred = ar(drw, aic = TRUE)$var.pred,
  ar_coef = ar(drw, aic = TRUE)$ar)

# mice's missing-data pattern of studentratings
mdp <- function(d) {
  mp <- md.pattern(d, plot = FALSE)
  list(matrix = unname(mp), rownames = rownames(mp), colnames = colnames(mp))
}
out$md_pattern <- mdp(studentratings)
out$md_pattern_leadership <- mdp(leadership)

# the data themselves, for tests that run without R
write.csv(studentratings, file.path(here, "diag_studentratings.csv"), row.names = FALSE)
write.csv(leadership, file.path(here, "diag_leadership.csv"), row.names = FALSE)

source(file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)[1])), "_versions.R"))
out$r_versions <- r_versions(c("jomo", "jsonlite", "mice", "mitml", "pan"))
write_json(out, file.path(here, "diag_summary_ref.json"), digits = NA, auto_unbox = TRUE,
           pretty = FALSE, na = "string")
cat("wrote", file.path(here, "diag_summary_ref.json"), "\n")
