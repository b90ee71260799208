"""Every command's --help ends its description with an Examples block, kept line by line
(Click's ``\\b``), before the options: the whole command tree is walked, groups included, so a
command added later without examples fails here."""

from __future__ import annotations

import os

import pytest
from asfaload.cli.main import cli
from click.testing import CliRunner, Result

from tests.support.cli import leaf_commands


def all_commands() -> list[tuple[str, ...]]:
    """Leaves and groups, the top level included."""
    paths = {()}
    for leaf in leaf_commands():
        paths.update(leaf[:i] for i in range(1, len(leaf) + 1))
    return sorted(paths)


def invoke(*args: str) -> Result:
    env = {k: None for k in os.environ if k.startswith("ASFALOAD_")}
    return CliRunner().invoke(cli, list(args), env=env)


def test_the_walk_reaches_nested_commands() -> None:
    paths = all_commands()
    assert () in paths and ("tuf",) in paths and ("tuf", "root", "new") in paths


@pytest.mark.parametrize("command", all_commands(), ids=lambda c: " ".join(c) or "asfaload")
def test_help_ends_its_description_with_examples(command: tuple[str, ...]) -> None:
    res = invoke(*command, "--help")
    assert res.exit_code == 0, res.output
    description = res.stdout.split("\nOptions:\n", 1)[0].rstrip("\n").splitlines()
    assert "  Examples:" in description, res.stdout
    examples = description[description.index("  Examples:") + 1 :]
    assert examples, res.stdout
    # Kept line by line (Click's \b), each a command a person can type, or its continuation.
    for line in examples:
        assert line.startswith(("    asfaload ", "      ", "    ASFALOAD_")), line
    assert any(line.startswith(f"    asfaload {' '.join(command)}".rstrip()) for line in examples)
