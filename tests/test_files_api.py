"""Uploading and downloading documents over real HTTP (SQLite and PostgreSQL): PDF only,
10 MiB at most read with a bound, downloads in the case's scope only (404 otherwise),
served as attachments the browser never sniffs.

FAQ 4.5 (lines 222-226): the letters of intent are part of the candidacy file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from conftest import ARA_1, candidacy
from files_support import (
    files_engine_fixture,  # noqa: F401 (the files_engine fixture)
    minimal_pdf,
    padded_pdf,
    with_letter,
)
from test_api_fixtures import Api, serve_api
from test_files_store import png_bytes
from ti_workflow.engine import Engine
from ti_workflow.files import MAX_BYTES

PDF = {"Content-Type": "application/pdf"}


@pytest.fixture
def api(files_engine: Engine) -> Iterator[Api]:
    yield from serve_api(lambda _url: files_engine, "")


def stored(api: Api) -> list[Path]:
    root = api.engine.files.root
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def upload(api: Api, who: str, content: bytes, name: str = "lettre.pdf") -> httpx.Response:
    return api.as_(who).post("/v1/files", content=content, params={"name": name}, headers=PDF)


def new_case(api: Api, *refs: dict[str, object], who: str = "candidate") -> int:
    r = api.as_(who).post(
        "/v1/cases", json={"campaign": "ti-2023-2027", "data": with_letter(*refs)}
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_upload_then_refer_then_download(api: Api) -> None:
    pdf = minimal_pdf()
    first = upload(api, "candidate", pdf, "lettre d'intention élue.pdf")
    assert first.status_code == 201, first.text
    ref = first.json()
    assert ref == {
        "sha256": hashlib.sha256(pdf).hexdigest(),
        "name": "lettre d'intention élue.pdf",
        "size": len(pdf),
        "media_type": "application/pdf",
    }
    assert upload(api, "candidate", pdf).json()["sha256"] == ref["sha256"]  # idempotent
    assert len(stored(api)) == 1
    case_id = new_case(api, ref)
    got = api.as_("candidate").get(f"/v1/cases/{case_id}/files/{ref['sha256']}")
    assert got.status_code == 200
    assert got.content == pdf
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == (
        'attachment; filename="lettre d\'intention _lue.pdf"; '
        f"filename*=UTF-8''{quote('lettre d%27intention élue.pdf', safe='%')}"
    )
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["cache-control"] == "no-store"


def test_name_from_the_x_filename_header(api: Api) -> None:
    r = api.as_("council_84").post(
        "/v1/files",
        content=minimal_pdf(),
        headers={**PDF, "X-Filename": quote("délibération/../avis.pdf")},
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "avis.pdf"


def test_download_follows_the_case_scope(api: Api) -> None:
    ref = upload(api, "candidate", minimal_pdf()).json()
    case_id = new_case(api, ref)
    path = f"/v1/cases/{case_id}/files/{ref['sha256']}"
    status = {who: api.as_(who).get(path).status_code for who in api.tokens}
    assert status == {
        "candidate": 200,
        "other_candidate": 404,  # another territory's candidate
        "council_84": 200,
        "state_84": 200,
        "council_11": 404,  # a region the perimeter does not touch
        "state_11": 404,
        "committee": 200,
        "auditor": 200,
    }
    assert api.as_("other_candidate").get(path).json()["detail"] == f"unknown case {case_id}"
    assert httpx.get(api.url + path).status_code == 401


def test_only_a_document_of_this_case_is_served(api: Api) -> None:
    mine = upload(api, "candidate", minimal_pdf("mine")).json()
    theirs = upload(api, "other_candidate", minimal_pdf("theirs")).json()
    case_id = new_case(api, mine)
    new_case(api, theirs, who="other_candidate")
    r = api.as_("committee").get(f"/v1/cases/{case_id}/files/{theirs['sha256']}")
    assert r.status_code == 404
    r = api.as_("committee").get(f"/v1/cases/{case_id}/files/not-a-hash")
    assert r.status_code == 422
    # a document the case no longer lists is still part of its history
    assert api.as_("candidate").put(f"/v1/cases/{case_id}/data", json=candidacy()).is_success
    assert api.as_("auditor").get(f"/v1/cases/{case_id}/files/{mine['sha256']}").status_code == 200


def test_an_altered_document_is_never_served(api: Api) -> None:
    ref = upload(api, "candidate", minimal_pdf()).json()
    case_id = new_case(api, ref)
    path = api.engine.files.path(ref["sha256"])
    path.chmod(0o644)
    path.write_bytes(minimal_pdf("falsifiee"))
    r = api.as_("auditor").get(f"/v1/cases/{case_id}/files/{ref['sha256']}")
    assert r.status_code == 404
    assert "altered" in r.json()["detail"]


@pytest.mark.parametrize(
    ("content", "status", "reason"),
    [
        (png_bytes(), 415, "not_pdf"),
        (b"<html><p>%PDF-1.7</p>" + minimal_pdf() + b"</html>", 415, "not_pdf"),
        (minimal_pdf()[:200], 422, "unreadable_pdf"),
        (b"", 422, "empty"),
    ],
    ids=["png-renamed", "html-with-pdf-inside", "truncated", "empty"],
)
def test_what_is_not_a_pdf_is_refused(api: Api, content: bytes, status: int, reason: str) -> None:
    r = upload(api, "candidate", content, "lettre.pdf")
    assert r.status_code == status, r.text
    body = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert body["rules"][0]["code"] == reason
    assert body["rules"][0]["message_fr"].startswith("Le ")
    assert stored(api) == []


def test_over_10_mib_is_refused_before_reading_it_all(api: Api) -> None:
    at_limit = padded_pdf(MAX_BYTES)
    assert upload(api, "candidate", at_limit).status_code == 201
    over = padded_pdf(MAX_BYTES + 1)
    r = upload(api, "candidate", over)
    assert r.status_code == 413
    assert "dépasse 10\u00a0Mo" in r.json()["rules"][0]["message_fr"]

    def chunked() -> Iterator[bytes]:  # no Content-Length: the bound applies while reading
        for start in range(0, len(over), 1 << 20):
            yield over[start : start + (1 << 20)]

    r = api.as_("candidate").post("/v1/files", content=chunked(), headers=PDF)
    assert r.status_code == 413
    assert len(stored(api)) == 1


def test_wrong_type_or_role_is_refused(api: Api) -> None:
    r = api.as_("candidate").post(
        "/v1/files", content=minimal_pdf(), headers={"Content-Type": "image/png"}
    )
    assert r.status_code == 415
    assert "application/pdf" in r.json()["detail"]
    assert upload(api, "auditor", minimal_pdf()).status_code == 403
    assert httpx.post(api.url + "/v1/files", content=minimal_pdf(), headers=PDF).status_code == 401
    assert stored(api) == []


def test_a_case_referring_to_an_unknown_document_is_refused(api: Api) -> None:
    ref = {"sha256": "ab" * 32, "name": "lettre.pdf", "size": 1000}
    r = api.as_("candidate").post(
        "/v1/cases", json={"campaign": "ti-2023-2027", "data": with_letter(ref)}
    )
    assert r.status_code == 422
    (error,) = r.json()["errors"]
    assert error["location"] == "letters_of_intent[0].file"
    assert "no stored file has this SHA-256" in error["message"]
    assert api.as_("committee").get("/v1/cases").json()["total"] == 0
    assert ARA_1  # the draft's perimeter is region 84's (see conftest)
