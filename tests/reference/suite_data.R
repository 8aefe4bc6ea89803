# Exports the data sets of the reference suites (lme4_suite.R, glmer_suite.R) from R packages
# to tests/reference/data/<name>.csv (gzipped as .csv.gz when over 300 kB), and writes
# tests/reference/data/datasets.json: one entry per file with its source, column types, rows
# and sha256. Test-only data: not shipped in the package.
#
#   Rscript tests/reference/suite_data.R        (from the repository root, a few seconds)
#
# The suites read these files only (never the packages' copies), so R and Python fit the same
# bytes. Factors are written as quoted strings; numbers with R's 15 significant digits. Rows
# keep the packages' order. Columns the models do not use are dropped. Derived columns
# (0/1 codes, rescaled or shifted copies, subsets) are described in `derived`.
suppressMessages({
  library(lme4); library(mlmRev); library(nlme); library(MASS); library(glmmTMB)
  library(jsonlite); library(digest)
})
invisible(Sys.setlocale("LC_COLLATE", "C"))
out_dir <- "tests/reference/data"
if (!dir.exists("tests/reference")) stop("run from the repository root")
dir.create(out_dir, showWarnings = FALSE)

pkg_info <- function(pkg) {
  if (pkg == "simulated") return(list(package = "simulated", version = R.version.string,
                                      licence = "MIT (this project's own simulation)"))
  list(package = pkg, version = as.character(packageVersion(pkg)),
       licence = unname(packageDescription(pkg)$License))
}
as_plain <- function(d) {
  d <- as.data.frame(d)
  attr(d, "formula") <- NULL
  for (n in names(d)) {
    if (is.factor(d[[n]])) d[[n]] <- as.character(d[[n]])
    attributes(d[[n]]) <- NULL
  }
  rownames(d) <- NULL
  d
}
yn01 <- function(x, yes) as.integer(as.character(x) == yes)

registry <- list()
export <- function(name, d, pkg, object, description, derived = setNames(list(), character()),
                   subset = NULL) {
  d <- as_plain(d)
  stopifnot(!anyNA(d))
  file <- file.path(out_dir, paste0(name, ".csv"))
  write.csv(d, file, row.names = FALSE)
  if (file.size(file) > 300e3) {
    unlink(file)
    file <- paste0(file, ".gz")
    con <- gzfile(file, "w", compression = 9)
    write.csv(d, con, row.names = FALSE)
    close(con)
  }
  types <- vapply(d, function(x) if (is.character(x)) "string" else
    if (is.integer(x) || all(x == round(x))) "integer" else "double", "")
  registry[[name]] <<- c(
    list(file = basename(file), object = object, description = description),
    pkg_info(pkg),
    list(rows = nrow(d), columns = as.list(types), derived = derived, subset = subset,
         sha256 = digest(file, algo = "sha256", file = TRUE), bytes = file.size(file)))
}

# ---- lme4 -------------------------------------------------------------------------------
export("dyestuff", Dyestuff, "lme4", "lme4::Dyestuff", "yield of dyestuff by batch: 6 batches x 5")
export("dyestuff2", Dyestuff2, "lme4", "lme4::Dyestuff2",
       "simulated Dyestuff-like data whose batch variance estimate is 0")
export("penicillin", Penicillin, "lme4", "lme4::Penicillin",
       "diameter of growth-inhibition zone: 24 plates x 6 samples, fully crossed")
export("pastes", Pastes[, c("strength", "batch", "cask")], "lme4", "lme4::Pastes",
       "paste strength: 10 batches / 3 casks (labels a-c reused in every batch) / 2 tests")
export("sleepstudy", sleepstudy, "lme4", "lme4::sleepstudy",
       "reaction time over 10 days of sleep deprivation, 18 subjects")
sleep_subsets <- list(
  sleepstudy_pos = c("309", "332", "351", "372"),
  sleepstudy_neg = c("330", "332", "350", "369"),
  sleepstudy_zero = c("332", "333", "334", "369"),
  sleepstudy_mlsing = c("308", "330", "350", "369"))
for (n in names(sleep_subsets)) {
  s <- sleep_subsets[[n]]
  export(n, sleepstudy[sleepstudy$Subject %in% s, ], "lme4", "lme4::sleepstudy",
         sprintf("sleepstudy, subjects %s only (4 groups)", paste(s, collapse = ", ")),
         subset = sprintf("Subject %%in%% c(%s)", paste0('"', s, '"', collapse = ", ")))
}
ie <- InstEval[, c("s", "d", "studage", "lectage", "service", "dept", "y")]
export("insteval", ie, "lme4", "lme4::InstEval",
       "ETH Zurich lecture ratings: 73,421 ratings, 2,972 students x 1,128 lecturers, 14 departments")
