"""What text the system accepts: ids, names and single-line fields, long text fields.

Every text is normalised to Unicode NFC. No text ever holds NUL or another control
character (PostgreSQL refuses NUL; a control character in a mail subject or a log line
forges what follows it); none holds a bidirectional override or isolate (U+202E turns
"gpj.exe" into "exe.jpg" on screen) or an invisible zero-width character (two names that
look the same would differ). Line breaks (and tabs) are allowed in long text fields only.
Ids (campaigns, workflows) are names: lower-case ASCII letters, digits, ``-`` and ``_``.
See docs/input-rules.md.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from ti_workflow.errors import FieldError, InvalidData

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
ID_RULE = "lower-case letters a-z, digits, '-' and '_' only (at most 100, e.g. ti-2023-2027)"

_INVISIBLE = {
    "\u061c": "ARABIC LETTER MARK",
    "\u200b": "ZERO WIDTH SPACE",
    "\u200c": "ZERO WIDTH NON-JOINER",
    "\u200d": "ZERO WIDTH JOINER",
    "\u200e": "LEFT-TO-RIGHT MARK",
    "\u200f": "RIGHT-TO-LEFT MARK",
    "\u2028": "LINE SEPARATOR",
    "\u2029": "PARAGRAPH SEPARATOR",
    "\u202a": "LEFT-TO-RIGHT EMBEDDING",
    "\u202b": "RIGHT-TO-LEFT EMBEDDING",
    "\u202c": "POP DIRECTIONAL FORMATTING",
    "\u202d": "LEFT-TO-RIGHT OVERRIDE",
    "\u202e": "RIGHT-TO-LEFT OVERRIDE",
    "\u2060": "WORD JOINER",
    "\u2066": "LEFT-TO-RIGHT ISOLATE",
    "\u2067": "RIGHT-TO-LEFT ISOLATE",
    "\u2068": "FIRST STRONG ISOLATE",
    "\u2069": "POP DIRECTIONAL ISOLATE",
    "\ufeff": "ZERO WIDTH NO-BREAK SPACE",
}
_LINE_BREAKS = "\n\r\t"
_BAD = re.compile(
    "[\x00-\x1f\x7f-\x9f" + "".join(_INVISIBLE) + "\ud800-\udfff]"
)  # lone surrogates too: they cannot be stored as UTF-8


def safe_text(text: str) -> str:
    """``text`` as it can be shown and stored anywhere: NUL and lone surrogates (which
    UTF-8 cannot encode) written as escapes. For messages that quote refused input."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def describe_character(char: str) -> str:
    code = f"U+{ord(char):04X}"
    if char == "\x00":
        return f"{code} (NUL)"
    name = _INVISIBLE.get(char) or unicodedata.name(char, "")
    if char in "\n\r":
        name = "line break"
    elif not name:
        name = "control character"
    return f"{code} ({name.lower()})"


def text_problem(value: str, multiline: bool = False) -> str | None:
    """Why ``value`` is refused (the first bad character and where), or None."""
    for match in _BAD.finditer(value):
        char = match.group()
        if multiline and char in _LINE_BREAKS:
            continue
        where = f"at position {match.start() + 1}"
        if char == "\x00":
            return f"contains the NUL character {where}, which no text may hold"
        if char in _LINE_BREAKS:
            return (
                f"contains a {describe_character(char)} {where}: a name or single-line field "
                "holds one line (line breaks only in long text fields)"
            )
        return (
            f"contains the invisible or control character {describe_character(char)} {where}, "
            "which no text may hold"
        )
    return None


def clean_text(value: str, multiline: bool = False) -> str:
    """``value`` in NFC, or ValueError saying which character is refused and where."""
    problem = text_problem(value, multiline)
    if problem:
        raise ValueError(problem)
    return unicodedata.normalize("NFC", value)


def id_problem(value: Any, what: str) -> str | None:
    """Why ``value`` is not a valid id (campaign or workflow), or None."""
    if not isinstance(value, str) or not value:
        return f"the {what} id is required ({ID_RULE})"
    if not ID_RE.match(value):
        shown = repr(value if len(value) <= 60 else value[:60] + "…")
        return f"the {what} id {shown} is not a name: {ID_RULE}"
    return None


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)
MAX_DEPTH = 32
"""The deepest nesting of lists and objects accepted in JSON or YAML input."""


def json_depth(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest (strings skipped), without parsing
    it: deeper than ``MAX_DEPTH`` is refused before the parser's recursion could fail."""
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def nul_paths(value: Any, path: str = "") -> Iterator[str]:
    """Where NUL occurs in a JSON value (keys and strings), as field paths."""
    if isinstance(value, str):
        if "\x00" in value:
            yield path or "(root)"
    elif isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                yield f"{path or '(root)'} (a key)"
                continue
            yield from nul_paths(item, sub)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from nul_paths(item, f"{path}[{i}]")


def refuse_nul(value: Any, what: str, prefix: str = "") -> None:
    """InvalidData naming every field that holds NUL (refused in any text)."""
    errors = [
        FieldError(
            f"{prefix}{p}".replace("\x00", "\\x00"),
            "contains the NUL character (U+0000), which no text may hold",
        )
        for p in nul_paths(value)
    ]
    if errors:
        raise InvalidData(what, errors[:20])
