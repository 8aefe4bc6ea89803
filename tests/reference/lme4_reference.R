# Independent reference numbers from R's lme4 for the mlm-course tests.
#
# Run from the repository root:
#     Rscript tests/reference/lme4_reference.R
# Reads mlm_lessons/datasets/{hsb_students,hsb_schools,sleepstudy}.csv and writes
# tests/reference/lme4_reference.json.
#
# Requirements (Debian packages): r-base-core r-cran-lme4 r-cran-jsonlite
# Optional: r-cran-sandwich (cluster-robust SE of the pooled OLS slope).

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
has_sandwich <- suppressWarnings(requireNamespace("sandwich", quietly = TRUE))

out_file <- file.path("tests", "reference", "lme4_reference.json")
n_timing_reps <- as.integer(Sys.getenv("LME4_REF_TIMING_REPS", "20"))

# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
stu <- read.csv(file.path("mlm_lessons", "datasets", "hsb_students.csv"),
                colClasses = c(School = "character"), stringsAsFactors = FALSE)
sch <- read.csv(file.path("mlm_lessons", "datasets", "hsb_schools.csv"),
                colClasses = c(School = "character"), stringsAsFactors = FALSE)
stopifnot(nrow(stu) == 7185, nrow(sch) == 160, !anyDuplicated(sch$School))

# Merge the school file into the student file by School, keeping the student
# file's row order (merge() would reorder rows, and the tests compare row 1..5).
# The school file's MEANSES is used; the student file's copy is dropped.
idx <- match(stu$School, sch$School)
stopifnot(!anyNA(idx))
hsb <- data.frame(
  school   = factor(stu$School),               # levels sorted as strings (all 4-digit ids)
  minority = stu$Minority,
  sex      = stu$Sex,
  ses      = stu$SES,
  mathach  = stu$MathAch,
  meanses  = sch$MEANSES[idx],
  sector   = sch$Sector[idx],
  size     = sch$Size[idx],
  stringsAsFactors = FALSE
)
hsb$cses     <- hsb$ses - ave(hsb$ses, hsb$school, FUN = mean)
hsb$catholic <- as.integer(hsb$sector == "Catholic")

sleep <- read.csv(file.path("mlm_lessons", "datasets", "sleepstudy.csv"),
                  colClasses = c(Subject = "character"), stringsAsFactors = FALSE)
sleep$Subject <- factor(sleep$Subject)
stopifnot(nrow(sleep) == 180)

# ---------------------------------------------------------------------------
# Model specifications
# ---------------------------------------------------------------------------
specs <- list(
  hsb_null                    = list(f = mathach ~ 1 + (1 | school), data = "hsb"),
  hsb_means_as_outcomes       = list(f = mathach ~ meanses + (1 | school), data = "hsb"),
  hsb_random_intercept_ses    = list(f = mathach ~ ses + (1 | school), data = "hsb"),
  hsb_random_intercept_cses   = list(f = mathach ~ cses + (1 | school), data = "hsb"),
  hsb_random_coefficient_ses  = list(f = mathach ~ ses + (ses | school), data = "hsb"),
  hsb_random_coefficient_cses = list(f = mathach ~ cses + (cses | school), data = "hsb"),
  hsb_full                    = list(f = mathach ~ meanses * cses + catholic * cses + (cses | school),
                                     data = "hsb"),
  hsb_contextual              = list(f = mathach ~ cses + meanses + (1 | school), data = "hsb"),
  hsb_contextual_ses          = list(f = mathach ~ ses + meanses + (1 | school), data = "hsb"),
  sleep_random_intercept      = list(f = Reaction ~ Days + (1 | Subject), data = "sleep"),
  sleep_random_slope          = list(f = Reaction ~ Days + (Days | Subject), data = "sleep"),
  sleep_uncorrelated          = list(f = Reaction ~ Days + (1 | Subject) + (0 + Days | Subject),
                                     data = "sleep")
)

