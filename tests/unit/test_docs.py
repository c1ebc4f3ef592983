"""Every CLI command is documented in the README (as datasette does for its commands)."""

from __future__ import annotations

from pathlib import Path

import click

from warehouse.cli import main

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def commands(group: click.Group, prefix: str = "warehouse"):
    """Every command path, the lazily registered ones included."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        yield f"{prefix} {name}"
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix} {name}")


def test_every_command_is_in_the_readme():
    missing = []
    for path in commands(main):
        head, _, last = path.rpartition(" ")
        # "warehouse jobs list|run|..." documents several subcommands on one line
        if path not in README and not any(line.startswith(head + " ") and last in line
                                          for line in README.splitlines()):
            missing.append(path)
    assert not missing, f"undocumented commands: {missing}"


def test_readme_opens_with_the_two_setup_commands():
    block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert "make demo" in block and "make test" in block
