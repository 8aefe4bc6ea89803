# The linear-mixed-model reference suite: lmer fits (REML and ML) on data sets from R
# packages, each refitted with three tightly converged optimizers and checked against an
# independent dense likelihood; written to tests/reference/lme4_suite.json.
#
#   Rscript tests/reference/lme4_suite.R             (from the repository root)
#   LME4_SUITE_ONLY=sleep_slope,exam_block Rscript tests/reference/lme4_suite.R   (a few models,
#       written to lme4_suite.partial.json instead)
#
# Reads only tests/reference/data/*.csv[.gz] (written by suite_data.R; sha256 checked against
# data/datasets.json). The JSON layout is documented in tests/reference/README.md.
source("tests/reference/suite_common.R")
t_start <- proc.time()[["elapsed"]]

M <- function(id, dataset, formula, features, description, methods = c("REML", "ML")) {
  list(id = id, dataset = dataset, formula = formula, features = features,
       description = description, methods = methods)
}
MODELS <- list(
  # ---- one factor, balanced, few groups; the boundary -----------------------------------
  M("dyestuff_ri", "dyestuff", "Yield ~ 1 + (1 | Batch)", c("few_groups", "balanced"),
    "one random intercept, 6 balanced batches"),
  M("dyestuff2_ri", "dyestuff2", "Yield ~ 1 + (1 | Batch)", c("boundary", "singular_variance", "few_groups"),
    "batch variance estimated at exactly 0"),
  # ---- crossed ----------------------------------------------------------------------------
  M("penicillin_crossed", "penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", c("crossed", "balanced"),
    "fully crossed plate x sample, 24 x 6"),
  M("machines_crossed", "machines", "score ~ 1 + (1 | Worker) + (1 | Machine)", c("crossed", "few_groups"),
    "crossed worker x machine with only 3 machines and 6 workers"),
  M("verbagg_crossed", "verbagg", "resp_num ~ Anger + Gender + btype + situ + mode + (1 | id) + (1 | item)",
    c("crossed", "persons_x_items"), "persons x items (316 x 24), 0/1/2 response treated as numeric"),
  M("insteval_crossed", "insteval", "y ~ service + (1 | s) + (1 | d)", c("crossed", "large", "students_x_raters"),
    "InstEval: 73,421 ratings, 2,972 students x 1,128 lecturers"),
  M("insteval_dept", "insteval", "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)",
    c("crossed", "large", "interaction_term", "students_x_raters"),
    "InstEval with a department-by-service interaction factor (a:b grouping)"),
  M("scots_crossed", "scotssec", "attain ~ verbal + sex + social + (1 | primary) + (1 | second)",
    c("partially_crossed"), "pupils in 148 primary x 19 secondary schools, partially crossed"),
  M("scots_crossed_slope", "scotssec", "attain ~ verbal + sex + (verbal | primary) + (1 | second)",
    c("partially_crossed", "random_slope", "raw_scale"),
    "partially crossed with a random slope of raw verbal (range 70) over primary schools"),
  # ---- nested -----------------------------------------------------------------------------
  M("pastes_nested", "pastes", "strength ~ 1 + (1 | batch/cask)", c("nested", "three_level", "implicit_nesting"),
    "batch/cask, cask labels a-c reused in every batch (3 levels)"),
  M("pastes_interaction", "pastes", "strength ~ 1 + (1 | batch:cask)", c("interaction_term"),
    "only the batch:cask factor (a:b grouping)"),
  M("machines_nested", "machines", "score ~ Machine + (1 | Worker/Machine)", c("nested", "few_groups"),
    "worker / worker:machine with machine as a fixed effect"),
  M("machines_factor_slope", "machines", "score ~ Machine + (0 + Machine | Worker)",
    c("factor_in_random_part", "random_slope", "several_slopes"),
    "3 x 3 unstructured covariance of the machine effects over workers (factor random slope)"),
  M("oats_nested", "oats", "yield ~ nitro + (1 | Block/Variety)", c("nested", "three_level", "few_groups"),
    "split plot: block / variety, 6 blocks"),
  M("oats_variety", "oats", "yield ~ nitro + Variety + (1 | Block) + (1 | Block:Variety)",
    c("nested", "interaction_term", "few_groups"), "split plot written with an explicit a:b term"),
  M("oxide_lot_wafer", "oxide", "Thickness ~ 1 + (1 | Lot/Wafer)", c("nested", "three_level"),
    "lot / wafer / site"),
  M("oxide_4level", "oxide", "Thickness ~ 1 + (1 | Source/Lot/Wafer)", c("nested", "four_level", "few_groups"),
    "source / lot / wafer / site: four levels, 2 sources"),
  M("chem_lea_school", "chem97", "score ~ gcsescore + (1 | lea/school)", c("nested", "three_level", "large"),
    "31,022 students in 2,410 schools in 131 LEAs"),
  M("chem_4level", "chem97", "score ~ gcsescore + (1 | lea/school/gender)", c("nested", "four_level", "large"),
    "constructed four-level design: LEA / school / gender-within-school / student"),
  M("eg_3level", "egsingle", "math ~ year + (1 | schoolid/childid)", c("nested", "three_level"),
    "school / child / year (repeated measures)"),
  M("eg_growth", "egsingle", "math ~ year + (year | schoolid:childid) + (year | schoolid)",
    c("nested", "three_level", "random_slope", "interaction_term"),
    "three-level growth model with random slopes at both levels"),
  M("eg_growth_diag", "egsingle", "math ~ year + girl + (year || schoolid:childid) + (year || schoolid)",
    c("nested", "three_level", "diagonal", "interaction_term"),
    "three-level growth model, uncorrelated intercepts and slopes"),
  # ---- random slopes: full, diagonal, block-diagonal, several predictors ------------------
  M("sleep_ri", "sleepstudy", "Reaction ~ Days + (1 | Subject)", c("balanced"), "random intercept"),
  M("sleep_slope", "sleepstudy", "Reaction ~ Days + (Days | Subject)", c("random_slope", "balanced"),
    "correlated random intercept and slope"),
  M("sleep_diag", "sleepstudy", "Reaction ~ Days + (Days || Subject)", c("random_slope", "diagonal"),
    "uncorrelated random intercept and slope (||)"),
  M("sleep_quad", "sleepstudy", "Reaction ~ Days + I(Days^2) + (Days | Subject)", c("random_slope", "I_power"),
    "quadratic fixed trend"),
  M("orthodont_slope", "orthodont", "distance ~ age + Sex + (age | Subject)", c("random_slope"),
    "growth curves with raw age 8-14 (intercept far outside the data)"),
  M("orthodont_diag", "orthodont", "distance ~ age * Sex + (age || Subject)", c("random_slope", "diagonal"),
    "uncorrelated random intercept and slope, age by sex interaction"),
  M("oxboys_quad", "oxboys", "height ~ age + I(age^2) + (age | Subject)", c("random_slope", "I_power"),
    "growth with a quadratic term, 26 boys x 9 occasions"),
  M("exam_ri", "exam", "normexam ~ standLRT + (1 | school)", character(), "random intercept, 65 schools"),
  M("exam_slope", "exam", "normexam ~ standLRT + (standLRT | school)", c("random_slope"),
    "random slope of the intake score"),
  M("exam_block", "exam", "normexam ~ standLRT + girl + (1 + standLRT | school) + (0 + girl | school)",
    c("random_slope", "block_diagonal", "boundary", "singular_variance"),
    "block-diagonal: (1 + x | g) + (0 + z | g); the girl-slope variance is 0 at the optimum"),
  M("exam_multi", "exam", "normexam ~ standLRT + girl + (1 + standLRT + girl | school)",
    c("random_slope", "several_slopes", "boundary"), "3 x 3 unstructured covariance of two random slopes (rank 2 at the optimum)"),
  M("exam_diag3", "exam", "normexam ~ standLRT + girl + (standLRT + girl || school)",
    c("random_slope", "several_slopes", "diagonal", "boundary", "singular_variance"),
    "three uncorrelated random effects; the girl-slope variance is 0"),
  M("exam_contextual", "exam", "normexam ~ standLRT + schavg + schgend + vr + (standLRT | school)",
    c("random_slope", "level2_predictors"), "school-level predictors, factors with 3 levels"),
  M("exam_few", "exam", "normexam ~ standLRT + (1 | schgend)", c("few_groups"),
    "only 3 groups (school gender: boys, girls, mixed)"),
  M("chem_slope", "chem97", "score ~ gcsescore + (gcsescore | lea)", c("random_slope", "large"),
    "random slope over 131 LEAs, 31,022 rows"),
  M("chem_slope_school", "chem97", "score ~ gcsescore + gender + (gcsescore | school)",
    c("random_slope", "large", "tiny_groups"), "random slope over 2,410 schools (343 with 1-2 students)"),
  M("chem_tiny_ri", "chem97_tiny", "score ~ gcsescore + (1 | school)", c("tiny_groups"),
    "only schools with 1 or 2 students (343 groups, 524 rows)"),
  M("chem_tiny_nested", "chem97_tiny", "score ~ gcsescore + (1 | lea/school)", c("tiny_groups", "nested"),
    "tiny schools nested in LEAs"),
  # ---- scale: raw, x1000, x0.001, outcome shifted by 1e6 ----------------------------------
  M("scots_ri", "scotssec", "attain ~ verbal + sex + social + (1 | primary)", character(),
    "random intercept over primary schools"),
  M("scots_slope", "scotssec", "attain ~ verbal + (verbal | primary)", c("random_slope", "raw_scale"),
    "random slope of raw verbal (range -30..40)"),
  M("scots_slope_x1000", "scotssec", "attain ~ verbal_x1000 + (verbal_x1000 | primary)",
    c("random_slope", "rescaled"), "scots_slope with the predictor multiplied by 1000"),
  M("scots_slope_x0001", "scotssec", "attain ~ verbal_x0001 + (verbal_x0001 | primary)",
    c("random_slope", "rescaled"), "scots_slope with the predictor multiplied by 0.001"),
  M("scots_slope_shift", "scotssec", "attain_shift ~ verbal + (verbal | primary)",
    c("random_slope", "shifted_outcome"), "scots_slope with the outcome shifted by 1e6"),
  M("scots_slope_second", "scotssec", "attain ~ verbal + (verbal | second)", c("random_slope", "raw_scale"),
    "random slope of raw verbal over 19 secondary schools: interior optimum, correlation 0.90 (ML), 0.80 (REML)"),
  M("scots_social_slope", "scotssec", "attain ~ social + (social | primary)", c("random_slope", "raw_scale"),
    "random slope of social class (values 0-40), a flat likelihood: lme4's default stops short"),
  M("chem_age_slope", "chem97", "score ~ age + (age | lea)", c("random_slope", "large", "boundary", "singular_correlation"),
    "random slope of age in months over LEAs: correlation at -1 on 31,022 rows"),
  M("scots_diag", "scotssec", "attain ~ verbal + (verbal || primary)", c("random_slope", "diagonal", "raw_scale"),
    "uncorrelated random slope of raw verbal"),
  # ---- correlation at +-1, variances at 0 --------------------------------------------------
  M("sleep_pos", "sleepstudy_pos", "Reaction ~ Days + (Days | Subject)",
    c("boundary", "singular_correlation", "few_groups"), "4 subjects: correlation estimated at +1"),
  M("sleep_neg", "sleepstudy_neg", "Reaction ~ Days + (Days | Subject)",
    c("boundary", "singular_correlation", "few_groups"), "4 subjects: correlation estimated at -1"),
  M("sleep_zero", "sleepstudy_zero", "Reaction ~ Days + (Days | Subject)",
    c("boundary", "singular_variance", "few_groups"), "4 subjects: random-effect covariance (nearly) zero"),
  M("sleep_mlsing", "sleepstudy_mlsing", "Reaction ~ Days + (Days | Subject)",
    c("boundary", "singular_correlation", "few_groups"),
    "4 subjects: correlation -1 by ML; lme4's REML fit stops at -0.9999998 without the singular flag")
)

