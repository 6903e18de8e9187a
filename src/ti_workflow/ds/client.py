"""A small client of the Démarches Simplifiées GraphQL API (v2), over httpx.

Each operation is a ``.graphql`` file in ``queries/`` (one operation per file, checked
against DS's published schema by the tests). Network errors, timeouts, 429 and 5xx
are retried a bounded number of times with exponential backoff (``Retry-After`` is
honoured up to the cap); 401/403, an unknown procedure and GraphQL errors are not.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources
from typing import Any

import httpx

from ti_workflow.ds.errors import DsNotConfigured, DsQueryRefused, DsRefused, DsUnavailable
from ti_workflow.settings import Settings

RETRIES = 4
"""Attempts per call after the first one (so at most 5 requests)."""
BACKOFF = 0.5
BACKOFF_MAX = 8.0
PAGE_SIZE = 100
MAX_FILE_BYTES = 10 * 1024 * 1024


@cache
def operation(name: str) -> str:
    """The text of ``queries/<name>.graphql``."""
    return (resources.files("ti_workflow.ds") / "queries" / f"{name}.graphql").read_text(
        encoding="utf-8"
    )


def md5_base64(data: bytes) -> str:
    """The checksum DS gives for a file: MD5, base64 (ActiveStorage)."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()


class DsClient:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        retries: int | None = None,
        backoff: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.retries = RETRIES if retries is None else retries
        self.backoff = BACKOFF if backoff is None else backoff
        self.sleep = sleep
        self.http = httpx.Client(
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "ti-workflow"},
            follow_redirects=True,
        )
        # The file URLs are pre-signed: the API token is never sent to the storage host.
        self.files = httpx.Client(
            timeout=timeout, headers={"User-Agent": "ti-workflow"}, follow_redirects=True
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> DsClient:
        missing = [
            name
            for name, value in (
                ("TI_WORKFLOW_DS_TOKEN", settings.ds_token),
                ("TI_WORKFLOW_DS_PROCEDURE", settings.ds_procedure),
            )
            if not value
        ]
        if missing:
            raise DsNotConfigured(
                f"Démarches Simplifiées is not configured: set {' and '.join(missing)} "
                "(see docs/ds.md)"
            )
        assert settings.ds_token is not None
        return cls(settings.ds_url, settings.ds_token, timeout=settings.ds_timeout)

    def close(self) -> None:
        self.http.close()
        self.files.close()

    def __enter__(self) -> DsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport ------------------------------------------------------------------

    def _request(
        self, send: Callable[[], httpx.Response], what: str, retry: bool = True
    ) -> httpx.Response:
        """One HTTP exchange with the bounded retries; the response of a 2xx."""
        last = ""
        retries = self.retries if retry else 0
        for attempt in range(retries + 1):
            wait = min(self.backoff * 2**attempt, BACKOFF_MAX)
            try:
                response = send()
            except httpx.TimeoutException as exc:
                last = f"timed out ({type(exc).__name__})"
            except httpx.TransportError as exc:
                last = f"network error: {type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status in (401, 403):
                    raise DsRefused(
                        f"Démarches Simplifiées refused the token ({status}) for {what}: check "
                        "TI_WORKFLOW_DS_TOKEN (an API token with access to the procedure)"
                    )
                if status == 429 or status >= 500:
                    last = f"HTTP {status}"
                    wait = max(wait, min(_retry_after(response), BACKOFF_MAX))
                elif status >= 400:
                    raise DsRefused(f"Démarches Simplifiées answered HTTP {status} for {what}")
                else:
                    return response
            if attempt < retries:
                self.sleep(wait)
        raise DsUnavailable(
            f"Démarches Simplifiées unreachable for {what} after {retries + 1} attempt(s) "
            f"({last}); nothing was lost, run again later"
        )

    def execute(self, name: str, variables: dict[str, Any], retry: bool = True) -> dict[str, Any]:
        """Run operation ``name``; its ``data``. GraphQL errors are refusals. ``retry``:
        False for a mutation (DS may have applied one whose answer was lost: the caller
        reads the dossier again before trying anew)."""
        body = {"query": operation(name), "variables": variables}
        response = self._request(lambda: self.http.post(self.url, json=body), name, retry)
        try:
            document = response.json()
        except ValueError:
            raise DsUnavailable(f"Démarches Simplifiées sent no JSON for {name}") from None
        errors = document.get("errors") or []
        if errors:
            messages = "; ".join(str(e.get("message", e)) for e in errors)
            raise DsQueryRefused(f"Démarches Simplifiées refused {name}: {messages}")
        data = document.get("data")
        if not isinstance(data, dict):
            raise DsUnavailable(f"Démarches Simplifiées sent no data for {name}")
        return data

    def download(self, url: str, checksum: str, size: int, name: str) -> bytes:
        """A dossier's file, checked against the size and MD5 (base64) DS gave for it."""
        if size > MAX_FILE_BYTES:
            raise DsRefused(f"file {name!r} is {size} bytes, more than the 10 MiB accepted")

        data = self._request(lambda: self.files.get(url), f"file {name!r}").content
        if len(data) != size or md5_base64(data) != checksum:
            raise DsUnavailable(
                f"file {name!r} arrived damaged ({len(data)} bytes, checksum "
                f"{md5_base64(data)}; DS announced {size} bytes, {checksum})"
            )
        return data

    # --- operations -----------------------------------------------------------------

    def revision(self, procedure: int) -> dict[str, Any]:
        return self._demarche("demarche_revision", {"number": procedure}, procedure)

    def dossiers(
        self, procedure: int, since: str | None, after: str | None = None
    ) -> Iterator[tuple[list[dict[str, Any]], str | None, bool]]:
        """Pages of dossiers changed since ``since``: (nodes, endCursor, hasNextPage)."""
        return self._pages("dossiers_page", "dossiers", procedure, "updatedSince", since, after)

    def deleted_dossiers(
        self, procedure: int, since: str | None, after: str | None = None
    ) -> Iterator[tuple[list[dict[str, Any]], str | None, bool]]:
        return self._pages(
            "deleted_dossiers_page", "deletedDossiers", procedure, "deletedSince", since, after
        )

    def _pages(
        self,
        name: str,
        field: str,
        procedure: int,
        since_name: str,
        since: str | None,
        after: str | None,
    ) -> Iterator[tuple[list[dict[str, Any]], str | None, bool]]:
        while True:
            size = PAGE_SIZE
            variables = {"number": procedure, "first": size, "after": after, since_name: since}
            page = self._demarche(name, variables, procedure)[field]
            info = page["pageInfo"]
            nodes = [n for n in page.get("nodes") or [] if n]
            yield nodes, info.get("endCursor"), bool(info["hasNextPage"])
            if not info["hasNextPage"] or not info.get("endCursor"):
                return
            after = info["endCursor"]

    def _demarche(self, name: str, variables: dict[str, Any], procedure: int) -> dict[str, Any]:
        hint = (
            f"check TI_WORKFLOW_DS_PROCEDURE (procedure n° {procedure}) and that the token's "
            "administrateur or instructeur has access to it"
        )
        try:
            data = self.execute(name, variables)
        except DsQueryRefused as exc:
            raise DsRefused(f"{exc}: {hint}") from None
        demarche = data.get("demarche")
        if not demarche:
            raise DsRefused(f"Démarches Simplifiées sent no procedure n° {procedure}: {hint}")
        return dict(demarche)

    def dossier_state(self, number: int) -> dict[str, Any]:
        data = self.execute("dossier_state", {"number": number})
        if not data.get("dossier"):
            raise DsQueryRefused(f"Démarches Simplifiées knows no dossier n° {number}")
        return dict(data["dossier"])

    def mutate(self, name: str, field: str, values: dict[str, Any]) -> dict[str, Any]:
        """A mutation's payload; its ``errors`` (DS's ValidationError) left to the caller."""
        payload = self.execute(name, {"input": values}, retry=False).get(field)
        return dict(payload or {})


def _retry_after(response: httpx.Response) -> float:
    try:
        return float(response.headers.get("Retry-After", "0"))
    except ValueError:
        return 0.0
