"""CLI commands for users, API tokens and database roles (registered in the CLI's list):

    warehouse users add NAME --role R [--password-stdin] | list | remove NAME | passwd NAME
    warehouse tokens create --user U --scope S [--expires 30d] [--name N] | list | revoke ID
    warehouse grant analyst ROLE          (PostgreSQL: a read-only database role)

With a database URL they change the database directly; with an ``http(s)://`` URL (a served
warehouse, whose embedded file the server holds) they go through ``/api/v1/auth`` with the
token in ``WAREHOUSE_TOKEN``. Passwords are prompted twice (never an argument: it would be
in the shell history and the process list) or read from stdin with ``--password-stdin``.
"""

from __future__ import annotations

import os
import sys

import click

from warehouse.cli.options import command_url, database_command, format_option, open_warehouse
from warehouse.cli.output import note, show_frame

ROLE_CHOICE = click.Choice(["viewer", "editor", "admin"])
SCOPE_CHOICE = click.Choice(["read", "write", "admin"])


class _Remote:
    """The accounts functions over a served warehouse's ``/api/v1/auth`` routes."""

    def __init__(self, url: str, token: str | None):
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url.rstrip("/") + "/api/v1/auth", headers=headers,
                                 timeout=30.0)

    def _call(self, method: str, path: str, **kwargs):
        from warehouse.errors import WarehouseError

        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail") or response.text
            except ValueError:
                detail = response.text
            hint = " (set WAREHOUSE_TOKEN to an admin token)" if response.status_code in (
                401, 403) else ""
            raise WarehouseError(f"the server answered {response.status_code}: {detail}{hint}")
        return response.json() if response.content else None

    def frame(self, path: str, params: dict | None = None):
        import pandas as pd

        return pd.DataFrame(self._call("GET", path, params=params or {}))

    def add_user(self, name, role, password):
        self._call("POST", "/users", json={"name": name, "role": role, "password": password})

    def list_users(self):
        return self.frame("/users")

    def remove_user(self, name):
        self._call("DELETE", f"/users/{_segment(name)}")

    def set_password(self, name, password):
        self._call("PUT", f"/users/{_segment(name)}/password", json={"password": password})

    def create_token(self, user, scope, expires, name):
        body = self._call("POST", "/tokens", json={"user": user, "scope": scope,
                                                   "expires": expires, "name": name})
        return body["token_id"], body["token"], body["expires_at"]

    def list_tokens(self, user):
        return self.frame("/tokens", {"user": user} if user else None)

    def revoke_token(self, token_id):
        self._call("DELETE", f"/tokens/{_segment(token_id)}")


class _Local:
    """The accounts functions on a database opened directly."""

    def __init__(self, wh):
        from warehouse import accounts

        self.wh, self.accounts = wh, accounts

    def add_user(self, name, role, password):
        self.accounts.add_user(self.wh, name, role, password)

    def list_users(self):
        return self.accounts.list_users(self.wh)

    def remove_user(self, name):
        self.accounts.remove_user(self.wh, name)

    def set_password(self, name, password):
        self.accounts.set_password(self.wh, name, password)

    def create_token(self, user, scope, expires, name):
        token = self.accounts.create_token(self.wh, user, scope, expires=expires, name=name)
        return token.token_id, token.token, token.expires_at

    def list_tokens(self, user):
        return self.accounts.list_tokens(self.wh, user)

    def revoke_token(self, token_id):
        self.accounts.revoke_token(self.wh, token_id)


