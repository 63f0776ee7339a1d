"""data.police.uk connector: one month of street-level crime (or crimes without a location).

The API has no "street crimes of a force" call, so a force is fetched neighbourhood by
neighbourhood: ``/forces/<force>`` (its name), ``/<force>/neighbourhoods``, each
``/<force>/<id>/boundary``, then ``crimes-street/<category>`` for that polygon (sent as a POST
form, since boundaries exceed the API's 4094-character URL limit). A crime on a shared edge
can come back for two neighbourhoods; it is kept once (by the API's crime id). A polygon of
your own (``poly``) is one request; ``no_location`` asks ``crimes-no-location`` for a force.

Records are flattened to the columns of the police.uk CSV downloads (``Crime ID``, ``Month``,
``Reported by``, ``Falls within``, ``Longitude``, ``Latitude``, ``Location``, ``LSOA code``,
``LSOA name``, ``Crime type``, ``Last outcome category``, ``Context``), so the ``police_uk``
preset maps them. The API gives no LSOA; those columns are empty.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from crimelens.connectors.fetch import Fetcher, FetchError, redact_url
from crimelens.connectors.staging import FetchResult, safe_name, stage_and_ingest
from crimelens.exceptions import InputError

if TYPE_CHECKING:
    from crimelens.sources.mapping import Mapping
    from crimelens.store.base import Store

log = logging.getLogger(__name__)

DEFAULT_BASE = "https://data.police.uk/api"
COLUMNS = ("Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude", "Location",
           "LSOA code", "LSOA name", "Crime type", "Last outcome category", "Context")

#: API category slugs → the crime-type names used in the CSV downloads (and the preset).
CRIME_TYPES = {
    "anti-social-behaviour": "Anti-social behaviour",
    "bicycle-theft": "Bicycle theft",
    "burglary": "Burglary",
    "criminal-damage-arson": "Criminal damage and arson",
    "drugs": "Drugs",
    "other-theft": "Other theft",
    "possession-of-weapons": "Possession of weapons",
    "public-order": "Public order",
    "robbery": "Robbery",
    "shoplifting": "Shoplifting",
    "theft-from-the-person": "Theft from the person",
    "vehicle-crime": "Vehicle crime",
    "violent-crime": "Violence and sexual offences",
    "other-crime": "Other crime",
    "public-disorder-weapons": "Public disorder and weapons",
}

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_POINT = re.compile(r"^-?\d+(\.\d+)?,-?\d+(\.\d+)?$")


@dataclass(frozen=True, slots=True)
class PoliceUKQuery:
    """One month for a force (``force``), a polygon (``poly``: ``lat,lng:lat,lng:...``) or
    a force's crimes without a location (``no_location``)."""

    month: str
    force: str | None = None
    poly: str | None = None
    no_location: bool = False
    category: str = "all-crime"
    base_url: str = DEFAULT_BASE
    interval_s: float = 0.07  # the API allows 15 requests a second

    def __post_init__(self) -> None:
        if not _MONTH.match(self.month):
            raise InputError(f"--month: expected YYYY-MM, got {self.month!r}")
        if not _SLUG.match(self.category):
            raise InputError(f"--category: expected a category slug such as all-crime, got {self.category!r}")
        if self.force is not None and not _SLUG.match(self.force):
            raise InputError(f"--force: expected a force id such as west-yorkshire, got {self.force!r}")
        if (self.force is None) == (self.poly is None) and not self.no_location:
            raise InputError("give --force or --poly (one of them)")
        if self.no_location and (self.force is None or self.poly is not None):
            raise InputError("--no-location needs --force (and no --poly)")
        if self.poly is not None and (len(self.poly.split(":")) < 3
                                      or not all(_POINT.match(p) for p in self.poly.split(":"))):
            raise InputError("--poly: expected at least three lat,lng points joined by ':'")

    def base(self) -> str:
        """The API base URL without a trailing slash."""
        return self.base_url.rstrip("/")

    def shown_url(self) -> str:
        """A description of the request for the report."""
        if self.no_location:
            return f"{self.base()}/crimes-no-location?category={self.category}&force={self.force}&date={self.month}"
        where = f"force={self.force}" if self.force else "poly=<polygon>"
        return f"{self.base()}/crimes-street/{self.category}?{where}&date={self.month}"


