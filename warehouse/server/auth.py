"""Who is asking: users, roles, API tokens and browser sessions (issue 11; docs/security.md).

CONTRACT used by the HTTP API modules (keep these names stable):

- ``ROLES``: ``("viewer", "editor", "admin")``; ``SCOPES``: ``("read", "write", "admin")``.
  viewer -> read; editor -> read, write; admin -> read, write, admin.
- ``Principal``: the authenticated caller (``name``, ``role``, ``scopes``, ``via``).
- ``require(scope)``: a FastAPI dependency factory. ``Depends(require("read"))`` returns the
  ``Principal`` or raises ``HTTPException`` 401 (no/expired/revoked credentials) or 403
  (authenticated but lacking the scope, or a cookie-authenticated change without its CSRF
  token). Routes never check roles any other way.
- ``auth_router()``: an ``APIRouter`` with ``/api/v1/auth/...``: login, logout, whoami, and
  the users and tokens routes the CLI uses against a served warehouse.

A request is authenticated by ``Authorization: Bearer <token>`` or else by the session
cookie. The warehouse is ``app.state.warehouse``; ``app.state.listen_host`` (set by
``warehouse serve``) is the address served on, else each connection's local address counts.
Open mode: while no user exists, a caller reaching a loopback address without credentials
is an anonymous admin (and :func:`serving_allowed` refuses any other address). A "no users"
answer is reused for :attr:`AuthState.NO_USERS_TTL` seconds (no query, no threadpool hop per
request); the first user added through the server ends open mode at once. A token or session
remembered by :mod:`warehouse.accounts.cache` is checked on the event loop too; one that
names nobody is answered 401 and counted against the client's address
(:class:`~warehouse.accounts.FailureLimiter`: too many, and the address gets 429 without a
lookup).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from warehouse import accounts
from warehouse.accounts import cache as credential_cache
from warehouse.accounts.roles import ROLE_SCOPES, ROLES, SCOPES
from warehouse.accounts.sessions import csrf_matches

log = logging.getLogger("warehouse.server.auth")

__all__ = ["CSRF_COOKIE", "CSRF_FIELD", "CSRF_HEADER", "ROLES", "ROLE_SCOPES", "SCOPES",
           "SESSION_COOKIE", "AuthState", "Principal", "auth_router", "auth_state", "authenticate",
           "authenticate_connection",
           "is_loopback", "public", "require", "required_scope", "route_scopes", "serving_allowed"]

SESSION_COOKIE = "wh_session"  # HttpOnly: page scripts never see the session id
CSRF_COOKIE = "wh_csrf"  # readable by the page's scripts, which echo it in CSRF_HEADER
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"  # the same token in a form field, for plain HTML forms
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A request that came through a proxy is not "local" whatever address it arrived on.
_FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. ``via``: ``token``, ``session`` or ``open`` (no users yet,
    loopback)."""

    name: str
    role: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    via: str = "token"


ANONYMOUS_ADMIN = Principal("anonymous", "admin", ROLE_SCOPES["admin"], via="open")


class AuthState:
    """The authentication state of one app: its warehouse, the failed-login limiter, the
    failed-credential limiter (per client address), and whether any user exists
    (remembered once true: open mode never comes back while the server runs, even if every
    user is removed)."""

    #: How long an open-mode request may rely on an earlier "no users" answer. Asking costs
    #: a query (~2-4 ms on DuckDB, most of the server's 5 ms overhead budget) on every
    #: request; a user added through this server ends open mode at once (the users route
    #: asks afresh), one added by another process directly in a shared PostgreSQL database
    #: within this time — the same delay as a token revoked that way (accounts.cache).
    NO_USERS_TTL = credential_cache.TTL

    def __init__(self, wh, listen_host: str | None = None,
                 limiter: accounts.LoginLimiter | None = None,
                 failures: accounts.FailureLimiter | None = None):
        self.wh = wh
        self.listen_host = listen_host
        self.limiter = limiter if limiter is not None else accounts.LoginLimiter()
        self.failures = failures if failures is not None else accounts.FailureLimiter()
        self._users_exist = False
        self._no_users_at: float | None = None  # time.monotonic() of the last "none" asked

    def users_exist(self, max_age: float = 0.0) -> bool:
        """Whether any user exists: a query until the answer is yes (then remembered for
        good). ``max_age``: reuse a "no" answer asked at most this many seconds ago."""
        if self._users_exist:
            return True
        if max_age > 0 and self._no_users_known(max_age):
            return False
        asked = time.monotonic()
        if accounts.user_count(self.wh) > 0:
            self._users_exist = True  # only ever set, never reset: a stale "no" cannot win
        else:
            self._no_users_at = asked
        return self._users_exist

    def _no_users_known(self, max_age: float) -> bool:
        """Whether a "no users" answer at most ``max_age`` seconds old is at hand (no query)."""
        asked = self._no_users_at
        return (not self._users_exist and asked is not None
                and time.monotonic() - asked <= max_age)

    def is_local(self, request: Request) -> bool:
        """Whether ``request`` reached a loopback address directly from a local program: not
        through a proxy, not under a foreign host name (DNS rebinding: evil.example resolved
        to 127.0.0.1), and not sent by another site's page in a browser (which needs no
        cookie to forge a request to an open server)."""
        headers = request.headers
        if any(headers.get(name) for name in _FORWARDING_HEADERS):
            return False
        host = headers.get("host", "")
        if not is_loopback(urlsplit("//" + host).hostname):
            return False
        origin = headers.get("origin")
        if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
            return False
        if headers.get("sec-fetch-site") == "cross-site":
            return False
        server = request.scope.get("server") or (None, None)
        return is_loopback(self.listen_host or server[0])