vb <- VerbAgg[, c("id", "item", "Anger", "Gender", "btype", "situ", "mode")]
vb$resp_num <- as.integer(VerbAgg$resp) - 1L
vb$r2_01 <- yn01(VerbAgg$r2, "Y")
export("verbagg", vb, "lme4", "lme4::VerbAgg",
       "verbal aggression: 316 persons x 24 items, crossed",
       derived = list(resp_num = "as.integer(resp) - 1 (no = 0, perhaps = 1, yes = 2)",
                      r2_01 = "as.integer(r2 == 'Y')"))
cb <- cbpp[, c("herd", "period", "incidence", "size")]
cb$healthy <- cb$size - cb$incidence
export("cbpp", cb, "lme4", "lme4::cbpp",
       "contagious bovine pleuropneumonia: new cases out of herd size, 15 herds x up to 4 periods",
       derived = list(healthy = "size - incidence"))
export("grouseticks", grouseticks, "lme4", "lme4::grouseticks",
       "ticks on red grouse chicks: 403 chicks (INDEX) in 118 broods at 63 locations, 3 years")

# ---- nlme -------------------------------------------------------------------------------
export("machines", nlme::Machines, "nlme", "nlme::Machines",
       "productivity score: 6 workers x 3 machines x 3 replicates")
export("oats", nlme::Oats, "nlme", "nlme::Oats",
       "split-plot oats yield: 6 blocks / 3 varieties / 4 nitrogen levels")
export("oxide", nlme::Oxide, "nlme", "nlme::Oxide",
       "oxide layer thickness: 2 sources / 8 lots / 3 wafers / 3 sites (four levels)")
export("orthodont", nlme::Orthodont, "nlme", "nlme::Orthodont",
       "orthodontic distance at ages 8-14, 27 children (16 boys, 11 girls)")

# ---- mlmRev -----------------------------------------------------------------------------
sc <- ScotsSec[, c("attain", "verbal", "sex", "social", "primary", "second")]
sc$verbal_x1000 <- sc$verbal * 1000
sc$verbal_x0001 <- sc$verbal / 1000
sc$attain_shift <- sc$attain + 1e6
export("scotssec", sc, "mlmRev", "mlmRev::ScotsSec",
       "Scottish secondary attainment: 3,435 pupils, 148 primary x 19 secondary schools (partially crossed)",
       derived = list(verbal_x1000 = "verbal * 1000", verbal_x0001 = "verbal / 1000",
                      attain_shift = "attain + 1e6"))
ch <- Chem97[, c("lea", "school", "score", "gender", "age", "gcsescore")]
export("chem97", ch, "mlmRev", "mlmRev::Chem97",
       "A-level chemistry 1997: 31,022 students in 2,410 schools in 131 LEAs")
ns <- table(ch$school)
tiny <- ch[ch$school %in% names(ns)[ns <= 2], ]
export("chem97_tiny", tiny, "mlmRev", "mlmRev::Chem97",
       "Chem97 restricted to the schools with 1 or 2 students (tiny groups)",
       subset = "school %in% names(table(school))[table(school) <= 2]")
ex <- Exam[, c("school", "student", "normexam", "standLRT", "sex", "schgend", "schavg", "vr", "intake", "type")]
ex$girl <- yn01(Exam$sex, "F")
export("exam", ex, "mlmRev", "mlmRev::Exam",
       "inner-London exam scores: 4,059 students in 65 schools",
       derived = list(girl = "as.integer(sex == 'F')"))
eg <- egsingle[, c("schoolid", "childid", "year", "grade", "math", "female", "black", "hispanic", "lowinc")]
eg$girl <- yn01(egsingle$female, "Female")
eg$female <- NULL
export("egsingle", eg, "mlmRev", "mlmRev::egsingle",
       "US Sustaining Effects study: 7,230 math scores of 1,721 children in 60 schools, years -1.5..2.5",
       derived = list(girl = "as.integer(female == 'Female')"))
export("oxboys", mlmRev::Oxboys[, c("Subject", "age", "height", "Occasion")], "mlmRev", "mlmRev::Oxboys",
       "heights of 26 Oxford boys at 9 occasions (age centred)")
