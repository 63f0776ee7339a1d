"""The lake store with its aggregations on Apache Spark (``--db lake:DIR --engine spark``).

The same lake as :class:`~crimelens.store.lake.LakeStore` (partitioned Parquet listed by one
manifest), the same writer (loads commit through :class:`~crimelens.store.lake.LakeBatch`, so
atomicity and accounting are one implementation), and the same small reads (``incidents``,
``quarantine``). What changes is where the work runs: ``counts`` and ``info`` are Spark jobs
over the listed files, and ingest cleans on Spark executors (:mod:`crimelens.spark.ingest`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from crimelens.filters import IncidentFilter
from crimelens.schema import INCIDENT_COLUMNS
from crimelens.spark.counts import spark_counts, spark_events
from crimelens.spark.session import require_s3a, spark_session
from crimelens.store.lake import LakeStore

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


class SparkLakeStore(LakeStore):
    """A lake store whose counts and summaries run on Spark."""

    engine = "spark"

    def __init__(self, path: str | Path, *, read_only: bool = False, spark: SparkSession | None = None,
                 master: str | None = None, conf: dict[str, str] | None = None) -> None:
        super().__init__(path, read_only=read_only)
        self.spark = spark if spark is not None else spark_session(master, conf=conf)
        if self.lfs.remote:
            require_s3a(self.spark, self.url)

    def frame(self, table: str = "incidents") -> DataFrame:
        """The committed rows of ``table`` as a Spark DataFrame (partition columns as strings)."""
        from crimelens.spark.lakeio import read_table

        return read_table(self.spark, self.lfs.spark_uri(table), table, self.files_of(table))

    def counts(
        self, by: Sequence[str], flt: IncidentFilter | None = None, *, tz: str | None = None
    ) -> pd.DataFrame:
        """Counts grouped by ``by``, computed on Spark (see :meth:`crimelens.store.base.Store.counts`)."""
        flt = flt or IncidentFilter()
        zone = tz or self.timezone(flt.sources)
        out = spark_counts(self.frame(), by, flt, tz=zone)
        out.attrs["timezone"] = zone
        return out

    def located_events(self, flt: IncidentFilter, columns: Sequence[str]) -> pd.DataFrame:
        """Located incidents selected by ``flt`` with ``columns``, filtered and projected on Spark."""
        return spark_events(self.frame(), flt, columns)

    def info(self) -> dict[str, Any]:
        """Totals by source and category, time span and located share, computed on Spark."""
        from pyspark.sql import functions as F

        df = self.frame()
        row = df.agg(F.count(F.lit(1)).alias("n"), F.unix_micros(F.min("occurred_at")).alias("first"),
                     F.unix_micros(F.max("occurred_at")).alias("last"),
                     F.count("lat").alias("located")).collect()[0]
        total = int(row["n"])

        def by(frame: DataFrame, col: str) -> dict[str, int]:
            pairs = frame.groupBy(col).count().orderBy(F.col("count").desc()).collect()
            return {str(r[col]) if r[col] is not None else "None": int(r["count"]) for r in pairs}

        def when(micros: int | None) -> str | None:
            return None if micros is None else pd.Timestamp(micros, unit="us", tz="UTC").isoformat()

        return {
            "store": self.url,
            "schema_version": int(self.manifest.get("schema_version", 0)),
            "incidents": total,
            "first_occurred_at": when(row["first"]),
            "last_occurred_at": when(row["last"]),
            "located_share": round(int(row["located"]) / total, 4) if total else 0.0,
            "by_source": by(df, "source") if total else {},
            "by_category": by(df, "category") if total else {},
            "quarantined": by(self.frame("quarantine"), "reason") if self.files_of("quarantine") else {},
            "files": len(self.manifest["files"]),
            "generation": int(self.manifest.get("generation", 0)),
            "engine": "spark",
        }

    def incident_columns(self) -> list[str]:
        """The canonical columns, in schema order."""
        return list(INCIDENT_COLUMNS)
