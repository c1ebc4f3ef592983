"""The ``/api/v1/auth`` routes: login, logout, whoami, users and tokens (docs/security.md).

Mounted by the app through :func:`warehouse.server.auth.auth_router`. Users are managed by
admins; any caller may list, make and revoke their own tokens (never with more scope than
the credential they call with), which is what ``warehouse users|tokens --url http://...``
does against a served warehouse.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

import pandas as pd
from fastapi import APIRouter, Body, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool

from warehouse import accounts
from warehouse.accounts.sessions import SESSION_LIFETIME
from warehouse.server.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    _check_csrf,
    auth_state,
    public,
    require,
)

PREFIX = "/api/v1/auth"
# Module-level aliases: with postponed annotations FastAPI resolves them in module globals.
Reader = Annotated[Principal, Depends(require("read"))]
Admin = Annotated[Principal, Depends(require("admin"))]
_FORM = ("application/x-www-form-urlencoded", "multipart/form-data")


class Login(BaseModel):
    """Credentials (JSON body, or the same fields in a form)."""

    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Literal["viewer", "editor", "admin"]
    password: str = Field(min_length=8, max_length=1024)


class NewPassword(BaseModel):
    password: str = Field(min_length=8, max_length=1024)


class TokenRequest(BaseModel):
    scope: Literal["read", "write", "admin"]
    user: str | None = Field(None, max_length=64, description="default: the caller")
    expires: str | None = Field("90d", max_length=20, description="'30d', '12h' or 'never'")
    name: str | None = Field(None, max_length=100)


def _iso(value) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def _plain(value):
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value  # numpy scalars


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: _plain(v) for k, v in record.items()}
            for record in frame.to_dict(orient="records")]


async def _login_fields(request: Request) -> Login:
    if request.headers.get("content-type", "").startswith(_FORM):
        form = await request.form()
        data = {k: form.get(k) for k in ("name", "password") if isinstance(form.get(k), str)}
    else:
        try:
            data = await request.json()
        except ValueError:
            raise HTTPException(400, "the body must be JSON {name, password} or a form") from None
    try:
        return Login.model_validate(data)
    except PydanticValidationError as exc:
        shown = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
                          for e in exc.errors()[:3])
        raise HTTPException(422, f"invalid login: {shown}") from None


def _same_origin(request: Request) -> None:
    """Refuse a login posted by another site's page (login CSRF: it would sign the browser
    in as the attacker). Browsers send Origin with every cross-site POST; clients that are
    not browsers send none and are not affected."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    if origin == "null" or urlsplit(origin).netloc.lower() != request.headers.get(
            "host", "").lower():
        raise HTTPException(403, f"login from another site ({origin}) refused")


def _set_cookies(response: Response, request: Request, session: accounts.NewSession) -> None:
    secure = request.url.scheme == "https"
    seconds = int(SESSION_LIFETIME.total_seconds())
    response.set_cookie(SESSION_COOKIE, session.session_id, max_age=seconds, path="/",
                        httponly=True, samesite="lax", secure=secure)
    response.set_cookie(CSRF_COOKIE, session.csrf_token, max_age=seconds, path="/",
                        httponly=False, samesite="lax", secure=secure)


