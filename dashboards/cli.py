"""``inferwatch dashboards``: build the dashboard JSON, check it, publish it to Grafana.

The main CLI loads it when ``inferwatch dashboards`` is invoked (``streams.cli``); also
runnable alone as ``python -m dashboards.cli``.
"""

from __future__ import annotations

from pathlib import Path

import click

from dashboards.build import GENERATED, build_all, stale, write
from dashboards.common import DATASOURCE_UID
from dashboards.publish import DEFAULT_FOLDER, PublishError, connect, publish

__all__ = ["dashboards"]


@click.group()
def dashboards() -> None:
    """Grafana dashboards: build the JSON, check it is current, publish it."""


@dashboards.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=GENERATED,
              show_default=True, help="Where to write the JSON.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when the JSON there is not current.")
def build(directory: Path, check: bool) -> None:
    """Write every dashboard's JSON (what Grafana provisioning reads)."""
    if check:
        names = stale(directory)
        if names:
            raise click.ClickException(f"stale dashboard JSON in {directory}: {', '.join(names)} "
                                       "(run `inferwatch dashboards build`)")
        click.echo(f"dashboard JSON in {directory} is current")
        return
    for path in write(directory):
        click.echo(f"wrote {path}")


@dashboards.command(name="publish")
@click.option("--url", required=True, help="Grafana base URL, e.g. http://localhost:3000")
@click.option("--token", envvar="GRAFANA_TOKEN", help="Service-account token (or env GRAFANA_TOKEN).")
@click.option("--user", help="Basic-auth user (instead of --token).")
@click.option("--password", envvar="GRAFANA_PASSWORD", help="Basic-auth password (or env GRAFANA_PASSWORD).")
@click.option("--folder", default=DEFAULT_FOLDER, show_default=True, help="Folder title; created if missing.")
@click.option("--datasource-uid", default=DATASOURCE_UID, show_default=True,
              help="uid of the Prometheus data source the dashboards default to.")
@click.option("--timeout", default=10.0, show_default=True, help="HTTP timeout in seconds.")
def publish_cmd(url: str, token: str | None, user: str | None, password: str | None, folder: str,
                datasource_uid: str, timeout: float) -> None:
    """Create the folder if missing and upsert every dashboard into it (by uid, overwrite)."""
    if token and user:
        raise click.UsageError("give either --token or --user/--password, not both")
    api = connect(url, token=token, user=user, password=password, timeout=timeout)
    try:
        done = publish(api, build_all(), folder=folder, datasource_uid=datasource_uid, url=url)
    except PublishError as exc:
        raise click.ClickException(str(exc)) from None
    for item in done:
        click.echo(f"published {item.uid} ({item.title}) version {item.version} {item.url}")


if __name__ == "__main__":  # pragma: no cover
    dashboards()
