"""Audit: replay, state at an instant, verification, checkpoints, export, versions.

``take_checkpoint(engine)`` is the entry point for a daily checkpoint job (scheduler).
"""

from __future__ import annotations

from ti_workflow.audit.checkpoints import Checkpoint, take_checkpoint, verify_checkpoint
from ti_workflow.audit.replay import Finding
from ti_workflow.audit.verify import VerifyReport, verify

__all__ = [
    "Checkpoint",
    "Finding",
    "VerifyReport",
    "take_checkpoint",
    "verify",
    "verify_checkpoint",
]
