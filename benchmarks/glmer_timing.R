# Times glmer (default controls) on the fits of tests/reference/glmer_suite.json: the
# fastest of REPS repetitions (seconds) after one warm-up fit.
#   Rscript benchmarks/glmer_timing.R [id,id,...]     (from the repository root)
#     prints JSON {id: seconds} for the fits named (all by default);
#   Rscript benchmarks/glmer_timing.R --serve
#     reads one fit id per line from stdin and answers each with a line "id seconds" (one
#     timed fit, after a warm-up fit the first time), so that benchmarks/glmm.py can time
#     glmer and its own fit of each model alternately, run by run.
source("tests/reference/suite_common.R")
reps <- as.integer(Sys.getenv("REPS", "3"))
suite <- fromJSON("tests/reference/glmer_suite.json", simplifyVector = FALSE)
fits <- setNames(suite$fits, vapply(suite$fits, function(f) f$id, ""))
cache <- list()
warm <- character(0)
time_fit <- function(f, n = reps) {
  if (is.null(cache[[f$dataset]])) cache[[f$dataset]] <<- read_suite_data(f$dataset)
  d <- cache[[f$dataset]]
  fo <- as.formula(f$formula)
  fit <- if (f$family == "negative_binomial") function() glmer.nb(fo, data = d, nAGQ = f$nAGQ)
    else function() glmer(fo, data = d, family = get(f$family)(), nAGQ = f$nAGQ)
  if (!(f$id %in% warm)) {  # one warm-up fit per model
    suppressWarnings(suppressMessages(fit()))
    warm <<- c(warm, f$id)
  }
  t <- replicate(n, system.time(suppressWarnings(suppressMessages(fit())))[["elapsed"]])
  min(t)
}
args <- commandArgs(trailingOnly = TRUE)
if (length(args) && args[1] == "--serve") {
  con <- file("stdin", open = "r")
  cat("ready\n")
  flush(stdout())
  while (length(id <- readLines(con, n = 1)) && nzchar(id)) {
    cat(id, format(time_fit(fits[[id]], 1), digits = 6), "\n")
    flush(stdout())
  }
} else {
  only <- if (length(args)) strsplit(args[1], ",")[[1]] else names(fits)
  out <- list()
  for (id in only) out[[id]] <- time_fit(fits[[id]])
  cat(toJSON(out, auto_unbox = TRUE, digits = 6), "\n")
}
