# Shared helpers of lme4_suite.R, glmer_suite.R and benchmarks/*_suite_timing.R.
# source("tests/reference/suite_common.R") from the repository root.
suppressMessages({library(lme4); library(jsonlite); library(digest)})
invisible(Sys.setlocale("LC_COLLATE", "C"))  # factor levels sort as Python's sorted() does

SUITE_DATA_DIR <- "tests/reference/data"
if (!dir.exists(SUITE_DATA_DIR)) stop("run from the repository root (", SUITE_DATA_DIR, " not found)")
SUITE_REGISTRY <- fromJSON(file.path(SUITE_DATA_DIR, "datasets.json"), simplifyVector = FALSE)

# Read one data set exactly as committed: the file's sha256 must match datasets.json; string
# columns become factors with levels in C-locale (byte) order, numbers stay numbers.
read_suite_data <- function(name, check = TRUE) {
  info <- SUITE_REGISTRY[[name]]
  if (is.null(info)) stop("unknown data set ", name)
  file <- file.path(SUITE_DATA_DIR, info$file)
  if (check) {
    sha <- digest(file, algo = "sha256", file = TRUE)
    if (sha != info$sha256) stop(file, ": sha256 ", sha, " does not match datasets.json")
  }
  types <- unlist(info$columns)
  classes <- c(string = "character", integer = "integer", double = "numeric")[types]
  names(classes) <- names(types)
  d <- read.csv(file, colClasses = classes, stringsAsFactors = FALSE)
  stopifnot(nrow(d) == info$rows, identical(names(d), names(types)))
  for (n in names(types)[types == "string"]) d[[n]] <- factor(d[[n]], levels = sort(unique(d[[n]])))
  d
}

