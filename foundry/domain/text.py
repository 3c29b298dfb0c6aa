"""Text a job's record keeps from code it does not control: a handler's exception, a progress
note. Every backend stores it as UTF-8, and a record stays a size Redis and the dashboard
handle well."""

from __future__ import annotations


def storable(text: str) -> str:
    """``text`` as UTF-8 can carry it: a lone surrogate (in a file name ``os.fsdecode``
    escaped, say) becomes its escape sequence (``"\\udcff"``)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode(errors="backslashreplace").decode()
    return text


#: Room a cut keeps for saying so: its note is shorter whatever the count in it.
_NOTE_ROOM = 48


def cut_tail(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: its start, saying how many were cut from its
    end (cutting it again changes nothing)."""
    if len(text) <= limit:
        return text
    kept = limit - _NOTE_ROOM
    return f"{text[:kept]}... ({len(text) - kept} more characters cut)"


def cut_head(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: its end, saying how many were cut before it
    (cutting it again changes nothing)."""
    if len(text) <= limit:
        return text
    kept = limit - _NOTE_ROOM
    return f"({len(text) - kept} characters cut)...{text[-kept:]}"