# Fit with a literal formula in the call so getCall() prints readably.
fit_one <- function(f, dname, reml, optimizer = NULL) {
  warns <- character(0)
  cl <- if (is.null(optimizer)) {
    bquote(lmer(.(f), data = .(as.name(dname)), REML = .(reml)))
  } else if (optimizer == "nloptwrap_tight") {
    bquote(lmer(.(f), data = .(as.name(dname)), REML = .(reml),
                control = lmerControl(optimizer = "nloptwrap",
                                      optCtrl = list(xtol_rel = 1e-12, ftol_rel = 1e-15,
                                                     ftol_abs = 1e-15, xtol_abs = 1e-12,
                                                     maxeval = 1e5))))
  } else {
    bquote(lmer(.(f), data = .(as.name(dname)), REML = .(reml),
                control = lmerControl(optimizer = .(optimizer))))
  }
  m <- withCallingHandlers(eval(cl),
                           warning = function(w) {
                             warns <<- c(warns, conditionMessage(w))
                             invokeRestart("muffleWarning")
                           })
  list(model = m, warnings = warns)
}

conv_info <- function(fit) {
  m <- fit$model
  msgs <- c(fit$warnings, m@optinfo$conv$lme4$messages, m@optinfo$warnings)
  list(
    optimizer = m@optinfo$optimizer,
    optimizer_code = m@optinfo$conv$opt,
    lme4_messages = I(unique(as.character(unlist(msgs)))),
    singular = isSingular(m),
    converged = length(msgs) == 0 && identical(as.integer(m@optinfo$conv$opt), 0L)
  )
}

# ---------------------------------------------------------------------------
# Extraction helpers
# ---------------------------------------------------------------------------
mat_to_json <- function(M) {
  M <- as.matrix(M)
  rows <- lapply(seq_len(nrow(M)), function(i) as.list(unname(M[i, ])))
  by_name <- setNames(lapply(seq_len(nrow(M)), function(i) as.list(setNames(M[i, ], colnames(M)))),
                      rownames(M))
  list(rownames = I(rownames(M)), colnames = I(colnames(M)), matrix = rows, by_name = by_name)
}

# Random-effect covariance T: all terms belong to one grouping factor in every
# model here, so VarCorr blocks are put together block-diagonally (the
# uncorrelated sleepstudy model gives a diagonal T).
T_matrix <- function(m) {
  vc <- VarCorr(m)
  blocks <- lapply(vc, function(b) { b <- as.matrix(b); attr(b, "stddev") <- NULL; attr(b, "correlation") <- NULL; b })
  nm <- unlist(lapply(blocks, rownames), use.names = FALSE)
  T <- as.matrix(Matrix::bdiag(blocks))
  dimnames(T) <- list(nm, nm)
  T
}

extract <- function(fit, spec_name, reml) {
  m <- fit$model
  fe <- fixef(m)
  se <- sqrt(diag(as.matrix(vcov(m))))
  names(se) <- names(fe)
  T <- T_matrix(m)
  ll <- logLik(m)
  gname <- names(ngrps(m))[1]

  re <- ranef(m, condVar = TRUE)
  red <- as.data.frame(re)          # grp, term, condval, condsd
  red <- red[red$grpvar == gname, ]
  lev <- levels(m@flist[[gname]])
  first5 <- lev[1:5]
  terms <- unique(as.character(red$term))
  blup <- list(group_var = gname, group_ids = I(first5), terms = I(terms),
               values = list(), condsd = list())
  for (tm in terms) {
    sub <- red[red$term == tm, ]
    sub <- sub[match(first5, as.character(sub$grp)), ]
    blup$values[[tm]] <- I(sub$condval)
    blup$condsd[[tm]] <- I(sub$condsd)
  }
  # full conditional covariance matrices (postVar) for the first 5 groups, where one array
  pv <- attr(re[[gname]], "postVar")
  if (is.array(pv) && length(dim(pv)) == 3) {
    blup$condvar_first5 <- lapply(1:5, function(j) {
      M <- matrix(pv[, , j], nrow = dim(pv)[1]); dimnames(M) <- list(terms, terms); mat_to_json(M)$matrix
    })
  }

  dat <- model.frame(m)
  res <- list(
    call = paste(deparse(getCall(m), width.cutoff = 500L), collapse = " "),
    formula = paste(deparse(formula(m), width.cutoff = 500L), collapse = " "),
    REML = isREML(m),
    fixef = as.list(fe),
    fixef_se = as.list(se),
    order = I(names(fe)),
    vcov_fixef = mat_to_json(as.matrix(vcov(m))),
    T = mat_to_json(T),
    sigma2 = sigma(m)^2,
    sigma = sigma(m),
    logLik = as.numeric(ll),
    logLik_df = attr(ll, "df"),
    AIC = AIC(m),
    BIC = BIC(m),
    minus2logLik = -2 * as.numeric(ll),
    n_obs = nobs(m),
    n_groups = as.list(ngrps(m)),
    ranef_first5 = blup,
    fitted_first5 = I(unname(fitted(m)[1:5])),
    predict_fixed_first5 = I(unname(predict(m, re.form = NA)[1:5])),
    theta = I(unname(getME(m, "theta"))),
    convergence = conv_info(fit)
  )
  if (isREML(m)) res$REMLcrit <- REMLcrit(m) else res$deviance <- deviance(m)
  res
}

