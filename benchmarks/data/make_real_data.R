# Real-data benchmark: export public datasets from R packages as CSV and fit
# frequentist reference models (lme4 / glmmTMB / ordinal) for lmmformula.
#
# Run from the repository root:
#   OMP_NUM_THREADS=1 Rscript benchmarks/data/make_real_data.R
#
# For each dataset NAME it writes benchmarks/data/NAME.csv (only the columns the
# model needs, NA rows removed, grouping ids as text) and one entry of
# benchmarks/data/references.json.  Every model is fitted on the CSV *as read
# back* (text -> factor with levels sorted in C/code-point order), so R uses the
# same data, the same reference levels and the same numbers that Python sees.
#
# Packages: lme4, glmmTMB, ordinal, mlmRev, HSAUR3, MASS, nlme, lmerTest, afex
# (afex: Debian r-cran-afex), geepack, jsonlite.

options(digits = 15, glmmTMB.cores = 1L, warn = 1)
Sys.setenv(OMP_NUM_THREADS = "1", OPENBLAS_NUM_THREADS = "1")
invisible(Sys.setlocale("LC_COLLATE", "C"))  # sort text levels the way Python does

suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
  library(ordinal)
  library(jsonlite)
})

out_dir <- "benchmarks/data"
if (!dir.exists(out_dir)) stop("run from the repository root (benchmarks/data not found)")

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

pkg_data <- function(name, pkg) {
  e <- new.env()
  utils::data(list = name, package = pkg, envir = e)
  get(name, envir = e)
}

# Prefix numeric-looking ids with a letter so every reader takes them as text.
ids <- function(x, prefix) paste0(prefix, as.character(x))

# Keep `cols`, drop NA rows, factors -> character, write CSV, read it back the
# way the fit uses it (character -> factor with sorted levels).
export <- function(name, d, cols) {
  d <- as.data.frame(d)[, cols, drop = FALSE]
  d <- d[stats::complete.cases(d), , drop = FALSE]
  for (v in cols) {
    if (is.factor(d[[v]])) d[[v]] <- as.character(d[[v]])
    if (is.logical(d[[v]])) d[[v]] <- as.integer(d[[v]])
  }
  rownames(d) <- NULL
  path <- file.path(out_dir, paste0(name, ".csv"))
  utils::write.csv(d, path, row.names = FALSE)
  back <- utils::read.csv(path, stringsAsFactors = FALSE)
  for (v in names(back)) {
    if (is.character(back[[v]])) back[[v]] <- factor(back[[v]], levels = sort(unique(back[[v]])))
  }
  attr(back, "csv_path") <- path
  back
}

# R coefficient names -> formulaic names: "(Intercept)" -> "Intercept",
# factor columns "collev" -> "col[T.lev]", interactions joined with ":".
formulaic_names <- function(r_names, data) {
  map <- c("(Intercept)" = "Intercept")
  for (v in names(data)) {
    if (is.factor(data[[v]])) {
      for (l in levels(data[[v]])) map[paste0(v, l)] <- paste0(v, "[T.", l, "]")
    }
  }
  vapply(r_names, function(n) {
    parts <- strsplit(n, ":", fixed = TRUE)[[1]]
    paste(vapply(parts, function(p) if (!is.na(map[p])) map[[p]] else p, ""), collapse = ":")
  }, "", USE.NAMES = FALSE)
}

named_list <- function(values, nms) {
  stats::setNames(as.list(unname(values)), nms)
}

# Grouping factor as lme4 prints it ("cask:batch" = cask within batch).
group_factor <- function(gname, data) {
  parts <- strsplit(gname, ":", fixed = TRUE)[[1]]
  droplevels(interaction(data[parts], drop = TRUE, sep = ":"))
}

group_info <- function(gnames, data) {
  ng <- list()
  ls <- list()
  for (g in gnames) {
    f <- group_factor(g, data)
    tab <- as.integer(table(f))
    ng[[g]] <- nlevels(f)
    ls[[g]] <- list(min = min(tab), median = stats::median(tab), max = max(tab))
  }
  list(ngroups = ng, level_sizes = ls)
}

