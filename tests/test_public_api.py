"""The package's public API is what ``__all__`` says, and every error derives from one root."""

from __future__ import annotations

import ti_workflow


def test_all_names_exist_and_errors_share_one_root() -> None:
    exported = [getattr(ti_workflow, name) for name in ti_workflow.__all__]
    errors = [e for e in exported if isinstance(e, type) and issubclass(e, BaseException)]
    assert {e.__name__ for e in errors} == {
        "TiWorkflowError", "NotFound", "UnknownTrigger", "TransitionNotAllowed", "Forbidden",
        "GuardRefused", "Conflict", "InvalidData", "InvalidDefinition",
    }  # fmt: skip
    assert all(issubclass(e, ti_workflow.TiWorkflowError) for e in errors)
    assert len({e.kind for e in errors}) == len(errors), "each error has its own stable kind"
