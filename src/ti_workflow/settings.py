"""Frozen settings: the only place that reads ``TI_WORKFLOW_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from email.utils import getaddresses
from importlib import resources
from pathlib import Path

from ti_workflow.errors import FieldError, InvalidData
from ti_workflow.mail.directory import address_problem

DEFAULT_DB = "sqlite:///ti_workflow.db"
DEFAULT_DS_URL = "https://www.demarches-simplifiees.fr/api/v2/graphql"
SMTP_TLS_MODES = ("none", "starttls", "tls")


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
    # Outgoing mail (issue 3). Default: a local sink (`ti-workflow smtp-sink`), no TLS.
    smtp_host: str = "localhost"
    smtp_port: int = 1025
    smtp_tls: str = "none"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout: float = 30.0
    mail_from: str = "Territoires d'industrie <no-reply@territoires-industrie.example.gouv.fr>"
    directory_file: Path | None = None
    """Addresses per role and region (YAML); default: ``<notifications_dir>/directory.yaml``."""
    scheduler_grace_seconds: int = 300
    """A timer run more than this after its due instant is late: its late policy applies."""
    scheduler_interval_seconds: int = 60
    """`scheduler run` also wakes at this interval (safety net besides the next due instant)."""
    # Démarches Simplifiées (issue 17): the GraphQL endpoint, an API token, the procedure
    # (démarche) number and the id of the instructeur the decisions are written as.
    ds_url: str = DEFAULT_DS_URL
    ds_token: str | None = None
    ds_procedure: int | None = None
    ds_instructeur_id: str | None = None
    ds_timeout: float = 30.0
    ds_mapping_file: Path | None = None
    """The procedure's field mapping (YAML); default: ``<workflows_dir>/ds/ti-2023-2027.yaml``."""
    files_dir: Path | None = None
    """Uploaded documents (``TI_WORKFLOW_FILES_DIR``); default: :func:`default_files_dir`."""
    # Agents' single sign-on (OpenID Connect, e.g. ProConnect): on when all three are set.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_scopes: str = "openid email given_name usual_name"
    oidc_name: str = "ProConnect"
    """The provider's name on the sign-in button and pages."""

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id and self.oidc_client_secret)

    @property
    def campaigns_dir(self) -> Path:
        return self.workflows_dir / "campaigns"

    @property
    def ds_mapping_path(self) -> Path:
        return self.ds_mapping_file or self.workflows_dir / "ds" / "ti-2023-2027.yaml"

    @property
    def files_root(self) -> Path:
        """Where uploaded documents are stored: ``files_dir``, else beside the database."""
        return self.files_dir or default_files_dir(self.db_url)

    @property
    def directory_path(self) -> Path:
        return self.directory_file or self.notifications_dir / "directory.yaml"

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
            smtp_host=env.get("TI_WORKFLOW_SMTP_HOST", "localhost"),
            smtp_port=_int(env, "TI_WORKFLOW_SMTP_PORT", 1025, maximum=65535),
            smtp_tls=_choice(env, "TI_WORKFLOW_SMTP_TLS", "none", SMTP_TLS_MODES),
            smtp_username=env.get("TI_WORKFLOW_SMTP_USERNAME") or None,
            smtp_password=env.get("TI_WORKFLOW_SMTP_PASSWORD") or None,
            smtp_timeout=float(_int(env, "TI_WORKFLOW_SMTP_TIMEOUT", 30)),
            mail_from=_mail_from(env.get("TI_WORKFLOW_MAIL_FROM") or cls.mail_from),
            directory_file=Path(env["TI_WORKFLOW_DIRECTORY"])
            if env.get("TI_WORKFLOW_DIRECTORY")
            else None,
            scheduler_grace_seconds=_int(env, "TI_WORKFLOW_SCHEDULER_GRACE", 300),
            scheduler_interval_seconds=_int(env, "TI_WORKFLOW_SCHEDULER_INTERVAL", 60),
            ds_url=env.get("TI_WORKFLOW_DS_URL") or DEFAULT_DS_URL,
            ds_token=env.get("TI_WORKFLOW_DS_TOKEN") or None,
            ds_procedure=_int(env, "TI_WORKFLOW_DS_PROCEDURE", 0) or None,
            ds_instructeur_id=env.get("TI_WORKFLOW_DS_INSTRUCTEUR") or None,
            ds_timeout=float(_int(env, "TI_WORKFLOW_DS_TIMEOUT", 30)),
            ds_mapping_file=Path(env["TI_WORKFLOW_DS_MAPPING"])
            if env.get("TI_WORKFLOW_DS_MAPPING")
            else None,
            files_dir=Path(env["TI_WORKFLOW_FILES_DIR"])
            if env.get("TI_WORKFLOW_FILES_DIR")
            else None,
            oidc_issuer=_issuer(env.get("TI_WORKFLOW_OIDC_ISSUER") or None),
            oidc_client_id=env.get("TI_WORKFLOW_OIDC_CLIENT_ID") or None,
            oidc_client_secret=env.get("TI_WORKFLOW_OIDC_CLIENT_SECRET") or None,
            oidc_scopes=env.get("TI_WORKFLOW_OIDC_SCOPES") or cls.oidc_scopes,
            oidc_name=env.get("TI_WORKFLOW_OIDC_NAME") or cls.oidc_name,
        )
        _oidc_complete(settings)
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **given)  # type: ignore[arg-type]

    def workflow_files(self) -> list[Path]:
        return sorted(self.workflows_dir.glob("*.yaml"))

    def campaign_files(self) -> list[Path]:
        return sorted(self.campaigns_dir.glob("*.yaml"))


