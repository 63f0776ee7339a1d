"""The alert monitor's PostgreSQL store: read methods on the service's writer connection, under its lock."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crimelens.service.views import Locked
from crimelens.store.postgres import PostgresStore

if TYPE_CHECKING:
    from crimelens.service.runtime import Runtime


class LockedPgStore(Locked, PostgresStore):
    """The PostgreSQL store's read methods on the service's writer connection, under the write lock."""

    def __init__(self, rt: Runtime) -> None:  # deliberately skips the parent's connect
        self.url = rt.store.url
        self.schema = rt.store.schema
        self.read_only = False
        self.postgis = rt.store.postgis
        self.con = rt.writer
        self.conn = rt.writer.conn
        self.lock = rt.write_lock
