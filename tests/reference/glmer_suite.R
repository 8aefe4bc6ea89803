# The generalized-linear-mixed-model reference suite: glmer fits (binomial 0/1 and with
# trials, Poisson with and without offsets, negative binomial) with Laplace and adaptive
# Gauss-Hermite quadrature, each refitted tightly, with standard errors from an independent
# numerical Hessian, an independent quadrature of the marginal likelihood where there is one
# scalar random effect, and glmer's answers on deliberately bad inputs; written to
# tests/reference/glmer_suite.json.
#
#   Rscript tests/reference/glmer_suite.R            (from the repository root)
#   GLMER_SUITE_ONLY=cbpp_ri,epil_nb Rscript tests/reference/glmer_suite.R   (a few models,
#       written to glmer_suite.partial.json instead)
#
# Reads only tests/reference/data/*.csv[.gz]; the JSON layout is in tests/reference/README.md.
source("tests/reference/suite_common.R")
suppressMessages(library(numDeriv))
t_start <- proc.time()[["elapsed"]]

G <- function(id, dataset, formula, family, features, description, nAGQ = 1, nb = FALSE) {
  list(id = id, dataset = dataset, formula = formula, family = family, features = features,
       description = description, nAGQ = nAGQ, nb = nb)
}
AGQ <- c(1, 5, 10, 25)
MODELS <- list(
  # ---- binary -----------------------------------------------------------------------------
  G("contra_ri", "contraception", "use01 ~ age + I(age^2) + urban01 + livch + (1 | district)", "binomial",
    c("binary", "I_power"), "random intercept over 60 districts", AGQ),
  G("contra_slope", "contraception", "use01 ~ age + I(age^2) + urban01 + livch + (urban01 | district)",
    "binomial", c("binary", "random_slope"), "correlated random intercept and urban slope"),
  G("contra_diag", "contraception", "use01 ~ age + urban01 + livch + (urban01 || district)", "binomial",
    c("binary", "random_slope", "diagonal"), "uncorrelated random intercept and urban slope"),
  G("bacteria_ri", "bacteria", "y01 ~ trt + week2 + (1 | ID)", "binomial", c("binary", "tiny_groups"),
    "50 children with 2-5 visits each", AGQ),
  G("verbagg_crossed", "verbagg", "r2_01 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)", "binomial",
    c("binary", "crossed", "persons_x_items"), "persons x items (316 x 24), crossed"),
  G("verbagg_mode", "verbagg", "r2_01 ~ Anger + Gender + btype + situ + mode + (1 | id) + (1 | item)",
    "binomial", c("binary", "crossed", "persons_x_items"), "crossed, with the want/do mode"),
  G("guimmun_3level", "guimmun",
    "immun01 ~ kid2p + mom25p + ord + ethn + momEd + husEd + momWork + rural + pcInd81 + (1 | comm/mom)",
    "binomial", c("binary", "nested", "three_level", "tiny_groups"),
    "children / mothers / communities (1,595 mothers, most with 1-2 children)"),
  G("guimmun_small", "guimmun", "immun01 ~ kid2p + rural + pcInd81 + (1 | comm/mom)", "binomial",
    c("binary", "nested", "three_level", "tiny_groups"), "three-level with three predictors"),
  # ---- binomial with trials ---------------------------------------------------------------
  G("cbpp_ri", "cbpp", "cbind(incidence, healthy) ~ period + (1 | herd)", "binomial",
    c("binomial_trials", "few_groups"), "successes out of trials, 15 herds", AGQ),
  # ---- counts -----------------------------------------------------------------------------
  G("grouse_3factor", "grouseticks", "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
    "poisson", c("count", "nested", "three_level", "observation_level"),
    "chick (observation-level) / brood / location, three random intercepts"),
  G("grouse_nested", "grouseticks", "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)", "poisson",
    c("count", "nested", "three_level"), "brood within location"),
  G("grouse_raw", "grouseticks", "TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | LOCATION)", "poisson",
    c("count", "raw_scale"), "raw altitude (403-533 m) as a predictor"),
  G("mmmec_ri", "mmmec", "deaths ~ uvb + offset(log(expected)) + (1 | region)", "poisson",
    c("count", "offset"), "melanoma deaths with log(expected) offset, 78 regions", AGQ),
  G("mmmec_region_county", "mmmec", "deaths ~ uvb + offset(log(expected)) + (1 | region/county)", "poisson",
    c("count", "offset", "nested", "observation_level"), "region / county (one row per county)"),
  G("mmmec_nation_region", "mmmec", "deaths ~ uvb + offset(log(expected)) + (1 | nation/region)", "poisson",
    c("count", "offset", "nested", "three_level", "few_groups"), "nation (9) / region"),
  G("salam_ri", "salamanders", "count ~ spp + mined + (1 | site)", "poisson", c("count"),
    "salamander counts, 23 sites", AGQ),
  G("salam_cover", "salamanders", "count ~ spp + mined + cover + DOY + (1 | site)", "poisson", c("count"),
    "with continuous covariates"),
  G("epil_ri", "epil", "y ~ trt + lbase + lage + V4 + (1 | subject)", "poisson", c("count"),
    "seizure counts, 59 subjects x 4 periods", AGQ),
  G("epil_olre", "epil", "y ~ trt + lbase + lage + V4 + (1 | subject/period)", "poisson",
    c("count", "nested", "observation_level"), "subject / period observation-level effect"),
  G("epil_slope", "epil", "y ~ trt + lbase + lage + V4 + (1 + V4 | subject)", "poisson",
    c("count", "random_slope"), "random slope of the fourth-period indicator"),
  G("epil_nb", "epil", "y ~ trt + lbase + lage + V4 + (1 | subject)", "negative_binomial",
    c("count", "negative_binomial"), "glmer.nb", nb = TRUE),
  G("owls_pois", "owls", "SiblingNegotiation ~ FoodTreatment * SexParent + offset(logBroodSize) + (1 | Nest)",
    "poisson", c("count", "offset", "overdispersed"), "owl nestling calls, 27 nests"),
  G("owls_nb", "owls", "SiblingNegotiation ~ FoodTreatment * SexParent + offset(logBroodSize) + (1 | Nest)",
    "negative_binomial", c("count", "offset", "negative_binomial"), "glmer.nb", nb = TRUE)
)
ONLY <- Sys.getenv("GLMER_SUITE_ONLY", "")
if (nzchar(ONLY)) MODELS <- Filter(function(s) s$id %in% strsplit(ONLY, ",")[[1]], MODELS)

