from asfaload.cli.commands import COMMANDS, load
from asfaload.cli.main import cli
from click.testing import CliRunner


def test_cli_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


def test_every_registered_command_is_in_the_lazy_table():
    # A module that registers a command missing from COMMANDS would make it unreachable.
    for module in set(COMMANDS.values()):
        for name in load(module).commands:
            assert COMMANDS.get(name) == module, name
