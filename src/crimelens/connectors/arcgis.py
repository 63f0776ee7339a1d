"""ArcGIS REST connector: page through a FeatureServer or MapServer layer's ``query`` operation.

The layer's description (``?f=json``) gives its object-id field (the stable sort key), its
``maxRecordCount`` and which fields are dates. Pages are then requested with ``where``,
``outFields=*``, ``f=json``, ``orderByFields=<object id>``, ``resultOffset`` and
``resultRecordCount``, and paging continues while the server sets ``exceededTransferLimit``.

Each feature becomes one record: its attributes, date fields turned from epoch milliseconds
into ISO 8601 UTC (``2024-01-15T23:30:00Z``), and a point geometry's coordinates as
``geometry_x`` / ``geometry_y`` (longitude / latitude with the default ``out_sr`` 4326).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from crimelens.connectors.fetch import Fetcher, FetchError, redact_url
from crimelens.connectors.staging import FetchResult, safe_name, stage_and_ingest
from crimelens.exceptions import InputError

if TYPE_CHECKING:
    from crimelens.sources.mapping import Mapping
    from crimelens.store.base import Store

log = logging.getLogger(__name__)

_LAYER = re.compile(r"/(FeatureServer|MapServer)/\d+$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ArcGISQuery:
    """What to fetch from one layer: ``url`` ends in ``/FeatureServer/<n>`` (or ``.../query``)."""

    url: str
    where: str = "1=1"
    page_size: int | None = None
    limit: int | None = None
    out_sr: int = 4326

    def layer_url(self) -> str:
        """The layer's URL without ``/query`` and query string."""
        parts = urlsplit(self.url)
        path = re.sub(r"/query$", "", parts.path.rstrip("/"), flags=re.IGNORECASE)
        if not _LAYER.search(path):
            raise InputError(f"{redact_url(self.url)}: expected a layer URL ending in /FeatureServer/<n> "
                             "or /MapServer/<n>")
        if self.page_size is not None and self.page_size < 1:
            raise InputError("--page-size must be positive")
        if self.limit is not None and self.limit < 1:
            raise InputError("--limit must be positive")
        return urlunsplit(parts._replace(path=path, query="", fragment=""))


def _check(doc: Any, url: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise FetchError(f"{redact_url(url)}: expected a JSON object")
    err = doc.get("error")
    if isinstance(err, dict):
        raise FetchError(f"{redact_url(url)}: ArcGIS error {err.get('code', '')}: {str(err.get('message', ''))[:200]}")
    return doc


def _epoch_ms(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def feature_record(feature: dict[str, Any], date_fields: frozenset[str]) -> dict[str, Any]:
    """One feature as a flat record (see the module docstring)."""
    rec = {k: (_epoch_ms(v) if k in date_fields else v) for k, v in (feature.get("attributes") or {}).items()}
    geom = feature.get("geometry") or {}
    rec["geometry_x"] = geom.get("x") if isinstance(geom, dict) else None
    rec["geometry_y"] = geom.get("y") if isinstance(geom, dict) else None
    return rec


def arcgis_pages(fetcher: Fetcher, query: ArcGISQuery) -> Iterator[list[dict[str, Any]]]:
    """Yield the layer's features as records, page by page."""
    layer = query.layer_url()
    info = _check(fetcher.get_json(layer, params={"f": "json"}), layer)
    fields = [f for f in info.get("fields") or [] if isinstance(f, dict)]
    oid = info.get("objectIdField") or next(
        (f.get("name") for f in fields if f.get("type") == "esriFieldTypeOID"), None)
    if not oid:
        raise FetchError(f"{redact_url(layer)}: the layer names no object-id field to page by")
    dates = frozenset(str(f.get("name")) for f in fields if f.get("type") == "esriFieldTypeDate")
    caps = info.get("advancedQueryCapabilities") or {}
    if isinstance(caps, dict) and caps.get("supportsPagination") is False:
        raise FetchError(f"{redact_url(layer)}: the layer does not support paging (resultOffset); "
                         "fetch it in parts with --where")
    server_max = int(info.get("maxRecordCount") or 1000)
    size = min(query.page_size or server_max, server_max)
    offset = 0
    first_ids: set[Any] = set()
    while True:
        want = size if query.limit is None else min(size, query.limit - offset)
        if want <= 0:
            return
        params = {"where": query.where, "outFields": "*", "f": "json", "returnGeometry": "true",
                  "outSR": str(query.out_sr), "orderByFields": f"{oid} ASC",
                  "resultOffset": str(offset), "resultRecordCount": str(want)}
        doc = _check(fetcher.get_json(layer + "/query", params=params), layer)
        feats = [f for f in doc.get("features") or [] if isinstance(f, dict)]
        log.debug("arcgis offset %d: %d features", offset, len(feats))
        head = (feats[0].get("attributes") or {}).get(oid) if feats else None
        if head is not None and head in first_ids:  # a server ignoring resultOffset would loop forever
            raise FetchError(f"{redact_url(layer)}: the server returned the same page twice (paging unsupported?)")
        first_ids.add(head)
        if feats:
            yield [feature_record(f, dates) for f in feats]
        offset += len(feats)
        more = doc.get("exceededTransferLimit") or (doc.get("properties") or {}).get("exceededTransferLimit")
        if not feats or not more:
            return


def fetch_arcgis(
    fetcher: Fetcher,
    store: Store,
    query: ArcGISQuery,
    *,
    key: bytes,
    mapping: Mapping | None = None,
    source: str | None = None,
    workdir: Path | None = None,
    keep: Path | None = None,
) -> FetchResult:
    """Fetch every page of the layer and load it as one atomic ingest."""
    layer = query.layer_url()
    parts = urlsplit(layer)
    name = safe_name("arcgis", parts.hostname or "", *parts.path.strip("/").split("/")[-3:])
    shown = redact_url(f"{layer}/query?where={query.where}")
    return stage_and_ingest(store, arcgis_pages(fetcher, query), key=key, url=shown, name=name,
                            mapping=mapping, source=source, workdir=workdir, keep=keep)
