"""An alert's link to its dashboard selects what the alert is about."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from streams.core.alerts import dashboard_url
from streams.core.signals import Signal


def _query(url: str | None) -> tuple[str, dict[str, list[str]]]:
    assert url is not None
    parts = urlsplit(url)
    return parts.path, parse_qs(parts.query)


def test_an_input_drift_alert_links_to_the_drift_dashboard_with_its_feature_selected() -> None:
    signal = Signal(kind="input_drift", ts=1000.0, score=2.0, threshold=1.0, model="fraud", version="v2", feature="amount", host="h1")
    path, query = _query(dashboard_url("http://grafana:3000/", signal, 1000.0, 1060.0))
    assert path == "/d/inferwatch-drift"
    assert query == {"from": ["700000"], "to": ["1360000"], "var-model": ["fraud"], "var-version": ["v2"], "var-host": ["h1"], "var-feature": ["amount"]}


def test_other_alerts_link_without_a_feature_and_no_base_gives_no_link() -> None:
    signal = Signal(kind="confidence_drift", ts=1000.0, score=2.0, threshold=1.0, model="fraud", feature="confidence")
    path, query = _query(dashboard_url("http://grafana:3000", signal, 1000.0, None))
    assert path == "/d/inferwatch-model" and "var-feature" not in query and query["var-model"] == ["fraud"]
    assert dashboard_url("", signal, 1000.0, None) is None