# ---------------------------------------------------------------------------
# Fit everything: default optimizer and bobyqa, REML and ML
# ---------------------------------------------------------------------------
fits <- list()          # fits[[name]][["REML"|"ML"]] -> chosen lmer fit
results <- list()
for (nm in names(specs)) {
  sp <- specs[[nm]]
  for (reml in c(TRUE, FALSE)) {
    key <- if (reml) "REML" else "ML"
    f_def <- fit_one(sp$f, sp$data, reml)
    f_bob <- fit_one(sp$f, sp$data, reml, optimizer = "bobyqa")
    ll_def <- as.numeric(logLik(f_def$model)); ll_bob <- as.numeric(logLik(f_bob$model))
    cmp <- list(
      default_optimizer = f_def$model@optinfo$optimizer,
      logLik_default = ll_def,
      logLik_bobyqa = ll_bob,
      logLik_diff_bobyqa_minus_default = ll_bob - ll_def,
      max_abs_theta_diff = max(abs(getME(f_def$model, "theta") - getME(f_bob$model, "theta"))),
      max_rel_fixef_diff = max(abs(fixef(f_def$model) - fixef(f_bob$model)) /
                                 pmax(abs(fixef(f_def$model)), 1e-8)),
      max_rel_T_diff = max(abs(T_matrix(f_def$model) - T_matrix(f_bob$model)) /
                             pmax(abs(T_matrix(f_def$model)), 1e-8)),
      default_converged = conv_info(f_def)$converged,
      bobyqa_converged = conv_info(f_bob)$converged
    )
    # Keep the default unless bobyqa is clearly better (or the default failed to converge).
    use_bob <- (ll_bob - ll_def > 1e-6) || (!cmp$default_converged && cmp$bobyqa_converged)
    cmp$agree <- abs(ll_bob - ll_def) <= 1e-6 && cmp$max_rel_fixef_diff < 1e-4
    cmp$kept <- if (use_bob) "bobyqa" else "default"
    # How far is the kept optimum from a tightly converged one?  (Shows which digits
    # of T are optimizer noise: the HSB random-slope likelihoods are flat in tau11.)
    f_tight <- fit_one(sp$f, sp$data, reml, optimizer = "nloptwrap_tight")
    kept_m <- if (use_bob) f_bob$model else f_def$model
    cmp$tight_logLik_minus_kept <- as.numeric(logLik(f_tight$model)) - as.numeric(logLik(kept_m))
    cmp$tight_max_rel_T_diff <- max(abs(T_matrix(f_tight$model) - T_matrix(kept_m)) /
                                      pmax(abs(T_matrix(kept_m)), 1e-8))
    cmp$tight_max_rel_fixef_diff <- max(abs(fixef(f_tight$model) - fixef(kept_m)) /
                                          pmax(abs(fixef(kept_m)), 1e-8))
    cmp$tight_T <- mat_to_json(T_matrix(f_tight$model))$matrix
    cmp$tight_sigma2 <- sigma(f_tight$model)^2
    cmp$tight_control <- "nloptwrap, optCtrl = list(xtol_rel = 1e-12, ftol_rel = 1e-15, ftol_abs = 1e-15, xtol_abs = 1e-12, maxeval = 1e5)"
    chosen <- if (use_bob) f_bob else f_def
    fits[[nm]][[key]] <- chosen$model
    r <- extract(chosen, nm, reml)
    r$optimizer_check <- cmp
    results[[nm]][[key]] <- r
    if (!r$convergence$converged)
      message("WARNING: ", nm, " ", key, " convergence: ",
              paste(r$convergence$lme4_messages, collapse = "; "))
  }
}

