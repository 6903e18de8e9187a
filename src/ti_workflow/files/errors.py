"""The files area's errors, in the project's one tree::

    TiWorkflowError
    ├── FileRefused      an upload that is not stored (not a PDF, too large, empty...)
    └── NotFound
        └── FileMissing  no stored file with this SHA-256

``FileRefused`` carries a stable ``reason`` code and its message in French (what a
territory reads) and English (what an operator reads).
"""

from __future__ import annotations

from ti_workflow.errors import NotFound, TiWorkflowError

REASONS: dict[str, tuple[str, str]] = {
    "empty": (
        "Le fichier est vide.",
        "the file is empty",
    ),
    "too_large": (
        "Le fichier dépasse 10\u00a0Mo, la taille maximale d'une pièce jointe.",
        "the file is over 10 MiB, the largest attachment accepted",
    ),
    "not_pdf": (
        "Le fichier n'est pas un PDF\u00a0: seuls les documents PDF sont acceptés.",
        "the file is not a PDF (its content does not start with '%PDF-'); only PDF is accepted",
    ),
    "unreadable_pdf": (
        "Le fichier n'est pas un PDF lisible : il est endommagé ou incomplet.",
        "the file starts like a PDF but cannot be read as one (damaged or truncated)",
    ),
    "encrypted_pdf": (
        "Le PDF est protégé par un mot de passe\u00a0: déposez une version sans mot de passe.",
        "the PDF needs a password to open; upload a version without one",
    ),
}


class FileRefused(TiWorkflowError):
    """An upload refused before anything was stored."""

    kind = "file_refused"

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.message_fr, self.message_en = REASONS[reason]
        self.detail = detail
        extra = f" ({detail})" if detail else ""
        super().__init__(f"{self.message_fr} / {self.message_en}{extra}")

    def details(self) -> list[dict[str, str | None]]:
        return [
            {
                "code": self.reason,
                "faq": None,
                "message_fr": self.message_fr,
                "message_en": self.message_en + (f" ({self.detail})" if self.detail else ""),
            }
        ]


class FileMissing(NotFound):
    """No stored file has this SHA-256 (never uploaded, or lost from the store)."""

    kind = "file_missing"

    def __init__(self, sha256: str) -> None:
        self.sha256 = sha256
        super().__init__("file", sha256)


class FileAltered(FileMissing):
    """The stored bytes no longer hash to their name: never served, reported by the audit."""

    kind = "file_altered"

    def __init__(self, sha256: str) -> None:
        FileMissing.__init__(self, sha256)
        self.args = (
            f"stored file {sha256} no longer matches its SHA-256 (it was altered); "
            "the intact document must be restored from a backup",
        )
