"""Storage adapters behind one protocol: DuckDB (default, a local file) and PostgreSQL.

Use :func:`connect` with a path (``crimelens.duckdb``) or a URL (``postgresql://...``).
"""

from crimelens.store.base import BatchWriter, IngestReport, Store, connect

__all__ = ["BatchWriter", "IngestReport", "Store", "connect"]
