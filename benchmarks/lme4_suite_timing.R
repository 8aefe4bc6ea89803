# Times lme4 on the reference suites (tests/reference/lme4_suite.json, glmer_suite.json):
# every fit with lme4's default control, as the suite's default fit was made.
#
#   Rscript benchmarks/lme4_suite_timing.R [--suite lmm|glmm|all] [--reps N] [--slow-reps N]
#                                          [--only id1,id2,...]
#
# From the repository root; needs no network. Each fit runs once as a warm-up, then --reps
# times (default 5, or $REPS); a fit whose warm-up took over 2 s runs --slow-reps times
# (default 2, or $SLOW_REPS). The data are read once per data set, outside the timing; the
# timed call is lmer()/glmer()/glmer.nb() itself (formula parsing, model frame, optimization,
# convergence checks). Prints one JSON object to stdout:
#   {"suite": ..., "reps": ..., "versions": {...},
#    "fits": {"<id>": {"median_ms": ., "min_ms": ., "max_ms": ., "n": ., "warmup_ms": .}, ...}}
# Progress goes to stderr.
source("tests/reference/suite_common.R")

args <- commandArgs(trailingOnly = TRUE)
opt <- function(name, default) {
  i <- match(paste0("--", name), args)
  if (is.na(i) || i == length(args)) default else args[[i + 1]]
}
suite <- opt("suite", "all")
reps <- as.integer(opt("reps", Sys.getenv("REPS", "5")))
slow_reps <- as.integer(opt("slow-reps", Sys.getenv("SLOW_REPS", "2")))
only <- opt("only", "")
only <- if (nzchar(only)) strsplit(only, ",")[[1]] else NULL
if (!suite %in% c("lmm", "glmm", "all")) stop("--suite must be lmm, glmm or all")

specs <- list()
if (suite %in% c("lmm", "all")) {
  for (f in fromJSON("tests/reference/lme4_suite.json", simplifyVector = FALSE)$fits)
    specs[[f$id]] <- list(kind = "lmm", dataset = f$dataset, formula = f$formula, REML = f$REML)
}
if (suite %in% c("glmm", "all")) {
  for (f in fromJSON("tests/reference/glmer_suite.json", simplifyVector = FALSE)$fits)
    specs[[f$id]] <- list(kind = "glmm", dataset = f$dataset, formula = f$formula,
                          family = f$family, nAGQ = f$nAGQ)
}
if (!is.null(only)) {
  missing <- setdiff(only, names(specs))
  if (length(missing)) stop("unknown fit ids: ", paste(missing, collapse = ", "))
  specs <- specs[only]
}

fitter <- function(s, d) {
  f <- as.formula(s$formula)
  if (s$kind == "lmm") return(function() lmer(f, data = d, REML = s$REML))
  if (s$family == "negative_binomial") return(function() glmer.nb(f, data = d, nAGQ = s$nAGQ))
  fam <- get(s$family)()
  function() glmer(f, data = d, family = fam, nAGQ = s$nAGQ)
}
ms <- function(fun) {
  t0 <- Sys.time()
  suppressWarnings(suppressMessages(fun()))
  1000 * as.numeric(difftime(Sys.time(), t0, units = "secs"))
}

data_cache <- list()
out <- list()
for (id in names(specs)) {
  s <- specs[[id]]
  if (is.null(data_cache[[s$dataset]])) data_cache[[s$dataset]] <- read_suite_data(s$dataset)
  fun <- fitter(s, data_cache[[s$dataset]])
  warm <- ms(fun)
  n <- if (warm > 2000) slow_reps else reps
  t <- vapply(seq_len(n), function(i) ms(fun), 0)
  out[[id]] <- list(median_ms = median(t), min_ms = min(t), max_ms = max(t), n = n, warmup_ms = warm)
  message(sprintf("%-32s %10.1f ms (n = %d)", id, median(t), n))
}
cat(toJSON(list(suite = suite, reps = reps, slow_reps = slow_reps, versions = versions(), fits = out),
           auto_unbox = TRUE, digits = 6), "\n")
