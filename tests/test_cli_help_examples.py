"""The commands issue 16 added or extended show how they are used: their --help text ends with an
Examples block, kept line by line (Click's ``\\b``), before the options."""

from __future__ import annotations

import pytest
from asfaload.cli.main import cli
from click.testing import CliRunner

COMMANDS = [
    ["get-digest"],
    ["check-index"],
    ["ping"],
    ["new-signers-file"],
    ["sign-pending"],
    ["sign-file"],
    ["verify-sig"],
    ["new-keys"],
    ["register-repo"],
    ["update-signers"],
    ["register-assets"],
    ["list-pending"],
    ["signature-status"],
    ["revoke"],
    ["tuf", "login"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_ends_with_examples(command: list[str]) -> None:
    res = CliRunner().invoke(cli, [*command, "--help"])
    assert res.exit_code == 0, res.output
    description = res.stdout.split("\nOptions:\n", 1)[0].rstrip("\n").splitlines()
    start = description.index("  Examples:")
    examples = description[start + 1 :]
    assert examples, res.stdout
    # Every line after "Examples:" is a command line (or its continuation), unwrapped.
    for line in examples:
        assert (
            line.startswith("    asfaload ")
            or line.startswith("      ")
            or (line.startswith("    ASFALOAD_"))
        ), line
