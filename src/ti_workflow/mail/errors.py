"""Errors of the mail adapter (subclasses of the project's root error).

::

    TiWorkflowError
    ├── InvalidDirectory       the address directory file is wrong (file + path)
    ├── InvalidTemplate        a notification template is missing or uses what it is not given
    ├── NotRetryable           ``notifications retry`` of a message that did not fail
    (and in scheduling.lock: SchedulerBusy, another scheduler holds the SQLite database)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ti_workflow.errors import TiWorkflowError


class InvalidDirectory(TiWorkflowError):
    kind = "invalid_directory"

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(errors)
        listed = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"{len(self.errors)} error(s) in the address directory:\n{listed}")

    def details(self) -> list[dict[str, str | None]]:
        return [{"message": e} for e in self.errors]


class InvalidTemplate(TiWorkflowError):
    kind = "invalid_template"

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(errors)
        listed = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"{len(self.errors)} error(s) in notification templates:\n{listed}")

    def details(self) -> list[dict[str, str | None]]:
        return [{"message": e} for e in self.errors]


class NotRetryable(TiWorkflowError):
    """Only failed or partly failed messages are queued again; nothing was changed."""

    kind = "not_retryable"

    def __init__(self, statuses: Mapping[int, str]) -> None:
        self.statuses = dict(statuses)
        listed = "\n".join(f"  - message {i} is {s}" for i, s in sorted(self.statuses.items()))
        super().__init__(
            "only failed or partial messages are sent again; nothing was queued "
            f"/ seuls les messages en échec sont renvoyés, rien n'a été remis en file:\n{listed}"
        )

    def details(self) -> list[dict[str, str | None]]:
        return [
            {"message": f"message {i} is {s}", "id": str(i), "status": s}
            for i, s in sorted(self.statuses.items())
        ]
