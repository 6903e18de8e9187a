"""Frozen settings: the only place that reads ``TI_WORKFLOW_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

DEFAULT_DB = "sqlite:///ti_workflow.db"


def _bundled(name: str) -> Path:
    """``workflows/`` and ``notifications/``: in the wheel, or beside ``src/`` in a checkout."""
    installed = Path(str(resources.files("ti_workflow"))) / "_bundled" / name
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / name


@dataclass(frozen=True)
class Settings:
    db_url: str = DEFAULT_DB
    workflows_dir: Path = field(default_factory=lambda: _bundled("workflows"))
    notifications_dir: Path = field(default_factory=lambda: _bundled("notifications"))

    @property
    def campaigns_dir(self) -> Path:
        return self.workflows_dir / "campaigns"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        settings = cls(
            db_url=env.get("TI_WORKFLOW_DB", DEFAULT_DB),
            workflows_dir=Path(env["TI_WORKFLOW_WORKFLOWS_DIR"])
            if env.get("TI_WORKFLOW_WORKFLOWS_DIR")
            else _bundled("workflows"),
            notifications_dir=Path(env["TI_WORKFLOW_NOTIFICATIONS_DIR"])
            if env.get("TI_WORKFLOW_NOTIFICATIONS_DIR")
            else _bundled("notifications"),
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **given)  # type: ignore[arg-type]

    def workflow_files(self) -> list[Path]:
        return sorted(self.workflows_dir.glob("*.yaml"))

    def campaign_files(self) -> list[Path]:
        return sorted(self.campaigns_dir.glob("*.yaml"))
