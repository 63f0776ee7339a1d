"""Authentication and sessions: SECURITY.md SEC-01 to SEC-08."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from crimelens.service import passwords
from tests.service.conftest import PASSWORDS, Env, make_env

LOGIN = "/api/v1/auth/login"


def _body(r) -> dict:  # type: ignore[no-untyped-def]
    d = dict(r.json())
    d.pop("request_id", None)
    return d


def test_login_returns_bearer_token(env: Env) -> None:
    r = env.client.post(LOGIN, json={"username": "analyst", "password": PASSWORDS["analyst"]})
    assert r.status_code == 200
    assert r.json()["token_type"] == "bearer" and len(r.json()["access_token"]) >= 40
    me = env.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.json()["username"] == "analyst" and me.json()["role"] == "analyst"


def test_sec01_lockout_after_five_failures_then_expiry_and_admin_unlock(env: Env) -> None:
    bad = {"username": "viewer", "password": "wrong password here"}
    codes = [env.client.post(LOGIN, json=bad).status_code for _ in range(5)]
    assert codes[:4] == [401] * 4 and codes[4] in (401, 423)
    good = {"username": "viewer", "password": PASSWORDS["viewer"]}
    assert env.client.post(LOGIN, json=good).status_code in (401, 423)  # 6th, right password: refused
    env.clock.advance(minutes=29)
    assert env.client.post(LOGIN, json=good).status_code in (401, 423)
    env.clock.advance(minutes=2)  # lock (30 min) has expired
    assert env.client.post(LOGIN, json=good).status_code == 200
    for _ in range(5):
        env.client.post(LOGIN, json=bad)
    assert env.client.post(LOGIN, json=good).status_code in (401, 423)
    admin = env.auth("admin")
    assert env.client.post("/api/v1/users/viewer/unlock", headers=admin).status_code == 204
    assert env.client.post(LOGIN, json=good).status_code == 200


def test_sec02_no_user_enumeration(env: Env) -> None:
    unknown = env.client.post(LOGIN, json={"username": "nobody-here", "password": "some password 123"})
    wrong = env.client.post(LOGIN, json={"username": "analyst", "password": "some password 123"})
    assert unknown.status_code == wrong.status_code == 401
    assert _body(unknown) == _body(wrong)
    # unknown names lock exactly like real ones, so a lock does not reveal an account either
    unknown_codes = [env.client.post(LOGIN, json={"username": "ghost", "password": "x" * 12}).status_code
                     for _ in range(6)]
    real_codes = [env.client.post(LOGIN, json={"username": "viewer", "password": "x" * 12}).status_code
                  for _ in range(6)]
    assert unknown_codes == real_codes


def test_sec03_idle_expiry_at_29_and_31_minutes(env: Env) -> None:
    h = env.auth("viewer")
    env.clock.advance(minutes=29)
    assert env.client.get("/api/v1/auth/me", headers=h).status_code == 200
    env.clock.advance(minutes=31)
    assert env.client.get("/api/v1/auth/me", headers=h).status_code == 401


@pytest.fixture
def short_env(template_store: Path, tmp_path: Path) -> Iterator[Env]:
    yield from make_env(template_store, tmp_path, session_absolute_hours=1.0)


def test_sec03_absolute_lifetime(short_env: Env) -> None:
    h = short_env.auth("viewer")
    for _ in range(3):  # active every 20 minutes: never idle
        short_env.clock.advance(minutes=20)
        assert short_env.client.get("/api/v1/auth/me", headers=h).status_code == 200
    short_env.clock.advance(minutes=1)
    assert short_env.client.get("/api/v1/auth/me", headers=h).status_code == 401


def test_sec04_logout_revokes_token(env: Env) -> None:
    h = env.auth("viewer")
    assert env.client.post("/api/v1/auth/logout", headers=h).status_code == 204
    assert env.client.get("/api/v1/auth/me", headers=h).status_code == 401


def test_sec04_password_change_revokes_every_token(env: Env) -> None:
    h1, h2 = env.auth("analyst"), env.auth("analyst")
    r = env.client.post("/api/v1/auth/password", headers=h1,
                        json={"current_password": PASSWORDS["analyst"], "new_password": "a brand new passphrase 7"})
    assert r.status_code == 204
    assert env.client.get("/api/v1/auth/me", headers=h1).status_code == 401
    assert env.client.get("/api/v1/auth/me", headers=h2).status_code == 401
    ok = env.client.post(LOGIN, json={"username": "analyst", "password": "a brand new passphrase 7"})
    assert ok.status_code == 200


def test_sec04_admin_reset_and_disable_revoke_tokens(env: Env) -> None:
    admin, h = env.auth("admin"), env.auth("viewer")
    assert env.client.post("/api/v1/users/viewer/password", headers=admin,
                           json={"new_password": "reset by the admin 99"}).status_code == 204
    assert env.client.get("/api/v1/auth/me", headers=h).status_code == 401
    h = {"Authorization": "Bearer " + env.client.post(LOGIN, json={
        "username": "viewer", "password": "reset by the admin 99"}).json()["access_token"]}
    assert env.client.patch("/api/v1/users/viewer", headers=admin, json={"disabled": True}).status_code == 200
    assert env.client.get("/api/v1/auth/me", headers=h).status_code == 401


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=12, max_size=128))
@example("ABCDEF\r\r\r\r\x85\u2028")  # an alphabet run padded with whitespace: refused as a run
def test_sec06_long_passwords_have_no_composition_rules(pw: str) -> None:
    norm = passwords.normalise(pw)
    probs = passwords.problems(pw)
    if passwords.MIN_LENGTH <= len(norm) <= passwords.MAX_LENGTH and len(set("".join(norm.lower().split()))) > 2:
        assert not any("characters" in p for p in probs)
        # the only refusals left are the list, runs and the username: never a composition rule
        allowed = ("common passwords", "repeated character or a keyboard/digit run", "username")
        assert all(any(a in p for a in allowed) for p in probs), probs


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=0, max_size=11))
def test_sec06_short_passwords_refused(pw: str) -> None:
    if len(passwords.normalise(pw)) < 12:
        assert passwords.problems(pw)


@settings(max_examples=20, deadline=None)
@given(st.text(alphabet="abcdefghij klmnop", min_size=129, max_size=300))
def test_sec06_over_128_refused(pw: str) -> None:
    assert any("at most" in p for p in passwords.problems(pw))


@pytest.mark.parametrize("pw", ["password1234", "Password12345", "qwerty123456", "123456789012", "iloveyou1234",
                                "aaaaaaaaaaaaaa", "correct horse battery staple"])
def test_sec06_common_passwords_refused(pw: str) -> None:
    assert passwords.problems(pw), pw


def test_sec06_policy_enforced_by_the_api(env: Env) -> None:
    admin = env.auth("admin")
    for bad in ("short", "password1234", "x" * 129):
        body = {"username": "new1", "role": "viewer", "password": bad}
        r = env.client.post("/api/v1/users", headers=admin, json=body)
        assert r.status_code == 422
    ok = env.client.post("/api/v1/users", headers=admin,
                         json={"username": "new1", "role": "viewer", "password": "all lower case is fine"})
    assert ok.status_code == 201


def test_sec07_argon2id_with_per_user_salt(env: Env) -> None:
    admin = env.auth("admin")
    for name in ("twin1", "twin2"):
        env.client.post("/api/v1/users", headers=admin,
                        json={"username": name, "role": "viewer", "password": "the very same passphrase"})
    rt = env.app.state.svc.rt
    h1, h2 = (rt.query("SELECT password_hash FROM svc_users WHERE username = ?", [n])[0][0] for n in ("twin1", "twin2"))
    assert h1.startswith("$argon2id$") and h2.startswith("$argon2id$") and h1 != h2


def test_sec08_totp_required_once_enrolled_and_replay_refused(env: Env) -> None:
    h = env.auth("analyst")
    uri = env.client.post("/api/v1/auth/totp/setup", headers=h).json()["provisioning_uri"]
    totp = pyotp.parse_uri(uri)
    code = totp.at(env.clock.now)
    assert env.client.post("/api/v1/auth/totp/enable", headers=h, json={"code": code}).status_code == 204
    env.clock.advance(seconds=30)
    creds = {"username": "analyst", "password": PASSWORDS["analyst"]}
    no_code = env.client.post(LOGIN, json=creds)
    assert no_code.status_code == 401 and "access_token" not in no_code.json()
    code = totp.at(env.clock.now)
    assert env.client.post(LOGIN, json={**creds, "totp": code}).status_code == 200
    replay = env.client.post(LOGIN, json={**creds, "totp": code})
    assert replay.status_code == 401 and "access_token" not in replay.json()


@pytest.fixture
def mfa_env(template_store: Path, tmp_path: Path) -> Iterator[Env]:
    yield from make_env(template_store, tmp_path, totp_required_for_admins=True)


def test_sec08_required_for_admins_when_enabled(mfa_env: Env) -> None:
    r = mfa_env.client.post(LOGIN, json={"username": "admin", "password": PASSWORDS["admin"]})
    assert r.status_code == 403 and "access_token" not in r.json()
    assert mfa_env.client.post(LOGIN, json={"username": "analyst", "password": PASSWORDS["analyst"]}).status_code == 200
