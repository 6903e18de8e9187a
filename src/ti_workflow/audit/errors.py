"""The audit's errors (under the project's one tree, ``TiWorkflowError``)."""

from __future__ import annotations

from collections.abc import Sequence

from ti_workflow.audit.replay import Finding
from ti_workflow.errors import TiWorkflowError

SHOWN = 200


class AuditFailed(TiWorkflowError):
    """``audit verify`` found faults: each names its case, event sequence number and cause."""

    kind = "audit_failed"

    def __init__(self, findings: Sequence[Finding], cases: int, events: int) -> None:
        self.findings = tuple(findings)
        listed = "\n".join(f"  - {f}" for f in self.findings[:SHOWN])
        more = len(self.findings) - SHOWN
        tail = f"\n  … and {more} more (use --json for all)" if more > 0 else ""
        super().__init__(
            f"verification FAILED / vérification en échec: {len(self.findings)} problem(s) in "
            f"{events} events of {cases} cases:\n{listed}{tail}"
        )

    def details(self) -> list[dict[str, str | None]]:
        return [
            {
                "case_id": None if f.case_id is None else str(f.case_id),
                "seq": None if f.seq is None else str(f.seq),
                "code": f.code,
                "message": f.message,
            }
            for f in self.findings
        ]