# A list of covariance matrices (lme4 VarCorr, glmmTMB VarCorr()$cond,
# ordinal VarCorr) -> sd and cor entries with formulaic names.
varcorr_entries <- function(vc, data) {
  sd <- list()
  cor <- list()
  for (g in names(vc)) {
    m <- as.matrix(vc[[g]])
    terms <- formulaic_names(colnames(m), data)
    s <- sqrt(diag(m))
    sd[[g]] <- named_list(s, terms)
    if (ncol(m) > 1) {
      r <- stats::cov2cor(m)
      cc <- list()
      for (i in seq_len(ncol(m) - 1)) for (j in (i + 1):ncol(m)) {
        cc[[paste0(terms[i], "__", terms[j])]] <- r[i, j]
      }
      cor[[g]] <- cc
    }
  }
  list(sd = sd, cor = cor)
}

refs <- list()
summary_rows <- list()

timed_eval <- function(call_text, env) {
  warns <- character(0)
  t0 <- proc.time()[["elapsed"]]
  fit <- withCallingHandlers(
    eval(parse(text = call_text), envir = env),
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    }
  )
  list(fit = fit, seconds = proc.time()[["elapsed"]] - t0, warnings = warns)
}

# Fit one model and store its reference entry.
#   engine: "lmer", "glmer", "glmmTMB", "clmm"
#   r_call: the R call, evaluated with the read-back data as `d`
#   prep:   optional R code run on `d` first (kept in "r_call")
#   agq:    also fit with adaptive quadrature (glmer nAGQ / clmm nAGQ) -- only
#           for models with a single scalar random intercept
reference <- function(name, source, description, kind, formula, family, d,
                      r_call, engine, prep = NULL, agq = NULL) {
  # every entry gets its own NAME.csv (models sharing data get a copy)
  csv_path <- file.path(out_dir, paste0(name, ".csv"))
  if (attr(d, "csv_path") != csv_path) file.copy(attr(d, "csv_path"), csv_path, overwrite = TRUE)
  env <- new.env()
  env$d <- d
  if (!is.null(prep)) eval(parse(text = prep), envir = env)
  d <- env$d
  res <- timed_eval(r_call, env)
  fit <- res$fit
  notes <- character(0)
  entry <- list(name = name, source = source, description = description,
                kind = kind, formula = formula, family = family,
                r_call = if (is.null(prep)) r_call else paste0(prep, "; ", r_call),
                csv = basename(csv_path))

  if (engine %in% c("lmer", "glmer")) {
    fe <- fixef(fit)
    se <- sqrt(diag(as.matrix(stats::vcov(fit))))
    vc <- VarCorr(fit)
    gnames <- names(lme4::getME(fit, "flist"))
    nobs <- stats::nobs(fit)
    singular <- lme4::isSingular(fit)
    msgs <- c(fit@optinfo$conv$lme4$messages, fit@optinfo$warnings)
    if (length(msgs)) notes <- c(notes, unlist(msgs))
    method <- if (engine == "lmer") {
      if (lme4::isREML(fit)) "REML" else "ML"
    } else if (fit@devcomp$dims[["nAGQ"]] > 1) "adaptive quadrature" else "Laplace"
    # "very large eigenvalue / Rescale variables?" is a scaling note, not a
    # failure; a failed gradient check ("failed to converge") is.
    conv_msgs <- unlist(fit@optinfo$conv$lme4$messages)
    converged <- fit@optinfo$conv$opt == 0 && !any(grepl("failed to converge", conv_msgs))
    extra <- list()
    if (family == "gaussian") extra$sigma <- stats::sigma(fit)
  } else if (engine == "glmmTMB") {
    fe <- fixef(fit)$cond
    se <- sqrt(diag(stats::vcov(fit)$cond))
    vc <- VarCorr(fit)$cond
    gnames <- names(fit$modelInfo$reTrms$cond$flist)
    nobs <- stats::nobs(fit)
    singular <- any(vapply(vc, function(m) any(attr(m, "stddev") < 1e-4), TRUE))
    converged <- fit$fit$convergence == 0 && isTRUE(fit$sdr$pdHess)
    method <- "Laplace"
    extra <- list()
    if (family %in% c("negbinomial", "zero_inflated_negbinomial")) extra$shape <- stats::sigma(fit)
    if (family %in% c("zero_inflated_poisson", "zero_inflated_negbinomial")) {
      zi <- fixef(fit)$zi
      extra$zi <- stats::plogis(zi[["(Intercept)"]])
      extra$zi_logit <- zi[["(Intercept)"]]
      extra$zi_logit_se <- unname(sqrt(diag(stats::vcov(fit)$zi))[1])
    }
  } else if (engine == "clmm") {
    co <- stats::coef(summary(fit))
    th <- names(fit$alpha)
    be <- names(fit$beta)
    fe <- c(stats::setNames(co[th, "Estimate"], paste0("Intercept[", seq_along(th), "]")),
            co[be, "Estimate"])
    se <- c(stats::setNames(co[th, "Std. Error"], paste0("Intercept[", seq_along(th), "]")),
            co[be, "Std. Error"])
    vc <- VarCorr(fit)
    gnames <- names(vc)
    nobs <- stats::nobs(fit)
    singular <- any(unlist(lapply(vc, function(m) sqrt(diag(m)))) < 1e-4)
    converged <- fit$optRes$convergence == 0
    method <- if (fit$nAGQ > 1) "adaptive quadrature" else "Laplace"
    extra <- list()
  } else stop("unknown engine")

  if (!converged) notes <- c(notes, "optimizer did not report convergence")
  if (singular) notes <- c(notes, "singular fit (a variance at its boundary)")
  notes <- unique(c(notes, res$warnings))
  if (length(notes)) {
    cat(sprintf("  [%s] notes: %s\n", name, paste(notes, collapse = " | ")))
  }

  fe_names <- if (engine == "clmm") c(paste0("Intercept[", seq_along(fit$alpha), "]"),
                                      formulaic_names(names(fit$beta), d))
              else formulaic_names(names(fe), d)
  gi <- group_info(gnames, d)
  vcs <- varcorr_entries(vc, d)
  entry$nobs <- nobs
  entry$ngroups <- gi$ngroups
  entry$level_sizes <- gi$level_sizes
  entry$fixef <- named_list(fe, fe_names)
  entry$fixef_se <- named_list(se, fe_names)
  entry$sd <- vcs$sd
  if (length(vcs$cor)) entry$cor <- vcs$cor
  entry <- c(entry, extra)
  entry$method <- method
  entry$r_seconds <- round(res$seconds, 3)
  entry$converged <- converged
  entry$singular <- singular
  entry$r_notes <- as.list(notes)
  if (singular && !grepl("singular", description)) {
    entry$description <- paste0(description, " (R fit is singular: a variance estimate is ~0.)")
  }

  if (!is.null(agq)) {
    a <- timed_eval(agq, env)
    af <- a$fit
    if (engine == "clmm") {
      co <- stats::coef(summary(af))
      th <- names(af$alpha)
      be <- names(af$beta)
      afe <- c(co[th, "Estimate"], co[be, "Estimate"])
      ase <- c(co[th, "Std. Error"], co[be, "Std. Error"])
      avc <- VarCorr(af)
    } else {
      afe <- fixef(af)
      ase <- sqrt(diag(as.matrix(stats::vcov(af))))
      avc <- VarCorr(af)
    }
    entry$agq <- list(r_call = agq, fixef = named_list(afe, fe_names),
                      fixef_se = named_list(ase, fe_names),
                      sd = varcorr_entries(avc, d)$sd,
                      r_seconds = round(a$seconds, 3),
                      r_notes = as.list(unique(a$warnings)))
  }

  refs[[length(refs) + 1]] <<- entry
  summary_rows[[length(summary_rows) + 1]] <<- data.frame(
    name = name, rows = nobs,
    levels = paste(sprintf("%s=%d", names(gi$ngroups), unlist(gi$ngroups)), collapse = ","),
    family = family, seconds = round(res$seconds, 2), converged = converged,
    singular = singular, stringsAsFactors = FALSE)
  cat(sprintf("%-22s n=%5d %-26s %6.2fs  %s\n", name, nobs, family, res$seconds, formula))
  invisible(fit)
}

