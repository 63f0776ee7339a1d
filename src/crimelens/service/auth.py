"""Accounts, logins and server-side sessions (SECURITY.md SEC-01 to SEC-08).

* Passwords are hashed with argon2id and a per-user random salt (SEC-07) and must pass
  :mod:`crimelens.service.passwords` (SEC-06).
* After ``lockout_attempts`` consecutive failures an account is locked for ``lockout_minutes``
  or until an admin unlocks it (SEC-01). Unknown usernames are counted and locked the same
  way, and take the same time (a dummy hash is verified), so answers never tell whether a
  user exists (SEC-02).
* A session token is 256 random bits; only its SHA-256 is stored. Sessions expire after
  ``session_idle_minutes`` without use and ``session_absolute_hours`` after login (SEC-03), and
  logout, password change, disabling and admin resets revoke them server-side (SEC-04).
* Optional TOTP (RFC 6238) second factor, required for admins when configured; a code is
  accepted once (SEC-08).
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

import pyotp
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from crimelens.exceptions import CrimelensError, InputError
from crimelens.service import passwords
from crimelens.service.runtime import Runtime


class Role(enum.IntEnum):
    """Roles, ordered by privilege."""

    viewer = 1
    analyst = 2
    admin = 3

    @property
    def label(self) -> Literal["admin", "analyst", "viewer"]:
        """The role's name as the API spells it."""
        return _LABELS[self.value]


_LABELS: dict[int, Literal["admin", "analyst", "viewer"]] = {1: "viewer", 2: "analyst", 3: "admin"}


class AuthError(CrimelensError, PermissionError):
    """A login or token was refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


BAD_LOGIN = "invalid username or password"
LOCKED = "account locked after repeated failures; try again later or ask an administrator"
USER_FIELDS = ("username", "role", "password_hash", "disabled", "can_export", "sources", "failed",
               "locked_until", "totp_secret", "totp_enabled", "totp_last_step", "created_at",
               "password_changed_at")


@dataclass(frozen=True, slots=True)
class User:
    """One account row."""

    username: str
    role: Role
    password_hash: str
    disabled: bool
    can_export: bool
    sources: tuple[str, ...]
    failed: int
    locked_until: datetime | None
    totp_secret: str | None
    totp_enabled: bool
    totp_last_step: int | None
    created_at: datetime
    password_changed_at: datetime

    def public(self) -> dict[str, Any]:
        """What an admin may see of the account (never the hash or the TOTP secret)."""
        return {"username": self.username, "role": self.role.name, "disabled": self.disabled,
                "can_export": self.can_export, "sources": list(self.sources),
                "locked_until": self.locked_until, "totp_enabled": self.totp_enabled,
                "created_at": self.created_at}


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a request."""

    username: str
    role: Role
    can_export: bool
    sources: tuple[str, ...]
    token_hash: str


@dataclass(slots=True)
class _Session:
    username: str
    created_at: datetime
    last_seen: datetime
    persisted_seen: datetime
    revoked: bool = False


