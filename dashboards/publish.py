"""Publish the dashboards to a Grafana through its HTTP API (grafana-client).

Contract used (Grafana HTTP API, stable since Grafana 8):

* ``GET  /api/folders``           -- list folders, find ours by title
* ``POST /api/folders``           -- ``{"title": ..., "uid": ...}`` when it is missing
* ``POST /api/dashboards/db``     -- ``{"dashboard": ..., "folderUid": ..., "overwrite": true}``

Dashboards are upserted by their uid (``id`` is dropped so Grafana matches on uid).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaUnauthorizedError

__all__ = ["PublishError", "Published", "connect", "folder_uid", "publish", "with_datasource"]

DEFAULT_FOLDER = "inferwatch"


class PublishError(RuntimeError):
    """Publishing failed; the message is one line that says why and what to check."""


@dataclass(frozen=True, slots=True)
class Published:
    """One dashboard stored in Grafana."""

    uid: str
    title: str
    url: str
    version: int | None


def folder_uid(title: str) -> str:
    """A stable folder uid from its title: lower case, ``[a-z0-9-]``, at most 40 characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return (slug or "inferwatch")[:40]


def connect(url: str, *, token: str | None = None, user: str | None = None, password: str | None = None,
            timeout: float = 10.0) -> GrafanaApi:
    """A client for the Grafana at ``url`` with a token (Bearer) or basic auth."""
    credential: str | tuple[str, str] | None
    if token:
        credential = token
    elif user is not None:
        credential = (user, password or "")
    else:
        credential = None
    return GrafanaApi.from_url(url.rstrip("/"), credential=credential, timeout=timeout)


def with_datasource(dashboard: Mapping[str, Any], datasource_uid: str) -> dict[str, Any]:
    """A copy of ``dashboard`` whose ``$datasource`` variable defaults to ``datasource_uid``."""
    out = copy.deepcopy(dict(dashboard))
    for variable in out.get("templating", {}).get("list", []):
        if variable.get("type") == "datasource":
            variable["current"] = {"selected": True, "text": datasource_uid, "value": datasource_uid}
    return out


def _explain(exc: Exception, url: str, step: str) -> PublishError:
    """Turn a client error into one line naming the cause."""
    if isinstance(exc, GrafanaUnauthorizedError):
        return PublishError(f"Grafana at {url} answered 401 Unauthorized to {step}: check --token or --user/--password")
    if isinstance(exc, GrafanaClientError) and exc.status_code == 403:
        return PublishError(
            f"Grafana at {url} answered 403 Forbidden to {step}: the token or user needs the Editor role "
            "(or folder write permission)"
        )
    if isinstance(exc, GrafanaClientError) and exc.status_code == 404:
        return PublishError(f"Grafana at {url} answered 404 Not Found to {step}: is --url the Grafana base URL?")
    if isinstance(exc, GrafanaException):
        return PublishError(f"Grafana at {url} failed {step}: {' '.join(str(exc).split())}")
    reason = "connection refused" if "refused" in str(exc).lower() else " ".join(str(exc).split())[:200]
    return PublishError(f"cannot reach Grafana at {url} ({step}): {reason}")


def _call(step: str, where: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except (GrafanaException, OSError) as exc:  # niquests' ConnectionError is an OSError
        raise _explain(exc, where, step) from exc


def publish(
    api: GrafanaApi,
    dashboards: Mapping[str, Mapping[str, Any]],
    *,
    folder: str = DEFAULT_FOLDER,
    datasource_uid: str | None = None,
    url: str = "",
) -> list[Published]:
    """Create ``folder`` if missing and upsert every dashboard into it; PublishError on failure."""
    where = url or str(api.client.url)
    folders = _call("GET /api/folders", where, api.folder.get_all_folders) or []
    uid = next((str(f["uid"]) for f in folders if f.get("title") == folder), None)
    if uid is None:
        created = _call("POST /api/folders", where, api.folder.create_folder, folder, uid=folder_uid(folder))
        uid = str(created["uid"])
    done = []
    for name, dashboard in dashboards.items():
        body = with_datasource(dashboard, datasource_uid) if datasource_uid else copy.deepcopy(dict(dashboard))
        body.pop("id", None)
        payload = {"dashboard": body, "folderUid": uid, "overwrite": True, "message": "inferwatch dashboards publish"}
        answer = _call(f"POST /api/dashboards/db ({name})", where, api.dashboard.update_dashboard, payload)
        done.append(Published(
            uid=str(answer.get("uid", body.get("uid"))), title=str(body.get("title", name)),
            url=str(answer.get("url", "")), version=answer.get("version"),
        ))
    return done
