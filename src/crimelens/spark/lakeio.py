"""Lake I/O on Spark: the manifest's files of one table as a DataFrame.

Only the files the manifest lists are read (a killed writer's leftovers are never seen);
``basePath`` makes Spark recover the hive partition columns (``source``, ``year``, ``month``)
from the directory names, as strings (see :data:`crimelens.spark.session.BASE_CONF`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crimelens.store.lake import TABLES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def read_table(spark: SparkSession, base: str, table: str, files: list[str]) -> DataFrame:
    """The rows of ``table`` in ``files`` (URIs under ``base``, the table's directory), canonical columns only."""
    schema, _parts = TABLES[table]
    names = [f.name for f in schema]
    if not files:
        from pyspark.sql.pandas.types import from_arrow_schema

        return spark.createDataFrame([], from_arrow_schema(schema))
    df = spark.read.option("basePath", base).parquet(*files)
    return df.select(*names)
