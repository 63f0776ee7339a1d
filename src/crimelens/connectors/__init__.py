"""HTTP clients for open-data portals (Socrata, ArcGIS, police.uk): fetch safely, stage, ingest.

An adapter package: the core never imports it. Every request goes through
:class:`~crimelens.connectors.fetch.Fetcher`, which enforces SEC-14 (https only, a host
allow-list, public addresses only, pinned connections, checked redirects, size and time limits).
"""

from crimelens.connectors.fetch import Fetcher, FetchError, URLRefused
from crimelens.connectors.staging import FetchResult

__all__ = ["FetchError", "FetchResult", "Fetcher", "URLRefused"]
