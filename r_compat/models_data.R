# Completed data for the pooled model tests (pymitml.pool.model_tests & co.).
# mitml::panImpute on studentratings, m = 5, fixed seed; written in long format with the
# imputation number in column `.imp` (1..5). Run from the repository root:
#   Rscript r_compat/models_data.R
suppressPackageStartupMessages(library(mitml))
data(studentratings)
d <- studentratings[, c("ID", "FedState", "Sex", "ReadAchiev", "ReadDis", "SES", "CognAbility")]
d$Girl <- as.numeric(d$Sex == "Girl")
d$Sex <- NULL
d$FedState <- as.character(d$FedState)
fml <- ReadDis + SES ~ 1 + ReadAchiev + CognAbility + (1|ID)
imp <- panImpute(d, formula = fml, n.burn = 2000, n.iter = 100, m = 5, seed = 4711, silent = TRUE)
implist <- mitmlComplete(imp, "all")
# rescaled after imputation so that the mixed models below are well conditioned
implist <- lapply(implist, function(x) {
  data.frame(ID = x$ID, FedState = x$FedState, Girl = x$Girl, Achiev = x$ReadAchiev / 100,
             ReadDis = x$ReadDis, SES = x$SES / 10, Cogn = (x$CognAbility - 50) / 10)
})
long <- do.call(rbind, lapply(seq_along(implist), function(i) cbind(.imp = i, implist[[i]])))
write.csv(long, "r_compat/models_implist.csv", row.names = FALSE)

# leadership (mitml's data with a real random slope of NEGLEAD): jomoImpute with the level-2
# variable COHES, m = 5, fixed seed; WLOAD coded 0 (low) / 1 (high) after imputation.
data(leadership)
fml2 <- list(JOBSAT + NEGLEAD + WLOAD ~ 1 + (1|GRPID), COHES ~ 1)
imp2 <- jomoImpute(leadership, formula = fml2, n.burn = 1000, n.iter = 100, m = 5, seed = 815,
                   silent = TRUE)
implist2 <- lapply(mitmlComplete(imp2, "all"), function(x) {
  data.frame(GRPID = x$GRPID, JOBSAT = x$JOBSAT, NEGLEAD = x$NEGLEAD,
             WLOAD = as.numeric(x$WLOAD == "high"), COHES = x$COHES)
})
long2 <- do.call(rbind, lapply(seq_along(implist2), function(i) cbind(.imp = i, implist2[[i]])))
write.csv(long2, "r_compat/models_leadership.csv", row.names = FALSE)
