"""mlm_lessons: multilevel (mixed-effects) models for the mlm-course book.

Every function takes a long-format data frame and the names of its columns, so it works on
any two-level data set, not only the course's.
"""

from mlm_lessons._checks import BoundaryWarning, ConvergenceWarning, MLMWarning, SeparationError
from mlm_lessons._glue import glue
from mlm_lessons.bootstrap import (
    BootstrapLRTResult,
    bootstrap_lrt,
    parametric_bootstrap,
    simulate_from_fit,
)
from mlm_lessons.centering import plot_within_between, within_between
from mlm_lessons.compare import compare_approaches, per_group_slopes
from mlm_lessons.data import data_dir, list_datasets, load_dataset, load_reference
from mlm_lessons.describe import cluster_sizes, describe_levels, variable_levels
from mlm_lessons.diagnostics import (
    GroupInfluence,
    group_residual_sd,
    influence_groups,
    plot_qq,
    plot_residuals,
    residual_table,
)
from mlm_lessons.engines import compare_with_published, compare_with_statsmodels
from mlm_lessons.glmm import (
    GLMMFit,
    LogisticMixedFit,
    OverdispersionWarning,
    SeparationWarning,
    attenuation_factor,
    fit_gee,
    fit_glmm,
    fit_logistic_mixed,
)
from mlm_lessons.icc import (
    ICCResult,
    design_effect,
    effective_sample_size,
    icc_anova,
    icc_reml,
    icc_slide,
    reliability,
)
from mlm_lessons.inference import (
    LRTResult,
    WaldResult,
    compare_models,
    lrt,
    nesting,
    pre,
    wald_test,
)
from mlm_lessons.intervals import confint_variance
from mlm_lessons.matrices import (
    GLSResult,
    design_matrices,
    gls_fixed_effects,
    loglik_at,
    marginal_loglik,
    model_matrices,
)
from mlm_lessons.models import (
    DataFingerprint,
    MixedFit,
    ModelMatrices,
    fit_full_model,
    fit_mixed,
    fit_null,
    fit_random_coefficient,
    fit_random_intercept,
)
from mlm_lessons.plots import (
    plot_caterpillar,
    plot_fitted_lines,
    plot_group_means,
    plot_icc_curves,
    plot_proposition,
    plot_shrinkage,
    plot_spaghetti,
    plot_within_spread,
)
from mlm_lessons.power import power_approximation, power_simulation
from mlm_lessons.prepare import add_group_mean, center, group_means
from mlm_lessons.report import ModelTable, model_table
from mlm_lessons.sampling import sampling_study
from mlm_lessons.simulate import (
    coverage_study,
    efficiency_study,
    icc_estimator_study,
    simulate_two_level,
)
from mlm_lessons.threelevel import fit_three_level

__version__ = "0.1.0"

__all__ = [
    "BootstrapLRTResult",
    "BoundaryWarning",
    "SeparationError",
    "ConvergenceWarning",
    "GLSResult",
    "GroupInfluence",
    "ICCResult",
    "LRTResult",
    "GLMMFit",
    "LogisticMixedFit",
    "OverdispersionWarning",
    "SeparationWarning",
    "MLMWarning",
    "MixedFit",
    "ModelMatrices",
    "ModelTable",
    "DataFingerprint",
    "WaldResult",
    "add_group_mean",
    "attenuation_factor",
    "bootstrap_lrt",
    "center",
    "cluster_sizes",
    "compare_approaches",
    "compare_models",
    "compare_with_published",
    "compare_with_statsmodels",
    "confint_variance",
    "coverage_study",
    "data_dir",
    "describe_levels",
    "design_effect",
    "design_matrices",
    "effective_sample_size",
    "efficiency_study",
    "fit_full_model",
    "fit_gee",
    "fit_glmm",
    "fit_logistic_mixed",
    "fit_mixed",
    "fit_null",
    "fit_random_coefficient",
    "fit_random_intercept",
    "fit_three_level",
    "gls_fixed_effects",
    "glue",
    "group_means",
    "group_residual_sd",
    "icc_anova",
    "icc_estimator_study",
    "icc_reml",
    "icc_slide",
    "influence_groups",
    "list_datasets",
    "load_dataset",
    "load_reference",
    "loglik_at",
    "lrt",
    "nesting",
    "marginal_loglik",
    "model_matrices",
    "model_table",
    "parametric_bootstrap",
    "per_group_slopes",
    "plot_caterpillar",
    "plot_fitted_lines",
    "plot_group_means",
    "plot_icc_curves",
    "plot_proposition",
    "plot_qq",
    "plot_residuals",
    "plot_shrinkage",
    "plot_spaghetti",
    "plot_within_between",
    "plot_within_spread",
    "power_approximation",
    "power_simulation",
    "pre",
    "reliability",
    "residual_table",
    "sampling_study",
    "simulate_from_fit",
    "simulate_two_level",
    "variable_levels",
    "wald_test",
    "within_between",
]