TIGHT <- list(
  bobyqa = glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5, rhoend = 1e-10), tolPwrss = 1e-10),
  nloptwrap = glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-10,
                           optCtrl = list(xtol_abs = 1e-10, ftol_abs = 1e-12, xtol_rel = 1e-12,
                                          ftol_rel = 1e-15, maxeval = 1e5)))
TIGHT_TEXT <- list(
  bobyqa = 'glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5, rhoend = 1e-10), tolPwrss = 1e-10)',
  nloptwrap = 'glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-10, optCtrl = list(xtol_abs = 1e-10, ftol_abs = 1e-12, xtol_rel = 1e-12, ftol_rel = 1e-15, maxeval = 1e5))')
FLAG_TOL <- 1e-6     # deviance units
SE_TOL <- 0.005      # relative SE discrepancy flagged

fam_of <- function(spec, nb_theta = NULL) switch(spec$family, binomial = binomial(), poisson = poisson(),
  negative_binomial = MASS::negative.binomial(theta = nb_theta))

fit_glmm <- function(spec, d, nAGQ, control = NULL, devFunOnly = FALSE, nb_theta = NULL) {
  f <- as.formula(spec$formula)
  if (spec$nb && is.null(nb_theta)) {
    if (is.null(control)) glmer.nb(f, data = d, nAGQ = nAGQ) else glmer.nb(f, data = d, nAGQ = nAGQ, control = control)
  } else {
    fam <- fam_of(spec, nb_theta)
    if (is.null(control)) glmer(f, data = d, family = fam, nAGQ = nAGQ, devFunOnly = devFunOnly)
    else glmer(f, data = d, family = fam, nAGQ = nAGQ, control = control, devFunOnly = devFunOnly)
  }
}

conv_info <- function(m, cap) {
  oi <- m@optinfo
  list(optimizer = oi$optimizer, feval = oi$feval, optimizer_message = oi$message %||% "",
       code = oi$conv$opt, lme4_messages = as.list(oi$conv$lme4$messages %||% character()),
       optinfo_warnings = as.list(unlist(oi$warnings)),
       warnings = as.list(cap$warnings), messages = as.list(cap$messages))
}
se_of <- function(v) arr(sqrt(diag(as.matrix(v))))