def auth_state(request: Request) -> AuthState:
    """The app's :class:`AuthState`, made on first use from ``app.state``."""
    state = request.app.state
    auth = getattr(state, "auth", None)
    if auth is None:
        auth = state.auth = AuthState(state.warehouse, getattr(state, "listen_host", None))
    return auth


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serving_allowed(wh, host: str) -> str | None:
    """Why serving ``wh`` on ``host`` must be refused, or None if it may go ahead.

    Without any user, only a loopback address may be served (open mode: every local caller
    is an anonymous admin; this logs a warning saying so).
    """
    if accounts.user_count(wh) > 0:
        return None
    if is_loopback(host):
        log.warning("open mode: no users exist, so every caller on %s is an anonymous admin; "
                    "add one with `warehouse users add NAME --role admin` to require logins",
                    host)
        return None
    return (f"refusing to serve on {host}: no users exist, so anyone who can reach it would be "
            f"an anonymous admin. Add a user first (`warehouse users add NAME --role admin`) "
            f"or serve on 127.0.0.1")


# -- authenticating a request ----------------------------------------------------------------
def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="warehouse"'})


def _presented(request: HTTPConnection) -> tuple[str, str] | None:
    """The credential sent: ``("token", ...)`` from ``Authorization: Bearer``, else
    ``("session", ...)`` from the session cookie, else None (401 for another header)."""
    header = request.headers.get("authorization")
    if header is not None:
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise _unauthorized("the Authorization header must be 'Bearer <token>'")
        return "token", token.strip()
    session_id = request.cookies.get(SESSION_COOKIE)
    return ("session", session_id) if session_id else None


def _by_credential(auth: AuthState, request: HTTPConnection, kind: str, secret: str, *,
                   from_memory: bool) -> Principal | None:
    """The caller a token or session names, or 401. ``from_memory``: decide without the
    database, None when it must be asked. A credential the database finds naming nobody
    counts against the client's address; an address over its limit gets 429 instead of a
    lookup (a remembered answer, good or bad, costs nothing and is still given)."""
    address = request.client.host if request.client else None
    if kind == "token":
        remembered, lookup = accounts.remembered_token, accounts.authenticate_token
    else:
        remembered, lookup = accounts.remembered_session, accounts.session_identity
    try:
        if from_memory:
            who = remembered(auth.wh, secret)
            if who is None:
                _refuse_if_failing(auth, address)
                return None
        else:
            _refuse_if_failing(auth, address)
            who = lookup(auth.wh, secret)
    except accounts.CredentialsError as exc:
        if not from_memory:
            auth.failures.failed(address)
        raise _unauthorized(exc.reason if kind == "token" else f"{exc.reason}: log in again"
                            ) from None
    return Principal(who.name, who.role, who.scopes, via=kind)


def _refuse_if_failing(auth: AuthState, address: str | None) -> None:
    wait = auth.failures.retry_after(address)
    if wait is not None:
        raise HTTPException(429, f"too many failed credentials from this address: try again "
                                 f"in {wait} s", headers={"Retry-After": str(wait)})


def _authenticate(auth: AuthState, request: HTTPConnection) -> Principal:
    """The caller by bearer token, else session cookie, else open mode; 401 otherwise.
    Blocking (database reads): run in the threadpool."""
    credential = _presented(request)
    if credential is not None:
        return _by_credential(auth, request, *credential, from_memory=False)
    if auth.is_local(request) and not auth.users_exist(max_age=auth.NO_USERS_TTL):
        return ANONYMOUS_ADMIN
    raise _no_credentials()


def _no_credentials() -> HTTPException:
    return _unauthorized("authentication required: an API token (Authorization: Bearer ...) "
                         "or a session (POST /api/v1/auth/login)")


