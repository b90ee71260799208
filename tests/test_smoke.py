from asfaload.cli.main import cli
from click.testing import CliRunner


def test_cli_help_lists_group():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "Multi-signature" in result.output