# Log-likelihood of a one-scalar-random-effect GLMM by adaptive integrate() per group, at the
# fit's own theta and beta: sum_j log int prod_i f(y_ij | x_ij'beta + offset + theta z) phi(z) dz.
integrate_loglik <- function(m, nb_theta = NULL) {
  fam <- family(m)$family
  X <- getME(m, "X"); beta <- fixef(m); off <- getME(m, "offset"); th <- getME(m, "theta")
  y <- m@resp$y; w <- m@resp$weights
  g <- getME(m, "flist")[[1]]
  eta0 <- drop(X %*% beta) + off
  logf <- if (fam == "binomial") function(yy, ww, eta) dbinom(round(yy * ww), round(ww), plogis(eta), log = TRUE)
    else if (fam == "poisson") function(yy, ww, eta) dpois(yy, exp(eta), log = TRUE)
    else function(yy, ww, eta) dnbinom(yy, size = nb_theta, mu = exp(eta), log = TRUE)
  total <- 0
  for (idx in split(seq_along(y), g)) {
    h <- function(z) vapply(z, function(zz) sum(logf(y[idx], w[idx], eta0[idx] + th * zz)), 0) + dnorm(z, log = TRUE)
    if (th == 0) { total <- total + h(0) - dnorm(0, log = TRUE); next }
    zm <- optimize(h, c(-15, 15), maximum = TRUE, tol = 1e-10)$maximum
    hm <- h(zm)
    e <- 1e-4; curv <- -(h(zm + e) - 2 * hm + h(zm - e)) / e^2
    s <- 1 / sqrt(max(curv, 1e-8))
    val <- integrate(function(z) exp(h(z) - hm), zm - 40 * s, zm + 40 * s, subdivisions = 2000L,
                     rel.tol = 1e-12, abs.tol = 0)$value
    total <- total + hm + log(val)
  }
  total
}

# sum_i log f(y_i | mu_i = y_i): with nAGQ > 1 glmer reports logLik relative to this
# (its deviance-residual scale), with nAGQ = 1 the full log-likelihood.
saturated_loglik <- function(m, nb_theta = NULL) {
  fam <- family(m)$family; y <- m@resp$y; w <- m@resp$weights
  if (fam == "binomial") sum(dbinom(round(y * w), round(w), y, log = TRUE))
  else if (fam == "poisson") sum(dpois(y, y, log = TRUE))
  else sum(dnbinom(y, size = nb_theta, mu = y, log = TRUE))
}
loglik_full <- function(m, nAGQ, nb_theta = NULL) {
  as.numeric(logLik(m)) + if (nAGQ > 1) saturated_loglik(m, nb_theta) else 0
}

