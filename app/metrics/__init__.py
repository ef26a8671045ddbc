"""ReviewDesk agreement metrics engine (pure numpy/pandas/scipy + shapely, rapidfuzz).

Imports nothing else of ``app``, no SQLAlchemy and no Qt. The public SDK:

Statistics on arrays (:mod:`app.metrics.stats`)
    ``krippendorff_alpha(data, level="nominal", value_domain=None)``, ``cohen_kappa(a, b, weights=None)``,
    ``fleiss_kappa(counts)``, ``percent_agreement(a, b=None)``, ``majority_vote(data)``,
    ``pairwise_confusion``, ``cohen_kappa_matrix``, ``pairwise_agreement_matrix`` (integer-code fast path).
    Undefined statistics raise :class:`UndefinedStatisticError` (a ``ValueError``), never a silent ``nan``;
    ``check_label_types`` refuses labels mixing numbers and text.
Dawid-Skene (:mod:`app.metrics.dawid_skene`)
    ``dawid_skene(frame, n_iter=100, tol=1e-5, gold=None, smoothing=0.0)`` -> :class:`DawidSkeneResult`
    (defaults = the published 1979 method; smoothing only on request).
Matching (:mod:`app.metrics.matching`)
    ``score_results``, ``register_matcher``, ``get_matcher`` and the built-in matchers.
Matrices (:mod:`app.metrics.matrix`; the input frame contract is documented there)
    ``agreement_matrix``, ``agreement_matrices`` (optional ``Consensus (Dawid-Skene)`` column),
    ``dawid_skene_consensus``, ``task_agreement``, ``pair_disagreements``; ``shared_preparation()``: a block
    in which several of these calls on the same frames code them once.
Quality and reports
    ``annotator_quality`` -> :class:`AnnotatorQuality`; ``metrics_report``, ``format_matrix_table``;
    ``kappa_matrices``/``kappa_report`` and ``alpha_report`` (``reviewdesk metrics --stat kappa|alpha``).
"""

from app.metrics.dawid_skene import DawidSkeneResult, dawid_skene
from app.metrics.matching import (
    Matcher,
    exact_match,
    get_matcher,
    jaccard,
    keypoint_distance,
    match_regions,
    numeric_difference,
    polygon_iou,
    rectangle_iou,
    register_matcher,
    registered_types,
    result_key,
    score_results,
    span_overlap,
    textarea_similarity,
    unregister_matcher,
)
from app.metrics.matrix import (
    AVG,
    CONSENSUS,
    CONSENSUS_DS,
    DEFAULT_TOLERANCE,
    GROUND_TRUTH,
    SOURCE_EVALUATOR,
    AgreementMatrix,
    agreement_matrices,
    agreement_matrix,
    dawid_skene_consensus,
    default_tolerances,
    order_evaluators,
    pair_disagreements,
    shared_preparation,
    task_agreement,
)
from app.metrics.quality import AnnotatorQuality, annotator_quality, wilson_interval
from app.metrics.report import (
    STATS,
    alpha_report,
    control_alpha,
    format_matrix_table,
    kappa_cell_reasons,
    kappa_matrices,
    kappa_report,
    metrics_report,
    to_jsonable,
)
from app.metrics.stats import (
    UndefinedStatisticError,
    alpha_from_codes,
    check_label_types,
    cohen_kappa,
    cohen_kappa_matrix,
    fleiss_kappa,
    kappa_from_confusion,
    krippendorff_alpha,
    majority_vote,
    pairwise_agreement_matrix,
    pairwise_confusion,
    percent_agreement,
)

__all__ = [
    "AVG",
    "CONSENSUS",
    "CONSENSUS_DS",
    "GROUND_TRUTH",
    "SOURCE_EVALUATOR",
    "STATS",
    "UndefinedStatisticError",
    "AgreementMatrix",
    "AnnotatorQuality",
    "DawidSkeneResult",
    "Matcher",
    "agreement_matrices",
    "agreement_matrix",
    "alpha_from_codes",
    "alpha_report",
    "annotator_quality",
    "check_label_types",
    "cohen_kappa",
    "cohen_kappa_matrix",
    "control_alpha",
    "dawid_skene",
    "dawid_skene_consensus",
    "exact_match",
    "fleiss_kappa",
    "format_matrix_table",
    "get_matcher",
    "jaccard",
    "kappa_from_confusion",
    "kappa_matrices",
    "kappa_cell_reasons",
    "kappa_report",
    "keypoint_distance",
    "krippendorff_alpha",
    "majority_vote",
    "match_regions",
    "metrics_report",
    "numeric_difference",
    "order_evaluators",
    "pair_disagreements",
    "DEFAULT_TOLERANCE",
    "default_tolerances",
    "pairwise_agreement_matrix",
    "pairwise_confusion",
    "percent_agreement",
    "polygon_iou",
    "rectangle_iou",
    "register_matcher",
    "registered_types",
    "result_key",
    "score_results",
    "shared_preparation",
    "span_overlap",
    "task_agreement",
    "textarea_similarity",
    "to_jsonable",
    "unregister_matcher",
    "wilson_interval",
]