# ---------------------------------------------------------------------------
# Likelihood-ratio tests
# ---------------------------------------------------------------------------
lrt_reml <- function(m0, m1, label0, label1) {
  a <- anova(m0, m1, refit = FALSE)
  LR <- a$Chisq[2]; df <- a$Df[2]
  list(
    model0 = label0, model1 = label1, fit = "REML (anova refit = FALSE)",
    LR = LR, df = df, p_naive = a$`Pr(>Chisq)`[2],
    p_mixture_chi2_1_2 = 0.5 * pchisq(LR, 1, lower.tail = FALSE) +
                         0.5 * pchisq(LR, 2, lower.tail = FALSE),
    logLik0 = as.numeric(logLik(m0)), logLik1 = as.numeric(logLik(m1))
  )
}
lrt <- list(
  random_slope_cses = lrt_reml(fits$hsb_random_intercept_cses$REML,
                               fits$hsb_random_coefficient_cses$REML,
                               "hsb_random_intercept_cses", "hsb_random_coefficient_cses"),
  random_slope_ses  = lrt_reml(fits$hsb_random_intercept_ses$REML,
                               fits$hsb_random_coefficient_ses$REML,
                               "hsb_random_intercept_ses", "hsb_random_coefficient_ses")
)
{
  m0 <- fits$hsb_random_coefficient_cses$ML; m1 <- fits$hsb_full$ML
  a <- anova(m0, m1)
  lrt$fixed_cses_vs_full_ML <- list(
    model0 = "hsb_random_coefficient_cses", model1 = "hsb_full", fit = "ML",
    LR = a$Chisq[2], df = a$Df[2], p = a$`Pr(>Chisq)`[2],
    logLik0 = as.numeric(logLik(m0)), logLik1 = as.numeric(logLik(m1))
  )
}

# ---------------------------------------------------------------------------
# ICC pieces from a one-way ANOVA
# ---------------------------------------------------------------------------
nj <- as.vector(table(hsb$school))
N <- nrow(hsb); J <- length(nj)
n0 <- (N - sum(nj^2) / N) / (J - 1)
av <- summary(aov(mathach ~ school, data = hsb))[[1]]
MSB <- av[["Mean Sq"]][1]; MSW <- av[["Mean Sq"]][2]
tau2_mom <- (MSB - MSW) / n0
school_means <- tapply(hsb$mathach, hsb$school, mean)
tau2_slide <- var(as.vector(school_means))
null_T <- results$hsb_null$REML$T$matrix[[1]][[1]]
null_s2 <- results$hsb_null$REML$sigma2
icc_anova <- list(
  N = N, J = J, n0 = n0, n_min = min(nj), n_max = max(nj), n_mean = mean(nj),
  df_between = av$Df[1], df_within = av$Df[2],
  SSB = av[["Sum Sq"]][1], SSW = av[["Sum Sq"]][2],
  MSB = MSB, MSW = MSW,
  tau2_mom = tau2_mom, icc_mom = tau2_mom / (tau2_mom + MSW),
  tau2_slide = tau2_slide, sigma2_within = MSW,
  icc_slide = tau2_slide / (tau2_slide + MSW),
  icc_reml_null = null_T / (null_T + null_s2),
  icc_ml_null = results$hsb_null$ML$T$matrix[[1]][[1]] /
    (results$hsb_null$ML$T$matrix[[1]][[1]] + results$hsb_null$ML$sigma2),
  sum_mathach = sum(hsb$mathach),
  n_catholic_schools = sum(sch$Sector == "Catholic"),
  n_catholic_students = sum(hsb$catholic)
)