def _segment(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _accounts(ctx: click.Context, *, create: bool = False):
    url = command_url(ctx) or os.environ.get("WAREHOUSE_URL")
    if url and url.split("://", 1)[0].lower() in ("http", "https"):
        return _Remote(url, os.environ.get("WAREHOUSE_TOKEN"))
    return _Local(open_warehouse(ctx, create=create))


def _read_password(from_stdin: bool, prompt: str = "Password") -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if not password:
            raise click.UsageError("--password-stdin: no password on stdin")
        return password
    return click.prompt(prompt, hide_input=True, confirmation_prompt=True)


PASSWORD_STDIN = click.option("--password-stdin", is_flag=True,
                              help="Read the password from the first line of stdin.")


@click.group()
def users() -> None:
    """Users of a served warehouse: add, list, remove, passwd (docs/security.md)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=ROLE_CHOICE, required=True,
              help="viewer (read), editor (read, write data, edit dashboards), "
                   "admin (also users, jobs, retention).")
@PASSWORD_STDIN
@database_command
@click.pass_context
def users_add(ctx: click.Context, name: str, role: str, password_stdin: bool) -> None:
    """Add user NAME with a role and a password."""
    password = _read_password(password_stdin)
    # The first user is often made before the first `warehouse serve`: it may create the
    # warehouse, as `init` would.
    _accounts(ctx, create=True).add_user(name, role, password)
    note(f"user {name!r} added as {role}")


@users.command("list")
@format_option
@database_command
@click.pass_context
def users_list(ctx: click.Context, fmt: str) -> None:
    """Users, their roles, active tokens and open sessions (never password hashes)."""
    show_frame(_accounts(ctx).list_users(), fmt, title="users")


@users.command("remove")
@click.argument("name")
@database_command
@click.pass_context
def users_remove(ctx: click.Context, name: str) -> None:
    """Remove user NAME with all its tokens and sessions."""
    _accounts(ctx).remove_user(name)
    note(f"user {name!r} removed, with its tokens and sessions")


@users.command("passwd")
@click.argument("name")
@PASSWORD_STDIN
@database_command
@click.pass_context
def users_passwd(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Set the password of user NAME (its browser sessions end)."""
    password = _read_password(password_stdin, "New password")
    _accounts(ctx).set_password(name, password)
    note(f"password of {name!r} changed; its sessions ended")


@click.group()
def tokens() -> None:
    """API tokens: create (shown once), list, revoke (docs/security.md)."""


@tokens.command("create")
@click.option("--user", required=True, help="The user the token acts as.")
@click.option("--scope", type=SCOPE_CHOICE, required=True,
              help="read, write or admin: at most what the user's role allows.")
@click.option("--expires", default="90d", show_default=True,
              help="Lifetime ('30d', '12h') or 'never'.")
@click.option("--name", default=None, help="A note saying what the token is for.")
@database_command
@click.pass_context
def tokens_create(ctx: click.Context, user: str, scope: str, expires: str,
                  name: str | None) -> None:
    """Make a token; it is printed once, on stdout alone (TOKEN=$(warehouse tokens create ...))."""
    token_id, token, expires_at = _accounts(ctx).create_token(user, scope, expires, name)
    click.echo(token)
    note(f"token {token_id} for {user!r}, scope {scope}, expires "
         f"{expires_at or 'never'}: shown this once, stored only as a hash")


@tokens.command("list")
@click.option("--user", default=None, help="Only this user's tokens.")
@format_option
@database_command
@click.pass_context
def tokens_list(ctx: click.Context, user: str | None, fmt: str) -> None:
    """Tokens: id, user, name, scope, created, expires, revoked, last used (never secrets)."""
    show_frame(_accounts(ctx).list_tokens(user), fmt, title="tokens")


@tokens.command("revoke")
@click.argument("token_id")
@database_command
@click.pass_context
def tokens_revoke(ctx: click.Context, token_id: str) -> None:
    """Revoke token TOKEN_ID (the id from `tokens list`); it fails with 401 from now on."""
    _accounts(ctx).revoke_token(token_id)
    note(f"token {token_id} revoked")


@click.group()
def grant() -> None:
    """Database roles for people who query the database directly (PostgreSQL)."""


@grant.command("analyst")
@click.argument("role")
@database_command
@click.pass_context
def grant_analyst(ctx: click.Context, role: str) -> None:
    """Create (or update) ROLE: it may SELECT the documented views and tables, nothing else
    (no credentials tables). Give it a password and LOGIN yourself (ALTER ROLE)."""
    wh = open_warehouse(ctx, create=False)
    method = getattr(wh.backend, "grant_analyst", None)
    if method is None:
        raise click.ClickException(
            f"`grant analyst` needs a database with roles (PostgreSQL); "
            f"{wh.backend.dialect} has none — share a read-only copy or serve the warehouse")
    with wh.engine.begin() as conn:
        method(conn, role)
    note(f"role {role!r} may now read the documented views and tables")
