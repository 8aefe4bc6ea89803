# The glmer fits of chapter 18 (book/18-glmm.ipynb) beyond lme4_glmm.json, written to
# tests/reference/glmer_chapter18.json:
#   melanoma deaths (mlmRev::Mmmec): Poisson with the log(expected) offset and a region random
#   intercept; the same with an observation-level (county) random effect; the negative
#   binomial; the Pearson overdispersion ratio of each; the likelihood-ratio test of the
#   county effect; the median rate ratio;
#   contraception (mlmRev::Contraception): the chapter's logistic model with a random
#   intercept, a correlated random intercept and urban slope, and an uncorrelated one, all by
#   the Laplace approximation; the likelihood-ratio tests between them; with ten-point
#   quadrature the null model, the chapter's model and the model with the district's share of
#   urban women.
#
#   Rscript tests/reference/glmer_chapter18.R      (from the repository root, about 20 s)
#
# Every fit is done twice, with glmer's default control and with a tightly converged bobyqa;
# the JSON holds the tight fit (the two are recorded in `optimizer_check`). The
# negative-binomial k is found by a tight one-dimensional search over glmer fits with
# family = negative.binomial(k), as glmer.nb does with a looser tolerance (its own estimate is
# recorded beside it).
suppressMessages({library(lme4); library(jsonlite); library(MASS)})
invisible(Sys.setlocale("LC_COLLATE", "C"))  # factor levels sort as Python's sorted() does

TIGHT <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5, rhoend = 1e-10),
                      tolPwrss = 1e-10)
TIGHT_TEXT <- 'glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5, rhoend = 1e-10), tolPwrss = 1e-10)'

mm <- read.csv("mlm_lessons/datasets/mmmec.csv",
               colClasses = c("character", "character", "character", "integer", "numeric", "numeric"))
for (n in c("nation", "region", "county")) mm[[n]] <- factor(mm[[n]], levels = sort(unique(mm[[n]])))

cc <- read.csv("mlm_lessons/datasets/contraception.csv", colClasses = c(woman = "character", district = "character"))
cc$use <- as.integer(cc$use == "Y"); cc$urban <- as.integer(cc$urban == "Y")
cc$age10 <- cc$age / 10
cc$livch <- factor(cc$livch, levels = c("0", "1", "2", "3+"))
cc$district <- factor(cc$district, levels = sort(unique(cc$district)))

pearson <- function(m) {
  chi2 <- sum(residuals(m, type = "pearson")^2)
  df <- df.residual(m)
  list(pearson_chisq = chi2, df_residual = df, ratio = chi2 / df,
       p_value = pchisq(chi2, df, lower.tail = FALSE))
}

varcorr <- function(m) {
  vc <- VarCorr(m)
  lapply(setNames(seq_along(vc), names(vc)), function(i) {
    v <- vc[[i]]
    list(names = I(colnames(v)), variance = I(unname(diag(v))), sd = I(unname(attr(v, "stddev"))),
         covariance = lapply(seq_len(nrow(v)), function(r) I(unname(v[r, ]))),
         correlation = lapply(seq_len(nrow(v)), function(r) I(unname(attr(v, "correlation")[r, ]))))
  })
}

record <- function(m, call) {
  conv <- m@optinfo$conv$lme4$messages
  list(call = call,
       fixef = as.list(fixef(m)), fixef_se = as.list(sqrt(diag(as.matrix(vcov(m))))),
       theta = I(unname(getME(m, "theta"))),
       varcorr = varcorr(m),
       logLik = as.numeric(logLik(m)), AIC = AIC(m), df = attr(logLik(m), "df"),
       n_obs = nobs(m), converged = length(conv) == 0, messages = I(as.character(conv)),
       singular = isSingular(m),
       overdispersion = if (family(m)$family != "binomial") pearson(m) else NULL,
       ranef = lapply(ranef(m), function(r) list(levels = I(rownames(r)),
                                                  values = lapply(r, function(col) I(unname(col))))))
}

fit_both <- function(f, d, family, call) {
  m0 <- glmer(f, data = d, family = family)
  m1 <- glmer(f, data = d, family = family, control = TIGHT)
  out <- record(m1, paste0(call, ", control = ", TIGHT_TEXT))
  out$optimizer_check <- list(default_logLik = as.numeric(logLik(m0)), tight_logLik = as.numeric(logLik(m1)),
                              default_fixef = as.list(fixef(m0)))
  list(model = m1, record = out)
}

out <- list()

# ---- melanoma deaths: Poisson with an offset --------------------------------------------
f_ri <- deaths ~ uvb + offset(log(expected)) + (1 | region)
f_olre <- deaths ~ uvb + offset(log(expected)) + (1 | region/county)
ri <- fit_both(f_ri, mm, poisson, "glmer(deaths ~ uvb + offset(log(expected)) + (1 | region), family = poisson)")
olre <- fit_both(f_olre, mm, poisson, "glmer(deaths ~ uvb + offset(log(expected)) + (1 | region/county), family = poisson)")
out$mmmec_ri <- ri$record
out$mmmec_olre <- olre$record
tau <- sqrt(VarCorr(ri$model)$region[1, 1])
out$mmmec_ri$median_rate_ratio <- exp(sqrt(2) * tau * qnorm(0.75))
out$mmmec_ri$rate_ratio_uvb <- exp(fixef(ri$model)[["uvb"]])
out$mmmec_ri$rate_ratio_uvb_ci <- I(unname(exp(fixef(ri$model)[["uvb"]] + c(-1, 1) * qnorm(0.975) *
                                               sqrt(vcov(ri$model)[2, 2]))))
