"""What every `margay` command module shares: the two consoles, the one-line failure, the --data-dir option."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console(stderr=True)
out = Console()

DataDir = Annotated[Path, typer.Option("--data-dir", help="Data directory of the embedded store.",
                                       envvar="MARGAY_DATA_DIR")]


def fail(message: str, code: int = 2) -> NoReturn:
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)
