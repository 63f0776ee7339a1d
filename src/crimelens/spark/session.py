"""A SparkSession for crimelens, from explicit settings (``--spark-master``, default ``local[2]``).

The session is configured for the lake: UTC session time (timestamps are UTC instants, local
wall clock is derived per query), partition values read as strings (a source named ``2024``
stays a name), Arrow for the Python exchange, and the executors' Python set to this
interpreter so ``mapInArrow`` workers import the same crimelens. Extra Spark/Hadoop settings
(``spark.hadoop.fs.s3a.*`` for an ``s3a://`` lake, executor memory on a cluster) are passed as
``conf``. A Spark that cannot start (no Java, a master that does not answer) is one
:class:`~crimelens.exceptions.StoreError` line.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from crimelens.exceptions import InputError, StoreError, require_extra

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[2]"

#: Settings every crimelens session gets (a caller's ``conf`` may override them).
BASE_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.memory": "2g",
    # whole cleaning chunks per Arrow batch (see crimelens.spark.ingest)
    "spark.sql.execution.arrow.maxRecordsPerBatch": "1000000",
    "spark.sql.files.maxPartitionBytes": str(1 << 30),
}


def java_available() -> bool:
    """True when a Java runtime is on ``PATH`` or under ``$JAVA_HOME``."""
    home = os.environ.get("JAVA_HOME")
    return bool(shutil.which("java") or (home and (Path(home) / "bin" / "java").exists()))


def spark_session(master: str | None = None, *, conf: Mapping[str, str] | None = None,
                  app_name: str = "crimelens") -> SparkSession:
    """Start (or reuse) a SparkSession on ``master`` (default ``local[2]``).

    Raises
    ------
    MissingExtraError
        When pyspark is not installed (``pip install 'crimelens[spark]'``).
    StoreError
        When Spark cannot start: no Java, or the master refuses.
    """
    require_extra("pyspark", "spark")
    if not java_available():
        raise StoreError("cannot start Spark: no Java runtime found (install Java 17 or set JAVA_HOME)")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master or DEFAULT_MASTER).appName(app_name)
    for key, value in {**BASE_CONF, "spark.pyspark.python": sys.executable, **(conf or {})}.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # py4j/pyspark raise many types; all mean "did not start"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreError(f"cannot start Spark on {master or DEFAULT_MASTER}: {first}") from exc
    session.sparkContext.setLogLevel("ERROR")
    return session


#: Hadoop's S3 filesystem; in the hadoop-aws jar, which pyspark does not ship.
S3A_CLASS = "org.apache.hadoop.fs.s3a.S3AFileSystem"


def require_s3a(session: SparkSession, url: str) -> None:
    """Raise :class:`InputError` (one line) unless ``session`` can open ``s3a://`` paths."""
    try:
        session.sparkContext._jvm.java.lang.Class.forName(  # type: ignore[union-attr]  # py4j's dynamic JVM view
            S3A_CLASS, True, session.sparkContext._jvm.Thread.currentThread().getContextClassLoader())  # type: ignore[union-attr]
    except Exception as exc:  # py4j wraps the ClassNotFoundException
        raise InputError(f"--db {url} --engine spark: this Spark has no S3A filesystem ({S3A_CLASS}); add the "
                         "hadoop-aws jar matching its Hadoop and the AWS SDK bundle, e.g. --spark-conf "
                         "spark.jars=/path/hadoop-aws.jar,/path/aws-sdk-bundle.jar (docs/spark.md)") from exc


def parse_conf(items: list[str] | None) -> dict[str, str]:
    """``KEY=VALUE`` strings (the CLI's ``--spark-conf``) as a dict; a malformed item is an error."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise StoreError(f"--spark-conf expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out
