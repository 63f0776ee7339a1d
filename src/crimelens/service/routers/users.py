"""``/users`` (admin): accounts, roles, unlock, password reset."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from crimelens.service.auth import Role
from crimelens.service.deps import Admin, Ctx, Svc
from crimelens.service.schemas import PasswordResetIn, UserIn, UserOut, UserPatch, errors

router = APIRouter(prefix="/users", tags=["users"], responses=errors(401, 403))


def _out(d: dict[str, object]) -> UserOut:
    lu, ca = d["locked_until"], d["created_at"]
    return UserOut(**{**d, "locked_until": lu.isoformat() if lu else None,  # type: ignore[attr-defined]
                      "created_at": ca.isoformat()})  # type: ignore[attr-defined]


@router.get("", response_model=list[UserOut], summary="All accounts")
def list_users(_: Admin, svc: Svc, ctx: Ctx) -> list[UserOut]:
    """Every account (never hashes or secrets)."""
    svc.audit.record(ctx, "admin.users_list", "ok")
    return [_out(u.public()) for u in svc.accounts.list()]


@router.post("", response_model=UserOut, status_code=201, summary="Create an account", responses=errors(400))
def create_user(body: UserIn, _: Admin, svc: Svc, ctx: Ctx) -> UserOut:
    """Create an account with a policy-checked password."""
    user = svc.accounts.create(body.username, Role[body.role], body.password, can_export=body.can_export,
                               sources=tuple(body.sources))
    svc.audit.record(ctx, "admin.user_create", "ok", object_id=body.username, detail=f"role={body.role}")
    return _out(user.public())


@router.patch("/{username}", response_model=UserOut, summary="Change role, status or permissions",
              responses=errors(404))
def patch_user(username: str, body: UserPatch, _: Admin, svc: Svc, ctx: Ctx) -> UserOut:
    """Role changes and disabling revoke the user's sessions."""
    if svc.accounts.get(username) is None:
        raise HTTPException(404, "no such user")
    user = svc.accounts.update(username, role=Role[body.role] if body.role else None, disabled=body.disabled,
                               can_export=body.can_export,
                               sources=tuple(body.sources) if body.sources is not None else None)
    svc.audit.record(ctx, "admin.user_update", "ok", object_id=username,
                     detail=body.model_dump_json(exclude_none=True))
    return _out(user.public())


@router.post("/{username}/unlock", status_code=204, summary="Unlock an account", responses=errors(404))
def unlock(username: str, _: Admin, svc: Svc, ctx: Ctx) -> Response:
    """Clear failed logins and the lock."""
    if svc.accounts.get(username) is None:
        raise HTTPException(404, "no such user")
    svc.accounts.unlock(username)
    svc.audit.record(ctx, "admin.user_unlock", "ok", object_id=username)
    return Response(status_code=204)


@router.post("/{username}/password", status_code=204, summary="Reset a password", responses=errors(400, 404))
def reset_password(username: str, body: PasswordResetIn, _: Admin, svc: Svc, ctx: Ctx) -> Response:
    """Set a new password; every session of the user is revoked."""
    if svc.accounts.get(username) is None:
        raise HTTPException(404, "no such user")
    svc.accounts.set_password(username, body.new_password)
    svc.audit.record(ctx, "admin.password_reset", "ok", object_id=username)
    return Response(status_code=204)
