# random.L1 (cluster-specific level-1 covariance matrices) on data simulated from the model itself,
# so that the truth is known: 200 clusters of 5 rows, Sigma_j ~ IW(8, Lambda) with
# E Sigma_j = [[1, .3], [.3, 1]], random intercepts with Psi = diag(.36, .36), nothing missing.
# Runs jomo's own sampler (jomo1ranconhr.MCMCchain, the engine of jomoImpute(random.L1 = ...)) and
# stores the data, the realised truth and jomo's posterior means for tests/test_jomo.py.
#   Rscript r_compat/jomo_hr_sim.R
suppressPackageStartupMessages({library(jomo); library(jsonlite)})
set.seed(2024)
J <- 200; n <- 5; a <- 8
Lam <- matrix(c(1, .3, .3, 1), 2) * (a - 3)
SJ <- lapply(1:J, function(j) solve(rWishart(1, a, solve(Lam))[, , 1]))  # Sigma_j ~ IW(a, Lam)
U <- matrix(rnorm(2 * J, sd = 0.6), J)
E <- do.call(rbind, lapply(1:J, function(j) matrix(rnorm(2 * n), n) %*% chol(SJ[[j]])))
id <- rep(1:J, each = n)
d <- data.frame(id = id, y = 1 + U[id, 1] + E[, 1], x = -1 + U[id, 2] + E[, 2])
write.csv(d, "r_compat/jomo_hr_sim.csv", row.names = FALSE)
N <- as.integer(Sys.getenv("JOMO_REF_N", "21000")); burn <- 1000
bm <- function(x, nb = 20) { b <- length(x) %/% nb; sd(colMeans(matrix(x[1:(b * nb)], b))) / sqrt(nb) }
set.seed(7)
t0 <- proc.time()[["elapsed"]]
fit <- jomo1ranconhr.MCMCchain(Y = d[, c("y", "x")], clus = d$id, nburn = N, a = 4, output = 0)
secs <- proc.time()[["elapsed"]] - t0
keep <- (burn + 1):N
om <- fit$collectomega[, , keep]  # (2 J) x 2 x iterations, cluster-major
sig_mean <- apply(array(om, c(2, J, 2, length(keep))), c(1, 3, 4), mean)  # average over clusters
summ <- function(x) list(mean = apply(x, 1:2, mean), mcse = apply(x, 1:2, bm))
res <- list(seconds = secs, n_iter = length(keep),
            truth = list(sigma_mean = Reduce(`+`, SJ) / J, psi = diag(0.36, 2), a = a),
            jomo = list(beta = summ(fit$collectbeta[, , keep, drop = FALSE]),
                        psi = summ(fit$collectcovu[, , keep, drop = FALSE]), sigma_mean = summ(sig_mean)))
source(file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)[1])), "_versions.R"))
res$r_versions <- r_versions(c("jomo", "jsonlite"))
write_json(res, "r_compat/jomo_hr_sim_ref.json", digits = 10, matrix = "rowmajor", auto_unbox = TRUE)
cat("seconds", secs, "\n")
