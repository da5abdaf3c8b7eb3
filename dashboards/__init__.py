"""Grafana dashboards as code for inferwatch.

Built with grafana-foundation-sdk (0.0.x), one module per dashboard:

* :mod:`dashboards.model` -- Model overview (uid ``inferwatch-model``)
* :mod:`dashboards.drift` -- Drift detail (uid ``inferwatch-drift``)
* :mod:`dashboards.gpu`   -- GPU fleet (uid ``inferwatch-gpu``)

:mod:`dashboards.common` holds the shared variables, links and panel factories,
:mod:`dashboards.build` writes ``dashboards/generated/*.json`` and checks it is
current, :mod:`dashboards.publish` upserts the dashboards into Grafana, and
:mod:`dashboards.cli` is the ``inferwatch dashboards`` command group.
"""

from dashboards.build import build_all, stale, write

__all__ = ["build_all", "stale", "write"]