# ---------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------

## 1. VerbAgg: crossed subjects x items, bernoulli, 7584 rows; Anger (mean ~20,
##    raw) and Gender are per-subject predictors -- the centering/scaling test.
v <- pkg_data("VerbAgg", "lme4")
v$y <- as.integer(v$r2 == "Y")
v$id <- ids(v$id, "s")
d <- export("verbagg", v, c("y", "Anger", "Gender", "btype", "situ", "id", "item"))
reference("verbagg", "lme4::VerbAgg",
          "Verbal aggression questionnaire: 316 respondents x 24 items, binary 'yes' to r2; crossed random intercepts, raw Anger (per-respondent) as predictor.",
          c("crossed", "bernoulli", "per_level_predictor", "many_levels"),
          "y ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)", "bernoulli", d,
          "glmer(y ~ Anger + Gender + btype + situ + (1 | id) + (1 | item), data = d, family = binomial)",
          "glmer")

## 2. Penicillin: small fully crossed gaussian design (24 plates x 6 samples),
##    few levels on one factor.
p <- pkg_data("Penicillin", "lme4")
d <- export("penicillin", p, c("diameter", "plate", "sample"))
reference("penicillin", "lme4::Penicillin",
          "Penicillin assay: diameter of growth-inhibition zones, 24 plates x 6 samples fully crossed.",
          c("crossed", "few_levels", "gaussian"),
          "diameter ~ 1 + (1 | plate) + (1 | sample)", "gaussian", d,
          "lmer(diameter ~ 1 + (1 | plate) + (1 | sample), data = d, REML = TRUE)", "lmer")

