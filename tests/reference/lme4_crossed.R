# Crossed-random-effects reference fits, written to lme4_crossed.json.
# Rscript tests/reference/lme4_crossed.R   (from the repository root)
# Data: mlm_lessons/datasets/scotssec.csv (mlmRev's ScotsSec) and penicillin.csv (lme4's
# Penicillin). The column `second` is called `secondary` here, as the Python loader calls it.
suppressMessages({library(lme4); library(jsonlite)})
sc <- read.csv("mlm_lessons/datasets/scotssec.csv")
sc$primary <- factor(sc$primary)
sc$secondary <- factor(sc$second)
sc$female <- as.integer(sc$sex == "F")
sc$social_s <- ave(sc$social, sc$secondary)  # mean social class of the secondary school
pen <- read.csv("mlm_lessons/datasets/penicillin.csv")
pen$plate <- factor(pen$plate); pen$sample <- factor(pen$sample)

random_parts <- c(
  crossed = "(1 | primary) + (1 | secondary)",
  nested_secondary_primary = "(1 | secondary/primary)",
  nested_primary_secondary = "(1 | primary/secondary)",
  primary_only = "(1 | primary)",
  secondary_only = "(1 | secondary)"
)
fixed_parts <- c(null = "attain ~ 1", intake = "attain ~ verbal + female + social",
                 context = "attain ~ female + social + social_s")
models <- list()
for (f in names(fixed_parts)) for (r in names(random_parts))
  models[[paste0("scots_", f, "_", r)]] <- list(
    data = "sc", formula = paste(fixed_parts[[f]], "+", random_parts[[r]]))
models$scots_null_interaction <- list(
  data = "sc", formula = "attain ~ 1 + (1 | primary) + (1 | secondary) + (1 | primary:secondary)")
models$penicillin <- list(data = "pen", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)")

out <- list()
for (name in names(models)) {
  spec <- models[[name]]
  for (reml in c(TRUE, FALSE)) {
    m <- lmer(as.formula(spec$formula), data = get(spec$data), REML = reml)
    vc <- as.data.frame(VarCorr(m))
    out[[name]][[if (reml) "REML" else "ML"]] <- list(
      formula = spec$formula, REML = reml,
      logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m),
      fixef = as.list(fixef(m)), fixef_se = as.list(sqrt(diag(as.matrix(vcov(m))))),
      vc = setNames(as.list(vc$vcov), vc$grp),   # variances by group, "Residual" last
      ngroups = as.list(ngrps(m)), n_obs = nobs(m),
      singular = isSingular(m),
      # converged: no message from lme4's check other than the singular-fit note
      converged = !any(!grepl("singular", m@optinfo$conv$lme4$messages))
    )
  }
}
# one-way summaries that the chapter prints beside the fits
out$design <- list(
  n_obs = nrow(sc), primary = nlevels(sc$primary), secondary = nlevels(sc$secondary),
  primary_in_several = sum(rowSums(table(sc$primary, sc$secondary) > 0) > 1),
  primary_secondary_pairs = sum(table(sc$primary, sc$secondary) > 0)
)
out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                     date = format(Sys.Date()))
writeLines(toJSON(out, digits = 15, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/lme4_crossed.json")
