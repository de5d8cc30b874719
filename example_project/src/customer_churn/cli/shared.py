"""What every command uses: the console it prints to and the settings it reads."""

import typer
from pydantic import ValidationError
from rich.console import Console

from ..settings import ENV_PREFIX, Settings

console = Console(stderr=True, soft_wrap=True)


def load_settings() -> Settings:
    """The settings, or exit 2 with one line naming each invalid one."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{ENV_PREFIX}{str(e['loc'][0]).upper()}: {e['msg']} (got {e.get('input')!r})"
            for e in error.errors()
        )
        console.print(f"[red]error:[/] invalid setting: {problems}")
        raise typer.Exit(2) from None
