"""Text for PostgreSQL's text columns, which cannot hold NUL: a key filled from a payload, or
an error's message in a reason, may."""

from __future__ import annotations

#: What stands for NUL in such text: U+2400 SYMBOL FOR NULL.
NUL_STANDIN = "\u2400"


def without_nul(text: str | None) -> str | None:
    """``text`` as a text column can hold it: each NUL replaced by ``NUL_STANDIN``."""
    if text is None or "\x00" not in text:
        return text
    return text.replace("\x00", NUL_STANDIN)
