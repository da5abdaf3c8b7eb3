"""Which reference each of a LatencyAnomaly's views is ranked against, and how severe an alarm is.

A view's value is ranked against its own sliding reference (the drop view against
the value's), or, on a stream that is nearly a random walk, the value and drop
views against the innovations' reference
(:meth:`~models.anomaly.dependence.Whitener.innovations`).  Beyond a reference's
range the p-value comes from its fitted tail, unless a crossing kept out of it is
precedent there (:mod:`~models.anomaly.precedents`), to within
:data:`PRECEDENT_SLACK` of the reference's range; the short view's tail is trusted
only as far as the long reference allows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.anomaly.conformal import MAX_SURPRISAL, ConformalReference, surprisal
from models.anomaly.latency_cusums import REF_OF, SIDES
from models.anomaly.precedents import KeptOut, count, short_view_cap

__all__ = ["PRECEDENT_SLACK", "ViewScoring"]

#: Share of a reference's range by which a value may lie beyond a precedent crossing and still be
#: reached by it.  Precedents are kept as scored, and a whitened value moves with the whitening's
#: ``rho``: on a noise-free daily pattern (NAB art_daily_no_noise) each day's falling edge, scored
#: as the value net of its lag-1 dependence, lay 0.004 below the day before's (rho 0.987 -> 0.99,
#: range 1.4), and each alarmed as a new extreme low (surprisal 50).
PRECEDENT_SLACK = 0.01


class ViewScoring:
    """The reference selection and severity of :class:`~models.anomaly.LatencyAnomaly` (a mixin over its state)."""

    if TYPE_CHECKING:
        window: int
        precedent_after: int | None
        _n: int
        _refs: dict[str, ConformalReference]
        _kept_out: dict[str, KeptOut]
        _surprisal: dict[str, float]
        _severity_ties: bool
        _short_precedent: bool

    def _severity(self, views: dict[str, float], innovations: ConformalReference | None = None) -> float:
        """Largest surprisal of the event's value or step, with ties counted against it (``u = 1``).

        The surprisals the CUSUMs add up average over the tie-breaking draw (so their
        mean stays 1 on a quantised or repeating stream); the severity of one alarm
        counts every tie against the event instead: a value equal to many reference
        values (a repeated level, a clipped or integer metric) is not extreme.
        """
        if not self._severity_ties:
            return max(self._surprisal[v] for v in views if v != "season")
        return max(
            (
                min(
                    surprisal(ref.p_value(views[view], side, 1.0, fit)),
                    self._short_cap(views[view]) if view == "short" else MAX_SURPRISAL,
                )
                for view, side, ref, fit in self._scorable(views, innovations)
                if view != "season"
            ),
            default=0.0,
        )

    def _precedents(self, name: str, y: float, upper: bool, strict: bool = False, slack: float = 0.0) -> int:
        """Crossings kept out of reference ``name`` that are precedent now, at or beyond ``y`` (or short
        of it by at most ``slack``)."""
        if self.precedent_after is None:
            return 0
        y = y - slack if upper else y + slack
        return count(self._kept_out[name], y, upper, n=self._n, window=self.window, after=self.precedent_after, strict=strict)

    def _short_cap(self, y: float) -> float:
        """Largest surprisal of the short view for ``y`` (:func:`~models.anomaly.precedents.short_view_cap`)."""
        if not self._short_precedent:
            return MAX_SURPRISAL
        return short_view_cap(self._refs["short"], self._refs["value"], y, lambda v, strict: self._precedents("value", v, True, strict))

    def _scorable(
        self, views: dict[str, float], innovations: ConformalReference | None = None
    ) -> list[tuple[str, str, ConformalReference, bool]]:
        """``(view, side, reference, fit)`` of each of ``views`` whose reference is ready, in ``SIDES`` order.

        ``innovations``: this event's innovations' reference, which the value and drop
        views are ranked against instead of the value's (``None``: not in use).
        ``fit``: a value beyond the reference's range gets the fitted tail's p-value.  Not
        when a crossing kept out of that reference, at least ``precedent_after`` events old,
        lies at or beyond it (or short of it by at most ``PRECEDENT_SLACK`` of the range): the value has precedent and gets its plain conformal rank
        (``u / (n + 1)``, valid whatever the tail).  Precedents are kept on the values' own
        scale, so not for the innovations.
        """
        out = []
        for view, side in SIDES:
            if view in views:
                name = REF_OF.get(view, view)
                on_innovations = name == "value" and innovations is not None
                ref = innovations if on_innovations else self._refs.get(name)
                if ref is not None and ref.ready:
                    y, fit = views[view], True
                    if view != "short" and not on_innovations and (y > ref.highest or y < ref.lowest):
                        slack = PRECEDENT_SLACK * (ref.highest - ref.lowest)
                        fit = not self._precedents(name, y, upper=y > ref.highest, slack=slack)
                    out.append((view, side, ref, fit))
        return out