## 3. fhch2010 (Freeman, Heathcote, Chalmers & Hockley 2010), lexical-decision
##    task only: the psycholinguistic crossed subjects x items design with a
##    by-subject random slope (600 items, 25 subjects).
f <- pkg_data("fhch2010", "afex")
f <- droplevels(subset(f, task == "lexdec"))
d <- export("fhch2010", f, c("log_rt", "stimulus", "id", "item"))
reference("fhch2010", "afex::fhch2010",
          "Lexical decision (task == 'lexdec'): log RT, 25 participants x 600 word/nonword items crossed, by-participant correlated stimulus slope.",
          c("crossed", "slopes", "correlated", "many_levels", "gaussian"),
          "log_rt ~ stimulus + (stimulus | id) + (1 | item)", "gaussian", d,
          "lmer(log_rt ~ stimulus + (stimulus | id) + (1 | item), data = d, REML = TRUE)", "lmer")

## 4. carrots: consumer-preference data, consumers x products crossed; sens2 is
##    a product-level (per-level) predictor with a by-consumer slope.
cr <- pkg_data("carrots", "lmerTest")
cr$Consumer <- ids(cr$Consumer, "c")
cr$Homesize <- ids(cr$Homesize, "h")
d <- export("carrots", cr, c("Preference", "sens2", "Homesize", "Consumer", "Product"))
reference("carrots", "lmerTest::carrots",
          "Carrot preference scores: 103 consumers x 12 products crossed; product-level sensory score sens2 with a correlated by-consumer slope.",
          c("crossed", "slopes", "correlated", "per_level_predictor", "gaussian"),
          "Preference ~ sens2 + Homesize + (sens2 | Consumer) + (1 | Product)", "gaussian", d,
          "lmer(Preference ~ sens2 + Homesize + (sens2 | Consumer) + (1 | Product), data = d, REML = TRUE)",
          "lmer")

## 5. Dyestuff: the classic few-levels case (6 batches x 5), one variance.
ds <- pkg_data("Dyestuff", "lme4")
d <- export("dyestuff", ds, c("Yield", "Batch"))
reference("dyestuff", "lme4::Dyestuff",
          "Yield of dyestuff from 6 batches of an intermediate product, 5 preparations each.",
          c("few_levels", "gaussian"),
          "Yield ~ 1 + (1 | Batch)", "gaussian", d,
          "lmer(Yield ~ 1 + (1 | Batch), data = d, REML = TRUE)", "lmer")

## 6. Pastes: nested (cask within batch), 10 batches = few levels.
ps <- pkg_data("Pastes", "lme4")
d <- export("pastes", ps, c("strength", "batch", "cask"))
reference("pastes", "lme4::Pastes",
          "Paste strength: 10 delivery batches, 3 casks per batch, 2 assays per cask; nested random intercepts.",
          c("nested", "few_levels", "gaussian"),
          "strength ~ 1 + (1 | batch/cask)", "gaussian", d,
          "lmer(strength ~ 1 + (1 | batch/cask), data = d, REML = TRUE)", "lmer")

## 7. Oats (nlme): split-plot, variety plots nested in blocks, few levels.
oa <- pkg_data("Oats", "nlme")
d <- export("oats", oa, c("yield", "nitro", "Variety", "Block"))
reference("oats", "nlme::Oats",
          "Oats split-plot experiment: 6 blocks, 3 varieties (whole plots) within block, 4 nitrogen levels (sub-plots).",
          c("nested", "few_levels", "gaussian"),
          "yield ~ nitro + Variety + (1 | Block/Variety)", "gaussian", d,
          "lmer(yield ~ nitro + Variety + (1 | Block/Variety), data = d, REML = TRUE)", "lmer")

