"""``/auth``: login, logout, the caller's account, password change, TOTP enrolment."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response

from crimelens.exceptions import InputError
from crimelens.service.audit import AuditContext
from crimelens.service.auth import AuthError
from crimelens.service.deps import Ctx, Limit, Svc, Viewer
from crimelens.service.schemas import (
    LoginIn,
    MeOut,
    PasswordChangeIn,
    TokenOut,
    TotpBeginOut,
    TotpCodeIn,
    errors,
)

router = APIRouter(prefix="/auth", tags=["auth"])


def _who(svc: Svc, name: str) -> str:
    """The name to audit: an unknown login name may be a mistyped password, so only its hash."""
    if svc.accounts.get(name) is not None:
        return name
    return "unknown:" + hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()[:12]


@router.post("/login", response_model=TokenOut, summary="Log in (anonymous)",
             responses=errors(401, 403, 423, 429), dependencies=[Depends(Limit("login", per="address"))])
def login(body: LoginIn, svc: Svc, ctx: Ctx) -> TokenOut:
    """Exchange a username and password (and TOTP code when enrolled) for a bearer token."""
    audit = AuditContext(_who(svc, body.username), ctx.source_ip, ctx.request_id)
    try:
        user = svc.accounts.authenticate(body.username, body.password, body.totp)
    except AuthError as exc:
        event = "auth.lockout" if exc.status == 423 else "auth.login"
        svc.audit.record(audit, event, "denied", component="auth", detail=str(exc)[:80])
        raise HTTPException(exc.status, str(exc)) from exc
    svc.audit.record(audit, "auth.login", "ok", component="auth")
    return TokenOut(access_token=svc.accounts.issue(user), role=user.role.label,
                    expires_idle_minutes=svc.rt.settings.session_idle_minutes)


@router.post("/logout", status_code=204, summary="Log out (revokes the token)", responses=errors(401, 403))
def logout(who: Viewer, svc: Svc, ctx: Ctx) -> Response:
    """Revoke the caller's token server-side."""
    svc.accounts.revoke(who.token_hash)
    svc.audit.record(ctx, "auth.logout", "ok", component="auth")
    return Response(status_code=204)


@router.get("/me", response_model=MeOut, summary="The caller's account", responses=errors(401, 403))
def me(who: Viewer, svc: Svc) -> MeOut:
    """Role, export permission, allowed sources and second-factor status."""
    user = svc.accounts.get(who.username)
    return MeOut(username=who.username, role=who.role.label, can_export=who.can_export,
                 sources=list(who.sources), totp_enabled=bool(user and user.totp_enabled))


@router.post("/password", status_code=204, summary="Change one's password (revokes every session)",
             responses=errors(401, 403))
def change_password(body: PasswordChangeIn, who: Viewer, svc: Svc, ctx: Ctx) -> Response:
    """Check the current password, set the new one, revoke all of the caller's tokens."""
    user = svc.accounts.get(who.username)
    if user is None or not svc.accounts.verify_hash(user.password_hash, body.current_password):
        svc.audit.record(ctx, "auth.password_change", "denied", component="auth")
        raise HTTPException(403, "current password is wrong")
    svc.accounts.set_password(who.username, body.new_password)
    svc.audit.record(ctx, "auth.password_change", "ok", component="auth", object_id=who.username)
    return Response(status_code=204)


@router.post("/totp/setup", response_model=TotpBeginOut, summary="Start TOTP enrolment",
             responses=errors(401, 403))
def totp_setup(who: Viewer, svc: Svc, ctx: Ctx) -> TotpBeginOut:
    """A new secret as an otpauth:// URI; enforced once confirmed with a code."""
    uri = svc.accounts.totp_begin(who.username)
    svc.audit.record(ctx, "auth.mfa_setup", "ok", component="auth", object_id=who.username)
    return TotpBeginOut(provisioning_uri=uri)


@router.post("/totp/enable", status_code=204, summary="Confirm TOTP enrolment", responses=errors(401, 403))
def totp_enable(body: TotpCodeIn, who: Viewer, svc: Svc, ctx: Ctx) -> Response:
    """Enable the second factor with a current code."""
    svc.accounts.totp_confirm(who.username, body.code)
    svc.audit.record(ctx, "auth.mfa_enable", "ok", component="auth", object_id=who.username)
    return Response(status_code=204)


@router.post("/totp/disable", status_code=204, summary="Remove one's second factor", responses=errors(401, 403))
def totp_disable(body: Annotated[TotpCodeIn, "a current code"], who: Viewer, svc: Svc, ctx: Ctx) -> Response:
    """Remove the second factor (needs a current code)."""
    user = svc.accounts.get(who.username)
    if user is None or not user.totp_enabled or not svc.accounts.totp_ok(user, body.code, svc.rt.clock()):
        raise InputError("the code does not match")
    svc.accounts.totp_disable(who.username)
    svc.audit.record(ctx, "auth.mfa_disable", "ok", component="auth", object_id=who.username)
    return Response(status_code=204)
