# Random-intercept logistic regressions on Contraception (mlmRev), written to lme4_glmm.json.
# Rscript tests/reference/lme4_glmm.R   (from the repository root)
suppressMessages({library(lme4); library(jsonlite)})
cc <- read.csv("mlm_lessons/datasets/contraception.csv")
cc$use01 <- as.integer(cc$use == "Y"); cc$urban01 <- as.integer(cc$urban == "Y")
cc$age10 <- cc$age / 10  # decades: on the year scale age^2 makes lme4 warn "rescale variables"
cc$livch <- factor(cc$livch, levels = c("0", "1", "2", "3+"))
cc$district <- factor(cc$district)
f <- use01 ~ age10 + I(age10^2) + urban01 + livch + (1 | district)
out <- list()
for (q in c(1, 10)) {
  m <- glmer(f, data = cc, family = binomial, nAGQ = q,
             control = glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5)))
  out[[paste0("nAGQ", q)]] <- list(
    call = sprintf("glmer(use ~ age10 + I(age10^2) + urban + livch + (1 | district), family = binomial, nAGQ = %d, control = glmerControl(optimizer = \"bobyqa\"))", q),
    logLik = as.numeric(logLik(m)), fixef = as.list(fixef(m)),
    fixef_se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    tau2 = as.numeric(VarCorr(m)$district), converged = length(m@optinfo$conv$lme4$messages) == 0,
    ranef_first5 = head(ranef(m)$district[, 1], 5),
    ranef_ids = head(rownames(ranef(m)$district), 5)
  )
}
g <- glm(use01 ~ age10 + I(age10^2) + urban01 + livch, data = cc, family = binomial)
out$glm <- list(logLik = as.numeric(logLik(g)), fixef = as.list(coef(g)))
out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                     date = format(Sys.Date()))
writeLines(toJSON(out, digits = 15, auto_unbox = TRUE, pretty = TRUE), "tests/reference/lme4_glmm.json")