## 8. sleepstudy: the canonical correlated random slope.
sl <- pkg_data("sleepstudy", "lme4")
sl$Subject <- ids(sl$Subject, "s")
d <- export("sleepstudy", sl, c("Reaction", "Days", "Subject"))
reference("sleepstudy", "lme4::sleepstudy",
          "Reaction times of 18 subjects over 10 days of sleep deprivation; correlated intercept and Days slope.",
          c("slopes", "correlated", "gaussian"),
          "Reaction ~ Days + (Days | Subject)", "gaussian", d,
          "lmer(Reaction ~ Days + (Days | Subject), data = d, REML = TRUE)", "lmer")

## 9. Orthodont: growth curves, correlated slope on raw age (8-14, not centered)
##    => strong intercept-slope correlation; Sex is a per-subject predictor.
ot <- pkg_data("Orthodont", "nlme")
ot <- as.data.frame(ot)
d <- export("orthodont", ot, c("distance", "age", "Sex", "Subject"))
reference("orthodont", "nlme::Orthodont",
          "Orthodontic distance for 27 children at ages 8-14; correlated random intercept and raw-age slope, Sex per child.",
          c("slopes", "correlated", "per_level_predictor", "gaussian"),
          "distance ~ age + Sex + (age | Subject)", "gaussian", d,
          "lmer(distance ~ age + Sex + (age | Subject), data = d, REML = TRUE)", "lmer")

## 10. Exam: pupils in 65 schools with a correlated LRT slope; schgend is a
##     school-level predictor.
ex <- pkg_data("Exam", "mlmRev")
ex$school <- ids(ex$school, "s")
d <- export("exam", ex, c("normexam", "standLRT", "schgend", "school"))
reference("exam", "mlmRev::Exam",
          "Normalized exam scores of 4059 London pupils in 65 schools; correlated standLRT slope, school gender type as school-level predictor.",
          c("slopes", "correlated", "per_level_predictor", "unbalanced", "gaussian"),
          "normexam ~ standLRT + schgend + (standLRT | school)", "gaussian", d,
          "lmer(normexam ~ standLRT + schgend + (standLRT | school), data = d, REML = TRUE)", "lmer")

## 11. Hsb82: High School & Beyond, 160 schools of very different size;
##     meanses and sector are school-level predictors, cses a within-school slope.
hs <- pkg_data("Hsb82", "mlmRev")
hs$school <- ids(hs$school, "s")
d <- export("hsb82", hs, c("mAch", "meanses", "sector", "cses", "school"))
reference("hsb82", "mlmRev::Hsb82",
          "Math achievement of 7185 students in 160 US high schools; school-level meanses and sector, correlated within-school cses slope.",
          c("slopes", "correlated", "per_level_predictor", "unbalanced", "gaussian"),
          "mAch ~ meanses + sector + cses + (cses | school)", "gaussian", d,
          "lmer(mAch ~ meanses + sector + cses + (cses | school), data = d, REML = TRUE)", "lmer")

## 12. BodyWeight (nlme): rat growth, large raw scales (weight ~250-600 g,
##     Time 1-64 days) and a correlated slope; Diet is per rat.
bw <- as.data.frame(pkg_data("BodyWeight", "nlme"))
bw$Rat <- ids(bw$Rat, "r")
bw$Diet <- ids(bw$Diet, "d")
d <- export("bodyweight", bw, c("weight", "Time", "Diet", "Rat"))
reference("bodyweight", "nlme::BodyWeight",
          "Body weights of 16 rats on 3 diets over 64 days (raw scales); correlated Time slope per rat, diet per rat.",
          c("slopes", "correlated", "per_level_predictor", "few_levels", "gaussian"),
          "weight ~ Time + Diet + (Time | Rat)", "gaussian", d,
          "lmer(weight ~ Time + Diet + (Time | Rat), data = d, REML = TRUE)", "lmer")

## 13. grouseticks, poisson: overdispersed counts, brood within location
##     (coded uniquely, so written as two crossed-style intercepts).
gt <- pkg_data("grouseticks", "lme4")
gt$YEAR <- ids(gt$YEAR, "y")
gt$BROOD <- ids(gt$BROOD, "b")
gt$LOCATION <- ids(gt$LOCATION, "l")
d <- export("grouseticks", gt, c("TICKS", "YEAR", "cHEIGHT", "BROOD", "LOCATION"))
reference("grouseticks", "lme4::grouseticks",
          "Ticks on red grouse chicks: 403 chicks, 118 broods in 63 locations, 3 years; Poisson with brood and location intercepts (overdispersed).",
          c("counts", "overdispersion", "nested", "unbalanced"),
          "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)", "poisson", d,
          "glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION), data = d, family = poisson)",
          "glmer")

