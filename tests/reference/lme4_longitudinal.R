# Reference fits for chapter 19 (longitudinal models), written to lme4_longitudinal.json.
# Rscript tests/reference/lme4_longitudinal.R   (from the repository root)
#
# sleepstudy: in the study (Belenky et al. 2003; lme4's ?sleepstudy) days 0 and 1 were
# adaptation and training, day 2 the baseline, and sleep restriction began after day 2.
# "baseline_*" fits use days 2-9 with time counted from the baseline, t = Days - 2 (days of
# sleep restriction); "all_days_*" fits use all ten days with time = Days (day 0 of the study).
# orthodont: distance ~ age8 * female with age8 = age - 8 (nlme's Orthodont).
suppressMessages({library(lme4); library(jsonlite)})
sleep <- read.csv("mlm_lessons/datasets/sleepstudy.csv", colClasses = c(Subject = "character"))
stopifnot(nrow(sleep) == 180)
base <- subset(sleep, Days >= 2)
base$t <- base$Days - 2
stopifnot(nrow(base) == 144)
ortho <- read.csv("mlm_lessons/datasets/orthodont.csv")
ortho$age8 <- ortho$age - 8
ortho$female <- as.integer(ortho$Sex == "Female")

fits <- list(
  baseline_random_intercept = list(f = Reaction ~ t + (1 | Subject), d = base),
  baseline_random_slope = list(f = Reaction ~ t + (t | Subject), d = base),
  baseline_uncorrelated = list(f = Reaction ~ t + (1 | Subject) + (0 + t | Subject), d = base),
  all_days_random_intercept = list(f = Reaction ~ Days + (1 | Subject), d = sleep),
  all_days_random_slope = list(f = Reaction ~ Days + (Days | Subject), d = sleep),
  orthodont_random_intercept = list(f = distance ~ age8 * female + (1 | Subject), d = ortho),
  orthodont_growth = list(f = distance ~ age8 * female + (age8 | Subject), d = ortho)
)
out <- list()
models <- list()
for (name in names(fits)) {
  for (reml in c(TRUE, FALSE)) {
    m <- lmer(fits[[name]]$f, data = fits[[name]]$d, REML = reml)
    models[[paste(name, reml)]] <- m
    # T as one matrix (the uncorrelated model's two terms on its diagonal)
    vc <- VarCorr(m)
    T <- as.matrix(Matrix::bdiag(lapply(vc, as.matrix)))
    out[[name]][[if (reml) "REML" else "ML"]] <- list(
      formula = deparse(fits[[name]]$f), REML = reml, n_obs = nobs(m),
      n_groups = unname(ngrps(m)[1]),
      logLik = as.numeric(logLik(m)),
      fixef = as.list(fixef(m)), fixef_se = as.list(sqrt(diag(as.matrix(vcov(m))))),
      T = unname(T), sigma2 = sigma(m)^2,
      converged = length(m@optinfo$conv$lme4$messages) == 0 && length(m@optinfo$warnings) == 0
    )
  }
}
lr <- function(a, b) {
  # anova(..., refit = FALSE) of the REML fits: LR, df, naive p, 50:50 mixture p
  t <- anova(models[[paste(a, TRUE)]], models[[paste(b, TRUE)]], refit = FALSE)
  stat <- t$Chisq[2]
  list(LR = stat, df = t$Df[2], p = t[["Pr(>Chisq)"]][2],
       p_mixture = 0.5 * pchisq(stat, t$Df[2] - 1, lower.tail = FALSE) +
         0.5 * pchisq(stat, t$Df[2], lower.tail = FALSE))
}
out$lrt <- list(
  baseline_slope = lr("baseline_random_intercept", "baseline_random_slope"),
  baseline_correlation = lr("baseline_uncorrelated", "baseline_random_slope"),
  orthodont_slope = lr("orthodont_random_intercept", "orthodont_growth")
)
# the correlation is an interior parameter: chi-square(1), no boundary mixture
out$lrt$baseline_correlation$p_mixture <- NULL
out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                     date = format(Sys.Date()))
writeLines(toJSON(out, digits = 15, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/lme4_longitudinal.json")
