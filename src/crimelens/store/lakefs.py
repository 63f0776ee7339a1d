"""Where a lake's files live: a local directory or a prefix on an S3-compatible object store.

:class:`~crimelens.store.lake.LakeStore` reads and writes its files only through a :class:`LakeFS`,
so one writer (one classification, one accounting identity, one manifest) serves both places:

* :class:`LocalLakeFS` — a local or mounted directory. The manifest is replaced by an atomic
  ``rename``; one writer at a time by ``flock`` on ``DIR/.lock``.
* :class:`ObjectLakeFS` — ``s3://bucket/prefix`` (``s3a://`` is the same place, the name Hadoop
  uses), through :class:`pyarrow.fs.S3FileSystem`. An object store has no rename, but a PUT is
  atomic (a reader sees the old object or the new one, never part of one), so the manifest is
  replaced by one PUT of ``_manifest.json``: still one commit point. One writer at a time by a
  lease object ``_lock.json`` (owner, host, pid, expiry): a lease whose process is gone on this
  host, or whose expiry has passed, is taken over; a writer also re-reads the manifest just before
  its commit and gives up if another writer committed meanwhile (see docs/spark.md, "Object stores").

Credentials and endpoint come from the environment, never from the URL or the repository:
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` (``AWS_SESSION_TOKEN``), ``AWS_REGION`` and, for an
S3-compatible server (MinIO, Ceph, a cloud's S3 endpoint), ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import abc
import contextlib
import fcntl
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from crimelens.exceptions import InputError, StoreBusyError, StoreError

#: URL schemes of S3-compatible object stores (``s3a`` is Hadoop's name for the same bucket).
S3_SCHEMES = ("s3", "s3a")
#: Object stores other than S3: refused with one line (no filesystem layer here for them yet).
OTHER_OBJECT_STORES = ("s3n", "gs", "abfs", "abfss", "wasb", "wasbs", "hdfs")
#: Seconds a writer's lease on an object-store lake lasts before another writer may take it over
#: (``CRIMELENS_LAKE_LEASE_S`` overrides it, read when a lease is taken).
LEASE_SECONDS = 21600.0


def is_object_store(path: str) -> bool:
    """Whether ``path`` names an object-store location (``scheme://…``) rather than a directory."""
    return "://" in path


class LakeFS(abc.ABC):
    """The files of one lake, addressed by paths relative to the lake root ("rel" paths)."""

    #: The pyarrow filesystem and the root's path on it.
    fs: pafs.FileSystem
    base: str
    #: ``True`` for an object store (no rename, no flock; staging is a local temporary directory).
    remote: bool = False

    def path(self, rel: str) -> str:
        """The path of ``rel`` on :attr:`fs`."""
        return f"{self.base}/{rel}" if rel else self.base

    @abc.abstractmethod
    def display(self) -> str:
        """The lake's location as the user named it (for messages)."""

    @abc.abstractmethod
    def spark_uri(self, rel: str = "") -> str:
        """``rel`` as a URI Spark (Hadoop's FileSystem) opens."""

    # -- bytes and files ------------------------------------------------------------------
    def read_bytes(self, rel: str) -> bytes | None:
        """The content of ``rel``, or ``None`` when there is no such file."""
        try:
            with self.fs.open_input_stream(self.path(rel)) as fh:
                data: bytes = fh.read()
                return data
        except FileNotFoundError:
            return None
        except OSError as exc:
            if _missing(exc):
                return None
            raise StoreError(f"lake {self.display()}: cannot read {rel}: {_first_line(exc)}") from exc

    def exists(self, rel: str) -> bool:
        """Whether ``rel`` is a file."""
        try:
            return bool(self.fs.get_file_info(self.path(rel)).type == pafs.FileType.File)
        except OSError as exc:
            raise StoreError(f"lake {self.display()}: {_first_line(exc)}") from exc

    @abc.abstractmethod
    def write_atomic(self, rel: str, data: bytes) -> None:
        """Replace ``rel`` by ``data`` so that a reader sees the old content or the new, never a mix."""

    @abc.abstractmethod
    def upload(self, local: Path, rel: str) -> None:
        """Move the local file ``local`` to ``rel`` (a rename locally, a copy then delete remotely)."""

    def delete(self, rel: str) -> None:
        """Remove the file ``rel`` (nothing when it is already gone)."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(self.path(rel))

    def delete_dir(self, rel: str) -> None:
        """Remove the directory ``rel`` and everything under it (nothing when it is gone)."""
        with contextlib.suppress(FileNotFoundError, OSError):
            self.fs.delete_dir(self.path(rel))

    def files_under(self, rel: str, suffix: str = "") -> list[str]:
        """The rel paths of every file under ``rel`` whose name ends in ``suffix``, sorted."""
        selector = pafs.FileSelector(self.path(rel), recursive=True, allow_not_found=True)
        try:
            infos = self.fs.get_file_info(selector)
        except OSError as exc:
            raise StoreError(f"lake {self.display()}: cannot list {rel}: {_first_line(exc)}") from exc
        cut = len(self.base) + 1
        return sorted(i.path[cut:] for i in infos if i.type == pafs.FileType.File and i.path.endswith(suffix))

    # -- Parquet --------------------------------------------------------------------------
    def write_parquet(self, rel: str, table: pa.Table) -> None:
        """Write ``table`` as the Parquet file ``rel`` (parent directories made as needed)."""
        if not self.remote:
            Path(self.path(rel)).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, self.path(rel), filesystem=self.fs)

    def read_parquet(self, rel: str, columns: list[str] | None = None) -> pa.Table:
        """The rows of the Parquet file (or directory of files) ``rel``."""
        return pq.read_table(self.path(rel), columns=columns, filesystem=self.fs, partitioning=None)

    def dataset(self, rels: list[str], table_dir: str, partitioning: ds.Partitioning) -> ds.Dataset:
        """The listed Parquet files as one Arrow dataset, hive partition columns from ``table_dir``."""
        return ds.dataset([self.path(r) for r in rels], format="parquet", filesystem=self.fs,
                          partitioning=partitioning, partition_base_dir=self.path(table_dir))

    # -- one writer at a time -------------------------------------------------------------
    @abc.abstractmethod
    def check_writable(self) -> None:
        """Raise :class:`StoreError` unless a file can be written and removed at the root."""

    @abc.abstractmethod
    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold the lake's writer lock (raises :class:`StoreBusyError` when another writer has it)."""


class LocalLakeFS(LakeFS):
    """A lake in a local or mounted directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.fs = pafs.LocalFileSystem()
        self.base = str(self.root.absolute())

    def display(self) -> str:
        """The directory."""
        return str(self.root)

    def spark_uri(self, rel: str = "") -> str:
        """The absolute local path (Spark reads it as ``file:``)."""
        return self.path(rel)

    def write_atomic(self, rel: str, data: bytes) -> None:
        """Write a temporary file, fsync it, rename it over ``rel``."""
        target = Path(self.path(rel))
        tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex}.tmp")
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(target)

    def upload(self, local: Path, rel: str) -> None:
        """Rename ``local`` to ``rel``."""
        target = Path(self.path(rel))
        target.parent.mkdir(parents=True, exist_ok=True)
        local.replace(target)

    def check_writable(self) -> None:
        """Make the directory and write a probe file in it."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe-{uuid.uuid4().hex}"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise StoreError(f"cannot write to lake {self.root}: {exc.strerror or exc}") from exc

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """``flock`` on ``DIR/.lock`` (released by the kernel if the process dies)."""
        fh: IO[str] = (self.root / ".lock").open("a")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            fh.close()
            raise StoreBusyError(f"store is busy: another process is writing to lake {self.root}; "
                                 "try again when it finishes") from exc
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()


class ObjectLakeFS(LakeFS):
    """A lake under ``s3://bucket/prefix`` on S3 or an S3-compatible server."""

    remote = True
    LEASE = "_lock.json"

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in S3_SCHEMES:
            raise InputError(f"--db lake:{url}: only S3-compatible object stores (s3://, s3a://) are supported; "
                             "mount other stores as a directory")
        bucket, prefix = parts.netloc, parts.path.strip("/")
        if not bucket or not prefix:
            raise InputError(f"--db lake:{url}: name a bucket and a prefix, e.g. lake:s3://bucket/crime")
        if parts.query or parts.username or parts.password:
            raise InputError(f"--db lake:{scheme}://{bucket}/…: put credentials and the endpoint in the environment "
                             "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL), not in the URL")
        self.bucket, self.prefix = bucket, prefix
        self.base = f"{bucket}/{prefix}"
        self.fs = s3_filesystem()
        self.owner = uuid.uuid4().hex

    def display(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.base}"

    def spark_uri(self, rel: str = "") -> str:
        """``s3a://bucket/prefix/rel`` (Hadoop's S3A filesystem)."""
        return f"s3a://{self.path(rel)}"

    def write_atomic(self, rel: str, data: bytes) -> None:
        """One PUT (atomic on S3: the old object or the new one is seen, never a part)."""
        try:
            with self.fs.open_output_stream(self.path(rel)) as fh:
                fh.write(data)
        except OSError as exc:
            raise StoreError(f"lake {self.display()}: cannot write {rel}: {_first_line(exc)}") from exc

    def upload(self, local: Path, rel: str) -> None:
        """Copy ``local`` up, then remove it."""
        try:
            pafs.copy_files(str(local), self.path(rel), source_filesystem=pafs.LocalFileSystem(),
                            destination_filesystem=self.fs)
        except OSError as exc:
            raise StoreError(f"lake {self.display()}: cannot upload {rel}: {_first_line(exc)}") from exc
        local.unlink()

    def check_writable(self) -> None:
        """PUT and DELETE a probe object (so a read-only key is refused before any work)."""
        probe = f".probe-{uuid.uuid4().hex}"
        try:
            with self.fs.open_output_stream(self.path(probe)) as fh:
                fh.write(b"")
            self.fs.delete_file(self.path(probe))
        except OSError as exc:
            raise StoreError(f"cannot write to lake {self.display()}: {_first_line(exc)}") from exc

    def _lease(self) -> dict[str, Any] | None:
        raw = self.read_bytes(self.LEASE)
        if raw is None:
            return None
        try:
            lease: dict[str, Any] = json.loads(raw)
            return lease
        except ValueError:
            return None  # a lease that is not JSON holds nobody

    def _held_by_other(self, lease: dict[str, Any] | None) -> bool:
        if lease is None or lease.get("owner") == self.owner:
            return False
        if float(lease.get("expires", 0)) < time.time():
            return False
        if lease.get("host") == socket.gethostname():
            return _alive(int(lease.get("pid", 0)))
        return True

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """A lease object: taken when free, expired, or left by a dead process on this host."""
        if self._held_by_other(self._lease()):
            raise StoreBusyError(f"store is busy: another process is writing to lake {self.display()} "
                                 f"(lease {self.LEASE}); try again when it finishes")
        mine = {"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(),
                "expires": time.time() + float(os.environ.get("CRIMELENS_LAKE_LEASE_S", LEASE_SECONDS))}
        self.write_atomic(self.LEASE, json.dumps(mine).encode())
        time.sleep(0.05)  # a rival that wrote at the same moment: the last PUT wins, and both check
        if (self._lease() or {}).get("owner") != self.owner:
            raise StoreBusyError(f"store is busy: another process took the lease on lake {self.display()}; "
                                 "try again when it finishes")
        try:
            yield
        finally:
            if (self._lease() or {}).get("owner") == self.owner:
                self.delete(self.LEASE)


@dataclass(frozen=True)
class S3Settings:
    """Where the bucket is and who we are, from the standard AWS environment variables."""

    endpoint: str | None
    region: str | None
    key: str | None
    secret: str | None
    token: str | None

    @classmethod
    def from_env(cls) -> S3Settings:
        """``AWS_ENDPOINT_URL[_S3]``, ``AWS_REGION`` (or ``AWS_DEFAULT_REGION``), the key pair and token."""
        env = os.environ.get
        key, secret = env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")
        both = bool(key and secret)  # half a key pair is no key pair: the SDK's own chain decides
        return cls(endpoint=env("AWS_ENDPOINT_URL_S3") or env("AWS_ENDPOINT_URL"),
                   region=env("AWS_REGION") or env("AWS_DEFAULT_REGION"),
                   key=key if both else None, secret=secret if both else None, token=env("AWS_SESSION_TOKEN"))


def s3_filesystem(settings: S3Settings | None = None) -> pafs.S3FileSystem:
    """An S3 filesystem configured from the environment (see the module docstring)."""
    cfg = settings or S3Settings.from_env()
    kwargs: dict[str, Any] = {"region": cfg.region or "us-east-1", "connect_timeout": 10, "request_timeout": 60,
                              "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3)}
    if cfg.endpoint:
        parts = urlsplit(cfg.endpoint)
        if not parts.netloc:
            raise InputError(f"AWS_ENDPOINT_URL {cfg.endpoint!r} is not a URL (e.g. http://127.0.0.1:9000)")
        kwargs.update(endpoint_override=parts.netloc, scheme=parts.scheme or "https")
    if cfg.key:
        kwargs.update(access_key=cfg.key, secret_key=cfg.secret, session_token=cfg.token)
    return pafs.S3FileSystem(**kwargs)


def s3a_conf(settings: S3Settings | None = None) -> dict[str, str]:
    """Hadoop S3A settings for Spark that reach the same bucket as :func:`s3_filesystem`."""
    cfg = settings or S3Settings.from_env()
    conf: dict[str, str] = {}
    if cfg.endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = cfg.endpoint
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(cfg.endpoint.startswith("https")).lower()
    if cfg.region:
        conf["spark.hadoop.fs.s3a.endpoint.region"] = cfg.region
    if cfg.key and cfg.secret:
        conf["spark.hadoop.fs.s3a.access.key"] = cfg.key
        conf["spark.hadoop.fs.s3a.secret.key"] = cfg.secret
        conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    return conf


def open_lake_fs(path: str) -> LakeFS:
    """The :class:`LakeFS` for a ``lake:`` path: a directory, or ``s3://`` / ``s3a://``."""
    if not is_object_store(path):
        return LocalLakeFS(path)
    scheme = path.split("://", 1)[0].lower()
    if scheme in OTHER_OBJECT_STORES or scheme not in S3_SCHEMES:
        raise InputError(f"--db lake:{path}: {scheme}:// lakes are not supported; use s3:// (or any "
                         "S3-compatible endpoint via AWS_ENDPOINT_URL) or a mounted directory")
    return ObjectLakeFS(path)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _missing(exc: OSError) -> bool:
    text = str(exc)
    return "NoSuchKey" in text or "Path does not exist" in text or "not found" in text.lower()


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
