# Three-level reference fits on egsingle (mlmRev), written to lme4_threelevel.json.
# Rscript tests/reference/lme4_threelevel.R   (from the repository root)
suppressMessages({library(lme4); library(jsonlite)})
eg <- read.csv("mlm_lessons/datasets/egsingle.csv")
eg$schoolid <- factor(eg$schoolid); eg$childid <- factor(eg$childid)
eg$lowinc10 <- eg$lowinc / 10   # percentage of low-income pupils, in tens of points
models <- list(
  intercepts = "math ~ year + (1 | schoolid:childid) + (1 | schoolid)",
  growth = "math ~ year + (year | schoolid:childid) + (year | schoolid)",
  # child ethnicity (level 2) and the school's percentage of low-income pupils (level 3)
  # predicting status and growth, with random intercepts and slopes at both levels
  conditional = paste("math ~ year * (black + hispanic + lowinc10)",
                      "+ (year | schoolid:childid) + (year | schoolid)")
)
out <- list()
for (name in names(models)) {
  for (reml in c(TRUE, FALSE)) {
    # the conditional model: nloptwrap's ML fit stops with max|grad| 0.011 (lme4 warns);
    # bobyqa converges without a warning
    ctrl <- if (name == "conditional") lmerControl(optimizer = "bobyqa") else lmerControl()
    m <- lmer(as.formula(models[[name]]), data = eg, REML = reml, control = ctrl)
    vc <- VarCorr(m)
    out[[name]][[if (reml) "REML" else "ML"]] <- list(
      formula = models[[name]], REML = reml,
      logLik = as.numeric(logLik(m)),
      fixef = as.list(fixef(m)), fixef_se = as.list(sqrt(diag(as.matrix(vcov(m))))),
      T_child = unname(as.matrix(vc[["schoolid:childid"]])[, , drop = FALSE]),
      T_school = unname(as.matrix(vc[["schoolid"]])[, , drop = FALSE]),
      sigma2 = sigma(m)^2,
      converged = length(m@optinfo$conv$lme4$messages) == 0 && length(m@optinfo$warnings) == 0
    )
  }
}
# the same numbers as a tidy table in the quantity names of mlm.compare_with_published
# (grouping factors named as in the book: childid for schoolid:childid), for chapter 17
tidy <- do.call(rbind, lapply(names(models), function(name) {
  do.call(rbind, lapply(c("REML", "ML"), function(method) {
    f <- out[[name]][[method]]
    terms <- sub("^\\(Intercept\\)$", "Intercept", names(f$fixef))
    re <- c("Intercept", "year")[seq_len(nrow(f$T_child))]
    tau <- function(level, T) {
      idx <- which(upper.tri(T, diag = TRUE), arr.ind = TRUE)
      idx <- idx[order(idx[, 1], idx[, 2]), , drop = FALSE]
      data.frame(quantity = sprintf("T[%s][%s,%s]", level, re[idx[, 1]], re[idx[, 2]]),
                 lme4 = T[idx])
    }
    rbind(data.frame(quantity = sprintf("fixef[%s]", terms), lme4 = unlist(f$fixef)),
          data.frame(quantity = sprintf("se[%s]", terms), lme4 = unlist(f$fixef_se)),
          tau("schoolid", f$T_school), tau("childid", f$T_child),
          data.frame(quantity = c("sigma2", "loglik"), lme4 = c(f$sigma2, f$logLik)))
  })) -> rows
  rows$model <- name
  rows$method <- rep(c("REML", "ML"), each = nrow(rows) / 2)
  rows[, c("model", "method", "quantity", "lme4")]
}))
write.csv(tidy, "tests/reference/lme4_threelevel.csv", row.names = FALSE)

out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                     date = format(Sys.Date()))
writeLines(toJSON(out, digits = 15, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/lme4_threelevel.json")
