#!/usr/bin/env bash
# Test-time jars for Spark on an s3a:// lake (tests/spark/test_lake_s3.py), build time only.
# pyspark ships no hadoop-aws; the reachable registries hold one copy of it, inside the
# sagemaker-pyspark sdist on PyPI (hadoop-aws 3.3.1 + AWS SDK bundle 1.11.901). crimelens never
# loads these at run time: on a cluster, use the hadoop-aws that matches its Hadoop (docs/spark.md).
set -euo pipefail
venv=${1:?usage: s3a-test-jars.sh VENV}
dest="$venv/s3a-jars"
[[ -f "$dest/hadoop-aws-3.3.1.jar" && -f "$dest/aws-java-sdk-bundle-1.11.901.jar" ]] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$venv/bin/pip" download -q --no-deps --no-build-isolation -d "$work" sagemaker-pyspark==1.4.5 >/dev/null 2>&1 \
  || "$venv/bin/pip" download -q --no-deps -d "$work" sagemaker-pyspark==1.4.5 >/dev/null
tar -xzf "$work"/sagemaker_pyspark-1.4.5.tar.gz -C "$work" \
  sagemaker_pyspark-1.4.5/deps/jars/hadoop-aws-3.3.1.jar sagemaker_pyspark-1.4.5/deps/jars/aws-java-sdk-bundle-1.11.901.jar
mkdir -p "$dest"
mv "$work"/sagemaker_pyspark-1.4.5/deps/jars/*.jar "$dest/"
