# Times glmer (default controls) on the fits of tests/reference/glmer_suite.json: the
# fastest of REPS repetitions (seconds) after one warm-up fit. Prints JSON {id: seconds}.
#   Rscript benchmarks/glmer_timing.R [id,id,...]     (from the repository root)
source("tests/reference/suite_common.R")
reps <- as.integer(Sys.getenv("REPS", "3"))
suite <- fromJSON("tests/reference/glmer_suite.json", simplifyVector = FALSE)
args <- commandArgs(trailingOnly = TRUE)
only <- if (length(args)) strsplit(args[1], ",")[[1]] else NULL
cache <- list()
out <- list()
for (f in suite$fits) {
  if (!is.null(only) && !(f$id %in% only)) next
  if (is.null(cache[[f$dataset]])) cache[[f$dataset]] <- read_suite_data(f$dataset)
  d <- cache[[f$dataset]]
  fo <- as.formula(f$formula)
  fit <- if (f$family == "negative_binomial") function() glmer.nb(fo, data = d, nAGQ = f$nAGQ)
    else function() glmer(fo, data = d, family = get(f$family)(), nAGQ = f$nAGQ)
  suppressWarnings(suppressMessages(fit()))
  t <- replicate(reps, system.time(suppressWarnings(suppressMessages(fit())))[["elapsed"]])
  out[[f$id]] <- min(t)
}
cat(toJSON(out, auto_unbox = TRUE, digits = 6), "\n")