ONLY <- Sys.getenv("LME4_SUITE_ONLY", "")
if (nzchar(ONLY)) MODELS <- Filter(function(s) s$id %in% strsplit(ONLY, ",")[[1]], MODELS)

TIGHT <- list(
  bobyqa = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5)),
  Nelder_Mead = lmerControl(optimizer = "Nelder_Mead",
                            optCtrl = list(FtolAbs = 1e-12, FtolRel = 1e-15, XtolRel = 1e-10, maxfun = 1e5)),
  nloptwrap = lmerControl(optimizer = "nloptwrap",
                          optCtrl = list(xtol_abs = 1e-10, ftol_abs = 1e-12, xtol_rel = 1e-12,
                                         ftol_rel = 1e-15, maxeval = 1e5)))
TIGHT_TEXT <- list(
  bobyqa = 'lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5))',
  Nelder_Mead = 'lmerControl(optimizer = "Nelder_Mead", optCtrl = list(FtolAbs = 1e-12, FtolRel = 1e-15, XtolRel = 1e-10, maxfun = 1e5))',
  nloptwrap = 'lmerControl(optimizer = "nloptwrap", optCtrl = list(xtol_abs = 1e-10, ftol_abs = 1e-12, xtol_rel = 1e-12, ftol_rel = 1e-15, maxeval = 1e5))',
  bobyqa_interior_start = 'as bobyqa, started from the default theta with every diagonal element of Lambda below 0.01 set to 0.2')
