"""The API's own errors, in the project's one tree (``kind`` is stable)."""

from __future__ import annotations

from ti_workflow.errors import TiWorkflowError


class Unauthenticated(TiWorkflowError):
    """No token, an unknown one, or one expired or revoked: answered 401."""

    kind = "unauthenticated"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"authentication required: {reason}")


class IdempotencyMismatch(TiWorkflowError):
    """The same ``Idempotency-Key`` was sent earlier with another request."""

    kind = "idempotency_key_reused"

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"the Idempotency-Key {key!r} was already used for another request "
            "(other method, path or body); use a new key for a new request"
        )


class IdempotentReplay(TiWorkflowError):
    """Raised inside a write's transaction when a concurrent twin already stored the key.

    The write is rolled back and the stored response is answered instead.
    """

    kind = "idempotent_replay"

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"request with Idempotency-Key {key!r} already done")


class BodyTooLarge(TiWorkflowError):
    kind = "body_too_large"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"request body larger than the limit of {limit} bytes")