## 14. grouseticks, negative binomial (same data, glmmTMB nbinom2).
reference("grouseticks_nb", "lme4::grouseticks",
          "Same grouse-tick counts as 'grouseticks' with a negative binomial (NB2) likelihood.",
          c("counts", "overdispersion", "nested", "unbalanced"),
          "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)", "negbinomial", d,
          "glmmTMB(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION), data = d, family = nbinom2)",
          "glmmTMB")

## 15/16. Salamanders: many zeros; negative binomial and zero-inflated Poisson.
sa <- pkg_data("Salamanders", "glmmTMB")
d <- export("salamanders_nb", sa, c("count", "mined", "site"))
reference("salamanders_nb", "glmmTMB::Salamanders",
          "Salamander counts in 23 streams (mined or not), 7 species pooled; negative binomial (NB2).",
          c("counts", "overdispersion"),
          "count ~ mined + (1 | site)", "negbinomial", d,
          "glmmTMB(count ~ mined + (1 | site), data = d, family = nbinom2)", "glmmTMB")
reference("salamanders_zip", "glmmTMB::Salamanders",
          "Same salamander counts with a zero-inflated Poisson (constant zero-inflation).",
          c("counts", "zero_inflation"),
          "count ~ mined + (1 | site)", "zero_inflated_poisson", d,
          "glmmTMB(count ~ mined + (1 | site), ziformula = ~1, data = d, family = poisson)", "glmmTMB")

## 17/18. Owls: sibling negotiation counts, offset log(brood size), zero-inflated.
ow <- pkg_data("Owls", "glmmTMB")
d <- export("owls_zip", ow, c("SiblingNegotiation", "FoodTreatment", "ArrivalTime", "logBroodSize", "Nest"))
reference("owls_zip", "glmmTMB::Owls",
          "Barn owl nestling begging calls at 27 nests; offset log brood size, raw ArrivalTime (~22-29 h), zero-inflated Poisson.",
          c("counts", "zero_inflation", "offset", "unbalanced"),
          "SiblingNegotiation ~ FoodTreatment + ArrivalTime + offset(logBroodSize) + (1 | Nest)",
          "zero_inflated_poisson", d,
          "glmmTMB(SiblingNegotiation ~ FoodTreatment + ArrivalTime + offset(logBroodSize) + (1 | Nest), ziformula = ~1, data = d, family = poisson)",
          "glmmTMB")
reference("owls_zinb", "glmmTMB::Owls",
          "Same owl data as 'owls_zip' with a zero-inflated negative binomial (NB2).",
          c("counts", "zero_inflation", "overdispersion", "offset", "unbalanced"),
          "SiblingNegotiation ~ FoodTreatment + ArrivalTime + offset(logBroodSize) + (1 | Nest)",
          "zero_inflated_negbinomial", d,
          "glmmTMB(SiblingNegotiation ~ FoodTreatment + ArrivalTime + offset(logBroodSize) + (1 | Nest), ziformula = ~1, data = d, family = nbinom2)",
          "glmmTMB")

## 19. epil (MASS): seizure counts, per-subject log baseline count (lbase) and
##     its interaction with treatment.
ep <- pkg_data("epil", "MASS")
ep$subject <- ids(ep$subject, "s")
d <- export("epilepsy", ep, c("y", "lbase", "trt", "lage", "V4", "subject"))
reference("epilepsy", "MASS::epil",
          "Epileptic seizure counts, 59 patients x 4 visits (Thall & Vail); per-patient log baseline (lbase) and log age, Poisson.",
          c("counts", "overdispersion", "per_level_predictor"),
          "y ~ lbase + trt + lbase:trt + lage + V4 + (1 | subject)", "poisson", d,
          "glmer(y ~ lbase + trt + lbase:trt + lage + V4 + (1 | subject), data = d, family = poisson)",
          "glmer",
          agq = "glmer(y ~ lbase + trt + lbase:trt + lage + V4 + (1 | subject), data = d, family = poisson, nAGQ = 25)")

## 20. Mmmec: melanoma deaths with expected counts as offset; regions nested
##     in nations (9 nations = few levels at the top).
mm <- pkg_data("Mmmec", "mlmRev")
mm$region <- ids(mm$region, "r")
mm$log_expected <- log(mm$expected)
d <- export("mmmec", mm, c("deaths", "uvb", "log_expected", "nation", "region"))
reference("mmmec", "mlmRev::Mmmec",
          "Malignant melanoma deaths in 354 EEC counties, offset log expected deaths, UVB dose; regions nested in 9 nations.",
          c("counts", "offset", "nested", "few_levels", "unbalanced"),
          "deaths ~ uvb + offset(log_expected) + (1 | nation/region)", "poisson", d,
          "glmer(deaths ~ uvb + offset(log_expected) + (1 | nation/region), data = d, family = poisson)",
          "glmer")