def crime_record(crime: dict[str, Any], force_name: str) -> dict[str, Any]:
    """One API crime flattened to the CSV download's columns."""
    loc = crime.get("location") or {}
    street = (loc.get("street") or {}) if isinstance(loc, dict) else {}
    outcome = crime.get("outcome_status") or {}
    slug = str(crime.get("category") or "")
    return {
        "Crime ID": crime.get("persistent_id") or "",
        "Month": crime.get("month") or "",
        "Reported by": force_name,
        "Falls within": force_name,
        "Longitude": loc.get("longitude") if isinstance(loc, dict) else None,
        "Latitude": loc.get("latitude") if isinstance(loc, dict) else None,
        "Location": street.get("name") if isinstance(street, dict) else None,
        "LSOA code": None,
        "LSOA name": None,
        "Crime type": CRIME_TYPES.get(slug, slug.replace("-", " ").capitalize()),
        "Last outcome category": outcome.get("category") if isinstance(outcome, dict) else None,
        "Context": crime.get("context") or "",
    }


class _Client:
    """JSON GET/POST against the API base, spaced to respect its rate limit."""

    def __init__(self, fetcher: Fetcher, query: PoliceUKQuery) -> None:
        self.fetcher, self.q, self._last = fetcher, query, 0.0

    def _wait(self) -> None:
        pause = self._last + self.q.interval_s - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        self._last = time.monotonic()

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        self._wait()
        return self.fetcher.get_json(f"{self.q.base()}/{path}", params=params)

    def post(self, path: str, form: dict[str, str]) -> Any:
        self._wait()
        try:
            return self.fetcher.request("POST", f"{self.q.base()}/{path}", form=form,
                                        accept="application/json").json()
        except FetchError as exc:
            if "HTTP 503" in str(exc):  # the API's answer to more than 10,000 crimes in one area
                raise FetchError(f"{exc} - police.uk refuses areas with over 10,000 crimes; "
                                 "use smaller polygons") from exc
            raise


def _crimes(doc: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(doc, list):
        raise FetchError(f"{what}: expected a JSON array of crimes")
    return [c for c in doc if isinstance(c, dict)]


def policeuk_pages(fetcher: Fetcher, query: PoliceUKQuery) -> Iterator[list[dict[str, Any]]]:
    """Yield flattened crimes: one page per neighbourhood (force), or one page (poly, no location)."""
    api = _Client(fetcher, query)
    q = query
    force_name = ""
    if q.force is not None:
        info = api.get(f"forces/{q.force}")
        force_name = str(info.get("name") or q.force) if isinstance(info, dict) else q.force
    if q.no_location:
        doc = api.get("crimes-no-location", {"category": q.category, "force": str(q.force), "date": q.month})
        yield [crime_record(c, force_name) for c in _crimes(doc, "crimes-no-location")]
        return
    if q.poly is not None:
        doc = api.post(f"crimes-street/{q.category}", {"poly": q.poly, "date": q.month})
        yield [crime_record(c, force_name) for c in _crimes(doc, "crimes-street")]
        return
    hoods = api.get(f"{q.force}/neighbourhoods")
    if not isinstance(hoods, list):
        raise FetchError(f"{redact_url(q.base())}/{q.force}/neighbourhoods: expected a JSON array")
    seen: set[Any] = set()
    for hood in hoods:
        hid = str(hood.get("id", "")) if isinstance(hood, dict) else ""
        if not hid:
            continue
        boundary = api.get(f"{q.force}/{quote(hid, safe='')}/boundary")
        points = [f"{p['latitude']},{p['longitude']}" for p in boundary or []
                  if isinstance(p, dict) and "latitude" in p and "longitude" in p]
        if len(points) < 3:
            log.debug("neighbourhood %s has no usable boundary", hid)
            continue
        doc = api.post(f"crimes-street/{q.category}", {"poly": ":".join(points), "date": q.month})
        page = []
        for c in _crimes(doc, f"crimes-street ({hid})"):
            ident = c.get("id") or (c.get("persistent_id"), repr(sorted(c.items(), key=lambda kv: kv[0])))
            if ident in seen:
                continue
            seen.add(ident)
            page.append(crime_record(c, force_name))
        yield page


def fetch_policeuk(
    fetcher: Fetcher,
    store: Store,
    query: PoliceUKQuery,
    *,
    key: bytes,
    mapping: Mapping,
    source: str | None = None,
    workdir: Path | None = None,
    keep: Path | None = None,
) -> FetchResult:
    """Fetch the month and load it as one atomic ingest with ``mapping`` (the ``police_uk`` preset)."""
    what = "no-location" if query.no_location else "street"
    name = safe_name("police-uk", query.force or "poly", what, query.month)
    return stage_and_ingest(store, policeuk_pages(fetcher, query), key=key, url=query.shown_url(), name=name,
                            mapping=mapping, source=source, workdir=workdir, keep=keep)

