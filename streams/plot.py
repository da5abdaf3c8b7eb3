"""A dependency-free SVG plot: per-model median latency over event time, alert spans shaded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from streams.records import Alert

__all__ = ["latency_svg"]

_W, _H, _PAD, _ROW = 900, 180, 50, 200
_COLOURS = {"input_drift": "#f2c14e", "confidence_drift": "#f78154", "prediction_drift": "#f78154",
            "latency_anomaly": "#e05263", "gpu_anomaly": "#7b9e89", "correlated": "#b33951"}


def latency_svg(series: Mapping[str, Sequence[tuple[float, float]]], alerts: Sequence[Alert]) -> str:
    """One panel per model: median latency per second (ms), firing spans of its alerts behind it."""
    models = sorted(series)
    if not models:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="40"><text x="10" y="25">no events</text></svg>'
    t0 = min(t for m in models for t, _ in series[m])
    t1 = max(t for m in models for t, _ in series[m]) or t0 + 1
    span = max(t1 - t0, 1.0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_ROW * len(models)}" font-family="sans-serif" font-size="11">']
    ended = {a.fingerprint: a.ends_at for a in alerts if a.status == "resolved"}
    for row, model in enumerate(models):
        y0 = row * _ROW + 20
        points = series[model]
        top = max(v for _, v in points) * 1.1 or 1.0
        x = lambda t: _PAD + (t - t0) / span * (_W - 2 * _PAD)  # noqa: E731
        y = lambda v: y0 + _H - v / top * _H  # noqa: E731
        for a in alerts:
            if a.status == "firing" and a.model == model:
                end = ended.get(a.fingerprint) or t1
                colour = _COLOURS.get(a.kind, "#999")
                parts.append(f'<rect x="{x(a.starts_at):.1f}" y="{y0}" width="{max(x(end) - x(a.starts_at), 2):.1f}" height="{_H}" fill="{colour}" opacity="0.35"><title>{escape(a.summary)}</title></rect>')
                parts.append(f'<text x="{x(a.starts_at) + 2:.1f}" y="{y0 + 12}" fill="{colour}">{escape(a.kind)}</text>')
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in sorted(points))
        parts.append(f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.2" points="{path}"/>')
        parts.append(f'<line x1="{_PAD}" y1="{y0 + _H}" x2="{_W - _PAD}" y2="{y0 + _H}" stroke="#333"/>')
        parts.append(f'<text x="{_PAD}" y="{y0 - 5}" font-weight="bold">{escape(model)}: median latency (ms), max {top / 1.1:.0f}; alerts shaded</text>')
    parts.append("</svg>")
    return "\n".join(parts)
