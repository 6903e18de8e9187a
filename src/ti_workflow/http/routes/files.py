"""``/v1/files`` (upload a PDF) and ``/v1/cases/{id}/files/{sha256}`` (download a case's).

An upload is the raw PDF (``Content-Type: application/pdf``), read with a bound: a body
announced or found over 10 MiB is refused (413) before more of it is read; the content,
not the name, decides whether it is a PDF (415 / 422). A download is served only to those
who may read the case, and only for a document its history refers to (404 otherwise,
as for a case out of scope), as an attachment the browser never renders or sniffs.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, unquote

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ti_workflow.domain.actors import AUDITOR
from ti_workflow.errors import FieldError, Forbidden, InvalidData
from ti_workflow.files import MAX_BYTES, PDF, FileRefused, read_for_case
from ti_workflow.http.context import Caller, engine_of
from ti_workflow.http.problems import MEDIA_TYPE, error_responses, problem

UPLOAD = "/v1/files"

router = APIRouter(prefix="/v1", tags=["files"])

CaseId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The case number.")]
Sha256 = Annotated[
    str, Path(pattern=r"^[0-9a-f]{64}$", description="The document's SHA-256 (lower-case hex).")
]
REF_EXAMPLE = {
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "name": "lettre-intention.pdf",
    "size": 48213,
    "media_type": PDF,
}


@router.post(
    "/files",
    status_code=201,
    responses={
        201: {
            "description": "Stored (or already stored): the reference to put in case data",
            "content": {"application/json": {"example": REF_EXAMPLE}},
        },
        **error_responses(401, 403, 413, 415, 422, 500),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {PDF: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    summary="Upload a PDF (at most 10 MiB); answers its reference for letters_of_intent[i].file",
)
async def upload(
    request: Request,
    user: Caller,
    name: Annotated[
        str | None,
        Query(max_length=1000, description="The file's name (else taken from X-Filename)."),
    ] = None,
    x_filename: Annotated[
        str | None,
        Header(
            alias="X-Filename",
            max_length=2000,
            description="The file's name, percent-encoded UTF-8 (e.g. l%C3%A9ttre.pdf).",
        ),
    ] = None,
) -> Response:
    if user.actor.role == AUDITOR:
        raise Forbidden(user.actor.label, "upload a file", "auditors read and never write")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != PDF:
        body = problem(
            "unsupported-media-type",
            f"send the PDF itself as the body with Content-Type: {PDF} (got {kind or 'none'!r})",
            request.url.path,
        )
        return JSONResponse(body, status_code=415, media_type=MEDIA_TYPE)
    data = await _bounded_body(request)
    filename = name if name is not None else unquote(x_filename or "")
    if len(filename) > 1000:
        raise InvalidData("request", [FieldError("X-Filename", "at most 1000 characters")])
    stored = await run_in_threadpool(engine_of(request).files.put, data, name=filename)
    return JSONResponse(stored.as_ref(), status_code=201)


async def _bounded_body(request: Request) -> bytes:
    """The body, never more than one chunk past :data:`MAX_BYTES` held in memory."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BYTES):
        raise FileRefused("too_large", f"Content-Length {length}, at most {MAX_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BYTES:
            raise FileRefused("too_large", f"over {MAX_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.get(
    "/cases/{case_id}/files/{sha256}",
    responses={
        200: {"description": "The PDF, as an attachment", "content": {PDF: {}}},
        **error_responses(401, 404, 422, 500),
    },
    response_class=Response,
    summary="Download a document the case's history refers to (those who may read the case)",
)
def download(request: Request, case_id: CaseId, sha256: Sha256, user: Caller) -> Response:
    stored, data = read_for_case(engine_of(request), user.actor, case_id, sha256)
    return Response(
        content=data,
        media_type=PDF,
        headers={
            "Content-Disposition": content_disposition(stored.name),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback and the exact UTF-8 name (RFC 6266 / 8187)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