def router() -> APIRouter:
    """A fresh router (each app gets its own)."""
    api = APIRouter(prefix=PREFIX, tags=["auth"])

    @api.post("/login", summary="Log in: a session cookie and its CSRF token",
              dependencies=[Depends(public)],
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": Login.model_json_schema()},
                  "application/x-www-form-urlencoded": {"schema": Login.model_json_schema()}}}})
    async def login(request: Request, response: Response) -> dict:
        _same_origin(request)
        fields = await _login_fields(request)
        auth = auth_state(request)
        address = request.client.host if request.client else None
        wait = auth.limiter.retry_after(fields.name, address)
        if wait:
            raise HTTPException(429, f"too many failed logins: try again in {wait} s",
                                headers={"Retry-After": str(wait)})
        who = await run_in_threadpool(accounts.check_login, auth.wh, fields.name, fields.password)
        if who is None:
            auth.limiter.failed(fields.name, address)
            raise HTTPException(401, "wrong user name or password")
        auth.limiter.succeeded(fields.name)
        session = await run_in_threadpool(accounts.open_session, auth.wh, who.name)
        _set_cookies(response, request, session)
        return {"name": who.name, "role": who.role, "scopes": sorted(who.scopes),
                "csrf_token": session.csrf_token, "expires_at": _iso(session.expires_at)}

    @api.post("/logout", status_code=204, summary="End the session of the cookie sent",
              dependencies=[Depends(public)])
    async def logout(request: Request) -> Response:
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            await _check_csrf(request)  # else a cross-site page could log the user out
            await run_in_threadpool(accounts.close_session, auth_state(request).wh, session_id)
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    @api.get("/whoami", summary="The caller: name, role, scopes and how it authenticated")
    async def whoami(principal: Reader) -> dict:
        return {"name": principal.name, "role": principal.role,
                "scopes": sorted(principal.scopes), "via": principal.via}

    # -- users (admin) ----------------------------------------------------------------------
    @api.get("/users", summary="Users and their active tokens and sessions")
    async def users_list(request: Request, _: Admin) -> list[dict]:
        return _records(await run_in_threadpool(accounts.list_users, auth_state(request).wh))

    @api.post("/users", status_code=201, summary="Add a user")
    async def users_add(request: Request, body: NewUser, _: Admin) -> dict:
        auth = auth_state(request)
        await run_in_threadpool(accounts.add_user, auth.wh, body.name, body.role, body.password)
        auth.users_exist()  # open mode ends with the first user
        return {"name": body.name, "role": body.role}

    @api.delete("/users/{name}", status_code=204, summary="Remove a user, its tokens and sessions")
    async def users_remove(request: Request, name: str, _: Admin) -> Response:
        await run_in_threadpool(accounts.remove_user, auth_state(request).wh, name)
        return Response(status_code=204)

    @api.put("/users/{name}/password", status_code=204,
             summary="Set a user's password (ends the user's sessions)")
    async def users_passwd(request: Request, name: str, body: NewPassword,
                           _: Admin) -> Response:
        await run_in_threadpool(accounts.set_password, auth_state(request).wh, name, body.password)
        return Response(status_code=204)

    # -- tokens (own; any user's with admin) --------------------------------------------------
    @api.get("/tokens", summary="API tokens (the caller's; any user's or all for an admin)")
    async def tokens_list(request: Request, principal: Reader,
                          user: str | None = None) -> list[dict]:
        if "admin" not in principal.scopes:
            if user not in (None, principal.name):
                raise HTTPException(403, "only an admin may list another user's tokens")
            user = principal.name
        return _records(await run_in_threadpool(accounts.list_tokens, auth_state(request).wh,
                                                user))

    @api.post("/tokens", status_code=201, summary="Make an API token (shown once)")
    async def tokens_create(request: Request, body: Annotated[TokenRequest, Body()],
                            principal: Reader) -> dict:
        user = body.user or principal.name
        if user != principal.name and "admin" not in principal.scopes:
            raise HTTPException(403, "only an admin may make tokens for another user")
        if body.scope not in principal.scopes:
            raise HTTPException(403, f"a credential without the {body.scope!r} scope cannot "
                                     f"make a token that has it")
        token = await run_in_threadpool(lambda: accounts.create_token(
            auth_state(request).wh, user, body.scope, expires=body.expires, name=body.name))
        return {"token_id": token.token_id, "token": token.token, "user": token.user,
                "scope": token.scope, "name": token.name, "expires_at": _iso(token.expires_at)}

    @api.delete("/tokens/{token_id}", status_code=204, summary="Revoke a token")
    async def tokens_revoke(request: Request, token_id: str,
                            principal: Reader) -> Response:
        wh = auth_state(request).wh
        owner = await run_in_threadpool(accounts.token_owner, wh, token_id)
        if owner != principal.name and "admin" not in principal.scopes:
            # The same answer as for no such token: ids of others' tokens are not confirmed.
            raise HTTPException(404, f"no token with id {token_id!r}")
        await run_in_threadpool(accounts.revoke_token, wh, token_id)
        return Response(status_code=204)

    return api
