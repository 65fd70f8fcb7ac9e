"""Docs checked against the code: generated references are current, README commands exist."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
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


def _block_after(readme: str, marker: str) -> str:
    """The first ```sh or plain ``` block after `marker` in the README."""
    rest = readme[readme.index(marker):]
    return re.search(r"```(?:sh)?\n(.*?)```", rest, flags=re.S).group(1)  # type: ignore[union-attr]


def test_readme_demo_commands_are_the_ones_the_demo_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README shows the demo's real `try:` lines; tests/test_cli.py pastes the printed ones into a shell."""
    from margay.simulate.runner import try_commands

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # `make demo` runs .venv/bin/margay without activating
    shown = _block_after((ROOT / "README.md").read_text(), "Real output of `make demo`")
    lines = [ln[2:] for ln in shown.split("try:\n", 1)[1].splitlines() if ln.startswith("  ")]
    if Path(sys.executable).with_name("margay") == ROOT / ".venv" / "bin" / "margay":
        assert lines == try_commands("http://127.0.0.1:8080")
    else:  # another interpreter: compare everything but the path of margay
        assert [ln.split(" ", 1)[1] for ln in lines] == [c.split(" ", 1)[1] for c in try_commands("http://127.0.0.1:8080")]


def test_readme_first_session_runs_as_written(tmp_path: Path) -> None:
    """Every line of the README's first session, in bash, in an empty directory (the port is a free one)."""
    block = _block_after((ROOT / "README.md").read_text(), "A first session")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    script = ["set -euo pipefail", "trap 'kill $SERVER_PID 2>/dev/null || true; wait' EXIT"]
    for line in block.replace("8080", port).splitlines():
        script.append(line)
        if "margay serve" in line:  # wait until it listens, as a person waits for "listening on"
            script += ["SERVER_PID=$!",
                       f"for _ in $(seq 100); do curl -sf http://127.0.0.1:{port}/-/health >/dev/null && break; "
                       "sleep 0.2; done"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARGAY_") or k == "MARGAY_RIG_DIR"}
    env.update(PATH=f"{Path(sys.executable).parent}:{env['PATH']}", COLUMNS="200", NO_COLOR="1")
    out = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    assert "Traceback" not in out.stderr
    assert re.search(r"[1-9]\d* records stored, 0 refused", out.stdout), out.stdout
    assert re.search(r"flows: [1-9]\d* of \d+ records in cluster prod, newest first", out.stdout), out.stdout
    l7 = [orjson.loads(ln) for ln in out.stdout.splitlines() if ln.startswith("{")]
    assert len(l7) == 5 and {r["cluster"] for r in l7} == {"prod"}
