# Reference posterior summaries of mitml::panImpute on studentratings (used by tests/test_pan.py).
# Rscript r_compat/pan_studentratings.R  ->  r_compat/pan_studentratings_ref.json
suppressPackageStartupMessages(library(mitml))
data(studentratings)
sr <- studentratings
sr$CognC <- sr$CognAbility - mean(sr$CognAbility)
batch_mcse <- function(x, nb = 20) {
  b <- floor(length(x) / nb)
  m <- sapply(seq_len(nb), function(k) mean(x[((k - 1) * b + 1):(k * b)]))
  sd(m) / sqrt(nb)
}
models <- list(
  ri = list(f = ReadDis + SES ~ 1 + CognAbility + (1|ID), n = 20000),
  rs = list(f = ReadDis + SES ~ 1 + CognC + (1 + CognC|ID), n = 40000)
)
out <- list(mitml_version = as.character(packageVersion("mitml")),
            pan_version = as.character(packageVersion("pan")))
for (nm in names(models)) {
  mdl <- models[[nm]]
  imp <- panImpute(sr, formula = mdl$f, n.burn = 1000, n.iter = mdl$n, m = 1, seed = 2718, silent = TRUE)
  res <- list(formula = deparse(mdl$f), n_iter = mdl$n)
  for (b in c("beta", "psi", "sigma")) {
    a <- imp$par.imputation[[b]][, , , 1, drop = FALSE]
    d <- dim(a)
    res[[b]] <- list(
      mean = lapply(seq_len(d[1]), function(i) sapply(seq_len(d[2]), function(j) mean(a[i, j, , 1]))),
      mcse = lapply(seq_len(d[1]), function(i) sapply(seq_len(d[2]), function(j) batch_mcse(a[i, j, , 1])))
    )
  }
  out[[nm]] <- res
}
jsonlite_available <- requireNamespace("jsonlite", quietly = TRUE)
to_json <- function(x) {
  if (is.list(x)) {
    if (!is.null(names(x)) && all(names(x) != "")) {
      paste0("{", paste(sprintf('"%s": %s', names(x), sapply(x, to_json)), collapse = ", "), "}")
    } else paste0("[", paste(sapply(x, to_json), collapse = ", "), "]")
  } else if (is.character(x)) sprintf('"%s"', x)
  else if (length(x) == 1) sprintf("%.17g", x)
  else paste0("[", paste(sprintf("%.17g", x), collapse = ", "), "]")
}
source(file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)[1])), "_versions.R"))
out$r_versions <- r_versions(c("jsonlite", "mitml", "pan"))
writeLines(to_json(out), file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE))), "pan_studentratings_ref.json"))
