"""The PromQL in the built dashboards, and Grafana's variable substitution, so tests
(and anyone checking a Prometheus) can run every query outside Grafana.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dashboards.common import iter_panels

__all__ = ["GRAFANA_BUILTINS", "Query", "dashboard_queries", "label_values_selector", "substitute"]

#: Grafana's built-in interval variables, as a dashboard over the last hour would set them.
GRAFANA_BUILTINS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h"}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*\w+\s*\)\s*$", re.S)


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL expression of a dashboard and where it sits."""

    dashboard: str
    where: str  # "panel <title> [refId]", "annotation <name>" or "variable <name>"
    expr: str
    kind: str  # "panel", "annotation" or "variable"


def label_values_selector(query: str) -> str | None:
    """The series selector inside ``label_values(<selector>, label)``, or None."""
    match = _LABEL_VALUES.match(query)
    return match.group(1) if match else None


def dashboard_queries(dashboard: Mapping[str, Any]) -> Iterator[Query]:
    """Every panel target, annotation and variable query (as a selector) of a dashboard."""
    uid = str(dashboard.get("uid"))
    for panel in iter_panels(dict(dashboard)):
        for target in panel.get("targets", []) or []:
            if target.get("expr"):
                yield Query(uid, f"panel {panel.get('title')!r} [{target.get('refId')}]", target["expr"], "panel")
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            yield Query(uid, f"annotation {annotation.get('name')!r}", annotation["expr"], "annotation")
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            text = query.get("query", "") if isinstance(query, dict) else str(query)
            selector = label_values_selector(text)
            yield Query(uid, f"variable {variable.get('name')!r}", selector or text, "variable")


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with ``$name`` / ``${name}`` replaced from ``values`` and Grafana's built-ins.

    Raises KeyError naming a variable that has no value.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in values:
            return values[name]
        if name in GRAFANA_BUILTINS:
            return GRAFANA_BUILTINS[name]
        raise KeyError(f"no value for ${name} in {expr!r}")

    return _VARIABLE.sub(replace, expr)
