# Times lme4 on the course's model ladder (REML), median ms over REPS repetitions.
# Rscript benchmarks/lme4_timing.R  (from the repository root; prints JSON)
suppressMessages(library(lme4))
reps <- as.integer(Sys.getenv("REPS", "20"))
stu <- read.csv("mlm_lessons/datasets/hsb_students.csv"); sch <- read.csv("mlm_lessons/datasets/hsb_schools.csv")
stu$MEANSES <- NULL
hsb <- merge(stu, sch, by = "School", sort = FALSE)
names(hsb) <- tolower(names(hsb))
hsb$cses <- hsb$ses - ave(hsb$ses, hsb$school)
hsb$catholic <- as.integer(hsb$sector == "Catholic")
models <- list(
  null = mathach ~ 1 + (1 | school),
  random_intercept = mathach ~ ses + (1 | school),
  random_coefficient = mathach ~ cses + (cses | school),
  full = mathach ~ meanses * cses + catholic * cses + (cses | school)
)
out <- sapply(models, function(f) {
  invisible(lmer(f, data = hsb))
  t <- replicate(reps, system.time(lmer(f, data = hsb))[["elapsed"]])
  1000 * median(t)
})
cat("{", paste(sprintf('"%s": %.1f', names(out), out), collapse = ", "), "}\n")