FLAG_TOL <- 1e-6  # deviance units: the default counts as "not the best" beyond this

objective <- function(m) if (isREML(m)) REMLcrit(m) else deviance(m)
conv_info <- function(m, cap) {
  oi <- m@optinfo
  list(optimizer = oi$optimizer, feval = oi$feval, optimizer_message = oi$message,
       code = oi$conv$opt, lme4_messages = as.list(oi$conv$lme4$messages %||% character()),
       optinfo_warnings = as.list(unlist(oi$warnings)),
       warnings = as.list(cap$warnings), messages = as.list(cap$messages))
}
fixef_json <- function(m) {
  v <- as.matrix(vcov(m))
  list(names = arr(names(fixef(m))), estimate = arr(fixef(m)), se = arr(sqrt(diag(v))), vcov = mat_json(v))
}
summary_json <- function(m) {
  list(objective = objective(m), theta = arr(getME(m, "theta")), fixef = fixef_json(m),
       sigma = sigma(m), varcorr = varcorr_json(m), logLik = as.numeric(logLik(m)),
       isSingular = isSingular(m))
}

fit_record <- function(spec, reml, d) {
  id <- paste0(spec$id, if (reml) "_reml" else "_ml")
  cat(sprintf("%-28s", id)); t0 <- proc.time()[["elapsed"]]
  f <- as.formula(spec$formula)
  cap <- capture(lmer(f, data = d, REML = reml))
  m <- cap$value
  if (inherits(m, "captured_error")) stop(id, ": ", m$message)
  th <- getME(m, "theta"); lower <- getME(m, "lower")
  rec <- list(
    id = id, model = spec$id, dataset = spec$dataset, formula = spec$formula, REML = reml,
    pair = paste0(spec$id, if (reml) "_ml" else "_reml"),
    features = as.list(spec$features), description = spec$description,
    call = sprintf("lmer(%s, data = %s, REML = %s)", spec$formula, spec$dataset, reml),
    nobs = nobs(m), ngrps = as.list(ngrps(m)),
    fixef = fixef_json(m), sigma = sigma(m),
    theta = list(names = arr(names(th)), values = arr(th), lower = arr(lower)),
    varcorr = varcorr_json(m),
    logLik = as.numeric(logLik(m)), objective_name = if (reml) "REMLcrit" else "deviance",
    objective = objective(m), AIC = AIC(m), BIC = BIC(m), df = attr(logLik(m), "df"),
    isSingular = isSingular(m), convergence = conv_info(m, cap),
    ranef = ranef_json(m), fitted_first5 = arr(head(fitted(m), 5)),
    predict_fixed_first5 = arr(head(predict(m, re.form = NA), 5)))
  if (reml) rec$REMLcrit <- REMLcrit(m) else rec$deviance <- deviance(m)
  # ---- second opinions: tight optimizers, and an interior start at a boundary -----------
  refits <- list()
  fits <- list(default = m)
  for (o in names(TIGHT)) {
    cr <- capture(lmer(f, data = d, REML = reml, control = TIGHT[[o]]))
    fits[[o]] <- cr$value
  }
  if (any(lower == 0 & th < 1e-2)) {
    start <- th; start[lower == 0 & th < 1e-2] <- 0.2
    cr <- capture(lmer(f, data = d, REML = reml, control = TIGHT$bobyqa, start = list(theta = start)))
    fits[["bobyqa_interior_start"]] <- cr$value
  }
  for (o in setdiff(names(fits), "default")) {
    r <- fits[[o]]
    refits[[o]] <- if (inherits(r, "captured_error")) list(control = TIGHT_TEXT[[o]], error = r$message) else
      list(control = TIGHT_TEXT[[o]], objective = objective(r), theta = arr(getME(r, "theta")),
           fixef = arr(fixef(r)), sigma = sigma(r), feval = r@optinfo$feval,
           lme4_messages = as.list(r@optinfo$conv$lme4$messages %||% character()),
           objective_minus_default = objective(r) - objective(m))
  }
  ok <- names(fits)[vapply(fits, function(r) !inherits(r, "captured_error"), TRUE)]
  objs <- vapply(fits[ok], objective, 0)
  best <- ok[which.min(objs)]
  delta <- objective(m) - min(objs)
  rec$optimizer_check <- list(
    default_optimizer = m@optinfo$optimizer, refits = refits, best = best,
    default_minus_best = delta, default_is_best = delta <= FLAG_TOL,
    best_fit = summary_json(fits[[best]]))
  # ---- independent dense likelihood at the default and at the best point ----------------
  comp_max <- max(table(row_components(getME(m, "flist"))))
  q <- nrow(getME(m, "Lambdat"))
  feasible <- comp_max <= 2500 || q <= 1500 || (delta > FLAG_TOL && q <= 6000)
  if (feasible) {
    dd <- dense_objective(m, th)
    chk <- list(method = dd$method, n_blocks = dd$n_blocks, max_block = dd$max_block,
                at_default = dd$objective, default_dense_minus_lme4 = dd$objective - objective(m))
    if (best != "default") {
      db <- dense_objective(m, getME(fits[[best]], "theta"), method = dd$method)
      chk$at_best <- db$objective
      chk$best_dense_minus_lme4 <- db$objective - objective(fits[[best]])
      chk$best_minus_default <- db$objective - dd$objective
      chk$verdict <- if (db$objective < dd$objective - FLAG_TOL) "best point is better" else
        if (db$objective > dd$objective + FLAG_TOL) "default point is better" else "equal within 1e-6"
    }
    rec$dense_check <- chk
  } else {
    rec$dense_check <- list(method = "skipped", reason = sprintf(
      "one connected block of %d rows and q = %d; default is the best point", comp_max, q))
  }
  cat(sprintf(" %7.1f s  obj %.6f  best %-22s delta %.2e%s\n", proc.time()[["elapsed"]] - t0,
              objective(m), best, delta, if (isSingular(m)) "  singular" else ""))
  rec
}

data_cache <- list()
fits <- list()
for (spec in MODELS) {
  if (is.null(data_cache[[spec$dataset]])) data_cache[[spec$dataset]] <- read_suite_data(spec$dataset)
  for (meth in spec$methods) fits[[length(fits) + 1]] <- fit_record(spec, meth == "REML", data_cache[[spec$dataset]])
}

used <- unique(vapply(MODELS, `[[`, "", "dataset"))
out <- list(
  suite = "lme4_suite", description = "lmer reference fits; layout in tests/reference/README.md",
  versions = versions(), flag_tol = FLAG_TOL,
  tight_controls = TIGHT_TEXT,
  datasets = lapply(SUITE_REGISTRY[used], function(x) x[c("file", "sha256", "rows", "object")]),
  fits = fits,
  run_seconds = round(proc.time()[["elapsed"]] - t_start, 1))
file <- if (nzchar(ONLY)) "tests/reference/lme4_suite.partial.json" else "tests/reference/lme4_suite.json"
write_suite_json(out, file)
cat(sprintf("%d fits on %d data sets written to %s in %.0f s\n", length(fits), length(used), file,
            proc.time()[["elapsed"]] - t_start))