# ---------------------------------------------------------------------------
# Proportional reduction in variance (level 2)
# ---------------------------------------------------------------------------
Tget <- function(nm, fit, r, c) results[[nm]][[fit]]$T$by_name[[r]][[c]]
pre <- list()
for (fit in c("REML", "ML")) {
  rc00 <- Tget("hsb_random_coefficient_cses", fit, "(Intercept)", "(Intercept)")
  rc11 <- Tget("hsb_random_coefficient_cses", fit, "cses", "cses")
  fu00 <- Tget("hsb_full", fit, "(Intercept)", "(Intercept)")
  fu11 <- Tget("hsb_full", fit, "cses", "cses")
  nu00 <- Tget("hsb_null", fit, "(Intercept)", "(Intercept)")
  mo00 <- Tget("hsb_means_as_outcomes", fit, "(Intercept)", "(Intercept)")
  pre[[fit]] <- list(
    random_coefficient_cses_to_full = list(
      tau00_base = rc00, tau00_full = fu00, pre_tau00 = (rc00 - fu00) / rc00,
      tau11_base = rc11, tau11_full = fu11, pre_tau11 = (rc11 - fu11) / rc11),
    null_to_means_as_outcomes = list(
      tau00_base = nu00, tau00_full = mo00, pre_tau00 = (nu00 - mo00) / nu00)
  )
}

# ---------------------------------------------------------------------------
# Reliability of each school's sample mean (hsb_null, REML)
# ---------------------------------------------------------------------------
lambda <- null_T / (null_T + null_s2 / nj)
names(lambda) <- levels(hsb$school)
reliability <- list(
  model = "hsb_null (REML)", tau00 = null_T, sigma2 = null_s2,
  mean = mean(lambda), min = min(lambda), max = max(lambda),
  group_ids = I(names(lambda)), n_j = I(nj), lambda_j = I(unname(lambda))
)

# ---------------------------------------------------------------------------
# "What could go wrong" with raw SES
# ---------------------------------------------------------------------------
ols <- lm(mathach ~ ses, data = hsb)
ols_co <- summary(ols)$coefficients
wcgw <- list(
  pooled_ols = list(call = "lm(mathach ~ ses, data = hsb)",
                    intercept = ols_co["(Intercept)", "Estimate"],
                    slope = ols_co["ses", "Estimate"],
                    slope_se = ols_co["ses", "Std. Error"])
)
if (has_sandwich) {
  V <- sandwich::vcovCL(ols, cluster = ~school, type = "HC1")
  wcgw$pooled_ols$slope_se_cluster_robust_HC1 <- sqrt(V["ses", "ses"])
  wcgw$pooled_ols$cluster_robust_call <- 'sandwich::vcovCL(fit, cluster = ~school, type = "HC1")'
  wcgw$pooled_ols$sandwich_version <- as.character(packageVersion("sandwich"))
}
agg <- data.frame(mathach = as.vector(tapply(hsb$mathach, hsb$school, mean)),
                  ses = as.vector(tapply(hsb$ses, hsb$school, mean)))
bm <- lm(mathach ~ ses, data = agg)
bm_co <- summary(bm)$coefficients
wcgw$between_school_means <- list(
  call = "lm(school mean mathach ~ school sample mean ses), 160 schools",
  intercept = bm_co["(Intercept)", "Estimate"],
  slope = bm_co["ses", "Estimate"], slope_se = bm_co["ses", "Std. Error"])
slopes <- sapply(split(hsb, hsb$school), function(d) coef(lm(mathach ~ ses, data = d))[["ses"]])
wcgw$per_school_ols <- list(
  n_schools = length(slopes),
  mean = mean(slopes), sd = sd(slopes), min = min(slopes), max = max(slopes),
  group_ids_first5 = I(names(slopes)[1:5]), slopes_first5 = I(unname(slopes[1:5])))
wcgw$random_intercept_ses_REML_slope <- results$hsb_random_intercept_ses$REML$fixef$ses

