"""Docs checked against the code: generated references are current, README commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from margay.cli import app
from margay.docs.reference import cli_md, configuration_md

ROOT = Path(__file__).resolve().parents[1]


def test_configuration_reference_is_current() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == configuration_md(), \
        "docs/configuration.md is stale: run `python -m margay.docs.reference`"


def test_cli_reference_is_current() -> None:
    assert (ROOT / "docs" / "cli.md").read_text() == cli_md(), \
        "docs/cli.md is stale: run `python -m margay.docs.reference`"


def test_every_setting_is_documented() -> None:
    from dataclasses import fields

    from margay.config import Settings

    for f in fields(Settings):
        assert f.metadata.get("help"), f"setting {f.name} has no help text"
        assert f"--{f.name.replace('_', '-')}" in configuration_md()


def test_readme_commands_exist() -> None:
    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    readme = (ROOT / "README.md").read_text()
    blocks = "\n".join(re.findall(r"```sh\n(.*?)```", readme, flags=re.S))
    used = set(re.findall(r"^\s*margay (\w+)", blocks, flags=re.M))
    assert used, "the README shows no margay commands"
    assert used <= commands, f"README uses unknown commands: {used - commands}"
    for target in re.findall(r"^make (\w+)", readme, flags=re.M):
        assert re.search(rf"^{target}:", (ROOT / "Makefile").read_text(), flags=re.M), target


def test_readme_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    for link in re.findall(r"\]\(([^)#]+)\)", readme):
        if not link.startswith("http"):
            assert (ROOT / link).exists(), f"README links to missing {link}"
