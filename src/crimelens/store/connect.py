"""The store factory: pick a backend from a URL and an engine.

* ``path.duckdb`` (or ``:memory:``) — one DuckDB file (the default);
* ``postgresql://…`` — PostgreSQL/PostGIS;
* ``lake:DIR`` (a local or mounted directory, or ``s3://bucket/prefix``) — a partitioned Parquet lake
  (``source=/year=/month=``), read and written by DuckDB (``engine="duckdb"``, a laptop) or by
  Apache Spark (``engine="spark"``, a cluster; see :mod:`crimelens.spark`).

It lives beside the protocol (:mod:`crimelens.store.base`) rather than in it, so that the protocol
imports no backend; backends are imported only when asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from crimelens.exceptions import InputError

if TYPE_CHECKING:
    from crimelens.store.base import Store

Engine = Literal["duckdb", "spark"]
ENGINES: tuple[str, ...] = ("duckdb", "spark")
LAKE_PREFIX = "lake:"


def lake_dir(url: str) -> str | None:
    """The lake location named by a ``lake:DIR`` URL (a directory or ``s3://…``), else ``None``.

    Which object stores can be opened is checked by :func:`crimelens.store.lakefs.open_lake_fs`.
    """
    if not url.startswith(LAKE_PREFIX):
        return None
    path = url[len(LAKE_PREFIX):]
    if not path:
        raise InputError("--db lake: needs a directory, e.g. lake:./lake")
    return path


def connect(url: str, *, read_only: bool = False, engine: str = "duckdb", spark: Any = None) -> Store:
    """Open the store at ``url`` on ``engine``.

    Parameters
    ----------
    url
        A DuckDB file path (default), ``postgresql://…`` or ``lake:DIR``.
    read_only
        Open for reading only (DuckDB allows many readers but one writer).
    engine
        ``duckdb`` (default) or ``spark``; Spark needs a lake (``lake:DIR``).
    spark
        An existing ``SparkSession`` for ``engine="spark"`` (default: one built from the settings
        by :func:`crimelens.spark.session.spark_session`).

    Raises
    ------
    InputError
        For an unknown engine, an empty lake path, or Spark asked for a non-lake store.
    """
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}: use {' or '.join(ENGINES)}")
    lake = lake_dir(url)
    if engine == "spark":
        if lake is None:
            raise InputError(f"--engine spark needs a lake store (--db lake:DIR), not {url!r}")
        from crimelens.spark.store import SparkLakeStore

        spark_store: Store = SparkLakeStore(lake, read_only=read_only, spark=spark)
        return spark_store
    if lake is not None:
        from crimelens.store.lake import LakeStore

        lake_store: Store = LakeStore(lake, read_only=read_only)
        return lake_store
    if url.startswith(("postgresql://", "postgres://")):
        from crimelens.store.postgres import PostgresStore

        pg: Store = PostgresStore(url, read_only=read_only)
        return pg
    if "://" in url:
        raise InputError(f"cannot use store URL {url!r}: give a DuckDB file path, postgresql://… or lake:DIR")
    from crimelens.store.duckdb import DuckDBStore

    store: Store = DuckDBStore(url, read_only=read_only)
    return store
