"""``crimelens serve`` and ``crimelens users ...`` (needs the ``[server]`` extra)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from crimelens.cli.common import DbOpt, JsonOpt, db_url, emit, errors_to_exit, fail

users_app = typer.Typer(help="Manage dashboard/API accounts (admin, analyst, viewer).", no_args_is_help=True)
Role = Annotated[str, typer.Option("--role", help="admin, analyst or viewer")]
Stdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")]


def _settings(db: str | None, **over: object):  # type: ignore[no-untyped-def]
    from crimelens.settings import Settings

    s = Settings()
    return s.model_copy(update={"db": db_url(db), **{k: v for k, v in over.items() if v is not None}})


def _accounts(db: str | None):  # type: ignore[no-untyped-def]
    from crimelens.exceptions import require_extra

    require_extra("argon2", "server")
    from crimelens.service.auth import Accounts
    from crimelens.service.runtime import Runtime

    rt = Runtime(_settings(db))
    return rt, Accounts(rt)


def _password(stdin: bool) -> str:
    if not stdin:
        fail("give --password-stdin and pipe the password in (it is never taken as an argument)")
    pw = sys.stdin.readline().rstrip("\r\n")
    if not pw:
        fail("no password on standard input")
    return pw


def _audit(rt: object, event: str, name: str) -> None:
    from crimelens.service.audit import AuditContext, AuditLog

    AuditLog(rt).record(AuditContext(username="cli", source_ip="local"), event, "ok",  # type: ignore[arg-type]
                        component="cli", object_id=name)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default: 8000]")] = None,
    db: DbOpt = None,
    workers: Annotated[int, typer.Option(help="Worker processes (more than 1 needs a PostgreSQL --db)")] = 1,
    basemap: Annotated[str | None, typer.Option(
        "--basemap", help="MBTiles file of basemap tiles to serve at /tiles/{z}/{x}/{y}.png")] = None,
    metrics_bind: Annotated[str | None, typer.Option(
        "--metrics-bind", help="Serve /metrics without a token on HOST:PORT (e.g. 127.0.0.1:9464)")] = None,
    stream: Annotated[str | None, typer.Option(
        "--stream", help="Also consume this broker URL in the service (how a stream reaches a DuckDB store's "
        "dashboards; see docs/stream.md)")] = None,
    stream_preset: Annotated[str | None, typer.Option(
        "--stream-preset", help="Preset of the stream's records.")] = None,
    stream_name: Annotated[str, typer.Option("--stream-name", help="NATS JetStream stream name.")] = "",
    stream_subject: Annotated[str, typer.Option(
        "--stream-subject", help="NATS subject (MQTT topic / AMQP queue: the URL's path).")] = "",
) -> None:
    """Serve the REST API (/api/v1) and the dashboard (/)."""
    import os

    from crimelens.exceptions import require_extra

    with errors_to_exit():
        require_extra("fastapi", "server")
        if metrics_bind is not None:
            from crimelens.service.metrics import parse_bind

            try:
                mhost, mport = parse_bind(metrics_bind)
            except ValueError as exc:
                fail(str(exc))
            os.environ.update(CRIMELENS_METRICS_HOST=mhost, CRIMELENS_METRICS_PORT=str(mport))
        from crimelens.service.serve import serve as run

        if basemap is not None:
            from crimelens.service.tiles import MBTiles

            MBTiles(basemap)  # a missing or unreadable file is one clear line, before the server starts
        spec = None
        if stream is not None:
            from crimelens.service.instream import StreamSpec
            from crimelens.stream.options import StreamOptions

            if not stream_preset:
                fail("--stream needs --stream-preset: the fields of the stream's records")
            spec = StreamSpec(StreamOptions(stream=stream_name, subject=stream_subject, url=stream), stream_preset)
        run(_settings(db, host=host, port=port, basemap=basemap), workers=workers, stream=spec)


@users_app.command("add")
def add(name: str, role: Role, password_stdin: Stdin = False, export: Annotated[bool, typer.Option(
        "--export", help="Allow bulk export.")] = False, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Create an account (password from standard input, checked against the policy)."""
    from crimelens.service.auth import Role as R

    if role not in ("admin", "analyst", "viewer"):
        fail("--role must be admin, analyst or viewer")
    pw = _password(password_stdin)
    with errors_to_exit():
        rt, acc = _accounts(db)
        try:
            acc.create(name, R[role], pw, can_export=export)
            _audit(rt, "admin.user_create", name)
        finally:
            rt.close()
    emit({"created": name, "role": role}, as_json, f"created {name} ({role})")


@users_app.command("list")
def list_(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """List accounts."""
    with errors_to_exit():
        rt, acc = _accounts(db)
        try:
            rows = [u.public() for u in acc.list()]
        finally:
            rt.close()
    human = "\n".join(f"{u['username']:<24}{u['role']:<10}{'disabled' if u['disabled'] else 'active':<10}"
                      f"{'locked' if u['locked_until'] else ''}" for u in rows) or "no accounts"
    emit(rows, as_json, human)


@users_app.command("disable")
def disable(name: str, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Disable an account and revoke its sessions."""
    with errors_to_exit():
        rt, acc = _accounts(db)
        try:
            acc.update(name, disabled=True)
            _audit(rt, "admin.user_update", name)
        finally:
            rt.close()
    emit({"disabled": name}, as_json, f"disabled {name}")


@users_app.command("enable")
def enable(name: str, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Re-enable an account and clear its lock."""
    with errors_to_exit():
        rt, acc = _accounts(db)
        try:
            acc.update(name, disabled=False)
            acc.unlock(name)
            _audit(rt, "admin.user_update", name)
        finally:
            rt.close()
    emit({"enabled": name}, as_json, f"enabled {name}")


@users_app.command("reset")
def reset(name: str, password_stdin: Stdin = False, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Set a new password (from standard input), unlock, and revoke every session."""
    pw = _password(password_stdin)
    with errors_to_exit():
        rt, acc = _accounts(db)
        try:
            acc.set_password(name, pw)
            _audit(rt, "admin.password_reset", name)
        finally:
            rt.close()
    emit({"reset": name}, as_json, f"password of {name} reset; sessions revoked")


@users_app.command("totp")
def totp(name: str, disable_: Annotated[bool, typer.Option("--disable", help="Remove the second factor.")] = False,
         db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Enrol (or remove) a TOTP second factor; prints the otpauth:// URI once."""
    with errors_to_exit():
        rt, acc = _accounts(db)
        try:
            if disable_:
                acc.totp_disable(name)
                uri = ""
            else:
                uri = acc.totp_begin(name)
                user = acc.get(name)
                assert user is not None and user.totp_secret is not None
                rt.write("UPDATE svc_users SET totp_enabled = TRUE WHERE username = ?", [name])
            _audit(rt, "auth.mfa_change", name)
        finally:
            rt.close()
    emit({"user": name, "provisioning_uri": uri}, as_json, uri or f"second factor removed for {name}")


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``users`` to ``app``."""
    app.command()(serve)
    app.add_typer(users_app, name="users")