def _at_hand(auth: AuthState, request: HTTPConnection) -> Principal | None:
    """The answer :func:`_authenticate` would give, when memory decides it (a remembered
    token or session, a remembered "no users" for open mode, users known to exist and no
    credential sent): no query, so no round trip into the threadpool (~1 ms, more on a
    loaded machine). None when the database must be asked."""
    credential = _presented(request)
    if credential is not None:
        return _by_credential(auth, request, *credential, from_memory=True)
    if auth._users_exist:
        raise _no_credentials()
    if auth._no_users_known(auth.NO_USERS_TTL) and auth.is_local(request):
        return ANONYMOUS_ADMIN
    return None


async def _check_csrf(request: Request) -> None:
    """A state-changing request authenticated by cookie must carry the session's CSRF token
    (header, or form field): a cross-site page can make the browser send the cookie but
    cannot read the token."""
    presented = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if not presented and content_type.startswith(("application/x-www-form-urlencoded",
                                                  "multipart/form-data")):
        form = await request.form()  # cached by Starlette: the route reads the same form
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not csrf_matches(request.cookies.get(SESSION_COOKIE, ""), presented):
        raise HTTPException(403, f"CSRF token missing or wrong: send the {CSRF_HEADER} header "
                                 f"(or the {CSRF_FIELD} form field) given at login")


async def authenticate(request: Request) -> Principal:
    """The caller of ``request`` (401 if nobody; 403 for a cookie change without CSRF)."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    auth = auth_state(request)
    principal = _at_hand(auth, request)
    if principal is None:
        principal = await run_in_threadpool(_authenticate, auth, request)
    if principal.via == "session" and request.method not in SAFE_METHODS:
        await _check_csrf(request)
    request.state.principal = principal
    return principal


async def authenticate_connection(connection: HTTPConnection) -> Principal:
    """The caller of an HTTP request or a WebSocket (401 if nobody): bearer token, session
    cookie or open mode, by the same rules as :func:`authenticate`. It neither checks CSRF
    (a WebSocket has no method; browsers send Origin there, which the caller checks) nor
    caches on ``connection.state``: a long-lived socket asks again to see revocations."""
    auth = auth_state(connection)
    principal = _at_hand(auth, connection)
    if principal is None:
        principal = await run_in_threadpool(_authenticate, auth, connection)
    return principal


def require(scope: str):
    """FastAPI dependency: the caller, if it holds ``scope`` (401/403 otherwise)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request)
        if scope not in principal.scopes:
            raise HTTPException(403, f"{principal.name!r} ({principal.role}, via "
                                     f"{principal.via}) lacks the {scope!r} scope this needs")
        return principal

    dependency.required_scope = scope  # read by required_scope() (permission tests, docs)
    dependency.__name__ = f"require_{scope}"
    return dependency


def public() -> None:
    """FastAPI dependency marking a route as open to everyone on purpose (a login page):
    ``dependencies=[Depends(public)]``. The permission tests fail on any route that has
    neither this nor ``require``."""
    return None


public.required_scope = "public"


def required_scope(route) -> str | None:
    """The scope a route requires (the strongest ``require`` among its dependencies),
    ``"public"`` for a route marked :func:`public`, or None for a route with neither."""
    found: list[str] = []
    stack = [getattr(route, "dependant", None)]
    while stack:
        dependant = stack.pop()
        if dependant is None:
            continue
        scope = getattr(dependant.call, "required_scope", None)
        if scope:
            found.append(scope)
        stack.extend(dependant.dependencies)
    scopes = [scope for scope in found if scope in SCOPES]
    if scopes:
        return max(scopes, key=SCOPES.index)
    return "public" if found else None


def route_scopes(app) -> list[tuple[str, str, str | None]]:
    """``(method, path, scope)`` of every API route of ``app`` (scope ``"public"``: open on
    purpose; None: neither ``require`` nor ``public``, a mistake), for the
    permission tests and the docs. Reads included routers too (FastAPI >= 0.16x keeps them
    nested; older versions flatten them into ``app.routes``)."""
    from fastapi import routing

    iterate = getattr(routing, "iter_route_contexts", None)
    routes = list(iterate(app.routes)) if iterate else list(app.routes)
    found = []
    for route in routes:
        original = getattr(route, "original_route", route)
        if not isinstance(original, routing.APIRoute):
            continue  # the OpenAPI document and docs page: public by design
        for method in sorted(route.methods or ()):
            found.append((method, route.path, required_scope(route)))
    return found


def auth_router() -> APIRouter:
    """Login, logout, whoami, and the users and tokens routes (``/api/v1/auth/...``)."""
    from warehouse.server.auth_routes import router

    return router()
