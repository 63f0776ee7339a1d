"""Socrata (SODA) connector: page through a dataset's ``/resource/<id>.json`` endpoint.

Pages are requested with ``$limit`` / ``$offset`` under a stable ``$order`` (``:id`` by
default), so consecutive pages neither skip nor repeat rows. ``since`` adds
``$where=<date_field> >= '<date>'`` for an incremental fetch. An application token, if given,
is sent as the ``X-App-Token`` header, never in the URL, and never logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from crimelens.connectors.fetch import Fetcher, FetchError, redact_url
from crimelens.connectors.staging import FetchResult, safe_name, stage_and_ingest
from crimelens.exceptions import InputError

if TYPE_CHECKING:
    from crimelens.sources.mapping import Mapping
    from crimelens.store.base import Store

log = logging.getLogger(__name__)

_FIELD = re.compile(r"^:?[A-Za-z_][A-Za-z0-9_]*$")
_ORDER = re.compile(r"^:?[A-Za-z_][A-Za-z0-9_]*( (ASC|DESC))?$", re.IGNORECASE)
_OWN = ("$limit", "$offset", "$order")


@dataclass(frozen=True, slots=True)
class SocrataQuery:
    """What to fetch from one Socrata dataset.

    ``url`` is the dataset's API endpoint (``https://host/resource/abcd-1234.json``; ``.csv`` or
    no suffix are turned into ``.json``). Query parameters already in it (``$where``,
    ``$select``...) are kept; ``$where`` is combined with ``since`` by ``AND``.
    """

    url: str
    page_size: int = 50_000
    limit: int | None = None
    order: str = ":id"
    since: datetime | None = None
    date_field: str = "date"
    app_token: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= 50_000:
            raise InputError("--page-size must be between 1 and 50000 (the SODA maximum)")
        if self.limit is not None and self.limit < 1:
            raise InputError("--limit must be positive")
        if not _ORDER.match(self.order):
            raise InputError(f"--order: expected a field name (optionally ASC/DESC), got {self.order!r}")
        if not _FIELD.match(self.date_field):
            raise InputError(f"--date-field: expected a field name, got {self.date_field!r}")

    def endpoint(self) -> tuple[str, dict[str, str]]:
        """The JSON endpoint without query, and the query parameters to send with every page."""
        parts = urlsplit(self.url)
        path = parts.path.rstrip("/")
        if "/resource/" not in path:
            raise InputError(f"{redact_url(self.url)}: expected a Socrata API URL like "
                             "https://data.example.org/resource/abcd-1234.json")
        stem = re.sub(r"\.(json|csv|geojson)$", "", path)
        params = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _OWN}
        params.pop("$$app_token", None)  # a token belongs in the header, not in the URL
        if self.since is not None:
            cond = f"{self.date_field} >= '{self.since.strftime('%Y-%m-%dT%H:%M:%S')}'"
            params["$where"] = f"({params['$where']}) AND {cond}" if params.get("$where") else cond
        params["$order"] = self.order
        return urlunsplit(parts._replace(path=stem + ".json", query="", fragment="")), params

    def shown_url(self) -> str:
        """The endpoint with its fixed query, as recorded in reports (no token)."""
        base, params = self.endpoint()
        return redact_url(base + "?" + "&".join(f"{k}={v}" for k, v in params.items()))


def socrata_pages(fetcher: Fetcher, query: SocrataQuery) -> Iterator[list[dict[str, Any]]]:
    """Yield the dataset's rows page by page, stopping at a short page or at ``query.limit``."""
    base, fixed = query.endpoint()
    headers = {"X-App-Token": query.app_token} if query.app_token else {}
    offset = 0
    while True:
        want = query.page_size if query.limit is None else min(query.page_size, query.limit - offset)
        if want <= 0:
            return
        params = {**fixed, "$limit": str(want), "$offset": str(offset)}
        rows = fetcher.get_json(base, params=params, headers=headers)
        if isinstance(rows, dict) and rows.get("error"):
            raise FetchError(f"{redact_url(base)}: Socrata error: {str(rows.get('message', ''))[:200]}")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise FetchError(f"{redact_url(base)}: expected a JSON array of rows")
        log.debug("socrata offset %d: %d rows", offset, len(rows))
        if rows:
            yield rows
        offset += len(rows)
        if len(rows) < want:
            return


def fetch_socrata(
    fetcher: Fetcher,
    store: Store,
    query: SocrataQuery,
    *,
    key: bytes,
    mapping: Mapping | None = None,
    source: str | None = None,
    workdir: Path | None = None,
    keep: Path | None = None,
) -> FetchResult:
    """Fetch every page of ``query`` and load it as one atomic ingest."""
    base, _ = query.endpoint()
    dataset = Path(urlsplit(base).path).stem
    name = safe_name("socrata", urlsplit(base).hostname or "", dataset)
    return stage_and_ingest(store, socrata_pages(fetcher, query), key=key, url=query.shown_url(), name=name,
                            mapping=mapping, source=source, workdir=workdir, keep=keep)