## 21. cbpp: binomial with trials (incidence out of herd size).
cb <- pkg_data("cbpp", "lme4")
cb$herd <- ids(cb$herd, "h")
cb$period <- ids(cb$period, "p")
d <- export("cbpp", cb, c("incidence", "size", "period", "herd"))
reference("cbpp", "lme4::cbpp",
          "Contagious bovine pleuropneumonia: new cases out of herd size, 15 herds x 4 periods.",
          c("binomial_trials", "few_levels"),
          "incidence | trials(size) ~ period + (1 | herd)", "binomial", d,
          "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = d, family = binomial)",
          "glmer",
          agq = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = d, family = binomial, nAGQ = 25)")

## 22. Contraception: Bangladesh fertility survey, 60 districts with very
##     unequal sizes (2 to 118 women); centered age and its square.
ct <- pkg_data("Contraception", "mlmRev")
ct$y <- as.integer(ct$use == "Y")
ct$age2 <- ct$age^2
ct$livch <- paste0("c", sub("+", "plus", as.character(ct$livch), fixed = TRUE))
ct$district <- ids(ct$district, "d")
d <- export("contraception", ct, c("y", "age", "age2", "urban", "livch", "district"))
reference("contraception", "mlmRev::Contraception",
          "Contraceptive use of 1934 Bangladeshi women in 60 districts of very unequal size; centered age and age squared, urban, living children. (bobyqa: the default optimizer stops at max|grad| 0.0026 > tol 0.002 with the same estimates to ~1e-4; the remaining 'large eigenvalue' note is the age2 scale.)",
          c("bernoulli", "unbalanced"),
          "y ~ age + age2 + urban + livch + (1 | district)", "bernoulli", d,
          "glmer(y ~ age + age2 + urban + livch + (1 | district), data = d, family = binomial, control = glmerControl(optimizer = \"bobyqa\"))",
          "glmer",
          agq = "glmer(y ~ age + age2 + urban + livch + (1 | district), data = d, family = binomial, nAGQ = 25, control = glmerControl(optimizer = \"bobyqa\"))")

## 23. toenail (HSAUR3): binary outcome with a very large random-intercept
##     variance -- the known case where Laplace and quadrature disagree.
tn <- pkg_data("toenail", "HSAUR3")
tn$y <- as.integer(tn$outcome == "moderate or severe")
tn$patientID <- ids(tn$patientID, "p")
d <- export("toenail", tn, c("y", "treatment", "visit", "patientID"))
reference("toenail", "HSAUR3::toenail",
          "Toenail infection (moderate/severe vs none/mild), 294 patients, 1-7 visits, unbalanced; very large patient sd (Laplace vs quadrature differ: see 'agq').",
          c("bernoulli", "unbalanced"),
          "y ~ treatment * visit + (1 | patientID)", "bernoulli", d,
          "glmer(y ~ treatment * visit + (1 | patientID), data = d, family = binomial)",
          "glmer",
          agq = "glmer(y ~ treatment * visit + (1 | patientID), data = d, family = binomial, nAGQ = 25)")

## 24. ohio (geepack): wheeze in 537 children x 4 ages, many small groups.
oh <- pkg_data("ohio", "geepack")
oh$id <- ids(oh$id, "c")
d <- export("ohio", oh, c("resp", "age", "smoke", "id"))
reference("ohio", "geepack::ohio",
          "Wheezing status of 537 children at ages 7-10 (age centered at 9), maternal smoking per child; large child sd, so Laplace and quadrature differ by ~1 SE (see 'agq').",
          c("bernoulli", "many_levels", "per_level_predictor"),
          "resp ~ age + smoke + (1 | id)", "bernoulli", d,
          "glmer(resp ~ age + smoke + (1 | id), data = d, family = binomial)",
          "glmer",
          agq = "glmer(resp ~ age + smoke + (1 | id), data = d, family = binomial, nAGQ = 25)")

