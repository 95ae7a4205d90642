# testConstraints with parameter names that contain dots (mitml's Analysis vignette: "I.SES",
# "G.SES"). The per-imputation estimates and covariances are stored beside R's results, so the
# Python test pools exactly the same numbers (a deterministic check).
# Rscript r_compat/constraints_dotted.R  ->  r_compat/constraints_dotted_ref.json
suppressPackageStartupMessages({library(mitml); library(lme4); library(jsonlite)})
source(file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE))), "_versions.R"))

set.seed(2718)
J <- 30; n <- 8
ID <- rep(seq_len(J), each = n)
SES <- rnorm(J)[ID] + rnorm(J * n)
y <- 0.3 * SES + 0.5 * ave(SES, ID) + rnorm(J)[ID] + rnorm(J * n)
SES[sample(J * n, 40)] <- NA
dat <- data.frame(ID = ID, SES = SES, y = y)
imp <- panImpute(dat, formula = SES ~ 1 + y + (1 | ID), n.burn = 500, n.iter = 50, m = 5, seed = 11)
implist <- mitmlComplete(imp)
implist <- within(implist, {
  G.SES <- clusterMeans(SES, ID)
  I.SES <- SES - G.SES
})
fit <- with(implist, lmer(y ~ 1 + I.SES + G.SES + (1 | ID), REML = TRUE))
qhat <- lapply(fit, function(f) as.list(fixef(f)))
uhat <- lapply(fit, function(f) unname(as.matrix(vcov(f))))
res <- function(x) list(F = unname(x$test[1, "F.value"]), df1 = unname(x$test[1, "df1"]),
                        df2 = unname(x$test[1, "df2"]), p = unname(x$test[1, "P(>F)"]),
                        RIV = unname(x$test[1, "RIV"]), Qbar = unname(x$Qbar), T = unname(x$T))
out <- list(
  r_versions = r_versions(c("mitml", "lme4", "jsonlite")),
  names = names(fixef(fit[[1]])),
  qhat = qhat, uhat = uhat,
  both = res(testConstraints(fit, constraints = c("I.SES", "G.SES"))),
  difference = res(testConstraints(fit, constraints = "I.SES - G.SES")),
  nonlinear_D2 = res(testConstraints(fit, constraints = c("I.SES * G.SES", "exp(G.SES) - 1"),
                                     method = "D2"))
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE))),
                     "constraints_dotted_ref.json"))
