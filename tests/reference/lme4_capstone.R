# Reference fits for the capstone project's solution (instructor/capstone/solution.ipynb) on
# the Exam data (mlmRev), written to lme4_capstone.json; tests/test_capstone.py compares the
# numbers the solution glues with these.
# Rscript tests/reference/lme4_capstone.R   (from the repository root, a few seconds)
suppressMessages({library(lme4); library(jsonlite)})
ex <- read.csv("mlm_lessons/datasets/exam.csv")
ex$school <- factor(ex$school)
ex$girl <- as.integer(ex$sex == "F")
ex$schgend <- factor(ex$schgend, levels = c("mixed", "boys", "girls"))
ex$cstandlrt <- ex$standLRT - ave(ex$standLRT, ex$school)

models <- list(
  null = "normexam ~ 1 + (1 | school)",
  level1 = "normexam ~ cstandlrt + girl + (1 | school)",
  slope = "normexam ~ cstandlrt + girl + (cstandlrt | school)",
  level2 = "normexam ~ cstandlrt + girl + schavg + schgend + (cstandlrt | school)",
  cross = "normexam ~ cstandlrt * schavg + girl + schgend + (cstandlrt | school)",
  contextual = "normexam ~ cstandlrt + schavg + girl + schgend + (1 | school)"
)
fit_one <- function(formula, reml) {
  m <- lmer(as.formula(formula), data = ex, REML = reml)
  vc <- as.data.frame(VarCorr(m))
  list(
    formula = formula, REML = reml,
    logLik = as.numeric(logLik(m)),
    fixef = as.list(fixef(m)), fixef_se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    vcov_fixef = unname(as.matrix(vcov(m))), fixef_names = names(fixef(m)),
    T = unname(as.matrix(VarCorr(m)$school)), sigma2 = sigma(m)^2,
    varcorr = vc,
    converged = length(m@optinfo$conv$lme4$messages) == 0,
    model = m
  )
}
out <- list()
for (name in names(models)) {
  for (reml in c(TRUE, FALSE)) {
    out[[name]][[if (reml) "REML" else "ML"]] <- fit_one(models[[name]], reml)
  }
}
# likelihood-ratio statistics of the ML ladder
lr <- function(a, b) 2 * (out[[b]]$ML$logLik - out[[a]]$ML$logLik)
out$lr <- list(level1_vs_null = lr("null", "level1"), slope_vs_level1 = lr("level1", "slope"),
               level2_vs_slope = lr("slope", "level2"), cross_vs_level2 = lr("level2", "cross"))
# profile-likelihood 95% intervals of the final model's standard deviations, correlation and
# residual SD, from its ML fit (the profile of the ML deviance)
ci <- confint(out$cross$ML$model, parm = "theta_", method = "profile", oldNames = FALSE)
out$cross$ML$confint <- list(parameter = rownames(ci), low = unname(ci[, 1]),
                             high = unname(ci[, 2]))
# leave one school out of the final (REML) model: the largest change of a fixed effect, in
# units of the full fit's standard error (the solution's influence check)
full <- out$cross$REML$model
beta <- fixef(full); se <- sqrt(diag(as.matrix(vcov(full))))
worst <- list(std_change = 0)
for (s in levels(ex$school)) {
  m <- lmer(as.formula(models$cross), data = droplevels(ex[ex$school != s, ]), REML = TRUE)
  std <- (beta - fixef(m)[names(beta)]) / se
  k <- which.max(abs(std))
  if (abs(std[k]) > abs(worst$std_change)) {
    worst <- list(school = s, term = names(beta)[k], std_change = unname(std[k]))
  }
}
out$cross$REML$leave_one_out <- worst
for (name in names(models)) for (k in c("REML", "ML")) out[[name]][[k]]$model <- NULL
out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                     date = format(Sys.Date()))
writeLines(toJSON(out, digits = 15, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/lme4_capstone.json")
