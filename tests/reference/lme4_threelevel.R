# Three-level reference fits on egsingle (mlmRev), written to lme4_threelevel.json.
# Rscript tests/reference/lme4_threelevel.R   (from the repository root)
suppressMessages({library(lme4); library(jsonlite)})
eg <- read.csv("mlm_lessons/datasets/egsingle.csv")
eg$schoolid <- factor(eg$schoolid); eg$childid <- factor(eg$childid)
models <- list(
  intercepts = "math ~ year + (1 | schoolid:childid) + (1 | schoolid)",
  growth = "math ~ year + (year | schoolid:childid) + (year | schoolid)"
)
out <- list()
for (name in names(models)) {
  for (reml in c(TRUE, FALSE)) {
    m <- lmer(as.formula(models[[name]]), data = eg, REML = reml)
    vc <- VarCorr(m)
    out[[name]][[if (reml) "REML" else "ML"]] <- list(
      formula = models[[name]], REML = reml,
      logLik = as.numeric(logLik(m)),
      fixef = as.list(fixef(m)), fixef_se = as.list(sqrt(diag(as.matrix(vcov(m))))),
      T_child = unname(as.matrix(vc[["schoolid:childid"]])[, , drop = FALSE]),
      T_school = unname(as.matrix(vc[["schoolid"]])[, , drop = FALSE]),
      sigma2 = sigma(m)^2,
      converged = length(m@optinfo$conv$lme4$messages) == 0
    )
  }
}
out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                     date = format(Sys.Date()))
writeLines(toJSON(out, digits = 15, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/lme4_threelevel.json")