out$mmmec_ri$region_rate_ratio_95 <- I(exp(c(-1, 1) * qnorm(0.975) * tau))
a <- anova(ri$model, olre$model)
out$lrt_mmmec_county <- list(call = "anova(mmmec_ri, mmmec_olre)", statistic = a$Chisq[2], df = a$Df[2],
                             p_value = a[["Pr(>Chisq)"]][2],
                             p_mixture = 0.5 * pchisq(a$Chisq[2], 1, lower.tail = FALSE))

# negative binomial: glmer.nb, and k by a tight search over glmer(family = negative.binomial(k))
nb0 <- glmer.nb(f_ri, data = mm)
k_glmer_nb <- getME(nb0, "glmer.nb.theta")
nb_ll <- function(logk) as.numeric(logLik(glmer(f_ri, data = mm, family = negative.binomial(exp(logk)), control = TIGHT)))
opt <- optimize(nb_ll, log(k_glmer_nb) + c(-1, 1), maximum = TRUE, tol = 1e-9)
k <- exp(opt$maximum)
nb <- glmer(f_ri, data = mm, family = negative.binomial(k), control = TIGHT)
out$mmmec_nb <- record(nb, paste0("glmer(deaths ~ uvb + offset(log(expected)) + (1 | region), family = negative.binomial(k), control = ",
                                  TIGHT_TEXT, ") at the k that maximises logLik (optimize, tol 1e-9 on log k)"))
out$mmmec_nb$nb_size <- k
out$mmmec_nb$nb_size_glmer_nb <- k_glmer_nb
out$mmmec_nb$logLik_glmer_nb <- as.numeric(logLik(nb0))
# lme4 counts one dispersion parameter for a negative.binomial(k) family, so df, AIC and
# df.residual of this fixed-k fit already count k as glmer.nb's own fit does
out$mmmec_nb$df_glmer_nb <- attr(logLik(nb0), "df")
out$mmmec_nb$AIC_glmer_nb <- AIC(nb0)

# ---- contraception: random intercept and random urban slope (Laplace) ------------------
fx <- "use ~ age10 + I(age10^2) + urban + livch"
c_ri <- fit_both(as.formula(paste(fx, "+ (1 | district)")), cc, binomial,
                 paste0("glmer(", fx, " + (1 | district), family = binomial)"))
c_sl <- fit_both(as.formula(paste(fx, "+ (1 + urban | district)")), cc, binomial,
                 paste0("glmer(", fx, " + (1 + urban | district), family = binomial)"))
c_dg <- fit_both(as.formula(paste(fx, "+ (1 + urban || district)")), cc, binomial,
                 paste0("glmer(", fx, " + (1 + urban || district), family = binomial)"))
out$contra_ri <- c_ri$record
out$contra_slope <- c_sl$record
out$contra_diag <- c_dg$record
lrt <- function(a, b, name) {
  t <- anova(a, b)
  list(call = name, statistic = t$Chisq[2], df = t$Df[2], p_value = t[["Pr(>Chisq)"]][2])
}
out$lrt_contra_slope <- lrt(c_ri$model, c_sl$model, "anova(contra_ri, contra_slope)")
out$lrt_contra_slope$p_mixture <- 0.5 * pchisq(out$lrt_contra_slope$statistic, 1, lower.tail = FALSE) +
  0.5 * out$lrt_contra_slope$p_value
out$lrt_contra_diag <- lrt(c_ri$model, c_dg$model, "anova(contra_ri, contra_diag)")
out$lrt_contra_diag$p_mixture <- 0.5 * out$lrt_contra_diag$p_value
out$lrt_contra_corr <- lrt(c_dg$model, c_sl$model, "anova(contra_diag, contra_slope)")
out$districts_without_urban <- sum(tapply(cc$urban, cc$district, sum) == 0)

# ---- contraception, ten-point adaptive quadrature: the null model (the scale of the latent
# variable) and the model with the district's share of urban women (the contextual effect
# behind the GEE ratio of urban)
cc$urban_share <- ave(cc$urban, cc$district)
agq <- function(f, call) {
  m <- glmer(f, data = cc, family = binomial, nAGQ = 10, control = TIGHT)
  record(m, paste0(call, ", nAGQ = 10, control = ", TIGHT_TEXT))
}
out$contra_null_agq <- agq(use ~ 1 + (1 | district), "glmer(use ~ 1 + (1 | district), family = binomial")
out$contra_ri_agq <- agq(as.formula(paste(fx, "+ (1 | district)")),
                         paste0("glmer(", fx, " + (1 | district), family = binomial"))
out$contra_share_agq <- agq(as.formula(paste(fx, "+ urban_share + (1 | district)")),
                            paste0("glmer(", fx, " + urban_share + (1 | district), family = binomial"))

out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                     MASS = as.character(packageVersion("MASS")), mlmRev_data = "mlmRev 1.0-8 (CSV in mlm_lessons/datasets)",
                     date = format(Sys.time(), "%Y-%m-%d", tz = "UTC"))
writeLines(toJSON(out, digits = 15, auto_unbox = TRUE, pretty = TRUE, null = "null"),
           "tests/reference/glmer_chapter18.json")
