"""Drift detail (uid ``inferwatch-drift``): per-feature drift scores and thresholds of
one model, and the confidence / prediction distributions now against a trailing
baseline.

What the metrics do not carry (yet): the test statistic behind each score and the
reference-vs-recent summaries per feature; those travel in the alert records
(``evidence``) only. See dashboards/README.md.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.common import (
    GREEN,
    MODEL_SEL,
    alerts_firing_panel,
    assemble,
    base_dashboard,
    q,
    query_variable,
    stat_panel,
    steps,
    table_panel,
    timeseries_panel,
)

UID = "inferwatch-drift"
TITLE = "inferwatch / Drift detail"

#: Baseline window for the "now vs baseline" panels.
BASELINE = "6h"
FEATURE_SEL = f'{MODEL_SEL}, feature=~"$feature"'
_RATIO = "model_feature:inferwatch_drift_score:threshold_ratio"
_RATIO_STEPS = steps((None, GREEN), (0.8, "orange"), (1.0, "red"))


def feature_variable() -> db.QueryVariable:
    """``$feature``: the model's features with a drift score (multi, All = ``.*``)."""
    return query_variable("feature", "Feature", f"label_values(inferwatch_drift_score{{{MODEL_SEL}}}, feature)", multi=True)


def _scores(d: db.Dashboard) -> db.Dashboard:
    d = d.with_row(db.Row("Per-feature drift"))
    d = d.with_panel(stat_panel(
        "Features past threshold",
        "Number of (feature, kind) pairs whose drift score is at or above its threshold now.",
        [q(f"count({_RATIO}{{{FEATURE_SEL}}} >= 1) or vector(0)")],
        unit="none", thresholds=steps((None, GREEN), (1, "red")), w=4, h=8,
    ))
    d = d.with_panel(timeseries_panel(
        "Input drift / threshold",
        "Each input feature's drift score divided by its threshold (_all_features: the multivariate "
        "detector); at 1 (dashed) the feature's detector alerts.",
        [q(f'max by (feature) ({_RATIO}{{{FEATURE_SEL}, kind="input_drift"}})', "{{feature}}")],
        unit="none", thresholds=_RATIO_STEPS, w=12, h=8, min_val=0, threshold_lines=True,
    ))
    d = d.with_panel(timeseries_panel(
        "Confidence and prediction drift / threshold",
        "Drift of the confidence distribution (confidence, entropy) and of the predicted-class shares "
        "(prediction), over their thresholds.",
        [q(f'max by (feature, kind) ({_RATIO}{{{MODEL_SEL}, kind=~"confidence_drift|prediction_drift"}})',
           "{{feature}} ({{kind}})")],
        unit="none", thresholds=_RATIO_STEPS, w=8, h=8, min_val=0, threshold_lines=True,
    ))
    d = d.with_panel(timeseries_panel(
        "Drift score",
        "Raw drift score per feature and kind (input_drift, confidence_drift, prediction_drift).",
        [q(f"max by (feature, kind) (inferwatch_drift_score{{{FEATURE_SEL}}})", "{{feature}} ({{kind}})")],
        unit="none", thresholds=steps((None, GREEN)), w=12, h=8,
    ))
    d = d.with_panel(timeseries_panel(
        "Drift threshold",
        "Calibrated threshold per feature and kind (set from the false-alarm budget); changes when the "
        "reference is re-learned.",
        [q(f"max by (feature, kind) (inferwatch_drift_threshold{{{FEATURE_SEL}}})", "{{feature}} ({{kind}})")],
        unit="none", thresholds=steps((None, GREEN)), w=12, h=8,
    ))
    d = d.with_panel(table_panel(
        "Features now",
        "Current score, threshold and score / threshold per feature and kind; sort by the ratio.",
        [
            q(f"max by (feature, kind) (inferwatch_drift_score{{{FEATURE_SEL}}})", "score"),
            q(f"max by (feature, kind) (inferwatch_drift_threshold{{{FEATURE_SEL}}})", "threshold"),
            q(f"max by (feature, kind) ({_RATIO}{{{FEATURE_SEL}}})", "ratio"),
        ],
        unit="none", thresholds=_RATIO_STEPS, w=24, h=10,
    ))
    return d


def _now_vs_baseline(d: db.Dashboard) -> db.Dashboard:
    d = d.with_row(db.Row(f"Confidence and predictions: now vs trailing {BASELINE}"))
    conf = "inferwatch_inference_confidence_ratio"
    d = d.with_panel(timeseries_panel(
        "Mean confidence: now vs baseline",
        f"Mean confidence over the last interval against the mean over the trailing {BASELINE}. "
        "A gap that opens and stays is confidence drift.",
        [
            q(f"sum(rate({conf}_sum{{{MODEL_SEL}}}[$__rate_interval])) "
              f"/ sum(rate({conf}_count{{{MODEL_SEL}}}[$__rate_interval]))", "now"),
            q(f"sum(rate({conf}_sum{{{MODEL_SEL}}}[{BASELINE}])) / sum(rate({conf}_count{{{MODEL_SEL}}}[{BASELINE}]))",
              f"trailing {BASELINE}"),
        ],
        unit="percentunit", thresholds=steps((None, "red"), (0.6, "orange"), (0.75, GREEN)), w=8, min_val=0, max_val=1,
    ))
    d = d.with_panel(timeseries_panel(
        "Low-confidence share: now vs baseline",
        f"Share of predictions with confidence at most 0.6, now and over the trailing {BASELINE}.",
        [
            q(f'sum(rate({conf}_bucket{{{MODEL_SEL}, le="0.6"}}[$__rate_interval])) '
              f"/ sum(rate({conf}_count{{{MODEL_SEL}}}[$__rate_interval]))", "now"),
            q(f'sum(rate({conf}_bucket{{{MODEL_SEL}, le="0.6"}}[{BASELINE}])) '
              f"/ sum(rate({conf}_count{{{MODEL_SEL}}}[{BASELINE}]))", f"trailing {BASELINE}"),
        ],
        unit="percentunit", thresholds=steps((None, GREEN), (0.2, "orange"), (0.4, "red")), w=8, min_val=0, max_val=1,
    ))
    pred = f"inferwatch_predictions_total{{{MODEL_SEL}}}"
    d = d.with_panel(timeseries_panel(
        "Class shares: now minus baseline",
        f"Per predicted class, its share now minus its share over the trailing {BASELINE}, in "
        "percentage points. Prediction drift shows as bands leaving zero.",
        [q(f"sum by (prediction) (rate({pred}[$__rate_interval])) "
           f"/ ignoring (prediction) group_left sum(rate({pred}[$__rate_interval])) "
           f"- sum by (prediction) (rate({pred}[{BASELINE}])) "
           f"/ ignoring (prediction) group_left sum(rate({pred}[{BASELINE}]))", "{{prediction}}")],
        unit="percentunit", thresholds=steps((None, "red"), (-0.1, GREEN), (0.1, "red")), w=8, threshold_lines=True,
    ))
    d = d.with_panel(alerts_firing_panel(
        "Drift alerts firing",
        "inferwatch drift alerts (input, confidence, prediction) firing for this model.",
        'model="$model", kind=~".*drift"', w=24, h=6,
    ))
    return d


def build() -> dict[str, Any]:
    """The drift detail dashboard as Grafana JSON."""
    d = base_dashboard(
        UID, TITLE,
        "One model's drift detectors per feature, and its confidence and predictions against a baseline.",
        'label_values(inferwatch_inference_latency_seconds_count{model="$model", version=~"$version"}, host)',
    )
    return assemble(d.with_variable(feature_variable()), (_scores, _now_vs_baseline))