co <- Contraception[, c("woman", "district", "livch", "age", "urban")]
co$use01 <- yn01(Contraception$use, "Y")
co$urban01 <- yn01(Contraception$urban, "Y")
co$urban <- NULL
export("contraception", co, "mlmRev", "mlmRev::Contraception",
       "contraceptive use in Bangladesh 1988: 1,934 women in 60 districts (age centred at its mean)",
       derived = list(use01 = "as.integer(use == 'Y')", urban01 = "as.integer(urban == 'Y')"))
gi <- guImmun
gi$immun01 <- yn01(gi$immun, "Y")
gi$immun <- NULL
export("guimmun", gi, "mlmRev", "mlmRev::guImmun",
       "immunisation in Guatemala: 2,159 children of 1,595 mothers in 161 communities",
       derived = list(immun01 = "as.integer(immun == 'Y')"))
export("mmmec", Mmmec, "mlmRev", "mlmRev::Mmmec",
       "malignant melanoma deaths in the EEC: 354 counties in 78 regions in 9 nations")

# ---- MASS / glmmTMB ---------------------------------------------------------------------
ba <- bacteria
ba$y01 <- yn01(ba$y, "y")
ba$week2 <- as.integer(ba$week > 2)
ba$y <- NULL
export("bacteria", ba, "MASS", "MASS::bacteria",
       "H. influenzae in children with otitis media: 50 children, weeks 0-11",
       derived = list(y01 = "as.integer(y == 'y')", week2 = "as.integer(week > 2)"))
ep <- epil
ep$subject <- as.character(ep$subject)
export("epil", ep, "MASS", "MASS::epil",
       "seizure counts: 59 epileptics x 4 two-week periods",
       derived = list(subject = "as.character(subject) (a factor in the suites)"))
export("salamanders", Salamanders, "glmmTMB", "glmmTMB::Salamanders",
       "salamander counts: 23 sites x 7 species x 4 samples (site written as a string)")
export("owls", Owls, "glmmTMB", "glmmTMB::Owls",
       "barn owl nestling negotiation: 599 visits to 27 nests")

# ---- deliberately bad inputs for the GLMM error-message tests (simulated, seeded) -------
# 20 groups of 10 rows, x alternating 0/1 within each group.
#   y_quasi:    x = 1 always gives y = 1; x = 0 gives y = 0 except in groups g18-g20, where
#               y ~ Bernoulli(0.5): quasi-complete separation (the ML slope is +infinity)
#   y_complete: y = x in every row: complete separation
#   y_nonbinary: y_quasi with one value set to 2
#   succ, fail: successes and failures out of 5 trials, one row with fail = -1 (successes
#               above trials)
#   count_neg:  Poisson(2) counts with one -1;  count_frac: counts plus 0.5 in 3 rows
#   g_onerow:   a grouping factor with one row per level
set.seed(20261126)
J <- 20; nj <- 10
bad <- data.frame(g = rep(sprintf("g%02d", seq_len(J)), each = nj), x = rep(c(0L, 1L), J * nj / 2))
bad$z <- round(rnorm(J * nj), 4)
bad$y_quasi <- ifelse(bad$x == 1L, 1L, 0L)
mixed <- bad$g %in% c("g18", "g19", "g20") & bad$x == 0L
bad$y_quasi[mixed] <- rbinom(sum(mixed), 1, 0.5)
bad$y_complete <- bad$x
bad$y_nonbinary <- bad$y_quasi; bad$y_nonbinary[7] <- 2L
bad$succ <- rbinom(J * nj, 5, 0.4); bad$fail <- 5L - bad$succ; bad$fail[3] <- -1L
bad$count_neg <- rpois(J * nj, 2); bad$count_neg[5] <- -1L
bad$count_frac <- rpois(J * nj, 2) + c(0.5, 0.5, 0.5, rep(0, J * nj - 3))
bad$g_onerow <- sprintf("r%03d", seq_len(J * nj))
export("bad_inputs", bad, "simulated", "set.seed(20261126) in tests/reference/suite_data.R",
       "deliberately bad GLMM inputs: separation, non-binary outcome, negative trials and counts, one row per group")

writeLines(toJSON(registry, auto_unbox = TRUE, pretty = TRUE, null = "null", digits = NA),
           file.path(out_dir, "datasets.json"))
cat(sprintf("%-18s %7s %9s  %s\n", "name", "rows", "bytes", "file"))
for (n in names(registry)) cat(sprintf("%-18s %7d %9d  %s\n", n, registry[[n]]$rows, registry[[n]]$bytes, registry[[n]]$file))