def token_hash(token: str) -> str:
    """SHA-256 of a session token (what the store keeps)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Accounts:
    """Users, logins and sessions kept in the store's ``svc_users`` and ``svc_sessions``."""

    TOUCH_EVERY = timedelta(seconds=60)

    def __init__(self, rt: Runtime) -> None:
        s = rt.settings
        self.rt = rt
        self.hasher = PasswordHasher(time_cost=s.argon2_time_cost, memory_cost=s.argon2_memory_kib,
                                     parallelism=1, type=Type.ID)
        self._dummy = self.hasher.hash(secrets.token_hex(16))
        self._sessions: dict[str, _Session] = {}
        self._unknown: dict[str, tuple[int, datetime | None]] = {}
        self._users: dict[str, User] = {}
        self._lock = threading.RLock()

    # -- users -------------------------------------------------------------------------------
    def get(self, username: str) -> User | None:
        """The account named ``username``, or None (cached: every account write goes through this class)."""
        hit = self._users.get(username)
        if hit is not None:
            return hit
        sql = f"SELECT {', '.join(USER_FIELDS)} FROM svc_users WHERE username = ?"  # noqa: S608 -- fixed columns
        rows = self.rt.query(sql, [username])
        user = _user(rows[0]) if rows else None
        if user is not None:
            self._users[username] = user
        return user

    def _w(self, sql: str, params: list[Any]) -> None:
        """Write through the service's writer; account writes drop the account cache."""
        self.rt.write(sql, params)
        if "svc_users" in sql:
            self._users.clear()

    def list(self) -> list[User]:
        """All accounts, by name."""
        return [_user(r) for r in self.rt.query(f"SELECT {', '.join(USER_FIELDS)} FROM svc_users ORDER BY 1")]  # noqa: S608 -- identifiers come from fixed column lists; values are bound parameters

    def create(self, username: str, role: Role, password: str, *, can_export: bool = False,
               sources: tuple[str, ...] = ()) -> User:
        """Create an account; the password must pass the policy."""
        if not username or len(username) > 64 or not username.replace("_", "").replace(".", "").replace(
                "-", "").isalnum():
            raise InputError("username: 1-64 letters, digits, '.', '_' or '-'")
        self._check_policy(password, username)
        now = self.rt.clock()
        with self.rt.write_lock:
            if self.get(username) is not None:
                raise InputError(f"user {username!r} already exists")
            self._w(
                "INSERT INTO svc_users (username, role, password_hash, can_export, sources, created_at, "
                "password_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [username, role.name, self.hasher.hash(passwords.normalise(password)), can_export,
                 ",".join(sources), now, now],
            )
        user = self.get(username)
        assert user is not None
        return user

    def update(self, username: str, *, role: Role | None = None, disabled: bool | None = None,
               can_export: bool | None = None, sources: tuple[str, ...] | None = None) -> User:
        """Change an account's role, status, export permission or allowed sources."""
        user = self._require(username)
        new = replace(user, role=role or user.role, disabled=user.disabled if disabled is None else disabled,
                      can_export=user.can_export if can_export is None else can_export,
                      sources=user.sources if sources is None else sources)
        self._w("UPDATE svc_users SET role = ?, disabled = ?, can_export = ?, sources = ? WHERE username = ?",
                      [new.role.name, new.disabled, new.can_export, ",".join(new.sources), username])
        if new.disabled or new.role != user.role:
            self.revoke_all(username)
        return new

    def set_password(self, username: str, password: str) -> None:
        """Set a new password (policy-checked) and revoke every session of the user (SEC-04)."""
        self._require(username)
        self._check_policy(password, username)
        self._w("UPDATE svc_users SET password_hash = ?, password_changed_at = ?, failed = 0, "
                      "locked_until = NULL WHERE username = ?",
                      [self.hasher.hash(passwords.normalise(password)), self.rt.clock(), username])
        self.revoke_all(username)

    def unlock(self, username: str) -> None:
        """Clear the failure count and lock of an account."""
        self._require(username)
        self._w("UPDATE svc_users SET failed = 0, locked_until = NULL WHERE username = ?", [username])
        with self._lock:
            self._unknown.pop(username, None)

    # -- login -------------------------------------------------------------------------------
    def authenticate(self, username: str, password: str, totp: str | None = None) -> User:
        """Check credentials (and the second factor); raise :class:`AuthError` when refused."""
        now = self.rt.clock()
        with self._lock:
            user = self.get(username)
            if user is None:
                return self._unknown_user(username, password, now)
            if user.locked_until is not None and user.locked_until > now:
                raise AuthError(LOCKED, 423)
            ok = self.verify_hash(user.password_hash, password)
            if not ok or user.disabled:
                self._fail(user, now)
                raise AuthError(BAD_LOGIN)
            if user.totp_enabled:
                if not totp:
                    raise AuthError("second factor required: send the current code as 'totp'")
                if not self.totp_ok(user, totp, now):
                    self._fail(user, now)
                    raise AuthError(BAD_LOGIN)
            elif user.role is Role.admin and self.rt.settings.totp_required_for_admins:
                raise AuthError("administrators must enrol a second factor first (crimelens users totp NAME)", 403)
            if user.failed or user.locked_until is not None:
                self._w("UPDATE svc_users SET failed = 0, locked_until = NULL WHERE username = ?", [username])
            if self.hasher.check_needs_rehash(user.password_hash):
                self._w("UPDATE svc_users SET password_hash = ? WHERE username = ?",
                              [self.hasher.hash(passwords.normalise(password)), username])
            return user

    def is_locked(self, username: str) -> bool:
        """True while the account (or unknown name) is locked."""
        now = self.rt.clock()
        user = self.get(username)
        if user is None:
            _, until = self._unknown.get(username, (0, None))
            return until is not None and until > now
        return user.locked_until is not None and user.locked_until > now

    def verify_hash(self, stored: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(stored, passwords.normalise(password)))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _fail(self, user: User, now: datetime) -> None:
        failed = (0 if user.locked_until is not None and user.locked_until <= now else user.failed) + 1
        lock = now + timedelta(minutes=self.rt.settings.lockout_minutes) \
            if failed >= self.rt.settings.lockout_attempts else None
        self._w("UPDATE svc_users SET failed = ?, locked_until = ? WHERE username = ?",
                      [0 if lock else failed, lock, user.username])
        if lock is not None:
            raise AuthError(LOCKED, 423)

    def _unknown_user(self, username: str, password: str, now: datetime) -> User:
        self.verify_hash(self._dummy, password)  # same work as a real check
        failed, until = self._unknown.get(username, (0, None))
        if until is not None and until > now:
            raise AuthError(LOCKED, 423)
        failed = (0 if until is not None else failed) + 1
        if len(self._unknown) > 10_000:
            self._unknown.clear()
        if failed >= self.rt.settings.lockout_attempts:
            self._unknown[username] = (0, now + timedelta(minutes=self.rt.settings.lockout_minutes))
            raise AuthError(LOCKED, 423)
        self._unknown[username] = (failed, None)
        raise AuthError(BAD_LOGIN)

    # -- TOTP ----------------------------------------------------------------------------------
    def totp_begin(self, username: str) -> str:
        """Start enrolment: store a new secret (not yet enforced) and return its otpauth:// URI."""
        self._require(username)
        secret = pyotp.random_base32()
        self._w("UPDATE svc_users SET totp_secret = ?, totp_enabled = FALSE WHERE username = ?",
                      [secret, username])
        return str(pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="crimelens"))

    def totp_confirm(self, username: str, code: str) -> None:
        """Enable the second factor once a code from the new secret is shown."""
        user = self._require(username)
        if not user.totp_secret or not self.totp_ok(user, code, self.rt.clock()):
            raise InputError("the code does not match; check the device clock and try again")
        self._w("UPDATE svc_users SET totp_enabled = TRUE WHERE username = ?", [username])

    def totp_disable(self, username: str) -> None:
        """Remove the second factor."""
        self._require(username)
        self._w("UPDATE svc_users SET totp_secret = NULL, totp_enabled = FALSE, totp_last_step = NULL "
                      "WHERE username = ?", [username])

    def totp_ok(self, user: User, code: str, now: datetime) -> bool:
        if not user.totp_secret or not code.isdigit():
            return False
        totp = pyotp.TOTP(user.totp_secret)
        step_now = int(now.timestamp()) // totp.interval
        for step in (step_now - 1, step_now, step_now + 1):  # one step of clock skew either way
            if secrets.compare_digest(totp.at(step * totp.interval), code):
                if user.totp_last_step is not None and step <= user.totp_last_step:
                    return False  # replayed (or older) code
                self._w("UPDATE svc_users SET totp_last_step = ? WHERE username = ?", [step, user.username])
                return True
        return False

    # -- sessions ------------------------------------------------------------------------------
    def issue(self, user: User) -> str:
        """A new session token for ``user``."""
        token = secrets.token_urlsafe(32)
        h, now = token_hash(token), self.rt.clock()
        self._w("INSERT INTO svc_sessions VALUES (?, ?, ?, ?, NULL)", [h, user.username, now, now])
        with self._lock:
            self._sessions[h] = _Session(user.username, now, now, now)
        return token

    def resolve_cached(self, token: str) -> Principal | None:
        """The caller behind ``token`` when that needs no database work, else None (then :meth:`resolve`).

        Lets the request path authenticate on the event loop: a live session held in memory
        whose last-seen time is not due to be persisted, of a cached, enabled account.
        """
        h, now = token_hash(token), self.rt.clock()
        s = self.rt.settings
        with self._lock:
            sess = self._sessions.get(h)
            user = self._users.get(sess.username) if sess is not None else None
            if (sess is None or sess.revoked or user is None or user.disabled
                    or now - sess.last_seen > timedelta(minutes=s.session_idle_minutes)
                    or now - sess.created_at > timedelta(hours=s.session_absolute_hours)
                    or now - sess.persisted_seen >= self.TOUCH_EVERY):
                return None
            sess.last_seen = now
        return Principal(user.username, user.role, user.can_export or user.role is Role.admin, user.sources, h)

    def resolve(self, token: str) -> Principal:
        """The caller behind ``token``; :class:`AuthError` when unknown, revoked or expired."""
        h, now, s = token_hash(token), self.rt.clock(), self.rt.settings
        with self._lock:
            sess = self._sessions.get(h) or self._load_session(h)
            if sess is None or sess.revoked:
                raise AuthError("not authenticated")
            idle = now - sess.last_seen > timedelta(minutes=s.session_idle_minutes)
            old = now - sess.created_at > timedelta(hours=s.session_absolute_hours)
            if idle or old:
                self._revoke(h, sess, now)
                raise AuthError("session expired")
            sess.last_seen = now
            persist = now - sess.persisted_seen >= self.TOUCH_EVERY
            if persist:
                sess.persisted_seen = now
        if persist:
            self._w("UPDATE svc_sessions SET last_seen = ? WHERE token_hash = ?", [now, h])
        user = self.get(sess.username)
        if user is None or user.disabled:
            raise AuthError("not authenticated")
        return Principal(user.username, user.role, user.can_export or user.role is Role.admin, user.sources, h)

    def revoke(self, token_hash_: str) -> None:
        """End one session (logout)."""
        with self._lock:
            sess = self._sessions.get(token_hash_) or self._load_session(token_hash_)
            if sess is not None:
                self._revoke(token_hash_, sess, self.rt.clock())

    def revoke_all(self, username: str) -> None:
        """End every session of ``username``."""
        now = self.rt.clock()
        with self._lock:
            for sess in self._sessions.values():
                if sess.username == username:
                    sess.revoked = True
            self._w("UPDATE svc_sessions SET revoked_at = ? WHERE username = ? AND revoked_at IS NULL",
                          [now, username])

    def _revoke(self, h: str, sess: _Session, now: datetime) -> None:
        sess.revoked = True
        self._w("UPDATE svc_sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL", [now, h])

    def _load_session(self, h: str) -> _Session | None:
        rows = self.rt.query("SELECT username, created_at, last_seen, revoked_at FROM svc_sessions "
                             "WHERE token_hash = ?", [h])
        if not rows:
            return None
        name, created, seen, revoked = rows[0]
        sess = _Session(name, created, seen, seen, revoked is not None)
        self._sessions[h] = sess
        return sess

    # -- helpers -------------------------------------------------------------------------------
    def _require(self, username: str) -> User:
        user = self.get(username)
        if user is None:
            raise InputError(f"no such user {username!r}")
        return user

    def _check_policy(self, password: str, username: str) -> None:
        bad = passwords.problems(password, username)
        if bad:
            raise InputError("; ".join(bad))


def _user(row: tuple[Any, ...]) -> User:
    d = dict(zip(USER_FIELDS, row, strict=True))
    d["role"] = Role[d["role"]]
    d["sources"] = tuple(x for x in str(d["sources"] or "").split(",") if x)
    return User(**d)