# Evaluate expr, collecting warnings and messages (muffled) instead of printing them.
capture <- function(expr) {
  warn <- character(); msg <- character()
  value <- withCallingHandlers(
    tryCatch(expr, error = function(e) structure(list(message = conditionMessage(e)), class = "captured_error")),
    warning = function(w) { warn <<- c(warn, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(m) { msg <<- c(msg, sub("\n$", "", conditionMessage(m))); invokeRestart("muffleMessage") })
  list(value = value, warnings = warn, messages = msg)
}

`%||%` <- function(a, b) if (is.null(a)) b else a
arr <- function(x) I(unname(x))  # always a JSON array, even of length 1

versions <- function() {
  pk <- c("lme4", "Matrix", "nloptr", "minqa", "nlme", "mlmRev", "MASS", "glmmTMB", "numDeriv", "jsonlite")
  c(list(R = R.version.string,
         BLAS = basename(extSoftVersion()[["BLAS"]]),
         LAPACK = basename(La_library()),
         date = format(Sys.time(), "%Y-%m-%d", tz = "UTC")),
    setNames(lapply(pk, function(p) tryCatch(as.character(packageVersion(p)), error = function(e) NA)), pk))
}

mat_json <- function(m) {
  m <- as.matrix(m)
  list(rows = I(rownames(m)), cols = I(colnames(m)), values = lapply(seq_len(nrow(m)), function(i) I(unname(m[i, ]))))
}

varcorr_json <- function(m) {
  vc <- VarCorr(m)
  fac <- names(m@cnms)  # the grouping factor of each term, in VarCorr's order
  lapply(seq_along(vc), function(i) {
    v <- vc[[i]]
    list(name = names(vc)[i], factor = fac[i], terms = I(rownames(v)),
         cov = mat_json(v), sd = I(unname(attr(v, "stddev"))),
         corr = if (nrow(v) > 1) mat_json(attr(v, "correlation")) else NULL)
  })
}

# First n levels (in lme4's level order) of every grouping factor, all terms, with condsd.
ranef_json <- function(m, n = 5) {
  re <- as.data.frame(ranef(m, condVar = TRUE))
  fl <- getME(m, "flist")
  lapply(names(fl), function(g) {
    lev <- head(levels(fl[[g]]), n)
    sub <- re[re$grpvar == g & re$grp %in% lev, ]
    terms <- unique(as.character(sub$term))
    cell <- function(col) lapply(lev, function(l) I(sapply(terms, function(t) {
      v <- sub[[col]][sub$grp == l & sub$term == t]; if (length(v)) v else NA }, USE.NAMES = FALSE)))
    list(factor = g, n_levels = nlevels(fl[[g]]), levels = I(lev), terms = I(terms),
         condval = cell("condval"), condsd = cell("condsd"))
  })
}

# Connected components of the rows: two rows are joined when they share a level of any
# grouping factor. V is block-diagonal over these components.
row_components <- function(flist) {
  comp <- as.integer(flist[[1]])
  repeat {
    old <- comp
    for (f in flist) comp <- ave(comp, f, FUN = min)
    if (identical(comp, old)) break
  }
  comp
}

# Profiled -2 log-likelihood (ML) or REML criterion of an LMM, computed densely from
# V0 = I + Z Lambda Lambda' Z' (V = sigma^2 V0), beta and sigma profiled out:
#   ML:   n (1 + log(2 pi r'V0^-1 r / n)) + log|V0|
#   REML: (n-p) (1 + log(2 pi r'V0^-1 r / (n-p))) + log|V0| + log|X'V0^-1 X|
# method "dense_V": V0 built and Cholesky-factored block by block (connected components);
# method "woodbury": the q x q dense form |V0| = |I + Lambda'Z'Z Lambda| and
#   V0^-1 = I - Z Lambda (I + Lambda'Z'Z Lambda)^-1 Lambda'Z'.
# Only the model matrices (X, Z, y) and the theta -> Lambda map are taken from lme4.
dense_objective <- function(m, theta, REML = isREML(m), method = c("auto", "dense_V", "woodbury"),
                            max_block = 2500) {
  method <- match.arg(method)
  X <- getME(m, "X"); y <- getME(m, "y"); Z <- getME(m, "Z")
  n <- nrow(X); p <- ncol(X)
  Lt <- getME(m, "Lambdat"); Lt@x <- theta[getME(m, "Lind")]
  Lambda <- t(Lt)
  comp <- row_components(getME(m, "flist"))
  sizes <- table(comp)
  if (method == "auto") method <- if (max(sizes) <= max_block) "dense_V" else "woodbury"
  # beta from the normal equations, then one refinement step and rss = |whitened residual|^2
  # (never y'V^-1 y - beta'X'V^-1 y, which cancels catastrophically for an outcome near 1e6)
  if (method == "dense_V") {
    LLt <- as.matrix(tcrossprod(Lambda))
    logdet <- 0; Xw <- vector("list", length(sizes)); yw <- Xw
    idx_by <- split(seq_len(n), comp)
    Zc <- as(Z, "CsparseMatrix")
    for (b in seq_along(idx_by)) {
      idx <- idx_by[[b]]
      Zb <- Zc[idx, , drop = FALSE]
      S <- which(diff(Zb@p) > 0)
      Zb <- as.matrix(Zb[, S, drop = FALSE])
      V <- diag(length(idx)) + Zb %*% LLt[S, S, drop = FALSE] %*% t(Zb)
      R <- chol(V)
      logdet <- logdet + 2 * sum(log(diag(R)))
      Xw[[b]] <- backsolve(R, X[idx, , drop = FALSE], transpose = TRUE)
      yw[[b]] <- backsolve(R, y[idx], transpose = TRUE)
    }
    Xw <- do.call(rbind, Xw); yw <- unlist(yw)
    XVX <- crossprod(Xw)
    beta <- solve(XVX, drop(crossprod(Xw, yw)))
    e <- yw - drop(Xw %*% beta)
    beta <- beta + solve(XVX, drop(crossprod(Xw, e)))
    e <- yw - drop(Xw %*% beta)
    rss <- sum(e^2)
  } else {
    ZL <- Z %*% Lambda
    A <- as.matrix(crossprod(ZL)); diag(A) <- diag(A) + 1
    R <- chol(A)
    logdet <- 2 * sum(log(diag(R)))
    ZLX <- backsolve(R, as.matrix(crossprod(ZL, X)), transpose = TRUE)
    XVX <- crossprod(X) - crossprod(ZLX)
    Vinv_quad <- function(r) {  # X'V0^-1 r and r'V0^-1 r
      w <- backsolve(R, as.numeric(crossprod(ZL, r)), transpose = TRUE)
      list(Xr = drop(crossprod(X, r)) - drop(crossprod(ZLX, w)), rr = sum(r^2) - sum(w^2))
    }
    beta <- solve(XVX, Vinv_quad(y)$Xr)
    for (i in 1:2) beta <- beta + solve(XVX, Vinv_quad(y - drop(X %*% beta))$Xr)
    rss <- Vinv_quad(y - drop(X %*% beta))$rr
  }
  obj <- if (REML) {
    (n - p) * (1 + log(2 * pi * rss / (n - p))) + logdet + as.numeric(determinant(XVX)$modulus)
  } else {
    n * (1 + log(2 * pi * rss / n)) + logdet
  }
  list(objective = obj, method = method, n_blocks = length(sizes), max_block = as.integer(max(sizes)),
       beta = unname(beta), sigma = sqrt(rss / if (REML) n - p else n))
}

write_suite_json <- function(x, file) {
  writeLines(toJSON(x, auto_unbox = TRUE, pretty = TRUE, digits = NA, null = "null", na = "null"), file)
}