# ---------------------------------------------------------------------------
# Checks on the published Table 4.5 values and on MEANSES
# ---------------------------------------------------------------------------
# Direct REML criterion (-2 * REML log-likelihood, lme4's REMLcrit) of
# mathach ~ meanses*cses + catholic*cses + (cses|school) at given T and sigma2,
# computed school by school, independent of lme4's sparse machinery.
X_full_default <- model.matrix(~ meanses * cses + catholic * cses, data = hsb)
Z_full <- model.matrix(~ cses, data = hsb)
by_school <- split(seq_len(nrow(hsb)), hsb$school)
reml_crit <- function(tau00, tau11, tau01, s2, X_full = X_full_default) {
  T <- matrix(c(tau00, tau01, tau01, tau11), 2)
  p <- ncol(X_full)
  XVX <- matrix(0, p, p); XVy <- numeric(p); yVy <- 0; logdetV <- 0
  for (ix in by_school) {
    Xj <- X_full[ix, , drop = FALSE]; Zj <- Z_full[ix, , drop = FALSE]; yj <- hsb$mathach[ix]
    Vj <- Zj %*% T %*% t(Zj) + diag(s2, length(ix))
    R <- chol(Vj)
    logdetV <- logdetV + 2 * sum(log(diag(R)))
    A <- backsolve(R, cbind(Xj, yj), transpose = TRUE)
    XVX <- XVX + crossprod(A[, 1:p]); XVy <- XVy + crossprod(A[, 1:p], A[, p + 1])
    yVy <- yVy + sum(A[, p + 1]^2)
  }
  beta <- solve(XVX, XVy)
  rVr <- yVy - sum(XVy * beta)
  logdetV + as.numeric(determinant(XVX)$modulus) + rVr + (nrow(hsb) - p) * log(2 * pi)
}
fr <- results$hsb_full$REML
crit_at_lme4 <- reml_crit(fr$T$matrix[[1]][[1]], fr$T$matrix[[2]][[2]], fr$T$matrix[[1]][[2]], fr$sigma2)
crit_published <- reml_crit(2.38, 0.15, 0.19, 36.70)
prof_obj <- function(par, tau11) {
  tau00 <- exp(par[1]); s2 <- exp(par[2]); tau01 <- tanh(par[3]) * sqrt(tau00 * tau11)
  reml_crit(tau00, tau11, tau01, s2)
}
start <- c(log(2.38), log(36.7), atanh(0.19 / sqrt(2.38 * 0.15)))
o1 <- optim(start, prof_obj, tau11 = 0.15, method = "Nelder-Mead", control = list(reltol = 1e-12, maxit = 2000))
o2 <- optim(o1$par, prof_obj, tau11 = 0.15, method = "BFGS", control = list(reltol = 1e-14))
crit_prof <- min(o1$value, o2$value)
pp <- if (o2$value <= o1$value) o2$par else o1$par
checks <- list(
  hsb_full_published_vs_reml = list(
    note = paste("REML log-likelihood of hsb_full computed directly (school by school) at lme4's",
                 "estimates, at the published Table 4.5 values (tau00 2.38, tau11 0.15, tau01 0.19,",
                 "sigma2 36.70; fixed effects profiled out by GLS), and maximised over tau00, tau01,",
                 "sigma2 with tau11 held at 0.15"),
    logLik_direct_at_lme4 = -crit_at_lme4 / 2,
    logLik_lme4 = fr$logLik,
    logLik_at_published = -crit_published / 2,
    logLik_profile_tau11_0.15 = -crit_prof / 2,
    profile_tau11_0.15_estimates = list(tau00 = exp(pp[1]), sigma2 = exp(pp[2]),
                                        tau01 = tanh(pp[3]) * sqrt(exp(pp[1]) * 0.15)),
    loglik_drop_at_published = (crit_published - crit_at_lme4) / 2,
    loglik_drop_profile_tau11_0.15 = (crit_prof - crit_at_lme4) / 2
  )
)
# Same for Table 4.4 (random coefficient, cses): tau00 8.68, tau11 0.68, tau01 0.05, sigma2 36.70
X_rc <- model.matrix(~ cses, data = hsb)
rr <- results$hsb_random_coefficient_cses$REML
crit_rc <- reml_crit(rr$T$matrix[[1]][[1]], rr$T$matrix[[2]][[2]], rr$T$matrix[[1]][[2]], rr$sigma2, X_rc)
crit_rc_pub <- reml_crit(8.68, 0.68, 0.05, 36.70, X_rc)
checks$hsb_random_coefficient_cses_published_vs_reml <- list(
  note = "as above for Table 4.4 values tau00 8.68, tau11 0.68, tau01 0.05, sigma2 36.70",
  logLik_direct_at_lme4 = -crit_rc / 2, logLik_lme4 = rr$logLik,
  logLik_at_published = -crit_rc_pub / 2,
  loglik_drop_at_published = (crit_rc_pub - crit_rc) / 2)
