"""A fake Démarches Simplifiées GraphQL API for the tests: real HTTP on 127.0.0.1.

It serves ``subset.graphql`` (the part of DS's published schema the connector uses) with
graphql-core: keyset cursors over dossiers ordered by (dateDerniereModification, number),
``updatedSince``/``deletedSince``, file downloads with DS's base64 MD5 checksums, and the
mutations' state rules as DS applies them (en_construction -> en_instruction -> accepte or
refuse; back to en_construction from en_instruction), with ``errors`` on the payload.
Faults are injected per request: an HTTP status, a delay before executing, or a delay
after executing (the change is made, the answer is lost: the client times out).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from graphql import GraphQLError, build_schema, graphql_sync

SCHEMA = build_schema((Path(__file__).parent / "subset.graphql").read_text(encoding="utf-8"))
TRANSITIONS = {
    "dossierPasserEnInstruction": ("en_construction", "en_instruction"),
    "dossierAccepter": ("en_instruction", "accepte"),
    "dossierRefuser": ("en_instruction", "refuse"),
    "dossierRepasserEnConstruction": ("en_instruction", "en_construction"),
}


def checksum(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@dataclass
class Fault:
    operation: str | None
    """Only requests running this operation (by name), or any when None."""
    status: int | None = None
    delay_before: float = 0.0
    delay_after: float = 0.0
    times: int = 1
    skip: int = 0
    """Let this many matching requests through first."""


@dataclass
class Dossier:
    number: int
    state: str
    date_depot: datetime
    modified: datetime
    email: str
    champs: list[dict[str, Any]]
    treated: datetime | None = None
    motivation: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return base64.b64encode(f"Dossier-{self.number}".encode()).decode()


class FakeDs:
    def __init__(
        self,
        *,
        token: str,
        procedure: int,
        instructeur_id: str,
        descriptors: list[dict[str, Any]],
        now: Callable[[], datetime],
    ) -> None:
        self.token = token
        self.procedure = procedure
        self.instructeur_id = instructeur_id
        self.descriptors = descriptors
        self.now = now
        self.dossiers: dict[int, Dossier] = {}
        self.deleted: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self.faults: list[Fault] = []
        self.log: list[tuple[str, dict[str, Any]]] = []
        """Every GraphQL request executed: (operation name, variables)."""
        self.applied: list[tuple[str, int]] = []
        """Every state change or message made by a mutation: (mutation, dossier number)."""
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self.url = ""
        self._server: ThreadingHTTPServer | None = None

    # --- data ------------------------------------------------------------------------

    def add_file(self, data: bytes, filename: str) -> dict[str, Any]:
        key = f"f{next(self._ids)}"
        self.files[key] = data
        return {
            "filename": filename,
            "contentType": "application/pdf",
            "checksum": checksum(data),
            "byteSizeBigInt": str(len(data)),
            "url": f"{self.url}/files/{key}",
        }

    def put(self, dossier: Dossier) -> None:
        with self.lock:
            self.dossiers[dossier.number] = dossier

    def edit(self, number: int, change: Callable[[Dossier], None], at: datetime) -> None:
        with self.lock:
            d = self.dossiers[number]
            change(d)
            d.modified = at

    def delete(self, number: int, at: datetime) -> None:
        with self.lock:
            d = self.dossiers.pop(number)
            self.deleted.append(
                {
                    "id": d.id,
                    "number": d.number,
                    "state": d.state,
                    "reason": "user_request",
                    "dateSupression": at.isoformat(),
                    "_at": at,
                }
            )

    # --- GraphQL -----------------------------------------------------------------------

    def _node(self, d: Dossier) -> dict[str, Any]:
        return {
            "id": d.id,
            "number": d.number,
            "state": d.state,
            "dateDepot": d.date_depot.isoformat(),
            "dateDerniereModification": d.modified.isoformat(),
            "dateTraitement": d.treated.isoformat() if d.treated else None,
            "motivation": d.motivation,
            "usager": {"id": f"U{d.number}", "email": d.email},
            "champs": d.champs,
            "messages": d.messages,
        }

    def _page(
        self,
        items: list[tuple[tuple[str, int], dict[str, Any]]],
        first: int | None,
        after: str | None,
    ) -> dict[str, Any]:
        items.sort(key=lambda kv: kv[0])
        if after:
            mark, _, number = base64.b64decode(after).decode().rpartition("|")
            key = (mark, int(number))
            items = [kv for kv in items if kv[0] > key]
        size = first or 100
        page = items[:size]
        end = None
        if page:
            mark, number = page[-1][0]
            end = base64.b64encode(f"{mark}|{number}".encode()).decode()
        return {
            "nodes": [node for _, node in page],
            "pageInfo": {
                "hasNextPage": len(items) > size,
                "hasPreviousPage": bool(after),
                "endCursor": end,
                "startCursor": None,
            },
        }

    def _dossiers(
        self,
        _info: Any,
        first: int | None = None,
        after: str | None = None,
        updatedSince: str | None = None,
        state: str | None = None,
    ) -> dict[str, Any]:
        since = datetime.fromisoformat(updatedSince) if updatedSince else None
        items = [
            ((d.modified.isoformat(), d.number), self._node(d))
            for d in self.dossiers.values()
            if (since is None or d.modified >= since) and (state is None or d.state == state)
        ]
        return self._page(items, first, after)

    def _deleted(
        self,
        _info: Any,
        first: int | None = None,
        after: str | None = None,
        deletedSince: str | None = None,
    ) -> dict[str, Any]:
        since = datetime.fromisoformat(deletedSince) if deletedSince else None
        items = [
            ((d["_at"].isoformat(), d["number"]), {k: v for k, v in d.items() if k != "_at"})
            for d in self.deleted
            if since is None or d["_at"] >= since
        ]
        return self._page(items, first, after)

    def _demarche(self, _root: Any, _info: Any, number: int) -> dict[str, Any]:
        if number != self.procedure:
            raise GraphQLError("Demarche not found")
        return {
            "id": base64.b64encode(f"Procedure-{number}".encode()).decode(),
            "number": number,
            "title": "Candidature Territoires d'industrie 2023-2027",
            "state": "publiee",
            "activeRevision": {"id": "UmV2aXNpb24tMQ==", "champDescriptors": self.descriptors},
            "dossiers": self._dossiers,
            "deletedDossiers": self._deleted,
        }

    def _dossier(self, _root: Any, _info: Any, number: int) -> dict[str, Any]:
        d = self.dossiers.get(number)
        if d is None:
            raise GraphQLError("Dossier not found")
        return self._node(d)

    def _by_id(self, dossier_id: str) -> Dossier | None:
        return next((d for d in self.dossiers.values() if d.id == dossier_id), None)

    def _mutation(self, name: str) -> Callable[..., dict[str, Any]]:
        def resolve(_root: Any, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
            d = self._by_id(input["dossierId"])
            if d is None:
                return {"errors": [{"message": "Dossier not found"}]}
            if input["instructeurId"] != self.instructeur_id:
                return {"errors": [{"message": "L'instructeur n'a pas les droits sur ce dossier"}]}
            if name == "dossierEnvoyerMessage":
                message = {
                    "id": f"M{next(self._ids)}",
                    "body": input["body"],
                    "createdAt": self.now().isoformat(),
                    "email": "instructeur@example.gouv.fr",
                }
                d.messages.append(message)
                d.modified = self.now()
                self.applied.append((name, d.number))
                return {"message": message, "errors": None}
            source, dest = TRANSITIONS[name]
            if d.state != source:
                return {
                    "dossier": self._node(d),
                    "errors": [{"message": f"Le dossier est en {d.state}, pas en {source}"}],
                }
            d.state = dest
            d.modified = self.now()
            if dest in ("accepte", "refuse"):
                d.treated = self.now()
                d.motivation = input.get("motivation")
            self.applied.append((name, d.number))
            return {"dossier": self._node(d), "errors": None}

        return resolve

    def execute(self, body: dict[str, Any]) -> dict[str, Any]:
        root = {
            "demarche": self._demarche,
            "dossier": self._dossier,
            **{name: self._mutation(name) for name in (*TRANSITIONS, "dossierEnvoyerMessage")},
        }

        def resolver(source: Any, info: Any, **args: Any) -> Any:
            value = source.get(info.field_name) if isinstance(source, dict) else None
            if callable(value):
                if source is root:
                    return value(source, info, **args)
                return value(info, **args)
            return value

        with self.lock:
            result = graphql_sync(
                SCHEMA,
                body["query"],
                root_value=root,
                variable_values=body.get("variables"),
                field_resolver=resolver,
            )
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [{"message": e.message} for e in result.errors]
        return out

    # --- HTTP --------------------------------------------------------------------------

    def fault_for(self, operation: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.operation in (None, operation) and f.times > 0:
                    if f.skip > 0:
                        f.skip -= 1
                        continue
                    f.times -= 1
                    return f
        return None

    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout under test)

            def do_GET(self) -> None:
                key = self.path.rsplit("/", 1)[-1]
                fault = fake.fault_for("download")
                if fault and fault.status:
                    self._reply(fault.status, b"")
                    return
                data = fake.files.get(key)
                if data is None:
                    self._reply(404, b"")
                    return
                self._reply(200, data, "application/pdf")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    self._reply(401, b'{"errors":[{"message":"Unauthorized"}]}')
                    return
                operation = body["query"].split("(")[0].split()[-1]
                fault = fake.fault_for(operation)
                if fault and fault.delay_before:
                    time.sleep(fault.delay_before)
                if fault and fault.status:
                    self._reply(fault.status, b'{"errors":[{"message":"server error"}]}')
                    return
                fake.log.append((operation, dict(body.get("variables") or {})))
                answer = json.dumps(fake.execute(body)).encode()
                if fault and fault.delay_after:
                    time.sleep(fault.delay_after)
                self._reply(200, answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.url

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/api/v2/graphql"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