## 25. guImmun: Guatemalan child immunization, 1595 mothers (mostly 1 child)
##     within 161 communities -- many tiny levels, binary outcome.
gu <- pkg_data("guImmun", "mlmRev")
gu$y <- as.integer(gu$immun == "Y")
gu$mom <- ids(gu$mom, "m")
gu$comm <- ids(gu$comm, "c")
d <- export("guimmun", gu, c("y", "kid2p", "mom25p", "rural", "pcInd81", "mom", "comm"))
reference("guimmun", "mlmRev::guImmun",
          "Complete immunization of 2159 Guatemalan children, 1595 mothers in 161 communities (mothers mostly 1-3 children); pcInd81 per community.",
          c("bernoulli", "nested", "many_levels", "unbalanced", "per_level_predictor"),
          "y ~ kid2p + mom25p + rural + pcInd81 + (1 | mom) + (1 | comm)", "bernoulli", d,
          "glmer(y ~ kid2p + mom25p + rural + pcInd81 + (1 | mom) + (1 | comm), data = d, family = binomial)",
          "glmer")

## 26. egsingle: many levels (1721 children) nested in 60 schools, 7230 rows.
eg <- pkg_data("egsingle", "mlmRev")
eg$childid <- ids(eg$childid, "c")
eg$schoolid <- ids(eg$schoolid, "s")
d <- export("egsingle", eg, c("math", "year", "childid", "schoolid"))
reference("egsingle", "mlmRev::egsingle",
          "Math scores of 1721 Chicago children (grades 1-6, year centered) in 60 schools; child and school intercepts (child nested in school, unique ids).",
          c("nested", "many_levels", "unbalanced", "gaussian"),
          "math ~ year + (1 | childid) + (1 | schoolid)", "gaussian", d,
          "lmer(math ~ year + (1 | childid) + (1 | schoolid), data = d, REML = TRUE)", "lmer")

## 27. ScotsSec: partially crossed primary x secondary schools.
sc <- pkg_data("ScotsSec", "mlmRev")
sc$primary <- ids(sc$primary, "p")
sc$second <- ids(sc$second, "s")
d <- export("scotssec", sc, c("attain", "verbal", "sex", "primary", "second"))
reference("scotssec", "mlmRev::ScotsSec",
          "Attainment of 3435 Scottish pupils; 148 primary x 19 secondary schools, partially crossed.",
          c("crossed", "unbalanced", "gaussian"),
          "attain ~ verbal + sex + (1 | primary) + (1 | second)", "gaussian", d,
          "lmer(attain ~ verbal + sex + (1 | primary) + (1 | second), data = d, REML = TRUE)", "lmer")

## 28. wine (ordinal): 5-category bitterness ratings, 9 judges.
wn <- pkg_data("wine", "ordinal")
wn$rating <- as.integer(as.character(wn$rating))
wn$judge <- ids(wn$judge, "j")
d <- export("wine", wn, c("rating", "temp", "contact", "judge"))
reference("wine", "ordinal::wine",
          "Bitterness of wine rated 1-5 by 9 judges, 2 x 2 design (temperature, skin contact); cumulative logit.",
          c("ordinal", "few_levels"),
          "rating ~ temp + contact + (1 | judge)", "cumulative", d,
          "clmm(rating ~ temp + contact + (1 | judge), data = d, link = \"logit\")", "clmm",
          prep = "d$rating <- factor(d$rating, levels = 1:5, ordered = TRUE)",
          agq = "clmm(rating ~ temp + contact + (1 | judge), data = d, link = \"logit\", nAGQ = 10)")

## 29. soup (ordinal): 6-category sureness ratings, 185 respondents.
so <- pkg_data("soup", "ordinal")
so$SURENESS <- as.integer(as.character(so$SURENESS))
so$RESP <- ids(so$RESP, "r")
d <- export("soup", so, c("SURENESS", "PROD", "RESP"))
reference("soup", "ordinal::soup",
          "Sureness (1-6) of 185 respondents discriminating a reference from a test soup; cumulative logit.",
          c("ordinal", "many_levels"),
          "SURENESS ~ PROD + (1 | RESP)", "cumulative", d,
          "clmm(SURENESS ~ PROD + (1 | RESP), data = d, link = \"logit\")", "clmm",
          prep = "d$SURENESS <- factor(d$SURENESS, levels = 1:6, ordered = TRUE)",
          agq = "clmm(SURENESS ~ PROD + (1 | RESP), data = d, link = \"logit\", nAGQ = 10)")

# ---------------------------------------------------------------------------
# write references.json
# ---------------------------------------------------------------------------
json <- jsonlite::toJSON(refs, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null")
writeLines(json, file.path(out_dir, "references.json"))
cat("\n")
print(do.call(rbind, summary_rows), row.names = FALSE)
cat(sprintf("\nwrote %d datasets to %s\n", length(refs), out_dir))
