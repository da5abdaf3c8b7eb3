"""Shared pieces of the inferwatch dashboards: data source, variables, links, panels.

Every panel goes through one of the small factories below, so each gets the
``${datasource}`` data source, a unit, thresholds and a legend the same way.
Queries are PromQL against the metrics of :mod:`streams.metrics` and the
recording rules of ``deploy/prometheus/rules/recording.yml``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from grafana_foundation_sdk.builders import bargauge, heatmap, prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import heatmap as hm
from grafana_foundation_sdk.models import prometheus as pm
from grafana_foundation_sdk.models.common import DataSourceRef

__all__ = [
    "DATASOURCE",
    "DATASOURCE_UID",
    "GREEN",
    "MODEL_SEL",
    "TAG",
    "base_dashboard",
    "data_link",
    "bars",
    "heatmap_panel",
    "q",
    "query_variable",
    "stat_panel",
    "state_panel",
    "steps",
    "table_panel",
    "timeseries_panel",
    "to_dict",
]

#: The uid the provisioned Prometheus data source gets (deploy/grafana/provisioning).
DATASOURCE_UID = "inferwatch-prometheus"
#: Every panel and variable queries the data source chosen in ``$datasource``.
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
#: Dashboards carry this tag; the dashboard links list every dashboard with it.
TAG = "inferwatch"
#: Label matchers for the selected model and versions.
MODEL_SEL = 'model="$model", version=~"$version"'

GREEN = "green"
Steps = Sequence[tuple[float | None, str]]


def steps(*pairs: tuple[float | None, str]) -> list[tuple[float | None, str]]:
    """Threshold steps, e.g. ``steps((None, "green"), (0.8, "red"))``; the first value is None."""
    return list(pairs)


def _thresholds(pairs: Steps) -> db.ThresholdsConfig:
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in pairs])
    )


def q(expr: str, legend: str = "", *, instant: bool = False, fmt: pm.PromQueryFormat | None = None) -> prometheus.Dataquery:
    """A Prometheus query on ``$datasource`` (ref ids are assigned by the panel factories)."""
    query = prometheus.Dataquery().expr(" ".join(expr.split())).datasource(DATASOURCE).legend_format(legend or "__auto")
    if instant:
        query = query.instant()
    else:
        query = query.range()
    if fmt is not None:
        query = query.format(fmt)
    return query


def _with_targets(panel: Any, targets: Sequence[prometheus.Dataquery]) -> Any:
    for i, target in enumerate(targets):
        panel = panel.with_target(target.ref_id(chr(ord("A") + i)))
    return panel


def data_link(title: str, uid: str, params: str = "") -> db.DashboardLink:
    """A panel data link to dashboard ``uid`` keeping the time range and model (plus ``params``)."""
    url = f"/d/{uid}?${{__url_time_range}}&${{datasource:queryparam}}&${{model:queryparam}}&${{version:queryparam}}{params}"
    return db.DashboardLink(title).type(dm.DashboardLinkType.LINK).url(url).keep_time(True).include_vars(False)


def _legend(table_mode: bool = False, calcs: Sequence[str] = ()) -> cb.VizLegendOptions:
    return (
        cb.VizLegendOptions()
        .show_legend(True)
        .display_mode(cm.LegendDisplayMode.TABLE if table_mode else cm.LegendDisplayMode.LIST)
        .placement(cm.LegendPlacement.BOTTOM)
        .calcs(list(calcs))
    )


def _tooltip() -> cb.VizTooltipOptions:
    return cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING)


def _common(panel: Any, title: str, description: str, unit: str, thresholds: Steps, w: int, h: int) -> Any:
    return (
        panel.title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .thresholds(_thresholds(thresholds))
        .span(w)
        .height(h)
    )


def timeseries_panel(
    title: str,
    description: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    unit: str,
    thresholds: Steps,
    w: int = 12,
    h: int = 8,
    min_val: float | None = None,
    max_val: float | None = None,
    stack: bool = False,
    threshold_lines: bool = False,
    step: bool = False,
) -> timeseries.Panel:
    """A time series panel; ``threshold_lines`` draws the thresholds as dashed lines."""
    panel = _common(timeseries.Panel(), title, description, unit, thresholds, w, h)
    panel = panel.legend(_legend(calcs=("lastNotNull", "max"), table_mode=True)).tooltip(_tooltip())
    panel = panel.line_width(1).fill_opacity(20 if stack else 5).show_points(cm.VisibilityMode.NEVER)
    if step:
        panel = panel.line_interpolation(cm.LineInterpolation.STEP_AFTER)
    if stack:
        panel = panel.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL))
    if threshold_lines:
        panel = panel.thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED))
    if min_val is not None:
        panel = panel.min(min_val)
    if max_val is not None:
        panel = panel.max(max_val)
    return _with_targets(panel, targets)


def stat_panel(
    title: str, description: str, targets: Sequence[prometheus.Dataquery], *, unit: str, thresholds: Steps,
    w: int = 6, h: int = 4,
) -> stat.Panel:
    """A single number (last value), coloured by the thresholds."""
    panel = _common(stat.Panel(), title, description, unit, thresholds, w, h)
    panel = (
        panel.color_mode(cm.BigValueColorMode.BACKGROUND)
        .graph_mode(cm.BigValueGraphMode.AREA)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    return _with_targets(panel, targets)


def bars(
    title: str, description: str, targets: Sequence[prometheus.Dataquery], *, unit: str, thresholds: Steps,
    w: int = 12, h: int = 8, max_val: float | None = None,
) -> bargauge.Panel:
    """Horizontal bars, one per series (last value): for top-k rankings."""
    panel = _common(bargauge.Panel(), title, description, unit, thresholds, w, h)
    panel = (
        panel.orientation(cm.VizOrientation.HORIZONTAL)
        .display_mode(cm.BarGaugeDisplayMode.GRADIENT)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .min(0)
    )
    if max_val is not None:
        panel = panel.max(max_val)
    return _with_targets(panel, targets)


def heatmap_panel(
    title: str, description: str, target: prometheus.Dataquery, *, unit: str, thresholds: Steps,
    w: int = 12, h: int = 8,
) -> heatmap.Panel:
    """A heatmap of pre-bucketed histogram data (``format: heatmap``, buckets on the y axis)."""
    panel = _common(heatmap.Panel(), title, description, "short", thresholds, w, h)
    panel = (
        panel.calculate(False)
        .y_axis(heatmap.YAxisConfig().unit(unit).min(0))
        .color(
            heatmap.HeatmapColorOptions()
            .mode(hm.HeatmapColorMode.SCHEME)
            .scheme("Spectral")
            .scale(hm.HeatmapColorScale.EXPONENTIAL)
            .exponent(0.5)
            .steps(64)
        )
        .cell_gap(1)
        .show_legend()
    )
    return _with_targets(panel, [target.format(pm.PromQueryFormat.HEATMAP)])



def state_panel(
    title: str, description: str, targets: Sequence[prometheus.Dataquery], *, unit: str, thresholds: Steps,
    w: int = 12, h: int = 8, mappings: dict[str, tuple[str, str]] | None = None,
) -> statetimeline.Panel:
    """A state timeline: one lane per series, coloured by thresholds (or value mappings)."""
    panel = _common(statetimeline.Panel(), title, description, unit, thresholds, w, h)
    panel = panel.show_value(cm.VisibilityMode.AUTO).merge_values(True).legend(_legend()).row_height(0.8)
    if mappings:
        options = {k: dm.ValueMappingResult(text=text, color=color) for k, (text, color) in mappings.items()}
        panel = panel.mappings([dm.ValueMap(options=options)])
    return _with_targets(panel, targets)


def table_panel(
    title: str, description: str, targets: Sequence[prometheus.Dataquery], *, unit: str, thresholds: Steps,
    w: int = 12, h: int = 8, hide: Sequence[str] = ("Time",),
) -> table.Panel:
    """A table of instant queries (``format: table``) merged on their common labels."""
    panel = _common(table.Panel(), title, description, unit, thresholds, w, h)
    panel = panel.with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
    panel = panel.with_transformation(
        dm.DataTransformerConfig(id_val="organize", options={"excludeByName": {name: True for name in hide}})
    )
    return _with_targets(panel, [t.format(pm.PromQueryFormat.TABLE).instant() for t in targets])


# -- dashboard-level pieces ---------------------------------------------------------

def query_variable(name: str, label: str, query: str, *, multi: bool) -> db.QueryVariable:
    variable = (
        db.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .definition(query)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )
    if multi:
        variable = variable.multi(True).include_all(True).all_value(".*").current(
            dm.VariableOption(selected=True, text="All", value="$__all")
        )
    return variable


def variables(host_query: str) -> list[Any]:
    """``datasource``, ``model`` (single), ``version`` and ``host`` (multi, All = ``.*``)."""
    datasource = (
        db.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .current(dm.VariableOption(selected=True, text="Prometheus (inferwatch)", value=DATASOURCE_UID))
    )
    return [
        datasource,
        query_variable("model", "Model", "label_values(inferwatch_events_total, model)", multi=False),
        query_variable("version", "Version", 'label_values(inferwatch_events_total{model="$model"}, version)', multi=True),
        query_variable("host", "Host", host_query, multi=True),
    ]


def base_dashboard(uid: str, title: str, description: str, host_query: str) -> db.Dashboard:
    """A dashboard with the shared tags, time range, variables and links to its siblings."""
    link = (
        db.DashboardLink("inferwatch")
        .type(dm.DashboardLinkType.DASHBOARDS)
        .tags([TAG])
        .as_dropdown(False)
        .keep_time(True)
        .include_vars(True)
        .tooltip("Other inferwatch dashboards, same time range and model")
    )
    dashboard = (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .link(link)
        .variables(variables(host_query))
    )
    return dashboard


def assemble(dashboard: db.Dashboard, sections: Sequence[Callable[[db.Dashboard], db.Dashboard]]) -> dict[str, Any]:
    """``dashboard`` with each section added in order, as plain JSON data (see ``to_dict``)."""
    for section in sections:
        dashboard = section(dashboard)
    return to_dict(dashboard)


def alerts_firing_panel(title: str, description: str, selector: str, *, w: int, h: int | None = None) -> Any:
    """Alerts firing by kind for ``selector`` (PromQL label matchers), a 0 series named none until the first."""
    extra = {} if h is None else {"h": h}
    return timeseries_panel(
        title, description,
        [q(f"sum by (kind) (inferwatch_alerts_firing{{{selector}}}) "
           'or on () label_replace(vector(0), "kind", "none", "", "")', "{{kind}}")],
        unit="none", thresholds=steps((None, GREEN), (1, "red")), w=w, min_val=0, step=True, **extra,
    )


def to_dict(dashboard: db.Dashboard) -> dict[str, Any]:
    """The dashboard as plain JSON data, with panel ids numbered 1, 2, ... in layout order."""
    data: dict[str, Any] = json.loads(json.dumps(dashboard.build(), cls=JSONEncoder))
    for i, panel in enumerate(iter_panels(data), start=1):
        panel["id"] = i
    return data


def iter_panels(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel of a dashboard's JSON, rows and the panels inside collapsed rows included."""
    out: list[dict[str, Any]] = []
    for panel in data.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out