# An independent deviance function of a fitted GLMM, -2 log L(theta, beta) with the full
# log-likelihood (normalising constants included), for the numerical Hessian and a polishing
# optimization. Only the model matrices (X, Z, y, prior weights, offset) and the theta ->
# Lambda map are taken from lme4. The conditional modes u are found by Newton's method with
# step halving to |step| < 1e-11, started from the previous call's modes (converged that far,
# the value does not depend on the order of calls beyond ~1e-11).
#   nAGQ = 1: Laplace, -2 sum log f(y | u) + |u|^2 + log|Lambda'Z'WZ Lambda + I| (sparse
#             Cholesky), W the Fisher weights at u (as glmer's PIRLS; observed = Fisher for the
#             canonical logit and log-Poisson links);
#   nAGQ > 1: one scalar random effect: adaptive Gauss-Hermite quadrature per group with the
#             nodes of the Golub-Welsch eigenproblem, centred at the mode and scaled by the
#             Fisher curvature, as glmer's GHrule.
gh_rule <- function(n) {
  if (n == 1) return(list(x = 0, w = sqrt(pi)))
  J <- matrix(0, n, n); off <- sqrt(seq_len(n - 1) / 2)
  J[cbind(1:(n - 1), 2:n)] <- off; J[cbind(2:n, 1:(n - 1))] <- off
  e <- eigen(J, symmetric = TRUE)
  list(x = e$values, w = sqrt(pi) * e$vectors[1, ]^2)
}
indep_devfun <- function(m, nAGQ, nb_theta = NULL) {
  fam <- family(m)$family
  X <- getME(m, "X"); Z <- getME(m, "Z"); off <- getME(m, "offset")
  y <- m@resp$y; w <- m@resp$weights
  Lt <- getME(m, "Lambdat"); Lind <- getME(m, "Lind"); k <- length(getME(m, "theta"))
  q <- ncol(Z)
  ll <- switch(fam,
    binomial = function(eta) dbinom(round(y * w), round(w), plogis(eta), log = TRUE),
    poisson = function(eta) dpois(y, exp(eta), log = TRUE),
    function(eta) dnbinom(y, size = nb_theta, mu = exp(eta), log = TRUE))
  score_w <- switch(fam,  # d loglik / d eta and the Fisher weight
    binomial = function(eta) { mu <- plogis(eta); list(s = w * (y - mu), W = w * mu * (1 - mu)) },
    poisson = function(eta) { mu <- exp(eta); list(s = y - mu, W = mu) },
    function(eta) { mu <- exp(eta); r <- nb_theta / (nb_theta + mu); list(s = (y - mu) * r, W = mu * r) })
  scalar <- nAGQ > 1
  if (scalar) {
    g <- getME(m, "flist")[[1]]; gi <- as.integer(g); rule <- gh_rule(nAGQ)
    stopifnot(k == 1, q == nlevels(g))
  }
  u_last <- numeric(q)
  function(pars) {
    theta <- pars[seq_len(k)]; beta <- pars[-seq_len(k)]
    Lt@x <- theta[Lind]
    ZL <- Z %*% t(Lt)
    eta0 <- drop(X %*% beta) + off
    u <- u_last
    pen <- function(u) { eta <- eta0 + drop(ZL %*% u); sum(ll(eta)) - sum(u^2) / 2 }
    obj <- pen(u)
    for (it in 1:200) {
      eta <- eta0 + drop(ZL %*% u); sw <- score_w(eta)
      grad <- drop(crossprod(ZL, sw$s)) - u
      H <- forceSymmetric(crossprod(ZL, Diagonal(x = sw$W) %*% ZL) + Diagonal(q))
      step <- as.numeric(solve(H, grad))
      t <- 1
      repeat {
        new <- pen(u + t * step)
        if (new >= obj - 1e-12 * abs(obj) || t < 1e-10) break
        t <- t / 2
      }
      u <- u + t * step; obj <- new
      if (max(abs(t * step)) < 1e-11) break
    }
    u_last <<- u
    eta <- eta0 + drop(ZL %*% u); sw <- score_w(eta)
    if (!scalar) {
      H <- forceSymmetric(crossprod(ZL, Diagonal(x = sw$W) %*% ZL) + Diagonal(q))
      ldet <- 2 * as.numeric(determinant(Cholesky(H, LDL = FALSE, perm = TRUE), sqrt = TRUE)$modulus)
      return(-2 * sum(ll(eta)) + sum(u^2) + ldet)
    }
    # adaptive Gauss-Hermite per group: z = u_j + sqrt(2) s_j x_k, s_j = 1/sqrt(theta^2 sum W + 1)
    s_j <- 1 / sqrt(theta^2 * as.numeric(rowsum(sw$W, gi)) + 1)
    terms <- sapply(seq_along(rule$x), function(kk) {
      z <- u + sqrt(2) * s_j * rule$x[kk]
      as.numeric(rowsum(ll(eta0 + theta * z[gi]), gi)) - z^2 / 2 + rule$x[kk]^2 + log(rule$w[kk])
    })
    terms <- matrix(terms, nrow = q)
    mx <- apply(terms, 1, max)
    logint <- mx + log(rowSums(exp(terms - mx))) + log(sqrt(2) * s_j) - 0.5 * log(2 * pi)
    -2 * sum(logint)
  }
}

summary_json <- function(m, nb_theta = NULL) {
  list(deviance = deviance(m), minus2logLik = -2 * as.numeric(logLik(m)),
       theta = arr(getME(m, "theta")), fixef = arr(fixef(m)),
       se = se_of(suppressWarnings(vcov(m))), logLik = as.numeric(logLik(m)),
       nb_theta = nb_theta, lme4_messages = as.list(m@optinfo$conv$lme4$messages %||% character()))
}

