"""Commands of this area, added to the root application by ``cli.app``."""

from __future__ import annotations

import typer


def register(app: typer.Typer, workflows_app: typer.Typer, case_app: typer.Typer) -> None:
    """Add this area's command groups and commands (none yet)."""
