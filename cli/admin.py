"""``asfaload admin``: server administration (the TUF admin users of ``POST /login``)."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import (
    dumps_compact,
    handle_errors,
    json_option,
    private_dir,
    resolve_password,
    server_data_dir_option,
)


@click.group("admin")
def admin_group() -> None:
    """Server administration (TUF admin users).

    \b
    Examples:
      asfaload admin add-user --username admin --data-dir /srv/asfaload-data
    """


@admin_group.command("add-user")
@server_data_dir_option
@click.option("--username", required=True, help="Login name (the TUF admin name in paths).")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False),
    help="File holding the password (env ASFALOAD_ADD_USER_PASSWORD[_FILE]; else a prompt).",
)
@click.option(
    "--team-user",
    is_flag=True,
    help="A user that can log in but is not an admin (TUF routes answer 403).",
)
@json_option
@handle_errors
def add_user(
    data_dir: Path | None,
    username: str,
    password_file: str | None,
    team_user: bool,
    json_output: bool,
) -> None:
    """Add a user who can log in with POST /login (password stored as an Argon2id hash).

    \b
    Examples:
      asfaload admin add-user --username admin --data-dir /srv/asfaload-data
      asfaload admin add-user --username ci --team-user --password-file ci.password --json
    """
    from asfaload.tuf.accounts import Accounts

    password = resolve_password(
        None,
        password_file,
        confirm=True,
        command="add-user",
        key_password=False,
        prompt=f"Password for user {username}",
    )
    user = Accounts(private_dir(data_dir)).add_user(
        username, password, role="team" if team_user else "admin"
    )
    if json_output:
        click.echo(dumps_compact({"username": user.username, "role": user.role}))
    else:
        click.echo(f"Added {user.role} user {user.username}")


def register(group: click.Group) -> None:
    group.add_command(admin_group)