record <- function(spec, nAGQ, d) {
  id <- paste0(spec$id, if (nAGQ == 1) "_laplace" else paste0("_agq", nAGQ))
  cat(sprintf("%-30s", id)); t0 <- proc.time()[["elapsed"]]
  cap <- capture(fit_glmm(spec, d, nAGQ))
  m <- cap$value
  if (inherits(m, "captured_error")) stop(id, ": ", m$message)
  nbt <- if (spec$nb) getME(m, "glmer.nb.theta") else NULL
  th <- getME(m, "theta")
  vc_cap <- capture(as.matrix(vcov(m))); v <- vc_cap$value
  rx_cap <- capture(as.matrix(vcov(m, use.hessian = FALSE)))
  fam <- family(m)
  rec <- list(
    id = id, model = spec$id, dataset = spec$dataset, formula = spec$formula,
    family = if (spec$nb) "negative_binomial" else fam$family, link = fam$link, nAGQ = nAGQ,
    features = as.list(spec$features), description = spec$description,
    call = if (spec$nb) sprintf("glmer.nb(%s, data = %s, nAGQ = %d)", spec$formula, spec$dataset, nAGQ) else
      sprintf("glmer(%s, data = %s, family = %s, nAGQ = %d)", spec$formula, spec$dataset, fam$family, nAGQ),
    nobs = nobs(m), ngrps = as.list(ngrps(m)),
    fixef = list(names = arr(names(fixef(m))), estimate = arr(fixef(m)), se = se_of(v),
                 se_RX = se_of(rx_cap$value), vcov = mat_json(v),
                 vcov_warnings = as.list(vc_cap$warnings)),
    theta = list(names = arr(names(th)), values = arr(th), lower = arr(getME(m, "lower"))),
    varcorr = varcorr_json(m), nb_theta = nbt,
    logLik = as.numeric(logLik(m)), deviance = deviance(m), minus2logLik = -2 * as.numeric(logLik(m)),
    logLik_scale = if (nAGQ > 1) "relative_to_saturated" else "full",
    saturated_loglik = saturated_loglik(m, nbt), logLik_full = loglik_full(m, nAGQ, nbt),
    AIC = AIC(m), BIC = BIC(m), df = attr(logLik(m), "df"),
    isSingular = isSingular(m), convergence = conv_info(m, cap),
    ranef = ranef_json(m), fitted_first5 = arr(head(fitted(m), 5)),
    linear_predictor_first5 = arr(head(predict(m, type = "link"), 5)))
  if (fam$family %in% c("poisson") || spec$nb) {
    pr <- residuals(m, type = "pearson")
    rec$overdispersion <- list(pearson_chisq = sum(pr^2), df_residual = df.residual(m),
                               ratio = sum(pr^2) / df.residual(m))
  }
  # ---- tight refits ------------------------------------------------------------------------
  refits <- list(); fits <- list(default = m)
  for (o in names(TIGHT)) {
    cr <- capture(fit_glmm(spec, d, nAGQ, control = TIGHT[[o]]))
    r <- cr$value
    if (inherits(r, "captured_error")) { refits[[o]] <- list(control = TIGHT_TEXT[[o]], error = r$message); next }
    fits[[o]] <- r
    refits[[o]] <- c(list(control = TIGHT_TEXT[[o]]),
                     summary_json(r, if (spec$nb) getME(r, "glmer.nb.theta") else NULL),
                     list(deviance_minus_default = deviance(r) - deviance(m),
                          minus2logLik_minus_default = -2 * (as.numeric(logLik(r)) - as.numeric(logLik(m))),
                          warnings = as.list(cr$warnings)))
  }
  crit <- vapply(fits, function(r) -2 * as.numeric(logLik(r)), 0)
  best <- names(fits)[which.min(crit)]
  delta <- crit[["default"]] - min(crit)
  rec$optimizer_check <- list(default_optimizer = paste(m@optinfo$optimizer, collapse = "+"),
                              criterion = "-2 logLik", refits = refits, best = best,
                              default_minus_best = delta, default_is_best = delta <= FLAG_TOL)
  # ---- independent deviance: value at glmer's optimum, polished optimum, numerical Hessian ----
  mb <- fits[[best]]
  nbt_b <- if (spec$nb) getME(mb, "glmer.nb.theta") else NULL
  dfun <- indep_devfun(mb, nAGQ, nbt_b)
  k <- length(th); p <- length(fixef(m)); ib <- k + seq_len(p)
  pars_of <- function(r) c(getME(r, "theta"), fixef(r))
  full_m2ll <- function(r) -2 * loglik_full(r, nAGQ, if (spec$nb) getME(r, "glmer.nb.theta") else NULL)
  lower <- c(getME(m, "lower"), rep(-Inf, p))
  pol <- minqa::bobyqa(pars_of(mb), dfun, lower = lower, control = list(rhobeg = 1e-3, rhoend = 1e-11, maxfun = 20000))
  pars <- pol$par
  # Steps in units of a scale per parameter (0.1 for theta, glmer's RX-based SE for beta):
  # g(t) = dfun(pars + s t) is differentiated at t = 0 with Richardson extrapolation from
  # steps of 0.5 (and, as a check, 0.1) scale units, then H = Hg / (s s'). Relative steps
  # (numDeriv's default d * |x|) are far too small for coefficients near 0 and too large for
  # theta, and gave SEs off by up to a factor 2.
  s <- c(rep(0.1, k), se_of(rx_cap$value))
  g <- function(t) dfun(pars + s * t)
  hess_at <- function(e) numDeriv::hessian(g, rep(0, length(pars)),
                                            method.args = list(eps = e, d = 0.1, zero.tol = Inf, r = 4)) / outer(s, s)
  H <- hess_at(0.5); H2 <- hess_at(0.1)
  gr <- numDeriv::grad(g, rep(0, length(pars)), method.args = list(eps = 0.1, d = 0.1, zero.tol = Inf, r = 4)) / s
  at_bound <- any(getME(m, "lower") == 0 & pars[seq_len(k)] < 1e-6)
  inv_se <- function(H) {
    full <- tryCatch(2 * solve(H), error = function(e) NULL)
    se_full <- if (!is.null(full) && all(diag(full)[ib] > 0)) sqrt(diag(full)[ib]) else rep(NA_real_, p)
    se_beta <- sqrt(diag(2 * solve(H[ib, ib])))
    list(full = full, se_full = se_full, se_beta = se_beta,
         se = if (at_bound || anyNA(se_full)) se_beta else se_full)
  }
  h1 <- inv_se(H); h2 <- inv_se(H2)
  if (!is.null(h1$full)) dimnames(h1$full) <- list(names(pars_of(mb)), names(pars_of(mb)))
  se_h <- h1$se
  rel <- se_of(v) / se_h - 1
  tight_ok <- intersect(names(TIGHT), names(fits))
  mt <- fits[[tight_ok[which.min(crit[tight_ok])]]]  # the better of the two tight refits
  rel_t <- se_of(suppressWarnings(vcov(mt))) / se_h - 1
  rec$hessian_check <- list(
    devfun = paste("independent", if (nAGQ > 1) sprintf("adaptive Gauss-Hermite (%d nodes)", nAGQ) else "Laplace",
                   "deviance on the full log-likelihood scale (see glmer_suite.R, indep_devfun)"),
    devfun_at_default_minus_glmer = dfun(pars_of(m)) - full_m2ll(m),
    devfun_at_best_minus_glmer = dfun(pars_of(mb)) - full_m2ll(mb),
    polished = list(start = best, minus2logLik = pol$fval, minus2logLik_minus_best_glmer = pol$fval - full_m2ll(mb),
                    theta = arr(pars[seq_len(k)]), fixef = arr(pars[ib]), feval = pol$feval),
    gradient = arr(gr), max_abs_gradient = max(abs(gr)),
    theta_at_boundary = at_bound,
    se_full = arr(h1$se_full), se_beta_block = arr(h1$se_beta),
    se = arr(se_h), se_used = if (at_bound || anyNA(h1$se_full)) "beta_block" else "full",
    se_step_check_max_rel_diff = max(abs(h2$se / se_h - 1)),
    vcov_full = if (!is.null(h1$full)) mat_json(h1$full[ib, ib, drop = FALSE]) else NULL,
    glmer_se_rel_diff = arr(rel), glmer_se_max_abs_rel_diff = max(abs(rel)),
    glmer_se_differs = max(abs(rel)) > SE_TOL,
    tight_se_fit = tight_ok[which.min(crit[tight_ok])],
    tight_se_rel_diff = arr(rel_t), tight_se_max_abs_rel_diff = max(abs(rel_t)))
  # ---- independent quadrature (one scalar random effect) --------------------------------
  if (length(getME(m, "flist")) == 1 && length(th) == 1) {
    ll_int <- integrate_loglik(m, nbt)
    rec$quadrature_check <- list(method = "integrate() per group, adaptive, rel.tol 1e-12, at this fit's estimates",
                                 loglik = ll_int, logLik_full_minus_integrate = loglik_full(m, nAGQ, nbt) - ll_int)
  }
  cat(sprintf(" %6.1f s  -2LL %.5f  best %-9s delta %.1e  polish %.1e  SE diff %.4f (steps %.1e)%s\n",
              proc.time()[["elapsed"]] - t0, -2 * as.numeric(logLik(m)), best, delta,
              pol$fval - full_m2ll(mb), max(abs(rel)), rec$hessian_check$se_step_check_max_rel_diff,
              if (isSingular(m)) "  singular" else ""))
  rec
}

