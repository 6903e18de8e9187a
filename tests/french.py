"""French typography in test expectations: write ``fr("Rappel : « X »")`` and compare with
what a template renders (non-breaking spaces before ``:``, ``;``, ``?``, ``!``, ``%``,
inside « » and after ``n°``), so an expectation stays readable."""

from __future__ import annotations

NBSP, NNBSP = "\u00a0", "\u202f"


def fr(text: str) -> str:
    for mark in ";?!":
        text = text.replace(f" {mark}", NNBSP + mark)
    return (
        text.replace(" :", NBSP + ":")
        .replace(" %", NBSP + "%")
        .replace("« ", "«" + NBSP)
        .replace(" »", NBSP + "»")
        .replace("n° ", "n°" + NBSP)
    )


def plain(text: str) -> str:
    """The text with every non-breaking space made an ordinary one (to search words)."""
    return text.replace(NBSP, " ").replace(NNBSP, " ")
