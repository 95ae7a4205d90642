# Files written by R's mitml, for pymitml's readers (tests/test_io.py):
#   io_mitml_files/mplus_imp{1..3}.dat, mplus_implist.dat, mplus_imp.inp, mplus_imp.log  (write.mitmlMplus)
#   io_mitml_files/mitml.sav                                                           (write.mitmlSAV)
# and the values they hold, io_mitml_files_ref.json.
# Run from the repository root: Rscript r_compat/io_mitml_files.R
suppressPackageStartupMessages({library(mitml); library(jsonlite)})
out <- file.path("r_compat", "io_mitml_files")
dir.create(out, showWarnings = FALSE)
set.seed(42)
n <- 10; m <- 3
base <- data.frame(id = rep(1:5, each = 2), y = round(rnorm(n), 4),
                   sex = factor(sample(c("male", "female"), n, TRUE), levels = c("male", "female")),
                   z = round(runif(n), 3))
imps <- lapply(seq_len(m), function(k) {
  d <- base
  d$y[c(2, 5)] <- round(rnorm(2), 4)
  d$sex[c(3, 8)] <- c("female", "male")[(k + 0:1) %% 2 + 1]
  d
})
x <- as.mitml.list(imps)
old <- setwd(out)
write.mitmlMplus(x, "mplus_imp", na.value = -999)
write.mitmlSAV(x, "mitml.sav")
setwd(old)
ref <- list(m = m, names = names(base), sex_levels = levels(base$sex),
            y = lapply(imps, function(d) d$y), sex = lapply(imps, function(d) as.character(d$sex)))
source(file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)[1])), "_versions.R"))
ref$r_versions <- r_versions(c("jsonlite", "mitml"))
writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           file.path("r_compat", "io_mitml_files_ref.json"))