data_cache <- list()
fits <- list()
for (spec in MODELS) {
  if (is.null(data_cache[[spec$dataset]])) data_cache[[spec$dataset]] <- read_suite_data(spec$dataset)
  for (q in spec$nAGQ) fits[[length(fits) + 1]] <- record(spec, q, data_cache[[spec$dataset]])
}

# ---- deliberately bad inputs: what glmer says ---------------------------------------------
BAD <- list(
  list(id = "quasi_separation", formula = "y_quasi ~ x + z + (1 | g)", family = "binomial",
       what = "x = 1 always has y = 1; x = 0 has y = 0 except in 3 of 20 groups (quasi-complete separation)"),
  list(id = "complete_separation", formula = "y_complete ~ x + z + (1 | g)", family = "binomial",
       what = "y = x in every row (complete separation)"),
  list(id = "nonbinary_outcome", formula = "y_nonbinary ~ x + (1 | g)", family = "binomial",
       what = "a 0/1 outcome with one value 2"),
  list(id = "negative_failures", formula = "cbind(succ, fail) ~ x + (1 | g)", family = "binomial",
       what = "successes out of trials with one failure count of -1 (successes above trials)"),
  list(id = "negative_count", formula = "count_neg ~ x + (1 | g)", family = "poisson",
       what = "a Poisson outcome with one value -1"),
  list(id = "noninteger_count", formula = "count_frac ~ x + (1 | g)", family = "poisson",
       what = "a Poisson outcome with 3 non-integer values"),
  list(id = "one_row_per_group", formula = "y_complete ~ z + (1 | g_onerow)", family = "binomial",
       what = "a grouping factor with one row per level"))
