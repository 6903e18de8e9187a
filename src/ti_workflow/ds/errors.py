"""What can go wrong talking to Démarches Simplifiées, in the project's error tree::

TiWorkflowError
└── DsError                  a Démarches Simplifiées call or set-up failed
    ├── DsNotConfigured      a TI_WORKFLOW_DS_* setting is missing
    ├── DsUnavailable        retryable: network, timeout, 429, 5xx (after the retries)
    ├── DsRefused            permanent until fixed: 401/403, other 4xx, no procedure
    │   └── DsQueryRefused   GraphQL errors about one request (an unknown dossier...)
    └── MappingError         the mapping file, or a dossier's value that does not fit it
"""

from __future__ import annotations

from ti_workflow.errors import TiWorkflowError


class DsError(TiWorkflowError):
    """A Démarches Simplifiées call failed; the message says what and what to do."""

    kind = "ds_error"


class DsNotConfigured(DsError):
    kind = "ds_not_configured"


class DsUnavailable(DsError):
    """Network error, timeout, 429 or 5xx still failing after the bounded retries:
    nothing is lost, the next run takes it up again."""

    kind = "ds_unavailable"


class DsRefused(DsError):
    """401/403 (token), an unknown procedure or dossier, or a GraphQL error: retrying will
    not help until someone changes the settings or the procedure."""

    kind = "ds_refused"


class DsQueryRefused(DsRefused):
    """DS answered with GraphQL errors (an unknown procedure or dossier...): about this
    request only, not the connection."""

    kind = "ds_query_refused"


class MappingError(DsError):
    """The mapping file is wrong, or a dossier's value does not fit it."""

    kind = "ds_mapping"

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))