def default_files_dir(db_url: str) -> Path:
    """``<db stem>-files/`` beside a SQLite file; ``./ti_workflow_files`` otherwise.

    A PostgreSQL deployment with several machines must set ``TI_WORKFLOW_FILES_DIR`` to a
    directory they all share (see docs/files.md); the default suits one machine.
    """
    if db_url.startswith("sqlite"):
        path = db_url.split(":///", 1)[1].split("?", 1)[0] if ":///" in db_url else ""
        if path and path != ":memory:" and not path.startswith("file:"):
            db = Path(path)
            return db.with_name(f"{db.stem}-files")
    return Path("ti_workflow_files")


def _int(env: os._Environ[str], name: str, default: int, maximum: int | None = None) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidData(
            "settings", [FieldError(name, f"must be a whole number, got {raw!r}")]
        ) from None
    if value < 0:
        raise InvalidData("settings", [FieldError(name, f"must be positive, got {value}")])
    if maximum is not None and value > maximum:
        raise InvalidData("settings", [FieldError(name, f"must be at most {maximum}, got {value}")])
    return value


def _mail_from(value: str) -> str:
    """``Name <local@domain>`` or ``local@domain``: one address, no line break."""
    found = getaddresses([value])
    if any(ch in value for ch in "\r\n\0") or len(found) != 1 or address_problem(found[0][1]):
        raise InvalidData(
            "settings",
            [
                FieldError(
                    "TI_WORKFLOW_MAIL_FROM",
                    f"{value!r} is not one sender address ('Name <local@domain>' or "
                    "'local@domain', no line break)",
                )
            ],
        )
    return value


def _issuer(value: str | None) -> str | None:
    """An issuer is an https URL (http only on the loopback, for tests and local providers)."""
    if value is None:
        return None
    local = value.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
    if not (value.startswith("https://") or local) or any(c in value for c in " \r\n\0?#"):
        raise InvalidData(
            "settings",
            [
                FieldError(
                    "TI_WORKFLOW_OIDC_ISSUER",
                    f"{value!r} is not an issuer URL (https://…, no query; http only on "
                    "127.0.0.1 or localhost)",
                )
            ],
        )
    return value.rstrip("/")


def _oidc_complete(settings: Settings) -> None:
    names = {
        "TI_WORKFLOW_OIDC_ISSUER": settings.oidc_issuer,
        "TI_WORKFLOW_OIDC_CLIENT_ID": settings.oidc_client_id,
        "TI_WORKFLOW_OIDC_CLIENT_SECRET": settings.oidc_client_secret,
    }
    missing = [name for name, value in names.items() if not value]
    if 0 < len(missing) < len(names):
        raise InvalidData(
            "settings",
            [
                FieldError(name, "must be set with the other TI_WORKFLOW_OIDC_* settings")
                for name in missing
            ],
        )


def _choice(env: os._Environ[str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = env.get(name) or default
    if raw not in allowed:
        raise InvalidData(
            "settings", [FieldError(name, f"{raw!r} is not one of {', '.join(allowed)}")]
        )
    return raw
