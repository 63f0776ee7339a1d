"""Storage adapters behind one protocol: DuckDB (default, a local file), PostgreSQL and a
Parquet lake (``lake:DIR``, on DuckDB or Spark).

Use :func:`connect` with a path (``crimelens.duckdb``) or a URL (``postgresql://...``).
"""

from crimelens.store.base import BatchWriter, IngestReport, Store
from crimelens.store.connect import connect

__all__ = ["BatchWriter", "IngestReport", "Store", "connect"]
