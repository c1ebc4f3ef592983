"""The command registry: lazy (``--help`` loads nothing heavy), complete, and consistent
options (``--url`` after every command that opens a database, ``--format`` where it prints)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from warehouse.cli import COMMANDS, main

HEAVY = ("pandas", "numpy", "sqlalchemy", "scipy", "statsmodels", "sklearn", "duckdb",
         "psycopg", "rich", "matplotlib")
#: Commands of the server package: listed here, built by the server work (with the shared
#: --url/--debug options; which of them print rows is theirs to decide).
OTHER_PACKAGES = {"serve", "users", "tokens", "grant"}
#: Commands that print a stream or a report rather than rows or a result.
NO_FORMAT = {"scheduler", "demo"}


def leaves(group: click.Group, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from leaves(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def test_help_imports_no_heavy_library():
    code = ("import sys\nfrom warehouse.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "Commands (store)" in out and "query" in out
    assert out.strip().splitlines()[-1] == "[]"


def test_package_import_is_light_but_keeps_the_public_names():
    code = ("import sys, warehouse\nloaded = 'pandas' in sys.modules\n"
            "from warehouse import Warehouse, ValidationError, WriteResult\n"
            "print(loaded, Warehouse.__module__, WriteResult.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["False", "warehouse.core", "WriteResult"]


def test_every_entry_resolves_to_its_command():
    names = [entry.name for entry in COMMANDS]
    assert len(names) == len(set(names))
    for entry in COMMANDS:
        module, _, attribute = entry.target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command) and command.name == entry.name, entry


@pytest.mark.parametrize(("path", "command"), list(leaves(main)),
                         ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_command_takes_url_debug_and_format(path, command):
    options = {name for param in command.params for name in getattr(param, "opts", [])}
    assert {"--url", "--debug"} <= options, path
    if path[0] not in NO_FORMAT | OTHER_PACKAGES:  # the server work decides its own output
        assert "--format" in options, path
    help_text = CliRunner().invoke(main, [*path, "--help"]).stdout
    assert "--url" in help_text


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(main, ["nope"])
    assert result.exit_code == 2 and "No such command" in result.stderr
