"""Running dashboard queries through a real Prometheus's HTTP API."""

from __future__ import annotations

import json
import math
import time
import urllib.parse
import urllib.request
from typing import Any

from dashboards.build import build_all
from dashboards.queries import Query, dashboard_queries, substitute

#: Queries that are empty while everything is healthy (no service alert firing).
EMPTY_WHEN_HEALTHY = frozenset({"annotation 'Service alerts'"})


def query(base: str, expr: str) -> dict[str, Any]:
    """``/api/v1/query`` result data; asserts the query succeeded."""
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (local URL)
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    return body["data"]


def all_queries() -> list[Query]:
    """Every panel, annotation and variable query of every dashboard."""
    return [q for dashboard in build_all().values() for q in dashboard_queries(dashboard)]


def finite(value: str) -> bool:
    return math.isfinite(float(value))


def check_queries(base: str, queries: list[Query], values: dict[str, str]) -> tuple[list[str], list[str]]:
    """Queries (variables set to ``values``) that return no series, and those with only NaN/Inf."""
    empty, nan_only = [], []
    for q in queries:
        result = query(base, substitute(q.expr, values))["result"]
        if q.where in EMPTY_WHEN_HEALTHY:
            continue
        if not result:
            empty.append(f"{q.dashboard} {q.where}: {q.expr}")
        elif not any(finite(series["value"][1]) for series in result):
            nan_only.append(f"{q.dashboard} {q.where}: {q.expr}")
    return empty, nan_only


def poll_queries(base: str, values: dict[str, str], seconds: float = 20.0) -> tuple[list[str], list[str]]:
    """``check_queries`` over every query, retried while some are empty: recording rules built on
    other recording rules appear one evaluation later."""
    queries = all_queries()
    deadline = time.monotonic() + seconds
    empty, nan_only = check_queries(base, queries, values)
    while (empty or nan_only) and time.monotonic() < deadline:
        time.sleep(1.0)
        empty, nan_only = check_queries(base, queries, values)
    return empty, nan_only