bad_d <- read_suite_data("bad_inputs")
bad <- lapply(BAD, function(b) {
  cap <- capture(glmer(as.formula(b$formula), data = bad_d, family = get(b$family)()))
  m <- cap$value
  res <- c(b, list(dataset = "bad_inputs", warnings = as.list(unique(cap$warnings)),
                   n_warnings = length(cap$warnings), messages = as.list(unique(cap$messages))))
  if (inherits(m, "captured_error")) return(c(res, list(error = m$message)))
  vc <- capture(as.matrix(vcov(m)))
  c(res, list(error = NULL, fixef = as.list(fixef(m)), se = as.list(sqrt(diag(vc$value))),
                vcov_warnings = as.list(unique(vc$warnings)),
                theta = arr(getME(m, "theta")), logLik = as.numeric(logLik(m)),
                isSingular = isSingular(m), lme4_messages = as.list(m@optinfo$conv$lme4$messages %||% character())))
})
names(bad) <- vapply(BAD, `[[`, "", "id")

used <- unique(c(vapply(MODELS, `[[`, "", "dataset"), "bad_inputs"))
out <- list(
  suite = "glmer_suite", description = "glmer reference fits; layout in tests/reference/README.md",
  versions = versions(), flag_tol = FLAG_TOL, se_tol = SE_TOL, tight_controls = TIGHT_TEXT,
  datasets = lapply(SUITE_REGISTRY[used], function(x) x[c("file", "sha256", "rows", "object")]),
  fits = fits, bad_inputs = bad,
  run_seconds = round(proc.time()[["elapsed"]] - t_start, 1))
file <- if (nzchar(ONLY)) "tests/reference/glmer_suite.partial.json" else "tests/reference/glmer_suite.json"
write_suite_json(out, file)
cat(sprintf("%d fits on %d data sets written to %s in %.0f s\n", length(fits), length(used) - 1, file,
            proc.time()[["elapsed"]] - t_start))