# MEANSES in the school file vs the sample mean of SES in the student file
samp_meanses <- ave(hsb$ses, hsb$school, FUN = mean)
checks$meanses_file_vs_sample <- list(
  max_abs_diff = max(abs(hsb$meanses - samp_meanses)))
hsb_s <- transform(hsb, meanses = samp_meanses)
m_s <- lmer(mathach ~ meanses * cses + catholic * cses + (cses | school), data = hsb_s, REML = TRUE)
checks$hsb_full_with_sample_meanses_REML <- list(
  note = "hsb_full refitted with MEANSES recomputed from the student file (as mlmRev::Hsb82 does)",
  fixef = as.list(fixef(m_s)), logLik = as.numeric(logLik(m_s)))

# ---------------------------------------------------------------------------
# Timings (REML, optimizer as kept above), median over n_timing_reps fits
# ---------------------------------------------------------------------------
time_fit <- function(nm, reps) {
  sp <- specs[[nm]]
  use_bob <- results[[nm]]$REML$optimizer_check$kept == "bobyqa"
  d <- get(sp$data)
  ctrl <- if (use_bob) lmerControl(optimizer = "bobyqa") else lmerControl()
  invisible(lmer(sp$f, data = d, REML = TRUE, control = ctrl))    # warm-up
  t <- numeric(reps)
  for (i in seq_len(reps)) {
    t0 <- Sys.time()
    invisible(lmer(sp$f, data = d, REML = TRUE, control = ctrl))
    t[i] <- as.numeric(difftime(Sys.time(), t0, units = "secs")) * 1000
  }
  list(median_ms = median(t), min_ms = min(t), max_ms = max(t), reps = reps)
}
timings <- list()
for (nm in names(specs)) timings[[nm]] <- time_fit(nm, n_timing_reps)
timings$note <- paste("REML fits, wall clock (Sys.time), one warm-up then",
                      n_timing_reps, "repetitions; machine:", Sys.info()[["machine"]],
                      "with", parallel::detectCores(), "cores")

# ---------------------------------------------------------------------------
# Write JSON
# ---------------------------------------------------------------------------
out <- results
out$lrt <- lrt
out$icc_anova <- icc_anova
out$pre <- pre
out$reliability <- reliability
out$what_could_go_wrong <- wcgw
out$timings_ms <- timings
out$checks <- checks
out$data <- list(
  students = "mlm_lessons/datasets/hsb_students.csv",
  schools = "mlm_lessons/datasets/hsb_schools.csv",
  sleep = "mlm_lessons/datasets/sleepstudy.csv",
  merge = "school file merged into student file by School (student row order kept); school file MEANSES used",
  cses = "SES minus the sample mean of SES within school",
  catholic = "as.integer(Sector == 'Catholic')",
  first5_rows = list(school = I(as.character(hsb$school[1:5])), ses = I(hsb$ses[1:5]),
                     mathach = I(hsb$mathach[1:5]), cses = I(hsb$cses[1:5]),
                     meanses = I(hsb$meanses[1:5])),
  sleep_first5_rows = list(Subject = I(as.character(sleep$Subject[1:5])),
                           Days = I(sleep$Days[1:5]), Reaction = I(sleep$Reaction[1:5]))
)
out$layout <- paste("Each model name maps to {REML: {...}, ML: {...}}. T: random-effect covariance",
                    "(matrix = rows in rownames order; by_name[row][col]). ranef_first5: BLUPs for the",
                    "first 5 group ids in sorted order, condsd = sqrt of the diagonal of postVar.",
                    "fitted_first5 = fitted(m) (conditional), predict_fixed_first5 = predict(m, re.form = NA),",
                    "rows 1..5 of the student file (or sleepstudy.csv).")
out$versions <- list(
  R = R.version.string,
  lme4 = as.character(packageVersion("lme4")),
  Matrix = as.character(packageVersion("Matrix")),
  jsonlite = as.character(packageVersion("jsonlite")),
  sandwich = if (has_sandwich) as.character(packageVersion("sandwich")) else NULL,
  nloptr = as.character(packageVersion("nloptr")),
  BLAS = extSoftVersion()[["BLAS"]],
  LAPACK = La_library(),
  date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z")
)

writeLines(toJSON(out, auto_unbox = TRUE, digits = I(15), pretty = TRUE, null = "null",
                  na = "null"), out_file)
message("wrote ", out_file)
