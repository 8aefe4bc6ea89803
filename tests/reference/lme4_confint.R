# Profile-likelihood intervals of the variance parameters of the HSB models, written to
# lme4_confint.json. Rscript tests/reference/lme4_confint.R   (from the repository root)
# lme4 profiles the ML deviance (for a REML fit too, after refitting by ML), so the fits are
# by ML: confint(m, method = "profile", oldNames = FALSE), 95%. For hsb_full lme4 warns
# "non-monotonic profile for cor_cses.(Intercept)|school" and "bad spline fit ... falling back
# to linear interpolation": that correlation's profile stays within the quantile over all of
# [-1, 1], so its interval is the whole range; the warnings are suppressed, the limits kept.
suppressMessages({library(lme4); library(jsonlite)})
st <- read.csv("mlm_lessons/datasets/hsb_students.csv", colClasses = c(School = "character"))
sc <- read.csv("mlm_lessons/datasets/hsb_schools.csv", colClasses = c(School = "character"))
st$MEANSES <- NULL
hsb <- merge(st, sc, by = "School", sort = FALSE)
names(hsb) <- tolower(names(hsb))
hsb$cses <- hsb$ses - ave(hsb$ses, hsb$school)
hsb$catholic <- as.integer(hsb$sector == "Catholic")
models <- list(
  hsb_random_coefficient_cses = "mathach ~ cses + (cses | school)",
  hsb_full = "mathach ~ meanses * cses + catholic * cses + (cses | school)"
)
out <- list()
for (name in names(models)) {
  m <- lmer(as.formula(models[[name]]), data = hsb, REML = FALSE)
  ci <- suppressWarnings(confint(m, method = "profile", oldNames = FALSE, parm = "theta_"))
  out[[name]] <- list(formula = models[[name]], REML = FALSE,
                      parameter = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))
}
out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                     date = format(Sys.Date()))
writeLines(toJSON(out, digits = 15, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/lme4_confint.json")
