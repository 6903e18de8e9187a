"""Small, valid PDFs built by hand (a catalogue, one page, a content stream, a real xref)."""

from __future__ import annotations


def minimal_pdf(text: str = "Lettre d'intention") -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
    ]
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def padded_pdf(size: int) -> bytes:
    """A valid PDF of exactly ``size`` bytes (a comment line pads it before the xref-less end).

    The padding goes after ``%%EOF`` as trailing whitespace-free comment bytes, which
    readers ignore.
    """
    base = minimal_pdf()
    missing = size - len(base)
    assert missing >= 2
    return base + b"%" + b"x" * (missing - 2) + b"\n"
